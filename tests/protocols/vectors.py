"""Shared test vectors for the framing, deframer and fuzz tests.

``MESSAGE_FIELDS`` holds realistic fields for most message types; ``MESSAGE_VECTORS`` frames
each through :func:`protocols.pos.messages.encode_message` with its own sequence number and
flags.  ``RAW_VECTORS`` are :func:`protocols.pos.framing.encode_frame` frames with payload lengths
0, 1 and 1024 (the maximum).  ``VECTORS`` is both, as ``(wire bytes, expected Frame)`` pairs,
the expected frame built independently of the decoder under test.
"""

from __future__ import annotations

import struct
from typing import Any

from protocols.pos.framing import MAX_PAYLOAD, PROTOCOL_VERSION, Frame, crc16, encode_frame
from protocols.pos.messages import MessageType, encode_message

T = MessageType

_TX = {
    "txn_id": 100234, "time": 1_732_350_000, "kind": "sale", "result": "approved",
    "entry": "chip", "amount": 12_800, "currency": 156, "pan_bin": 622_848,
    "pan_last4": 4321, "auth_code": b"A1B2C3",
}

#: (message type, fields, flags) for realistic messages of many types
MESSAGE_FIELDS: list[tuple[MessageType, dict[str, Any], int]] = [
    (T.HELLO, {"protocol_version": 1, "max_payload": 1024, "host": "pos-sim 0.1.0"}, 0),
    (T.HELLO_REPLY, {"protocol_version": 1, "max_payload": 512, "components": 0x0FFE,
                     "serial": "PS-2024-000123", "boot_id": 0xA55AA55A}, 0x01),
    (T.PING, {}, 0),
    (T.PONG, {"uptime_ms": 3_600_000}, 0x01),
    (T.ACK, {}, 0x01),
    (T.NAK, {"reason": "bad_crc"}, 0x01),
    (T.INFO_REQUEST, {}, 0),
    (T.INFO_REPLY, {"manufacturer": "Acme Payments", "model": "P10", "serial": "PS-2024-000123",
                    "hardware_rev": "C", "firmware_version": "2.4.1", "lifecycle": "bound",
                    "merchant_id": "898310048160001", "activated_at": 1_700_000_000,
                    "clock": 1_732_350_000}, 0x01),
    (T.STATUS_REQUEST, {"component": "printer"}, 0),
    (T.STATUS_REPLY, {"component": "printer", "status": {
        "printer_status": 0x12, "offline_cause": 0x12, "error_cause": 0x12,
        "paper_sensor": 0x0C, "head_temp_c": 41, "lines_printed": 1_234_567}}, 0x01),
    (T.STATUS_REPLY, {"component": "network", "status": {
        "bearer": "lte_fdd", "signal_dbm": -87, "link_quality": 180, "ipv4": bytes([10, 0, 0, 23]),
        "apn": "cmnet", "cell_id": 0x0A55A5, "sim_present": True, "host_reachable": True,
        "latency_ms": 142}}, 0x01),
    (T.STATUS_REPLY, {"component": "keypad", "status": {
        "keys_total": 18, "presses": 99_999, "stuck_keys": [{"key": "k5"}, {"key": "enter"}]}}, 0x01),
    (T.STATUS_REPLY, {"component": "chip", "status": {
        "slot": "card_present", "atr": bytes.fromhex("3b6800000073c84013009000"),
        "insertions": 4242}}, 0x01),
    (T.SELFTEST_START, {"component": "magstripe", "plan": "full", "interactive": True}, 0),
    (T.SELFTEST_PROGRESS, {"component": "magstripe", "percent": 40, "step": 2,
                           "prompt": "swipe_card"}, 0x02),
    (T.SELFTEST_RESULT, {"component": "power", "plan": "quick", "outcome": "warning",
                         "code": "battery_low", "duration_ms": 1530,
                         "measurements": [{"id": "battery_pct", "value": 12},
                                          {"id": "voltage_mv", "value": 3610},
                                          {"id": "current_ma", "value": -420}],
                         "note": "电池电量低"}, 0x02),
    (T.SELFTEST_ABORT, {"component": 0xFF}, 0),
    (T.SELFTEST_CONFIRM, {"component": "screen", "accepted": False}, 0),
    (T.ERROR, {"component": "printer", "code": "paper_end", "severity": "error",
               "detail": "paper end sensor"}, 0x02),
    (T.EVENT, {"event": "card_swiped", "component": "magstripe", "uptime_ms": 86_400_123,
               "value": 0b011}, 0x02),
    (T.EVENTLOG_READ, {"page": 3}, 0),
    (T.EVENTLOG_PAGE, {"page": 0, "pages": 1, "entries": [
        {"time": 1_732_000_000 + i, "component": "network", "code": "weak_signal",
         "severity": "warning"} for i in range(20)]}, 0x01),
    (T.TXLOG_OPEN, {}, 0),
    (T.TXLOG_INFO, {"records": 1234, "pages": 124, "records_per_page": 10,
                    "sha256": bytes(range(32))}, 0x01),
    (T.TXLOG_READ, {"page": 7}, 0),
    (T.TXLOG_PAGE, {"page": 7, "records": [dict(_TX, txn_id=100234 + i) for i in range(10)],
                    "page_crc": 0xDEADBEEF}, 0x01),
    (T.LC_CHALLENGE_REQUEST, {"operation": "activate"}, 0),
    (T.LC_CHALLENGE, {"operation": "activate", "nonce": bytes.fromhex("a55a" * 8),
                      "counter": 41, "serial": "PS-2024-000123"}, 0x01),
    (T.LC_REQUEST, {"operation": "activate", "counter": 42, "nonce": bytes.fromhex("a55a" * 8),
                    "activation_code": "ACT-7F3K-99QX", "merchant_id": "898310048160001",
                    "reason": "", "mac": bytes(range(0xA0, 0xC0))}, 0),
    (T.LC_RESULT, {"operation": "activate", "status": "ok", "state": "activated",
                   "counter": 42, "message": ""}, 0x01),
]


