"""The event log (section 9) and the transaction-log export (section 10), checked as a host would."""

from __future__ import annotations

import hashlib
import json
import re
import zlib
from pathlib import Path
from typing import Any

import pytest

from pos_sim.emulator.scenario import load_scenario
from pos_sim.emulator.state import LogEntry, StateStore, initial_state
from protocols.pos import Frame, decode_message
from protocols.pos.codes import Component, FaultCode, Severity
from tests.pos_sim.emulator.hosts import RESPONSE, EngineHost, T


def _read_event_log(host: EngineHost) -> tuple[int, list[dict[str, object]], list[int]]:
    first = host.request(T.EVENTLOG_READ, {"page": 0}).fields
    pages = first["pages"]
    entries: list[dict[str, object]] = []
    sizes = []
    for page in range(pages):
        reply = host.request(T.EVENTLOG_READ, {"page": page}).fields
        assert reply["page"] == page and reply["pages"] == pages
        entries += reply["entries"]
        sizes.append(len(reply["entries"]))
    return pages, entries, sizes


def test_the_dropped_terminals_log_holds_its_history_and_what_it_found_at_power_on() -> None:
    host = EngineHost("dropped")
    host.hello()
    pages, entries, _ = _read_event_log(host)
    assert pages == 1
    codes = [(e["component"], e["code"]) for e in entries]
    assert codes[:2] == [("security", "tamper_tripped"), ("security", "keys_erased")]  # oldest first
    assert ("screen", "panel_damaged") in codes
    assert entries[0]["time"] == 1794993600 and entries[0]["severity"] == "critical"


def test_a_healthy_terminals_log_is_empty() -> None:
    host = EngineHost("healthy")
    host.hello()
    reply = host.request(T.EVENTLOG_READ, {"page": 0}).fields
    assert reply == {"page": 0, "pages": 0, "entries": []}


def test_event_log_pages_fit_the_negotiated_payload() -> None:
    sc = load_scenario("healthy")
    state = initial_state(sc)
    for i in range(150):
        state.log(LogEntry(1_790_000_000 + i, Component.printer, FaultCode.paper_near_end, Severity.warning))
    for max_payload, per_page in ((1024, 64), (128, 15)):
        host = EngineHost(sc, state=state)
        host.hello(max_payload=max_payload)
        pages, entries, sizes = _read_event_log(host)
        assert pages == -(-150 // per_page) and max(sizes) == per_page
        assert [e["time"] for e in entries] == [1_790_000_000 + i for i in range(150)]
        for _, frame in host.received:
            assert len(frame.payload) <= max_payload
        beyond = host.request(T.EVENTLOG_READ, {"page": pages}).fields
        assert beyond["entries"] == [] and beyond["pages"] == pages


def _export(host: EngineHost) -> tuple[dict[str, Any], list[Frame]]:
    info: dict[str, Any] = host.request(T.TXLOG_OPEN).fields
    frames = []
    for page in range(info["pages"]):
        host.request(T.TXLOG_READ, {"page": page})
        frames.append(next(f for _, f in reversed(host.received) if f.flags & RESPONSE and f.type == T.TXLOG_PAGE))
    return info, frames


@pytest.mark.parametrize("max_payload", [1024, 256])
def test_transaction_log_export_checks_out_page_by_page_and_as_a_whole(max_payload: int) -> None:
    host = EngineHost("paper-out")
    host.hello(max_payload=max_payload)
    info, frames = _export(host)
    per_page = min(32, (max_payload - 7) // 29)
    assert info["records"] == 410 and info["records_per_page"] == per_page
    assert info["pages"] == -(-410 // per_page)
    digest = hashlib.sha256()
    records = []
    for page, frame in enumerate(frames):
        assert len(frame.payload) <= max_payload
        records_field = frame.payload[2:-4]  # page u16 | records | page_crc u32
        fields = decode_message(frame).fields
        assert fields["page"] == page
        assert fields["page_crc"] == zlib.crc32(records_field), "CRC-32 of the records field as encoded"
        digest.update(records_field)
        records += fields["records"]
    assert digest.digest() == info["sha256"]
    assert len(records) == 410
    assert [r["txn_id"] for r in records] == sorted(r["txn_id"] for r in records)


def test_transaction_records_carry_no_card_number() -> None:
    host = EngineHost("paper-out")
    host.hello()
    _, frames = _export(host)
    for frame in frames:
        for r in decode_message(frame).fields["records"]:
            if r["entry"] == "qr":
                assert (r["pan_bin"], r["pan_last4"]) == (0, 0)
            else:
                assert 100000 <= r["pan_bin"] <= 999999 and 0 <= r["pan_last4"] <= 9999
            assert r["currency"] == 156 and len(r["auth_code"]) == 6


def test_the_export_is_the_same_every_time() -> None:
    digests = set()
    for _ in range(2):
        host = EngineHost("healthy")
        host.hello()
        digests.add(host.request(T.TXLOG_OPEN).fields["sha256"])
    assert len(digests) == 1


def test_an_empty_log_exports_as_zero_pages_with_the_digest_of_nothing() -> None:
    host = EngineHost("unactivated")
    host.hello()
    info = host.request(T.TXLOG_OPEN).fields
    assert (info["records"], info["pages"]) == (0, 0)
    assert info["sha256"] == hashlib.sha256(b"").digest()


def test_reading_before_opening_is_not_permitted_and_beyond_the_end_is_empty() -> None:
    host = EngineHost("healthy")
    host.hello()
    early = host.request(T.TXLOG_READ, {"page": 0})
    assert early.type == T.NAK and early.fields["reason"] == "not_permitted"
    info = host.request(T.TXLOG_OPEN).fields
    beyond = host.request(T.TXLOG_READ, {"page": info["pages"]}).fields
    assert beyond["records"] == [] and beyond["page_crc"] == zlib.crc32(b"\x00")


def test_the_state_file_holds_no_card_number(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    host = EngineHost("paper-out", store=StateStore(path))
    host.hello()
    host.run_self_test("magstripe")
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"\d{11,}", text.replace("898310048160789", "")), "no long digit runs (card numbers)"
    data = json.loads(text)
    assert set(data["txlog"][0]) == {"txn_id", "time", "kind", "result", "entry", "amount", "currency", "pan_bin",
                                     "pan_last4", "auth_code"}
