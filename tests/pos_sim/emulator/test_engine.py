"""The engine against docs/protocol.md sections 3-7: sessions, NAKs, duplicates, events, timers.

Everything here runs on a fake clock: time only moves when the test moves it.
"""

from __future__ import annotations

import ipaddress
import itertools
from pathlib import Path

import pytest

from pos_sim.emulator.engine import EVENT_RETRANSMITS
from pos_sim.emulator.scenario import SCENARIO_DIR
from protocols.pos import MAX_FRAME, encode_frame, encode_message
from protocols.pos.codes import Component
from tests.pos_sim.emulator.hosts import EVENT, RESPONSE, RETRANSMIT, EngineHost, T, hello_fields


def test_hello_negotiates_version_payload_components_and_serial() -> None:
    host = EngineHost("healthy")
    reply = host.request(T.HELLO, {"protocol_version": 3, "max_payload": 512, "host": "future host 9"})
    assert reply.type == T.HELLO_REPLY and reply.flags == RESPONSE
    f = reply.fields
    assert f["protocol_version"] == 1  # the lower of the two
    assert f["max_payload"] == 512  # the lower of the two
    assert f["components"] == sum(1 << int(c) for c in Component)
    assert f["serial"] == "SP0000123"
    assert host.engine.max_payload == 512


def test_hello_version_0_is_refused_with_unsupported_version() -> None:
    host = EngineHost()
    reply = host.request(T.HELLO, hello_fields(version=0))
    assert reply.type == T.NAK and reply.fields["reason"] == "unsupported_version"
    assert not host.engine.session_open


def test_boot_id_differs_between_boots() -> None:
    ids = {EngineHost().hello().fields["boot_id"] for _ in range(4)}
    assert len(ids) == 4


def test_before_hello_only_hello_and_ping_are_answered() -> None:
    host = EngineHost("weak-battery")  # it has events to send as soon as it may
    assert host.request(T.PING).type == T.PONG
    for mtype, fields in ((T.INFO_REQUEST, None), (T.STATUS_REQUEST, {"component": "power"}),
                          (T.EVENTLOG_READ, {"page": 0}), (T.TXLOG_OPEN, None),
                          (T.SELFTEST_START, {"component": "system", "plan": "quick", "interactive": False})):
        reply = host.request(mtype, fields)
        assert reply.type == T.NAK and reply.fields["reason"] == "not_permitted", mtype
    assert host.events == [], "no events before HELLO"
    host.hello()
    assert host.request(T.INFO_REQUEST).type == T.INFO_REPLY
    kinds = [(m.type, m.fields.get("code") or m.fields.get("event")) for m in host.events]
    assert (T.ERROR, "battery_low") in kinds and (T.EVENT, "battery_low") in kinds


def test_unknown_type_is_refused_with_unknown_type() -> None:
    host = EngineHost()
    host.hello()
    host.send_raw(encode_frame(0x7E, b"", seq=77))
    reply = host.answer_to(77)
    assert reply.type == T.NAK and reply.fields["reason"] == "unknown_type"


def test_short_or_long_payload_is_refused_as_malformed() -> None:
    host = EngineHost()
    host.hello()
    host.send_raw(encode_frame(int(T.STATUS_REQUEST), b"\x05\x00", seq=80))
    host.send_raw(encode_frame(int(T.INFO_REQUEST), b"\x00", seq=81))
    for seq in (80, 81):
        reply = host.answer_to(seq)
        assert reply.type == T.NAK and reply.fields["reason"] == "malformed"


def test_a_terminal_message_sent_as_a_request_is_not_permitted() -> None:
    host = EngineHost()
    host.hello()
    reply = host.request(T.PONG, {"uptime_ms": 5})
    assert reply.type == T.NAK and reply.fields["reason"] == "not_permitted"


def test_payload_above_the_negotiated_maximum_is_too_large() -> None:
    host = EngineHost()
    host.hello(max_payload=256)
    host.send_raw(encode_frame(int(T.STATUS_REQUEST), bytes(300), seq=90))
    reply = host.answer_to(90)
    assert reply.type == T.NAK and reply.fields["reason"] == "too_large"