def expected_frame(msg_type: int, payload: bytes, seq: int, flags: int = 0,
                   version: int = PROTOCOL_VERSION) -> tuple[bytes, Frame]:
    """Wire bytes laid out by hand (not through encode_frame) and the Frame they stand for."""
    body = struct.pack(">BBHBH", version, flags, seq, msg_type, len(payload)) + payload
    wire = b"\xa5\x5a" + body + struct.pack(">H", crc16(body))
    return wire, Frame(version, flags, seq, msg_type, payload)


def _message_vectors() -> list[tuple[bytes, Frame]]:
    out = []
    for n, (t, fields, flags) in enumerate(MESSAGE_FIELDS):
        seq = 0x0100 + n
        wire = encode_message(t, fields, seq=seq, flags=flags)
        payload = wire[9:-2]
        hand, frame = expected_frame(int(t), payload, seq, flags)
        assert wire == hand, t
        out.append((wire, frame))
    return out


def _raw_vectors() -> list[tuple[bytes, Frame]]:
    out = []
    for seq, (t, payload) in enumerate([
        (0x03, b""),
        (0x7E, b"\xa5"),
        (0xEE, bytes((i * 37 + 0xA5) & 0xFF for i in range(MAX_PAYLOAD))),
        # a max-length payload full of sync patterns and fake headers
        (0x99, (b"\xa5\x5a\x01\x00\x00\x00\x10\x03\xff" * 114)[:MAX_PAYLOAD]),
    ], start=0xFFF0):
        wire = encode_frame(t, payload, seq=seq, flags=0x04)
        hand, frame = expected_frame(t, payload, seq, 0x04)
        assert wire == hand
        out.append((wire, frame))
    return out


MESSAGE_VECTORS = _message_vectors()
RAW_VECTORS = _raw_vectors()
VECTORS: list[tuple[bytes, Frame]] = MESSAGE_VECTORS + RAW_VECTORS
VECTOR_IDS = [f"{MessageType.describe(f.type)}-{len(f.payload)}" for _, f in VECTORS]
