"""The spec's test vectors, recomputed with code that is not the implementation's.

docs/protocol.md section 14 prints frames as hex. These tests read them from the document and
check every CRC, digest and MAC with Python's own ``binascii``, ``zlib``, ``hashlib`` and
``hmac`` and byte offsets worked out by hand from the field tables, so a wrong implementation
that generated the examples would be caught here, not confirmed.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import re
import struct
import zlib
from pathlib import Path

import pytest

SPEC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
_EXAMPLE = re.compile(r"### Example (\d+): ([^\n]*)\n.*?```hex\n(.*?)```", re.DOTALL)
RETRANSMIT = 0x04  # FrameFlag table: bit 2


def _examples() -> dict[int, tuple[str, bytes]]:
    text = SPEC.read_text(encoding="utf-8")
    return {int(n): (title, bytes.fromhex(body)) for n, title, body in _EXAMPLE.findall(text)}


EXAMPLES = _examples()


def frame(n: int) -> bytes:
    """Example ``n``'s frame bytes, as printed."""
    return EXAMPLES[n][1]


def payload(n: int) -> bytes:
    """Example ``n``'s payload: after the 9-byte header, before the 2-byte CRC."""
    data = frame(n)
    (length,) = struct.unpack(">H", data[7:9])
    assert len(data) == 9 + length + 2
    return data[9:9 + length]


def test_the_spec_has_the_vectors_these_tests_read() -> None:
    assert sorted(EXAMPLES) == list(range(1, 17))
    assert "LC_CHALLENGE" in EXAMPLES[9][0] and "TXLOG_INFO" in EXAMPLES[13][0]


@pytest.mark.parametrize("n", sorted(EXAMPLES))
def test_every_example_crc_is_crc16_ccitt_false_of_version_to_payload(n: int) -> None:
    data = frame(n)
    assert data[:2] == b"\xa5\x5a"
    assert binascii.crc_hqx(data[2:-2], 0xFFFF) == int.from_bytes(data[-2:], "big")


def test_a_duplicate_is_the_same_frame_with_the_retransmit_flag() -> None:
    for original, again in ((8, 11), (10, 12)):
        a, b = frame(original), frame(again)
        assert len(a) == len(b)
        assert b[3] == a[3] | RETRANSMIT and a[3] & RETRANSMIT == 0
        # sync, version, seq, type, length and payload: identical; only flags and CRC differ
        assert a[:3] == b[:3] and a[4:-2] == b[4:-2] and a[-2:] != b[-2:]


def test_the_lifecycle_mac_follows_the_formula_from_the_challenge() -> None:
    challenge, request, result = payload(9), payload(8), payload(10)
    # LC_CHALLENGE: operation u8, nonce[16], counter u32, serial str8
    op, nonce = challenge[0], challenge[1:17]
    (last_counter,) = struct.unpack(">I", challenge[17:21])
    serial = challenge[22:22 + challenge[21]]
    assert serial == b"SP0000123" and last_counter == 7
    # LC_REQUEST: operation u8, counter u32, nonce[16], three str8 arguments, mac[32]
    assert request[0] == op
    (counter,) = struct.unpack(">I", request[1:5])
    assert counter > last_counter and request[5:21] == nonce
    args, mac = request[21:-32], request[-32:]
    key = bytes(range(32))
    message = (b"POSSIM-LC1" + bytes([len(serial)]) + serial + bytes([op]) + hashlib.sha256(args).digest()
               + nonce + struct.pack(">I", counter))
    assert hmac.compare_digest(hmac.new(key, message, hashlib.sha256).digest(), mac)
    # LC_RESULT: operation, status 0 (ok), state 2 (bound), the new counter
    assert result[0] == op and result[1] == 0 and result[2] == 2
    assert struct.unpack(">I", result[3:7]) == (counter,)


def test_the_txlog_digest_and_page_crc_are_sha256_and_crc32_of_the_records_field() -> None:
    info, page = payload(13), payload(14)
    # TXLOG_PAGE: page u16, records (count u8 + 29 bytes each), page_crc u32
    records_field = page[2:-4]
    assert records_field[0] == 2 and len(records_field) == 1 + 2 * 29
    assert zlib.crc32(records_field) == int.from_bytes(page[-4:], "big")
    # TXLOG_INFO: records u32, pages u16, records_per_page u8, sha256[32]
    records, pages, per_page = struct.unpack(">IHB", info[:7])
    assert (records, pages, per_page) == (2, 1, 32)
    assert info[7:] == hashlib.sha256(records_field).digest()
    # the records carry no more of a card number than six and four digits (u32 bin, u16 last4)
    for i in range(2):
        bin6, last4 = struct.unpack(">IH", records_field[1 + 29 * i + 17: 1 + 29 * i + 23])
        assert bin6 < 1_000_000 and last4 < 10_000


def test_an_empty_page_is_a_zero_count_and_the_crc_the_spec_states() -> None:
    empty = payload(15)
    assert empty == b"\x00\x01" + b"\x00" + struct.pack(">I", zlib.crc32(b"\x00"))
    text = SPEC.read_text(encoding="utf-8")
    empty_crc = zlib.crc32(b"\x00")
    assert f"0x{empty_crc:08X}" in text
    assert " ".join(re.findall(".{8}", hashlib.sha256(b"").hexdigest())) in text


def test_an_eventlog_page_entry_is_eight_bytes_as_the_page_formula_says() -> None:
    page = payload(16)
    # page u16, pages u16, count u8, then 8-byte entries (time u32, component u8, code u16, severity u8)
    assert struct.unpack(">HHB", page[:5]) == (0, 1, 2)
    assert len(page) == 5 + 2 * 8
    entries = [struct.unpack(">IBHB", page[5 + 8 * i: 13 + 8 * i]) for i in range(2)]
    assert [e[0] for e in entries] == [1795000000, 1795000420]
    # paper_near_end is 0x0502 and battery_low 0x0901 in the FaultCode table
    assert [(e[1], e[2]) for e in entries] == [(0x05, 0x0502), (0x09, 0x0901)]


def test_the_page_formulas_in_the_text_give_the_figures_the_text_states() -> None:
    # section 9: min(64, floor((max_payload - 5) / 8)); section 10: floor((max_payload - 7) / 29), at most 32
    assert [min(64, (p - 5) // 8) for p in (1024, 128)] == [64, 15]
    assert [min(32, (p - 7) // 29) for p in (1024, 128)] == [32, 4]
    from protocols.pos.messages import MessageType, page_capacity
    assert [page_capacity(MessageType.EVENTLOG_PAGE, p) for p in (1024, 128)] == [64, 15]
    assert [page_capacity(MessageType.TXLOG_PAGE, p) for p in (1024, 128)] == [32, 4]
