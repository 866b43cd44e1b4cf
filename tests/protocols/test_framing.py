"""Frame encode / decode: CRC, parity with the construct declaration, and every refusal."""

from __future__ import annotations

import struct

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from protocols.pos.errors import (
    BadCRC,
    BadSync,
    EncodeError,
    FrameError,
    IncompleteFrame,
    OversizeFrame,
    TrailingBytes,
    UnsupportedVersion,
)
from protocols.pos.framing import (
    FRAME,
    MAX_PAYLOAD,
    PROTOCOL_VERSION,
    SYNC,
    Frame,
    crc16,
    decode_frame,
    decode_frame_construct,
    encode_frame,
    encode_frame_construct,
)
from tests.protocols.vectors import RAW_VECTORS, VECTOR_IDS, VECTORS, expected_frame


def crc16_bitwise(data: bytes) -> int:
    """CRC-16/CCITT-FALSE the slow way: poly 0x1021, init 0xFFFF, MSB first, no xorout."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def raises_exactly(exc_type: type[Exception], data: bytes) -> Exception:
    """decode_frame(data) must raise exactly ``exc_type`` (not a subclass, not a sibling)."""
    with pytest.raises(Exception) as info:
        decode_frame(data)
    assert type(info.value) is exc_type, (
        f"decode_frame({data.hex()}) raised {type(info.value).__name__}: {info.value}, "
        f"expected {exc_type.__name__}")
    return info.value


frames_st = st.builds(
    lambda t, flags, seq, payload: Frame(PROTOCOL_VERSION, flags, seq, t, payload),
    st.integers(0, 255), st.integers(0, 255), st.integers(0, 0xFFFF),
    st.binary(max_size=MAX_PAYLOAD),
)


# -- CRC ---------------------------------------------------------------------------------

def test_crc16_check_value() -> None:
    assert crc16(b"123456789") == 0x29B1
    assert crc16_bitwise(b"123456789") == 0x29B1  # the reference itself is right
    assert crc16(b"") == 0xFFFF


@settings(deadline=None, max_examples=300)
@given(st.binary(max_size=2048))
def test_crc16_matches_bitwise_reference(data: bytes) -> None:
    assert crc16(data) == crc16_bitwise(data)


# -- parity with the construct declaration -----------------------------------------------

@settings(deadline=None, max_examples=300)
@example(Frame(PROTOCOL_VERSION, 0xFF, 0xFFFF, 0xFF, bytes(range(256)) * 4))
@example(Frame(PROTOCOL_VERSION, 0, 0, 0, b""))
@given(frames_st)
def test_encode_matches_construct_build(frame: Frame) -> None:
    wire = encode_frame(frame.type, frame.payload, seq=frame.seq, flags=frame.flags)
    assert wire == encode_frame_construct(frame)
    assert wire == FRAME.build({"body": {"value": frame._asdict()}})
    # and both match the layout written out by hand
    assert wire == expected_frame(frame.type, frame.payload, frame.seq, frame.flags)[0]


@settings(deadline=None, max_examples=300)
@example(Frame(PROTOCOL_VERSION, 0xFF, 0xFFFF, 0xFF, bytes(range(256)) * 4))
@example(Frame(PROTOCOL_VERSION, 0, 0, 0, b""))
@given(frames_st)
def test_decode_matches_construct_parse(frame: Frame) -> None:
    wire = expected_frame(frame.type, frame.payload, frame.seq, frame.flags)[0]
    decoded = decode_frame(wire)
    assert decoded == frame
    assert decoded == decode_frame_construct(wire)
    assert type(decoded.payload) is bytes


@pytest.mark.parametrize(("wire", "frame"), VECTORS, ids=VECTOR_IDS)
def test_vectors_decode(wire: bytes, frame: Frame) -> None:
    assert decode_frame(wire) == frame == decode_frame_construct(wire)


# -- truncation --------------------------------------------------------------------------

TRUNCATION_VECTORS = [
    expected_frame(0x03, b"", 0),                      # length 0
    expected_frame(0x06, b"", 0xA55A, 0xA5),           # length 0, sync bytes in the header
    expected_frame(0x15, b"\x01", 7, 0x01),
    expected_frame(0x11, b"\xa5\x5a\x01" * 5, 0x1234),
    *RAW_VECTORS,                                       # includes two 1024-byte payloads
]


@pytest.mark.parametrize(("wire", "frame"), TRUNCATION_VECTORS,
                         ids=[f"len{len(f.payload)}-seq{f.seq}" for _, f in TRUNCATION_VECTORS])
def test_truncation_is_incomplete(wire: bytes, frame: Frame) -> None:
    assert any(len(f.payload) == MAX_PAYLOAD for _, f in TRUNCATION_VECTORS)
    assert any(len(f.payload) == 0 for _, f in TRUNCATION_VECTORS)
    for k in range(len(wire)):
        raises_exactly(IncompleteFrame, wire[:k])
    assert decode_frame(wire) == frame


# -- corruption --------------------------------------------------------------------------

SMALL = expected_frame(0x13, b"\x05\x12\x00\xa5", 0x0102, 0x01)[0]   # 4-byte payload, 15 bytes
VERSION_AT, LENGTH_AT, PAYLOAD_AT = 2, 7, 9


def _flip(wire: bytes, bit: int) -> bytes:
    b = bytearray(wire)
    b[bit // 8] ^= 0x80 >> (bit % 8)
    return bytes(b)


@pytest.mark.parametrize("bit", [b for b in range(len(SYNC) * 8, len(SMALL) * 8)
                                 if b // 8 not in (VERSION_AT, LENGTH_AT, LENGTH_AT + 1)])
def test_bit_flip_is_bad_crc(bit: int) -> None:
    """Flags, seq, type, payload and CRC bits: the header still parses, the CRC catches it."""
    raises_exactly(BadCRC, _flip(SMALL, bit))


@pytest.mark.parametrize("bit", range(LENGTH_AT * 8, (LENGTH_AT + 2) * 8))
def test_bit_flip_in_length_is_refused(bit: int) -> None:
    """A flipped length moves the frame's end: the frame is refused by where that end falls."""
    bad = _flip(SMALL, bit)
    (length,) = struct.unpack_from(">H", bad, LENGTH_AT)
    end = PAYLOAD_AT + length + 2
    expected = (OversizeFrame if length > MAX_PAYLOAD
                else IncompleteFrame if end > len(bad) else TrailingBytes)
    raises_exactly(expected, bad)