def test_status_of_a_component_the_terminal_lacks_is_not_permitted(tmp_path: Path) -> None:
    path = tmp_path / "no-scanner.toml"
    text = (SCENARIO_DIR / "healthy.toml").read_text(encoding="utf-8")
    names = [c.name for c in Component if c != Component.scanner]
    path.write_text(text.replace('serial = "SP0000123"', f'serial = "SP0000123"\ncomponents = {names!r}'),
                    encoding="utf-8")
    host = EngineHost(path)
    assert not host.hello().fields["components"] & (1 << int(Component.scanner))
    for mtype, fields in ((T.STATUS_REQUEST, {"component": "scanner"}),
                          (T.SELFTEST_START, {"component": "scanner", "plan": "full", "interactive": True}),
                          (T.STATUS_REQUEST, {"component": 0x42})):
        reply = host.request(mtype, fields)
        assert reply.type == T.NAK and reply.fields["reason"] == "not_permitted"


def test_duplicate_request_gets_the_remembered_answer_and_is_not_executed_again() -> None:
    host = EngineHost(speed=1.0)
    host.hello()
    start = encode_message(T.SELFTEST_START, {"component": "printer", "plan": "quick", "interactive": False}, seq=500)
    host.send_raw(start)
    first = host.answer_to(500)
    assert first.type == T.ACK and not first.flags & RETRANSMIT
    # the host lost the ACK and retransmits the identical request with the RETRANSMIT flag
    host.send_raw(encode_message(T.SELFTEST_START, {"component": "printer", "plan": "quick", "interactive": False},
                                 seq=500, flags=RETRANSMIT))
    again = host.answer_to(500)
    assert again.type == T.ACK and again.flags == RESPONSE | RETRANSMIT  # not NAK busy: not run twice
    assert host.engine.stats.duplicates == 1
    host.run_until(lambda: "printer" in host.results(), limit=10)
    assert len(host.events_of(T.SELFTEST_RESULT)) == 1


def test_duplicate_of_a_query_resends_the_same_bytes_with_retransmit() -> None:
    host = EngineHost()
    host.hello()
    info = host.request(T.INFO_REQUEST, seq=600)
    host.now += 2.0  # the clock in INFO_REPLY moves on, the remembered answer does not
    again = host.request(T.INFO_REQUEST, seq=600)
    assert again.flags & RETRANSMIT and again.fields == info.fields


def test_a_refusal_is_not_remembered_so_a_retransmission_is_tried_again() -> None:
    host = EngineHost(speed=50.0)
    host.hello()
    fields = {"component": "system", "plan": "quick", "interactive": False}
    assert host.request(T.SELFTEST_START, fields, seq=700).type == T.ACK
    busy = host.request(T.SELFTEST_START, fields, seq=701)
    assert busy.type == T.NAK and busy.fields["reason"] == "busy"
    host.run_until(lambda: "system" in host.results(), limit=5)
    # 200 ms later the host retransmits seq 701: now it runs
    retry = host.request(T.SELFTEST_START, fields, seq=701, flags=RETRANSMIT)
    assert retry.type == T.ACK and not retry.flags & RETRANSMIT


def test_hello_clears_duplicate_memory() -> None:
    host = EngineHost()
    host.hello()
    host.request(T.INFO_REQUEST, seq=42)
    host.hello()
    fresh = host.request(T.INFO_REQUEST, seq=42)
    assert fresh.type == T.INFO_REPLY and not fresh.flags & RETRANSMIT


def test_events_use_the_terminals_own_sequence_numbers() -> None:
    host = EngineHost("dropped")
    host.hello()
    host.run_self_test("keypad")
    seqs = [f.seq for _, f in host.received if f.flags & EVENT]
    assert len(seqs) > 20
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs)), "+1 per new event"
    assert all(f.flags == EVENT for _, f in host.received if f.flags & EVENT)


def test_unacknowledged_event_is_retransmitted_three_times_after_t_resp_then_dropped() -> None:
    host = EngineHost("paper-out", auto_ack=False)
    host.hello()
    errors = [(t, f) for t, f in host.received if f.flags & EVENT]
    assert len(errors) == 1, "paper end is reported once, at the first HELLO"
    seq = errors[0][1].seq
    host.advance(10.0)
    sends = [(t, f) for t, f in host.received if f.flags & EVENT and f.seq == seq]
    assert len(sends) == 1 + EVENT_RETRANSMITS
    assert [bool(f.flags & RETRANSMIT) for _, f in sends] == [False, True, True, True]
    assert len({f.payload for _, f in sends}) == 1
    t_resp = 0.5 + 2 * MAX_FRAME * 10 / 115200
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(sends)]
    assert all(gap >= t_resp for gap in gaps), gaps
    assert host.engine.stats.events_dropped == 1


