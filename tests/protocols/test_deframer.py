"""The streaming deframer: any chunking, garbage, line noise, length edge cases, timeouts."""

from __future__ import annotations

import random
import struct
from collections.abc import Iterable

import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from protocols.pos.deframer import FrameDeframer
from protocols.pos.errors import ProtocolError
from protocols.pos.framing import (
    HEADER_SIZE,
    MAX_FRAME,
    MAX_PAYLOAD,
    PROTOCOL_VERSION,
    SYNC,
    Frame,
    decode_frame,
    encode_frame,
)
from protocols.pos.messages import decode_message
from tests.protocols.vectors import MESSAGE_VECTORS, VECTOR_IDS, VECTORS, expected_frame

ALL_WIRE = b"".join(w for w, _ in VECTORS)
ALL_FRAMES = [f for _, f in VECTORS]


def fake_header(length: int, version: int = PROTOCOL_VERSION, seq: int = 0x1234,
                msg_type: int = 0x10, flags: int = 0) -> bytes:
    """Sync and a header with no payload or CRC behind it (seq/type chosen without A5 bytes)."""
    return SYNC + struct.pack(">BBHBH", version, flags, seq, msg_type, length)


def check_stats(d: FrameDeframer, frames: list[Frame], wires: Iterable[bytes], dropped: int) -> None:
    """Counters agree with what came out: frames, their bytes, and the bytes dropped."""
    s = d.stats
    assert s.frames == len(frames)
    assert s.frame_bytes == sum(len(w) for w in wires)
    assert s.bytes_dropped == dropped
    assert s.bytes_in == s.frame_bytes + s.bytes_dropped + d.pending


def feed_chunks(d: FrameDeframer, data: bytes, sizes: list[int]) -> list[Frame]:
    """Feed ``data`` in chunks whose sizes cycle through ``sizes``."""
    out: list[Frame] = []
    pos, i = 0, 0
    while pos < len(data):
        size = sizes[i % len(sizes)]
        out += d.feed(data[pos:pos + size])
        pos += size
        i += 1
    return out


def flush(d: FrameDeframer) -> list[Frame]:
    """The inter-byte timeout, repeated until nothing is held."""
    out: list[Frame] = []
    while d.pending:
        before = d.pending
        out += d.drop_partial()
        assert d.pending < before, "drop_partial made no progress"
    return out


# -- clean streams ---------------------------------------------------------------------

@pytest.mark.parametrize(("wire", "frame"), VECTORS, ids=VECTOR_IDS)
def test_whole(wire: bytes, frame: Frame) -> None:
    d = FrameDeframer()
    assert d.feed(wire) == [frame]
    assert d.pending == 0
    check_stats(d, [frame], [wire], 0)


@pytest.mark.parametrize(("wire", "frame"), VECTORS, ids=VECTOR_IDS)
def test_split_at_every_offset(wire: bytes, frame: Frame) -> None:
    for k in range(len(wire) + 1):
        d = FrameDeframer()
        first = d.feed(wire[:k])
        assert first == ([frame] if k == len(wire) else []), k
        second = d.feed(wire[k:])
        assert first + second == [frame], k
        assert d.pending == 0
        check_stats(d, [frame], [wire], 0)


@pytest.mark.parametrize(("wire", "frame"), VECTORS, ids=VECTOR_IDS)
def test_byte_by_byte(wire: bytes, frame: Frame) -> None:
    d = FrameDeframer()
    out = []
    for k in range(len(wire)):
        got = d.feed(wire[k:k + 1])
        assert got == ([frame] if k == len(wire) - 1 else []), k
        out += got
    assert out == [frame]
    check_stats(d, out, [wire], 0)


def test_message_vectors_decode() -> None:
    d = FrameDeframer()
    frames = d.feed(b"".join(w for w, _ in MESSAGE_VECTORS))
    assert [decode_message(f).type for f in frames] == [f.type for _, f in MESSAGE_VECTORS]


@settings(deadline=None, max_examples=150)
@given(order=st.permutations(range(len(VECTORS))),
       sizes=st.lists(st.integers(1, 1500), min_size=1, max_size=40))
def test_concatenation_in_random_chunks(order: list[int], sizes: list[int]) -> None:
    wires = [VECTORS[i][0] for i in order]
    frames = [VECTORS[i][1] for i in order]
    d = FrameDeframer()
    out = feed_chunks(d, b"".join(wires), sizes)
    assert out == frames
    assert d.pending == 0
    check_stats(d, out, wires, 0)


def test_concatenation_in_fixed_orders() -> None:
    for sizes in ([1], [2], [3], [7], [HEADER_SIZE], [HEADER_SIZE + 1], [MAX_FRAME], [len(ALL_WIRE)]):
        d = FrameDeframer()
        out = feed_chunks(d, ALL_WIRE, sizes)
        assert out == ALL_FRAMES, sizes
        check_stats(d, out, [w for w, _ in VECTORS], 0)


# -- garbage between frames ---------------------------------------------------------------