def test_bit_flip_in_version_is_bad_crc() -> None:
    """The CRC covers the version byte, so a damaged version byte is a CRC error (line noise),
    not a frame from a newer protocol version."""
    outcomes = {}
    for bit in range(VERSION_AT * 8, VERSION_AT * 8 + 8):
        with pytest.raises(FrameError) as info:
            decode_frame(_flip(SMALL, bit))
        outcomes[bit] = type(info.value).__name__
    assert set(outcomes.values()) == {"BadCRC"}, outcomes


def test_wrong_version_with_valid_crc_is_unsupported() -> None:
    raises_exactly(UnsupportedVersion, expected_frame(0x03, b"", 1, version=2)[0])


@pytest.mark.parametrize("bad", [
    b"\x00" + SMALL[1:],
    SMALL[:1] + b"\x00" + SMALL[2:],
    b"\x5a\xa5" + SMALL[2:],
    b"\x00" + SMALL,          # one byte of noise before a good frame
    b"\x00",
    b"\x5a",
    b"\xa5\xa5",
])
def test_bad_sync(bad: bytes) -> None:
    raises_exactly(BadSync, bad)


@pytest.mark.parametrize("extra", [b"\x00", b"\xa5", SYNC, SMALL])
def test_trailing_bytes(extra: bytes) -> None:
    raises_exactly(TrailingBytes, SMALL + extra)


@pytest.mark.parametrize("length", [MAX_PAYLOAD + 1, 0xFFFF])
def test_oversize_length(length: int) -> None:
    header = SYNC + struct.pack(">BBHBH", PROTOCOL_VERSION, 0, 1, 0x03, length)
    raises_exactly(OversizeFrame, header)                       # refused on the header alone
    raises_exactly(OversizeFrame, header + bytes(10))
    body = header[2:] + bytes(length)
    raises_exactly(OversizeFrame, header + bytes(length) + struct.pack(">H", crc16(body)))


def test_encode_refuses_oversize_payload() -> None:
    with pytest.raises(EncodeError):
        encode_frame(0x03, bytes(MAX_PAYLOAD + 1), seq=1)
    assert len(encode_frame(0x03, bytes(MAX_PAYLOAD), seq=1)) == MAX_PAYLOAD + 11
