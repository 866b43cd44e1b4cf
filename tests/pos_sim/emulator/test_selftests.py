"""Self-tests (docs/protocol.md section 8): every scenario's outcomes, prompts, the simulated
person, confirm, abort, concurrency, timing and the firmware crash."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from pos_sim.emulator.scenario import SCENARIO_DIR
from pos_sim.emulator.state import StateStore
from protocols.pos.codes import Component, KeyCode
from tests.pos_sim.emulator.hosts import EngineHost, T

ALL = [c.name for c in Component]
PASS = ("passed", "none")

#: component -> (outcome, code) of a full interactive run with the test page and pattern confirmed
EXPECTED: dict[str, dict[str, tuple[str, str]]] = {
    "healthy": {},
    "unactivated": {},
    "flaky-link": {},
    "dropped": {"screen": ("failed", "panel_damaged"), "magstripe": ("failed", "msr_intermittent"),
                "security": ("failed", "tamper_tripped")},
    "paper-out": {"printer": ("warning", "paper_end")},
    "no-network": {"network": ("failed", "no_link")},
    "weak-battery": {"power": ("warning", "battery_low")},
}


def _run_all(scenario: str, plan: str = "full", interactive: bool = True, **kw: Any) -> EngineHost:
    host = EngineHost(scenario, confirm=True, **kw)
    host.hello()
    # every component at once: the terminal tests them concurrently
    for component in ALL:
        ack = host.request(T.SELFTEST_START, {"component": component, "plan": plan, "interactive": interactive})
        assert ack.type == T.ACK, (component, ack)
    host.run_until(lambda: len(host.results()) == len(ALL))
    return host


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_every_scenario_gives_its_outcomes_and_codes(scenario: str) -> None:
    host = _run_all(scenario)
    got = {c: (r["outcome"], r["code"]) for c, r in host.results().items()}
    want = {c: EXPECTED[scenario].get(c, PASS) for c in ALL}
    assert got == want


def test_dropped_measurements_show_dead_pixels_and_bad_tracks() -> None:
    results = _run_all("dropped").results()
    screen = {m["id"]: m["value"] for m in results["screen"]["measurements"]}
    assert screen["dead_pixels"] == 1873 and screen["touch_points"] == 2
    mag = {m["id"]: m["value"] for m in results["magstripe"]["measurements"]}
    assert (mag["track1"], mag["track2"], mag["track3"]) == (0, 4, 1)  # ok, bad_lrc, no_data
    assert "2 of 4 swipes failed" in results["magstripe"]["note"]


def test_other_faults_of_a_run_go_out_as_error_events_and_into_the_log() -> None:
    host = _run_all("no-network")
    errors = {(m.fields["component"], m.fields["code"]) for m in host.events_of(T.ERROR)}
    assert {("network", "no_ip"), ("network", "host_unreachable")} <= errors
    assert ("network", "no_link") in errors  # from the power-on check, sent after HELLO
    logged = [(e.component.name, e.code.name) for e in host.engine.state.event_log]
    for code in ("no_link", "no_ip", "host_unreachable"):
        assert ("network", code) in logged


def test_paper_out_printer_prints_nothing() -> None:
    r = _run_all("paper-out").results()["printer"]
    m = {x["id"]: x["value"] for x in r["measurements"]}
    assert m["paper_status"] == 0x7E and m["pages_printed"] == 0
    assert "printer offline" in r["note"]


def test_weak_battery_measurements() -> None:
    m = {x["id"]: x["value"] for x in _run_all("weak-battery").results()["power"]["measurements"]}
    assert m["battery_pct"] == 8 and m["current_ma"] < 0 and m["voltage_mv"] < 3400


def test_a_quick_plan_is_the_checks_that_need_nobody_and_passes_on_them() -> None:
    host = _run_all("healthy", plan="quick", interactive=True)
    results = host.results()
    assert {c: (r["outcome"], r["plan"]) for c, r in results.items()} == {c: ("passed", "quick") for c in ALL}
    assert results["magstripe"]["measurements"] == [] and results["magstripe"]["note"] == "all checks passed"
    assert host.events_of(T.EVENT) == [], "nobody swiped, inserted, tapped or pressed anything"


#: checks that need a person, per component (section 8's table)
PERSON_CHECKS = {"magstripe": 1, "chip": 1, "contactless": 1, "printer": 1, "screen": 2, "keypad": 1, "scanner": 1}


def test_a_full_plan_without_a_person_is_skipped_never_passed() -> None:
    host = _run_all("healthy", plan="full", interactive=False)
    for component, r in host.results().items():
        skipped = {m["id"]: m["value"] for m in r["measurements"]}.get("checks_skipped", 0)
        assert skipped == PERSON_CHECKS.get(component, 0), component
        assert r["outcome"] == ("skipped" if skipped else "passed"), component
        if skipped:
            assert "no person present" in r["note"]
    assert host.events_of(T.EVENT) == []


def test_a_fault_found_without_a_person_still_fails() -> None:
    results = _run_all("dropped", plan="full", interactive=False).results()
    screen = results["screen"]
    m = {x["id"]: x["value"] for x in screen["measurements"]}
    assert (screen["outcome"], screen["code"]) == ("failed", "panel_damaged")  # the panel check needs nobody
    assert m["checks_skipped"] == 2 and "touch_points" not in m
    assert "not run: test pattern (no person present), touch (no person present)" in screen["note"]
    # the intermittent card reader is only found by swiping: not run, so not found, and not passed
    mag = results["magstripe"]
    assert (mag["outcome"], mag["code"]) == ("skipped", "none")
    assert "not run: swipe" in mag["note"]


def test_the_simulated_person_swipes_inserts_taps_scans_and_presses_every_key() -> None:
    host = _run_all("healthy")
    events = [(m.fields["event"], m.fields["component"], m.fields["value"]) for m in host.events_of(T.EVENT)]
    keys = [v for e, c, v in events if e == "key_pressed"]
    assert sorted(keys) == sorted(int(k) for k in KeyCode)
    assert [v for e, _, v in events if e == "card_swiped"] == [0b111] * 3  # three swipes, all tracks read
    assert ("card_inserted", "chip", 0) in events and ("card_removed", "chip", 0) in events
    assert ("card_tapped", "contactless", 2) in events
    assert ("code_scanned", "scanner", 24) in events
    keypad = {m["id"]: m["value"] for m in host.results()["keypad"]["measurements"]}
    assert keypad == {"keys_seen": 18, "keys_total": 18}


def test_intermittent_swipes_report_which_tracks_were_read() -> None:
    host = EngineHost("dropped", confirm=True)
    host.hello()
    host.run_self_test("magstripe")
    swipes = [m.fields["value"] for m in host.events_of(T.EVENT) if m.fields["event"] == "card_swiped"]
    assert swipes == [0b111, 0b001, 0b111, 0b101]


def test_progress_reports_steps_and_prompts_and_reaches_the_result() -> None:
    host = EngineHost("healthy", speed=50.0, confirm=True)
    host.hello()
    host.run_self_test("keypad")
    progress = [m.fields for m in host.events_of(T.SELFTEST_PROGRESS)]
    assert progress[0]["step"] == 1 and progress[0]["prompt"] == "none"
    assert any(p["prompt"] == "press_all_keys" and p["step"] == 2 for p in progress)
    percents = [p["percent"] for p in progress]
    assert percents == sorted(percents) and all(0 <= p <= 100 for p in percents)


def test_progress_comes_at_least_every_second_during_a_long_check() -> None:
    host = EngineHost("no-network", speed=1.0)
    host.hello()
    start = host.now
    host.run_self_test("network")
    times = [t for t, f in host.received if f.type in (T.SELFTEST_PROGRESS, T.SELFTEST_RESULT)]
    assert host.now - start >= 6.0, "the modem tries to attach for 6 s"
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps) <= 1.0


def test_durations_are_divided_by_speed() -> None:
    def printer_ms(speed: float) -> int:
        host = EngineHost("healthy", speed=speed, confirm=True)
        host.hello()
        return int(host.run_self_test("printer")["duration_ms"])

    slow, fast, instant = printer_ms(1.0), printer_ms(50.0), printer_ms(float("inf"))
    assert 3500 <= slow <= 4000  # status 0.4 s, test page 2.6 s, cutter 0.6 s
    assert 70 <= fast <= 80
    assert instant == 0


def test_confirm_accepted_rejected_and_unanswered() -> None:
    for answer, outcome, code in ((True, "passed", "none"), (False, "failed", "print_rejected")):
        host = EngineHost("healthy", confirm=answer)
        host.hello()
        r = host.run_self_test("printer")
        assert (r["outcome"], r["code"]) == (outcome, code)
    host = EngineHost("healthy", confirm=None)
    host.hello()
    prompts = []
    host.request(T.SELFTEST_START, {"component": "screen", "plan": "full", "interactive": True})
    while "screen" not in host.results():
        host.advance(5.0)
        host.request(T.PING)  # the host is there, only the person does not answer
        prompts += [m.fields["prompt"] for m in host.events_of(T.SELFTEST_PROGRESS)]
        assert host.now < 1000 + 90
    r = host.results()["screen"]
    assert r["outcome"] == "skipped" and "test pattern (not confirmed)" in r["note"]
    assert {m["id"]: m["value"] for m in r["measurements"]}["checks_skipped"] == 1
    assert "confirm_pattern" in prompts
    assert host.now >= 1000 + 60, "a confirm prompt waits 60 s"


def test_confirm_when_nothing_asks_for_it_is_not_permitted() -> None:
    host = EngineHost("healthy", speed=1.0)
    host.hello()
    reply = host.request(T.SELFTEST_CONFIRM, {"component": "printer", "accepted": True})
    assert reply.type == T.NAK and reply.fields["reason"] == "not_permitted"


def test_same_component_twice_is_busy_other_components_run_concurrently() -> None:
    host = EngineHost("healthy", speed=1.0, confirm=True)
    host.hello()
    fields = {"component": "network", "plan": "full", "interactive": False}
    assert host.request(T.SELFTEST_START, fields).type == T.ACK
    busy = host.request(T.SELFTEST_START, fields)
    assert busy.type == T.NAK and busy.fields["reason"] == "busy"
    assert host.request(T.SELFTEST_START, {"component": "power", "plan": "full", "interactive": False}).type == T.ACK
    assert sorted(host.engine.running, key=int) == [Component.network, Component.power]
    host.run_until(lambda: len(host.results()) == 2)


def test_abort_one_test_and_then_all() -> None:
    host = EngineHost("healthy", speed=1.0)
    host.hello()
    for c in ("printer", "network", "system"):
        host.request(T.SELFTEST_START, {"component": c, "plan": "full", "interactive": True})
    host.advance(0.5)
    ack = host.request(T.SELFTEST_ABORT, {"component": "printer"})
    assert ack.type == T.ACK
    assert host.results()["printer"]["outcome"] == "aborted"
    # the ACK came before the result
    order = [f.type for _, f in host.received]
    assert order.index(T.SELFTEST_RESULT) > max(i for i, f in enumerate(host.received) if f[1].type == T.ACK)
    assert host.request(T.SELFTEST_ABORT, {"component": 0xFF}).type == T.ACK
    assert {c: r["outcome"] for c, r in host.results().items()} == {
        "printer": "aborted", "network": "aborted", "system": "aborted"}
    assert host.engine.running == []
    nothing = host.request(T.SELFTEST_ABORT, {"component": "printer"})
    assert nothing.type == T.NAK and nothing.fields["reason"] == "not_permitted"


def test_a_new_hello_keeps_tests_running_and_they_report_to_the_new_session() -> None:
    host = EngineHost("healthy", speed=1.0, confirm=None)
    host.hello()
    host.request(T.SELFTEST_START, {"component": "printer", "plan": "full", "interactive": True})
    host.advance(3.5)  # waiting at the confirm prompt now
    host.hello()
    ack = host.request(T.SELFTEST_CONFIRM, {"component": "printer", "accepted": True})
    assert ack.type == T.ACK
    host.run_until(lambda: "printer" in host.results(), limit=5)
    assert host.results()["printer"]["outcome"] == "passed"


def test_session_timeout_answers_a_waiting_prompt_as_unanswered() -> None:
    host = EngineHost("healthy", speed=1.0, confirm=None, auto_ack=False)
    host.hello()
    host.request(T.SELFTEST_START, {"component": "printer", "plan": "full", "interactive": True})
    host.advance(9.9)
    assert host.engine.running == [Component.printer], "still waiting for the technician"
    host.advance(0.2)  # 10 s without a frame from the host (not even an ACK)
    assert not host.engine.session_open
    host.advance(1.0)  # the cutter check still runs, then the test ends
    assert host.engine.running == []
    assert "printer" not in host.results(), "no events without a session"
    assert host.engine.stats.events_unsent >= 2  # progress and the result went nowhere
    host.hello()
    assert host.events_of(T.SELFTEST_RESULT) == []


def _locked_by_the_book(tmp_path: Path) -> Path:
    path = tmp_path / "locked.toml"
    text = (SCENARIO_DIR / "dropped.toml").read_text(encoding="utf-8")
    path.write_text(text.replace("diagnostics_when_locked = true", "diagnostics_when_locked = false"),
                    encoding="utf-8")
    return path


def test_a_locked_terminal_refuses_self_tests_as_section_8_says(tmp_path: Path) -> None:
    host = EngineHost(_locked_by_the_book(tmp_path))
    host.hello()
    reply = host.request(T.SELFTEST_START, {"component": "screen", "plan": "full", "interactive": True})
    assert reply.type == T.NAK and reply.fields["reason"] == "not_permitted"
    assert host.request(T.STATUS_REQUEST, {"component": "screen"}).type == T.STATUS_REPLY


def test_firmware_crash_goes_silent_mid_printer_test_and_reboots_with_a_watchdog_reset(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.json")
    host = EngineHost("firmware-crash", speed=1.0, store=store, confirm=True)
    host.hello()
    host.request(T.SELFTEST_START, {"component": "printer", "plan": "full", "interactive": True})
    host.advance(5.0)
    assert host.engine.crashed
    percents = [m.fields["percent"] for m in host.events_of(T.SELFTEST_PROGRESS)]
    assert percents and max(percents) < 50
    assert "printer" not in host.results()
    heard = len(host.received)
    for mtype in (T.PING, T.HELLO, T.INFO_REQUEST):
        host.engine.receive(encode(mtype), host.now)
        host.advance(2.0)
    assert len(host.received) == heard, "not a byte after the crash"
    assert host.engine.next_deadline() is None and host.engine.take_output() == b""

    # the emulator restarts with the same state: the watchdog's reset is on record
    again = EngineHost("firmware-crash", speed=50.0, store=StateStore(tmp_path / "state.json"), confirm=True)
    again.hello()
    assert any(m.type == T.EVENT and m.fields["event"] == "rebooted" and m.fields["value"] == 0x0102
               for m in again.events)
    status = again.request(T.STATUS_REQUEST, {"component": "system"}).fields["status"]
    assert status["last_reset"] == "watchdog_reset"
    r = again.run_self_test("system")
    assert (r["outcome"], r["code"]) == ("warning", "watchdog_reset")


def test_firmware_crash_also_under_the_quick_plan() -> None:
    host = EngineHost("firmware-crash", speed=float("inf"))
    host.hello()
    assert host.request(T.SELFTEST_START, {"component": "printer", "plan": "quick", "interactive": False}).type == T.ACK
    assert host.engine.crashed
    assert host.results() == {}


def encode(mtype: T) -> bytes:
    from protocols.pos import encode_message
    from tests.pos_sim.emulator.hosts import hello_fields

    return encode_message(mtype, hello_fields() if mtype == T.HELLO else None, seq=0x4242)