garbage_piece = st.one_of(
    st.binary(min_size=1, max_size=40),
    st.just(b"\xa5"),
    st.just(SYNC),
    st.just(b"\xa5\xa5\x5a"),
    # fake headers: right version, any length (oversize included), sometimes a partial one
    st.builds(lambda ln, rest, cut: fake_header(ln, seq=rest)[:cut],
              st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(2, HEADER_SIZE)),
    st.builds(fake_header, st.integers(0, 64)),
    st.builds(lambda v, ln: fake_header(ln, version=v), st.integers(0, 255), st.integers(0, 2000)),
    # a real frame with a damaged CRC
    st.builds(lambda i: VECTORS[i][0][:-1] + bytes([VECTORS[i][0][-1] ^ 0x01]),
              st.sampled_from([i for i, (w, _) in enumerate(VECTORS) if len(w) < 200])),
)
garbage = st.lists(garbage_piece, max_size=6).map(b"".join)


def accidental_frames(stream: bytes, spans: list[tuple[int, int]]) -> list[int]:
    """Offsets in the garbage where a CRC-valid frame starts by accident (a 1 in 65536 event)."""
    found = []
    for start, end in spans:
        i = stream.find(SYNC, start)
        while 0 <= i < end:
            if len(stream) - i >= HEADER_SIZE:
                (length,) = struct.unpack_from(">H", stream, i + 7)
                try:
                    decode_frame(stream[i:i + HEADER_SIZE + length + 2])
                    found.append(i)
                except ProtocolError:
                    pass
            i = stream.find(SYNC, i + 1)
    return found


@settings(deadline=None, max_examples=300)
@given(picks=st.lists(st.sampled_from(range(len(VECTORS))), min_size=1, max_size=8),
       garbages=st.lists(garbage, min_size=8, max_size=8),
       sizes=st.lists(st.integers(1, 700), min_size=1, max_size=20))
def test_garbage_between_frames(picks: list[int], garbages: list[bytes], sizes: list[int]) -> None:
    stream = b""
    spans = []
    for g, i in zip(garbages, picks, strict=False):
        spans.append((len(stream), len(stream) + len(g)))
        stream += g + VECTORS[i][0]
    assume(not accidental_frames(stream, spans))
    wires = [VECTORS[i][0] for i in picks]
    frames = [VECTORS[i][1] for i in picks]
    garbage_len = len(stream) - sum(map(len, wires))

    d = FrameDeframer()
    out = feed_chunks(d, stream, sizes)
    if not any(SYNC in stream[a:b] for a, b in spans):
        # no sync in the garbage: nothing can hold the last frame back
        assert d.pending == 0
        assert out == frames
    # a fake header in the garbage may claim a payload running past the end of the stream;
    # the frames it covers come out when the inter-byte timeout drops it
    assert out == frames[:len(out)]
    held = len(frames) - len(out)
    event(f"frames held until the timeout: {min(held, 2)}{'+' if held > 2 else ''}")
    out += flush(d)
    assert out == frames
    check_stats(d, out, wires, garbage_len)


# -- line noise ------------------------------------------------------------------------

def test_one_percent_bit_flips() -> None:
    """Over a long noisy stream every untouched frame comes out, and nothing else does."""
    rng = random.Random(0x05_51_4D)
    stream = bytearray()
    intact: list[Frame] = []
    corrupted = 0
    for n in range(3000):
        msg_type, payload = rng.choice(VECTORS)[1][3:5] if rng.random() < 0.9 else (0x99, b"")
        if rng.random() < 0.01:
            payload = rng.choice(VECTORS[-2:])[1].payload  # occasionally a 1024-byte one
        wire = bytearray(encode_frame(msg_type, payload, seq=n & 0xFFFF, flags=n & 0x07))
        flipped = False
        for k in range(len(wire)):
            if rng.random() < 0.01:            # one byte in a hundred takes a bit error
                wire[k] ^= 1 << rng.randrange(8)
                flipped = True
        if flipped:
            corrupted += 1
        else:
            intact.append(Frame(PROTOCOL_VERSION, n & 0x07, n & 0xFFFF, msg_type, payload))
        stream += wire
    assert 300 < corrupted < 2700, corrupted   # the noise really is there, and so are survivors

    d = FrameDeframer()
    sizes = [rng.randrange(1, 300) for _ in range(50)]
    out = feed_chunks(d, bytes(stream), sizes) + flush(d)
    assert len(out) == len(intact)
    assert out == intact
    assert d.stats.bad_crc > 0
    check_stats(d, out, [encode_frame(f.type, f.payload, f.seq, f.flags) for f in out],
                len(stream) - d.stats.frame_bytes)


# -- the length field --------------------------------------------------------------------

@pytest.mark.parametrize("length", [0, 1, MAX_PAYLOAD])
def test_valid_lengths(length: int) -> None:
    wire, frame = expected_frame(0x41, bytes(range(256)) * 4 if length == MAX_PAYLOAD
                                 else b"\x07" * length, seq=9)
    assert len(frame.payload) == length
    d = FrameDeframer()
    assert d.feed(wire[:HEADER_SIZE]) == []
    assert d.pending == HEADER_SIZE
    assert d.feed(wire[HEADER_SIZE:]) == [frame]
    check_stats(d, [frame], [wire], 0)


