"""Renders the specification's tables and worked examples from the declarations.

``docs/protocol.md`` holds the prose; every table of messages, fields and codes in it sits
between ``<!-- BEGIN GENERATED: name -->`` and ``<!-- END GENERATED: name -->`` markers and
is produced here, so the spec cannot drift from the code.  ``python -m tools.specdoc``
rewrites those sections; a test fails when they are stale.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterator, Sequence
from typing import Any

from construct import Bytes, Construct, Enum, Flag, FormatField, Rebuild, SizeofError, Struct, Switch

from protocols.pos.auth import lifecycle_args, lifecycle_mac
from protocols.pos.codes import ALL_ENUMS, CodeEnum, FaultCode, FrameFlag
from protocols.pos.compiler import pascal_parts, prefixed_array_parts, switch_key, unwrap
from protocols.pos.faults import FAULT_SEVERITY, component_of, outcome_for
from protocols.pos.framing import FRAME, MAX_PAYLOAD, Frame, decode_frame, encode_frame
from protocols.pos.messages import (
    ANY_SESSION,
    CATALOGUE,
    NO_SESSION,
    STATUS_BY_COMPONENT,
    TX_RECORD,
    MessageType,
    describe_frame,
    encode_message,
    encode_payload,
)
from protocols.pos.timing import MIN_PAYLOAD

_FMT_NAMES = {"B": "u8", "H": "u16", "I": "u32", "L": "u32", "Q": "u64",
              "b": "i8", "h": "i16", "i": "i32", "l": "i32", "q": "i64"}


def enum_class(c: Enum) -> type[CodeEnum]:
    """The CodeEnum an ``Enum`` field was declared with."""
    mapping = {int(k): str(v) for k, v in c.decmapping.items()}
    for e in ALL_ENUMS:
        if {m.value: m.name for m in e} == mapping:
            return e
    raise LookupError(f"no CodeEnum matches {mapping}")


def type_name(c: Construct) -> str:
    """How a field's type reads in the spec (``u16``, ``str8``, ``u8 → Component`` ...)."""
    c = unwrap(c)
    if isinstance(c, Rebuild):
        return type_name(c.subcon)
    if isinstance(c, FormatField):
        return _FMT_NAMES[c.fmtstr.lstrip("<>=!")]
    if c is Flag:
        return "bool (u8 0/1)"
    if isinstance(c, Enum):
        return f"{type_name(c.subcon)} → {enum_class(c).__name__}"
    if isinstance(c, Bytes) and isinstance(c.length, int):
        return f"bytes[{c.length}]"
    pas = pascal_parts(c)
    if pas is not None:
        return ("str" if pas[1] else "bytes") + _FMT_NAMES[pas[0].fmtstr.lstrip("<>=!")][1:]
    arr = prefixed_array_parts(c)
    if arr is not None:
        return f"array{_FMT_NAMES[arr[0].fmtstr.lstrip('<>=!')][1:]}"
    if isinstance(c, Switch):
        return f"by `{switch_key(c)}`"
    if isinstance(c, Struct):
        return "struct"
    raise TypeError(f"no spec name for {type(c).__name__}")


def fixed_size(c: Construct) -> int | None:
    """Bytes a field always takes, or None when it varies."""
    c = unwrap(c)
    if isinstance(c, Rebuild):
        return fixed_size(c.subcon)
    if isinstance(c, Struct):
        total = 0
        for sub in c.subcons:
            if sub.name is None:
                continue
            n = fixed_size(sub)
            if n is None:
                return None
            total += n
        return total
    if isinstance(c, (FormatField, Enum, Bytes)) or c is Flag:
        try:
            return int(c.sizeof())
        except SizeofError:   # a length that depends on another field
            return None
    return None


def field_rows(st: Struct) -> Iterator[tuple[str, str, str, str]]:
    """``(offset, name, type, meaning)`` for each named field of a Struct."""
    off: int | None = 0
    for sub in unwrap(st).subcons:
        if sub.name is None:
            continue
        yield (str(off) if off is not None else "…", f"`{sub.name}`", type_name(sub),
               (sub.docs or "").replace("|", "\\|"))
        size = fixed_size(sub)
        off = off + size if off is not None and size is not None else None