def test_acknowledged_event_is_not_retransmitted() -> None:
    host = EngineHost("paper-out", auto_ack=True)
    host.hello()
    host.advance(10.0)
    assert [f for _, f in host.received if f.flags & RETRANSMIT] == []
    assert host.engine.stats.events_acked == 1


def test_late_ack_of_a_retransmitted_event_stops_it() -> None:
    host = EngineHost("paper-out", auto_ack=False)
    host.hello()
    seq = next(f.seq for _, f in host.received if f.flags & EVENT)
    host.advance(0.9)  # one retransmission by now
    host.send_raw(encode_message(T.ACK, seq=seq, flags=RESPONSE))
    host.advance(10.0)
    assert len([f for _, f in host.received if f.flags & EVENT]) == 2


def test_partial_frame_is_dropped_after_the_inter_byte_timeout() -> None:
    host = EngineHost()
    host.hello()
    info = encode_message(T.INFO_REQUEST, seq=900)
    host.send_raw(info[:5])
    host.advance(0.150)
    assert host.engine.deframer.stats.partial_dropped == 1
    host.send_raw(encode_message(T.PING, seq=901))
    assert host.answer_to(901).type == T.PONG
    with pytest.raises(AssertionError):
        host.answer_to(900)


def test_slow_bytes_within_the_inter_byte_timeout_still_make_a_frame() -> None:
    host = EngineHost()
    host.hello()
    info = encode_message(T.INFO_REQUEST, seq=910)
    for byte in info:
        host.send_raw(bytes([byte]))
        host.advance(0.080)
    assert host.answer_to(910).type == T.INFO_REPLY
    assert host.engine.deframer.stats.partial_dropped == 0


def test_silence_of_10_s_closes_the_session() -> None:
    host = EngineHost()
    host.hello()
    states = []
    for step in (9.5, 0.6):
        host.advance(step)
        states.append(host.engine.session_open)
    assert states == [True, False]
    reply = host.request(T.INFO_REQUEST)
    assert reply.type == T.NAK and reply.fields["reason"] == "not_permitted"


def test_at_1200_baud_the_session_outlives_a_whole_retransmit_schedule() -> None:
    # T_session at 1200 baud with 1024-byte payloads: 105.5 + 17.75 = 123.25 s (spec table)
    host = EngineHost(baud=1200)
    host.hello()
    states = []
    for step in (100.0, 22.0, 2.0):
        host.advance(step)
        states.append(host.engine.session_open)
    assert states == [True, True, False]


def test_pings_keep_the_session_open() -> None:
    host = EngineHost()
    host.hello()
    for _ in range(15):
        host.advance(2.0)
        assert host.request(T.PING).type == T.PONG
    assert host.request(T.INFO_REQUEST).type == T.INFO_REPLY


def test_pong_carries_uptime() -> None:
    host = EngineHost()
    host.advance(12.345)
    assert host.request(T.PING).fields["uptime_ms"] == 12345


def test_info_reply_describes_the_device() -> None:
    host = EngineHost("healthy")
    host.hello()
    f = host.request(T.INFO_REQUEST).fields
    assert f == {"manufacturer": "SimPOS", "model": "SP-M7", "serial": "SP0000123", "hardware_rev": "B2",
                 "firmware_version": "3.2.1", "lifecycle": "bound", "merchant_id": "898310048161234",
                 "activated_at": 1767225600, "clock": f["clock"]}
    assert abs(f["clock"] - 1_795_100_000) <= 1


def _status(host: EngineHost, component: str) -> dict[str, object]:
    reply = host.request(T.STATUS_REQUEST, {"component": component})
    assert reply.type == T.STATUS_REPLY and reply.fields["component"] == component
    status: dict[str, object] = reply.fields["status"]
    return status


def test_every_component_answers_status() -> None:
    host = EngineHost("healthy")
    host.hello()
    for component in Component:
        assert isinstance(_status(host, component.name), dict)