@pytest.mark.parametrize("length", [MAX_PAYLOAD + 1, 0xFFFF])
def test_oversize_refused_on_the_header(length: int) -> None:
    d = FrameDeframer()
    assert d.feed(fake_header(length)) == []
    assert d.stats.oversize == 1                 # refused before any payload was waited for
    assert d.pending < HEADER_SIZE
    wire, frame = VECTORS[1]
    assert d.feed(wire) == [frame]
    assert d.stats.oversize == 1
    check_stats(d, [frame], [wire], HEADER_SIZE)
    # the same in one chunk, with the valid frame right behind the fake header
    d = FrameDeframer()
    assert d.feed(fake_header(length) + wire) == [frame]
    assert d.stats.oversize == 1
    check_stats(d, [frame], [wire], HEADER_SIZE)


def test_lowered_max_payload() -> None:
    d = FrameDeframer(max_payload=64)
    big = encode_frame(0x41, b"\x01" * 65, seq=1)
    ok_wire, ok = expected_frame(0x41, b"\x01" * 64, seq=2)
    assert d.feed(big[:HEADER_SIZE]) == []
    assert d.stats.oversize == 1
    assert d.feed(big[HEADER_SIZE:] + ok_wire) == [ok]
    assert d.stats.oversize == 1
    check_stats(d, [ok], [ok_wire], len(big))
    # the default deframer takes the same 65-byte frame
    assert len(FrameDeframer().feed(big)) == 1


def test_wrong_version_skipped() -> None:
    wire, frame = VECTORS[5]
    d = FrameDeframer()
    bad = b"".join(encode_frame(0x03, b"\x00\x01", seq=3, version=v) for v in (0, 2, 0xFF))
    assert d.feed(bad + wire) == [frame]
    assert d.stats.bad_version == 3
    assert d.stats.bad_crc == 0
    check_stats(d, [frame], [wire], len(bad))


# -- the inter-byte timeout ----------------------------------------------------------------

@pytest.mark.parametrize("cut", [1, 2, 5, HEADER_SIZE, HEADER_SIZE + 3, -1])
def test_drop_partial_after_silence(cut: int) -> None:
    wire, frame = VECTORS[7]
    part = wire[:cut]
    d = FrameDeframer()
    assert d.feed(part) == []
    assert d.pending == len(part)
    assert d.drop_partial() == []
    assert d.pending == 0
    assert d.stats.partial_dropped == (1 if len(part) >= len(SYNC) else 0)
    check_stats(d, [], [], len(part))
    # the next frame is not affected
    assert d.feed(wire) == [frame]
    check_stats(d, [frame], [wire], len(part))


def test_drop_partial_returns_frames_behind_a_fake_header() -> None:
    wires = [VECTORS[0][0], VECTORS[3][0]]
    frames = [VECTORS[0][1], VECTORS[3][1]]
    fake = fake_header(1000)
    d = FrameDeframer()
    assert d.feed(fake + b"".join(wires)) == []          # held: they may be the fake's payload
    assert d.pending == len(fake) + sum(map(len, wires))
    assert d.drop_partial() == frames
    assert d.pending == 0
    assert d.stats.partial_dropped == 1
    check_stats(d, frames, wires, len(fake))


# -- memory --------------------------------------------------------------------------------

def test_buffer_bounded_under_garbage() -> None:
    rng = random.Random(20241123)
    data = bytearray()
    while len(data) < 100_000:
        r = rng.random()
        if r < 0.3:
            data += fake_header(rng.randrange(MAX_PAYLOAD - 200, MAX_PAYLOAD + 1),
                                seq=rng.randrange(0x10000))
        elif r < 0.4:
            data += fake_header(rng.randrange(0x10000), seq=rng.randrange(0x10000))
        elif r < 0.45:
            data += fake_header(rng.randrange(0x10000), version=rng.randrange(2, 256))
        elif r < 0.5:
            data += b"\xa5"
        else:
            data += rng.randbytes(rng.randrange(1, 400))
    d = FrameDeframer()
    pos, peak = 0, 0
    while pos < len(data):
        chunk = data[pos:pos + rng.choice([1, 7, 64, 512, 4096])]
        pos += len(chunk)
        d.feed(chunk)
        assert d.pending <= MAX_FRAME + len(chunk), (pos, d.pending)
        peak = max(peak, d.pending)
    assert peak > MAX_FRAME - 300           # the fake headers did make it wait for long payloads
    # fake headers of another version carry a random CRC: the CRC is checked first, so they count as bad CRCs
    assert d.stats.bad_crc > 50 and d.stats.oversize > 50 and d.stats.bad_version == 0
    assert d.stats.bytes_in == len(data)
    assert d.stats.bytes_in == d.stats.frame_bytes + d.stats.bytes_dropped + d.pending