def _table(head: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _fields_table(st: Struct) -> list[str]:
    rows = list(field_rows(st))
    if not rows:
        return ["Empty payload (length 0)."]
    return _table(("offset", "field", "type", "meaning"), rows)


def _size_text(st: Struct) -> str:
    n = fixed_size(st)
    return "variable" if n is None else "1 byte" if n == 1 else f"{n} bytes"


def render_frame() -> str:
    """The frame layout table, from :data:`protocols.pos.framing.FRAME`."""
    rows: list[tuple[str, ...]] = []
    off = 0
    for sub in FRAME.subcons:
        inner = unwrap(sub)
        if sub.name == "body":
            for f in unwrap(inner.subcon).subcons:
                size = fixed_size(f)
                rows.append((str(off), f"`{f.name}`",
                             type_name(f) if size is not None else "bytes[length]", f.docs))
                off += size or 0
            continue
        if sub.name == "crc":
            rows.append(("9 + length", "`crc`", "u16", sub.docs))
            continue
        rows.append((str(off), f"`{sub.name}`", f"bytes[{inner.sizeof()}]", sub.docs))
        off += inner.sizeof()
    return "\n".join(_table(("offset", "field", "type", "meaning"), rows))


def render_catalogue() -> str:
    """The table of every message type."""
    rows = [(f"0x{int(t):02X}", f"[{s.name}](#{s.name.lower()})", s.direction, s.answer,
             _size_text(s.declaration), t.doc) for t, s in CATALOGUE.items()]
    return "\n".join(_table(("type", "message", "direction", "answered by", "payload", "purpose"), rows))


def render_requests() -> str:
    """The host's requests: what answers each, what it needs of the session, whether it is
    asked again on a noisy line, and how its answer is paged (the catalogue's answer rules)."""
    session = {NO_SESSION: "not needed (answered before HELLO)", ANY_SESSION: "any session"}
    rows = []
    for s in CATALOGUE.values():
        if not s.is_request:
            continue
        paged = ""
        for r in s.rule.replies:
            spec = CATALOGUE[r]
            if spec.paging is not None:
                paged = (f"`{spec.paging.items}`: at most {spec.paging.at_most} a page, "
                         f"{spec.page_capacity(MIN_PAYLOAD)} at {MIN_PAYLOAD}-byte payloads")
        rows.append((f"[{s.name}](#{s.name.lower()})", " or ".join(r.name for r in s.rule.replies) + ", or NAK",
                     session.get(s.rule.session, "needs one"), "yes" if s.rule.harmless else "no",
                     paged or "—"))
    return "\n".join(_table(("request", "answered by", "session", "asked again on a noisy line", "paging"), rows))


def _nested(st: Struct) -> list[tuple[str, Struct]]:
    """Array item structs inside a Struct, to be tabled under it."""
    out = []
    for sub in unwrap(st).subcons:
        arr = prefixed_array_parts(unwrap(sub)) if sub.name else None
        if arr is not None and isinstance(unwrap(arr[1]), Struct) and arr[1] is not TX_RECORD:
            out.append((sub.name, unwrap(arr[1])))
    return out


def render_messages() -> str:
    """A section per message with its field table."""
    out: list[str] = []
    for t, s in CATALOGUE.items():
        out += [f"### {s.name}", "",
                f"Type 0x{int(t):02X}, {s.direction}; answered by {s.answer}. {t.doc.capitalize()}. "
                f"Payload: {_size_text(s.declaration)}.", ""]
        out += _fields_table(s.declaration)
        for name, item in _nested(s.declaration):
            out += ["", f"Each item of `{name}`:", ""]
            out += _fields_table(item)
        out.append("")
    out += ["### Status blocks", "",
            "The `status` field of STATUS_REPLY, chosen by `component`:", ""]
    for comp, st in STATUS_BY_COMPONENT.items():
        out += [f"#### status: {comp}", "", f"Size: {_size_text(st)}.", ""]
        out += _fields_table(st)
        for name, item in _nested(st):
            out += ["", f"Each item of `{name}`:", ""]
            out += _fields_table(item)
        out.append("")
    out += ["### Transaction record", "",
            f"Each item of TXLOG_PAGE `records` ({_size_text(TX_RECORD)}). Card numbers never "
            "leave the terminal whole: only the first six and last four digits.", ""]
    out += _fields_table(TX_RECORD)
    return "\n".join(out).rstrip() + "\n"


def render_severities() -> str:
    """Section 8's table: every fault code, its severity and the outcome it gives a run."""
    rows = []
    for code, sev in FAULT_SEVERITY.items():
        if code == FaultCode.none:
            continue
        comp = component_of(code)
        rows.append((f"`{code.name}`", comp.name if comp is not None else "transaction",
                     sev.name, outcome_for(code).name))
    return "\n".join(_table(("code", "component", "severity", "outcome when it is the most serious"), rows))


def render_codes() -> str:
    """A table per enumeration."""
    out: list[str] = []
    for e in ALL_ENUMS:
        out += [f"### {e.__name__}", "", " ".join((e.__doc__ or "").split()), ""]
        width = 4 if max(int(m) for m in e) > 0xFF else 2
        out += _table(("value", "name", "meaning"),
                      [(f"0x{int(m):0{width}X}", f"`{m.name}`", m.doc) for m in e])
        out.append("")
    return "\n".join(out).rstrip() + "\n"


#: the worked examples: (title, frame bytes)
EXAMPLE_KEY = bytes(range(32))
EXAMPLE_NONCE = bytes.fromhex("00112233445566778899aabbccddeeff")


def _lc_example() -> bytes:
    args = lifecycle_args(merchant_id="898310048161234", reason="")
    mac = lifecycle_mac(EXAMPLE_KEY, "SP0000123", 2, args, EXAMPLE_NONCE, 8)
    return encode_message(MessageType.LC_REQUEST, {
        "operation": "bind", "counter": 8, "nonce": EXAMPLE_NONCE, "activation_code": "",
        "merchant_id": "898310048161234", "reason": "", "mac": mac}, seq=12)


def _lc_result() -> bytes:
    return encode_message(MessageType.LC_RESULT, {
        "operation": "bind", "status": "ok", "state": "bound", "counter": 8, "message": ""},
        seq=12, flags=int(FrameFlag.RESPONSE))


def _retransmitted(frame: bytes) -> bytes:
    """The same frame sent again: the RETRANSMIT flag set, so a new CRC (section 5)."""
    f = decode_frame(frame)
    return encode_frame(f.type, f.payload, f.seq, f.flags | int(FrameFlag.RETRANSMIT))


#: the transaction records of the log examples (card numbers: first six and last four only)
EXAMPLE_TX = [
    {"txn_id": 1041, "time": 1794990000, "kind": "sale", "result": "approved", "entry": "chip",
     "amount": 12800, "currency": 156, "pan_bin": 622848, "pan_last4": 43, "auth_code": b"A1B2C3"},
    {"txn_id": 1042, "time": 1794990600, "kind": "refund", "result": "approved", "entry": "contactless",
     "amount": 2500, "currency": 156, "pan_bin": 622848, "pan_last4": 43, "auth_code": b"D4E5F6"},
]


def _tx_records_field() -> bytes:
    """The `records` field of a page holding EXAMPLE_TX, as encoded (count, then the records)."""
    return bytes([len(EXAMPLE_TX)]) + b"".join(TX_RECORD.build(r) for r in EXAMPLE_TX)


def examples() -> list[tuple[str, bytes]]:
    """The frames the spec works through, built from the declarations."""
    flags_ev = int(FrameFlag.EVENT)
    flags_resp = int(FrameFlag.RESPONSE)
    return [
        ("HELLO from the host", encode_message(MessageType.HELLO, {
            "protocol_version": 1, "max_payload": 1024, "host": "pos-sim 0.1"}, seq=1)),
        ("ACK of that frame's sequence number, sent before a long operation",
         encode_message(MessageType.ACK, {}, seq=1, flags=flags_resp)),
        ("INFO_REPLY of a bound terminal", encode_message(MessageType.INFO_REPLY, {
            "manufacturer": "SimPOS", "model": "SP-M7", "serial": "SP0000123",
            "hardware_rev": "B2", "firmware_version": "3.2.1", "lifecycle": "bound",
            "merchant_id": "898310048161234", "activated_at": 1767225600,
            "clock": 1795000000}, seq=2, flags=flags_resp)),
        ("STATUS_REPLY for the printer: paper near end", encode_message(MessageType.STATUS_REPLY, {
            "component": "printer", "status": {
                "printer_status": 0x16, "offline_cause": 0x12, "error_cause": 0x12,
                "paper_sensor": 0x1E, "head_temp_c": 38, "lines_printed": 482113}},
            seq=3, flags=flags_resp)),
        ("SELFTEST_RESULT event: the magnetic stripe reader fails on track 2",
         encode_message(MessageType.SELFTEST_RESULT, {
             "component": "magstripe", "plan": "full", "outcome": "failed", "code": "msr_bad_lrc",
             "duration_ms": 4210, "measurements": [
                 {"id": "track1", "value": 0}, {"id": "track2", "value": 4},
                 {"id": "track3", "value": 1}],
             "note": "track 2 LRC"}, seq=40, flags=flags_ev)),
        ("EVENT: the tamper switch tripped (cover and shock)", encode_message(MessageType.EVENT, {
            "event": "tamper", "component": "security", "uptime_ms": 912345, "value": 0b101},
            seq=41, flags=flags_ev)),
        ("NAK: busy", encode_message(MessageType.NAK, {"reason": "busy"}, seq=5, flags=flags_resp)),
        ("LC_REQUEST: bind, signed with the example key 00 01 02 … 1F", _lc_example()),
        ("LC_CHALLENGE that example 8 answers", encode_message(MessageType.LC_CHALLENGE, {
            "operation": "bind", "nonce": EXAMPLE_NONCE, "counter": 7, "serial": "SP0000123"},
            seq=11, flags=flags_resp)),
        ("LC_RESULT: the bind of example 8 accepted", _lc_result()),
        ("Duplicate: the host retransmits example 8 (its answer was lost)",
         _retransmitted(_lc_example())),
        ("Duplicate: the terminal answers it from memory, without binding again",
         _retransmitted(_lc_result())),
        ("TXLOG_INFO: a log of two records, one page", encode_message(MessageType.TXLOG_INFO, {
            "records": 2, "pages": 1, "records_per_page": 32,
            "sha256": hashlib.sha256(_tx_records_field()).digest()}, seq=20, flags=flags_resp)),
        ("TXLOG_PAGE: its page 0", encode_message(MessageType.TXLOG_PAGE, {
            "page": 0, "records": EXAMPLE_TX, "page_crc": zlib.crc32(_tx_records_field())},
            seq=21, flags=flags_resp)),
        ("TXLOG_PAGE: page 1, past the end: an empty page", encode_message(MessageType.TXLOG_PAGE, {
            "page": 1, "records": [], "page_crc": zlib.crc32(b"\x00")}, seq=22, flags=flags_resp)),
        ("EVENTLOG_PAGE: page 0 of 1, two entries", encode_message(MessageType.EVENTLOG_PAGE, {
            "page": 0, "pages": 1, "entries": [
                {"time": 1795000000, "component": "printer", "code": "paper_near_end", "severity": "warning"},
                {"time": 1795000420, "component": "power", "code": "battery_low", "severity": "warning"}]},
            seq=23, flags=flags_resp)),
    ]


def _hex_block(data: bytes) -> str:
    return "\n".join(data[i:i + 16].hex(" ") for i in range(0, len(data), 16))


def render_examples() -> str:
    """Each example: hex, then the decoding as JSON."""
    out: list[str] = []
    for i, (title, data) in enumerate(examples(), 1):
        frame: Frame = decode_frame(data)
        out += [f"### Example {i}: {title}", "",
                f"{len(data)} bytes: header `{data[:9].hex(' ')}`, "
                f"{len(frame.payload)}-byte payload, CRC `{data[-2:].hex(' ')}`.", "",
                "```hex", _hex_block(data), "```", "", "decodes as", "",
                "```json", json.dumps(describe_frame(frame), indent=2, ensure_ascii=False), "```", ""]
    return "\n".join(out).rstrip() + "\n"


def render_limits() -> str:
    """Constants a firmware engineer needs, in one table."""
    rows = [
        ("sync", "A5 5A"), ("protocol version", "1"), ("header + CRC", "11 bytes"),
        ("max payload", f"{MAX_PAYLOAD} bytes (HELLO may lower it)"),
        ("max frame", f"{MAX_PAYLOAD + 11} bytes"),
        ("empty frame", f"`{encode_frame(MessageType.PING, b'', 0).hex(' ')}` (PING, seq 0)"),
    ]
    return "\n".join(_table(("what", "value"), rows))


SECTIONS = {
    "limits": render_limits,
    "frame": render_frame,
    "catalogue": render_catalogue,
    "requests": render_requests,
    "messages": render_messages,
    "codes": render_codes,
    "examples": render_examples,
    "severities": render_severities,
}


def catalogue_json() -> dict[str, Any]:
    """The message catalogue as data (``pos-sim protocol --json``)."""

    def fields(st: Struct) -> list[dict[str, Any]]:
        out = []
        for sub in unwrap(st).subcons:
            if sub.name is None:
                continue
            c = unwrap(sub)
            entry: dict[str, Any] = {"name": sub.name, "type": type_name(sub), "doc": sub.docs or ""}
            if isinstance(c, Enum):
                entry["enum"] = enum_class(c).__name__
            arr = prefixed_array_parts(c)
            if arr is not None:
                entry["items"] = fields(unwrap(arr[1]))
            if isinstance(c, Switch):
                entry["cases"] = {k: fields(unwrap(v)) for k, v in c.cases.items() if isinstance(k, str)}
            out.append(entry)
        return out

    return {
        "protocol_version": 1,
        "max_payload": MAX_PAYLOAD,
        "messages": [
            {"type": int(t), "name": s.name, "direction": s.direction, "answer": s.answer,
             "kind": s.rule.kind, "replies": [r.name for r in s.rule.replies], "harmless": s.rule.harmless,
             "session": s.rule.session if s.is_request else None,
             "doc": t.doc, "size": fixed_size(s.declaration), "fields": fields(s.declaration)}
            for t, s in CATALOGUE.items()
        ],
        "enums": {e.__name__: {m.name: int(m) for m in e} for e in ALL_ENUMS},
    }


__all__ = [
    "SECTIONS",
    "catalogue_json",
    "encode_payload",
    "enum_class",
    "examples",
    "field_rows",
    "type_name",
]