def test_status_of_a_healthy_terminal() -> None:
    host = EngineHost("healthy")
    host.hello()
    printer = _status(host, "printer")
    # ESC/POS: bits 1 and 4 set, nothing else: online, no cause, paper adequate
    assert (printer["printer_status"], printer["offline_cause"], printer["error_cause"],
            printer["paper_sensor"]) == (0x12, 0x12, 0x12, 0x12)
    net = _status(host, "network")
    assert net["bearer"] == "lte_fdd" and net["host_reachable"] is True and net["sim_present"] is True
    assert net["ipv4"] == ipaddress.IPv4Address("10.64.12.7").packed
    power = _status(host, "power")
    assert power["source"] == "usb" and power["battery_status"] == "charging" and power["current_ma"] > 0  # type: ignore[operator]
    security = _status(host, "security")
    assert security == {"tamper": "armed", "tamper_sources": 0, "keys_loaded": True, "tripped_at": 0}


def test_status_of_a_paper_out_printer_follows_escpos() -> None:
    host = EngineHost("paper-out")
    host.hello()
    p = _status(host, "printer")
    assert p["printer_status"] == 0x12 | 0x08  # DLE EOT 1 bit 3: offline
    assert p["offline_cause"] == 0x12 | 0x20  # DLE EOT 2 bit 5: stopped at paper end
    assert p["paper_sensor"] == 0x12 | 0x0C | 0x60  # DLE EOT 4: near end and end
    assert p["lines_printed"] == 2201877


def test_status_of_a_terminal_without_network() -> None:
    host = EngineHost("no-network")
    host.hello()
    net = _status(host, "network")
    assert net["bearer"] == "none" and net["ipv4"] == bytes(4)
    assert net["host_reachable"] is False and net["latency_ms"] == 0xFFFF and net["signal_dbm"] == -113


def test_status_of_a_dropped_terminal() -> None:
    host = EngineHost("dropped")
    host.hello()
    screen = _status(host, "screen")
    assert screen["panel"] == "damaged" and screen["dead_pixels"] == 1873
    security = _status(host, "security")
    assert security["tamper"] == "tripped" and security["tamper_sources"] == 4
    assert security["keys_loaded"] is False and security["tripped_at"] == 1794993600
    assert host.request(T.INFO_REQUEST).fields["lifecycle"] == "locked"


def test_battery_of_the_weak_terminal_drains_with_time_and_stops_at_1_percent() -> None:
    host = EngineHost("weak-battery")
    host.hello()
    first = _status(host, "power")
    assert first["source"] == "battery" and first["battery_pct"] == 8 and first["battery_status"] == "low"
    assert first["current_ma"] < 0 and 3300 < first["voltage_mv"] < 3450  # type: ignore[operator]
    host.advance(9.0)
    host.request(T.PING)
    host.now += 1700  # 8 % - 12 %/h × (9 s + 1700 s) = 2.3 %
    host.request(T.HELLO, hello_fields())
    later = _status(host, "power")
    assert later["battery_pct"] == 2
    assert later["voltage_mv"] < first["voltage_mv"]  # type: ignore[operator]
    host.now += 36000
    host.request(T.HELLO, hello_fields())
    assert _status(host, "power")["battery_pct"] == 1


def test_battery_crossing_its_low_threshold_is_reported_once(tmp_path: Path) -> None:
    path = tmp_path / "fading.toml"
    text = (SCENARIO_DIR / "weak-battery.toml").read_text(encoding="utf-8")
    path.write_text(text.replace("battery_pct = 8.0", "battery_pct = 15.5"), encoding="utf-8")
    host = EngineHost(path)
    host.hello()
    assert not [m for m in host.events if m.fields.get("event") == "battery_low"]
    for _ in range(30):  # keep the session alive while the battery drains 12 %/h
        host.advance(9.0)
        host.request(T.PING)
    host.advance(9.0)
    host.request(T.PING)  # 279 s so far; the crossing is at 150 s
    lows = [m for m in host.events if m.type == T.EVENT and m.fields["event"] == "battery_low"]
    assert len(lows) == 1 and lows[0].fields["value"] == 14
    assert any(m.type == T.ERROR and m.fields["code"] == "battery_low" for m in host.events)
