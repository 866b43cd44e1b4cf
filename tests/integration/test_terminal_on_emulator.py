"""The driver against the emulated terminal, over a real pty, TCP and emu://: every scenario's
behaviour visible through the Terminal API, the flaky link survived, the crash bounded."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from drivers.errors import DeadlinePassed, DriverError, RequestRefused, ResponseTimeout, SelfTestLost
from drivers.terminal import SelfTestProgress, SelfTestResult, Terminal
from pos_sim.emulator import EmulatorServer, load_scenario, scenario_names
from tests.integration.conftest import SPEED, TIMINGS, Opener

CONFIRM_PROMPTS = {"confirm_pattern", "confirm_print"}


def run_all(term: Terminal, *, interactive: bool = True, plan: str = "full") -> dict[str, SelfTestResult]:
    """Every component's self-test in turn; confirm prompts answered "yes" from another thread,
    as a technician at the bench would (never from the link's own thread)."""
    assert term.hello is not None
    results: dict[str, SelfTestResult] = {}
    with ThreadPoolExecutor(max_workers=1) as technician:
        def on_progress(p: SelfTestProgress) -> None:
            if p.prompt in CONFIRM_PROMPTS:
                technician.submit(term.confirm, p.component, True)
        for component in term.hello.components:
            results[component] = term.run_self_test(component, plan, interactive, on_progress=on_progress,
                                                    timeout=30)
    return results


def test_every_scenario_has_a_file() -> None:
    assert {"healthy", "dropped", "paper-out", "no-network", "weak-battery", "flaky-link", "firmware-crash",
            "unactivated"} <= set(scenario_names())


def test_same_terminal_through_pty_tcp_and_emu_url(emulated: Opener) -> None:
    _, term = emulated("healthy")
    over_pty = replace(term.info(), clock=0)   # the clock ticks between the three
    with EmulatorServer(load_scenario("healthy"), speed=SPEED) as server:
        url = server.serve_tcp()
        with Terminal.open(url, timings=TIMINGS) as t:
            assert replace(t.info(), clock=0) == over_pty
    with Terminal.open(f"emu://healthy?speed={SPEED:g}", timings=TIMINGS) as t:
        assert replace(t.info(), clock=0) == over_pty
        assert t.hello is not None and "printer" in t.hello.components
    assert over_pty.serial and over_pty.lifecycle == "bound"


def test_healthy_passes_everything_when_a_person_confirms(emulated: Opener) -> None:
    _, term = emulated("healthy")
    results = run_all(term)
    assert {c: r.outcome for c, r in results.items()} == {c: "passed" for c in results}
    assert all(r.code == "none" for r in results.values())


def test_healthy_without_a_person_never_reports_an_interactive_check_as_passed(emulated: Opener) -> None:
    _, term = emulated("healthy")
    results = run_all(term, interactive=False)
    assert "failed" not in {r.outcome for r in results.values()}
    # the swipe, the keys and the pattern need a person: without one the test is not passed
    for component in ("magstripe", "keypad", "scanner", "screen"):
        assert results[component].outcome == "skipped", results[component]
        assert results[component].measurements.get("checks_skipped", 0) >= 1


@pytest.mark.parametrize(("scenario", "component", "outcome", "code"), [
    ("dropped", "screen", "failed", "panel_damaged"),
    ("dropped", "magstripe", "failed", "msr_intermittent"),
    ("dropped", "security", "failed", "tamper_tripped"),
    ("paper-out", "printer", "warning", "paper_end"),
    ("no-network", "network", "failed", "no_link"),
    ("weak-battery", "power", "warning", "battery_low"),
])
def test_scenario_fault_is_visible(emulated: Opener, scenario: str, component: str, outcome: str,
                                   code: str) -> None:
    _, term = emulated(scenario)
    results = run_all(term)
    assert (results[component].outcome, results[component].code) == (outcome, code)
    others = {c: r.outcome for c, r in results.items() if r.outcome != "passed"}
    expected_bad = {"dropped": {"screen", "magstripe", "security"}}.get(scenario, {component})
    assert set(others) == expected_bad


def test_measurements_come_through(emulated: Opener) -> None:
    _, term = emulated("weak-battery")
    power = term.run_self_test("power", timeout=30)
    assert 0 < power.measurements["battery_pct"] <= 8
    assert power.measurements["current_ma"] < 0
    status = term.status("power")
    assert status["battery_status"] == "low" and status["battery_pct"] <= 8


@pytest.mark.parametrize(("scenario", "state", "merchant"), [
    ("unactivated", "unactivated", ""), ("healthy", "bound", "898310048161234"), ("dropped", "locked", None)])
def test_lifecycle_state_is_visible(emulated: Opener, scenario: str, state: str, merchant: str | None) -> None:
    _, term = emulated(scenario)
    info = term.info()
    assert info.lifecycle == state
    if merchant is not None:
        assert info.merchant_id == merchant


def test_event_log_of_a_dropped_terminal(emulated: Opener) -> None:
    _, term = emulated("dropped")
    codes = {e["code"] for e in term.read_event_log()}
    assert {"tamper_tripped", "keys_erased"} <= codes


def test_flaky_link_every_request_completes_or_fails_typed(emulated: Opener) -> None:
    _, term = emulated("flaky-link")
    reference = replace(load_scenario("flaky-link").device)
    outcomes = {"ok": 0, "failed": 0}
    for _ in range(20):
        try:
            got = term.info()
        except DriverError:
            outcomes["failed"] += 1
            continue
        # every field a corrupted answer could change, checked against the scenario itself
        assert (got.serial, got.model, got.manufacturer, got.firmware_version, got.hardware_rev) == (
            reference.serial, reference.model, reference.manufacturer, reference.firmware_version,
            reference.hardware_rev), "a corrupted answer was accepted"
        assert (got.lifecycle, got.merchant_id) == ("bound", "898310048161642")
        outcomes["ok"] += 1
    assert term.hello is not None
    for component in term.hello.components:
        try:
            result = term.run_self_test(component, "quick", timeout=30)
        except DriverError:
            outcomes["failed"] += 1
            continue
        assert result.outcome == "passed", result   # a corrupted result would not be "passed"
        outcomes["ok"] += 1
    stats = term.link.stats
    assert outcomes["ok"] > outcomes["failed"]
    assert stats.retransmits > 0 and term.link.deframer.stats.bad_crc > 0


def test_firmware_crash_is_a_timeout_within_its_bound(emulated: Opener) -> None:
    _, term = emulated("firmware-crash")
    with pytest.raises((SelfTestLost, ResponseTimeout)) as caught:
        term.run_self_test("printer", timeout=60)
    # within its bound: the lost rule (T_lost without progress, proven on a fake clock and by
    # tests/drivers/test_noisy_line.py) ended the wait, not the overall 60 s limit
    assert not isinstance(caught.value, DeadlinePassed), caught.value
    with pytest.raises(ResponseTimeout):
        term.info()


def test_lifecycle_is_remembered_across_restarts(tmp_path: Path, emulated: Opener) -> None:
    state = tmp_path / "terminal.json"
    key = load_scenario("unactivated").lifecycle.key
    server, term = emulated("unactivated", state_path=state)
    result = term.activate(key, "ACT-123456", "898310048169999")
    assert result.ok and result.state == "activated", result
    counter = result.counter
    term.close()
    server.stop()
    _, term2 = emulated("unactivated", state_path=state)
    info = term2.info()
    assert (info.lifecycle, info.merchant_id) == ("activated", "898310048169999")
    refused = term2.revoke(key, "bought by mistake")
    assert not refused.ok and refused.status == "refused_state" and "unbind" in refused.message.lower()
    assert refused.counter > counter
    bad = term2.bind(bytes(32), "898310048169999")
    assert bad.status == "bad_auth"


def test_transaction_log_backup_is_verified_and_masked(tmp_path: Path, emulated: Opener) -> None:
    _, term = emulated("healthy")
    pages: list[tuple[int, int]] = []
    out = term.export_transaction_log(tmp_path / "backup" / "txlog.json", on_progress=lambda a, b: pages.append((a, b)))
    doc = json.loads(out.path.read_text())
    assert doc["records"] == out.records == len(doc["transactions"]) > 0
    assert pages[-1] == (out.pages, out.pages)
    assert hashlib.sha256(b"".join(base64.b64decode(p) for p in doc["page_data"])).hexdigest() == out.sha256
    assert all(re.fullmatch(r"\d{6}\*{6}\d{4}|", t["card"]) for t in doc["transactions"])
    assert not re.search(r"\d{13,19}", out.path.read_text()), "a digit run as long as a card number"


def test_refused_request_is_typed(emulated: Opener) -> None:
    _, term = emulated("healthy", connect=False)
    with pytest.raises(RequestRefused) as info:
        term.info()   # before HELLO only HELLO and PING are answered
    assert info.value.reason == "not_permitted"
