"""``pos-sim conformance``: the checklist of docs/protocol.md section 15 against the emulator.

Oracles: the spec's checklist table (clause identifiers, titles, sections, which are lifecycle),
read from docs/protocol.md; and a hand-written table of which clause each emulator break
violates (below), not the breaks module's own declaration.  The reference terminal must pass
every clause; each break must fail its clause and no other.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from drivers.raw import RawLink
from pos_sim.conformance import CHECKS, CLAUSES, FAIL, ORDER, PASS, SKIPPED, run_suite
from pos_sim.emulator import EmulatorServer
from pos_sim.emulator.breaks import BREAKS
from pos_sim.ports import register_url_schemes

SPEC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
HEALTHY_KEY = bytes(range(32))  # the healthy scenario's key (its header comment; the spec's example 8)

#: which clause each break violates, written from the spec's checklist by hand
EXPECTED_FAILURE = {
    "wrong-direction-malformed": "N2",
    "malformed-before-too-large": "N5",
    "unknown-plan-accepted": "N6",
    "no-duplicate-memory": "S1",
    "no-event-retransmit": "S3",
    "no-session-expiry": "S4",
    "hello-keeps-snapshot": "S5",
    "hello-accepts-version-0": "H1",
    "ignore-negotiated-paging": "P1",
    "bad-page-crc": "P2",
    "abort-reports-failed": "T4",
    "no-counter-check": "L2",
    "reusable-challenge": "L3",
}


def _spec_checklist() -> list[tuple[str, str, str, bool]]:
    text = SPEC.read_text(encoding="utf-8")
    section = text[text.index("## 15. Conformance checklist"):]
    rows = re.findall(r"^\| ([A-Z]\d) ([^|]+?) \| [^|]+ \| ([^|]+) \|$", section, re.MULTILINE)
    out = []
    for cid, title, where in rows:
        lifecycle = title.endswith("(lifecycle)")
        out.append((cid, title.removesuffix(" (lifecycle)"), where.strip(), lifecycle))
    return out


def test_the_suite_is_the_spec_checklist_one_to_one() -> None:
    spec = _spec_checklist()
    assert len(spec) == 27
    assert [(c.id, c.title, c.section, c.lifecycle) for c in CLAUSES] == spec
    assert set(CHECKS) == {c.id for c in CLAUSES}
    assert sorted(ORDER) == sorted(c.id for c in CLAUSES)


def _run(url: str, allow_lifecycle: bool = True) -> dict[str, tuple[str, str]]:
    register_url_schemes()
    with RawLink.open(url) as link:
        results = list(run_suite(link, allow_lifecycle=allow_lifecycle, keys=lambda serial: HEALTHY_KEY))
    return {r.clause.id: (r.status, r.detail) for r in results}


def test_the_reference_terminal_passes_and_each_break_fails_exactly_its_clause() -> None:
    assert set(EXPECTED_FAILURE) == set(BREAKS)
    names: list[str | None] = [None, *EXPECTED_FAILURE]
    urls = ["emu://healthy?speed=inf" + (f"&break={n}" if n else "") for n in names]
    # one emulator each, all at once: the suite's silences (S4, S3) overlap instead of adding up
    with ThreadPoolExecutor(len(urls)) as pool:
        runs = dict(zip(names, pool.map(_run, urls), strict=True))
    clean = runs.pop(None)
    assert {cid: s for cid, (s, _) in clean.items() if s != PASS} == {}
    for name, results in runs.items():
        assert name is not None
        failed = {cid for cid, (status, _) in results.items() if status not in (PASS, SKIPPED)}
        assert failed == {EXPECTED_FAILURE[name]}, (name, {c: results[c] for c in failed})
        assert results[EXPECTED_FAILURE[name]][0] == FAIL


def test_without_allow_lifecycle_no_lifecycle_request_is_sent_and_the_left_out_are_named() -> None:
    register_url_schemes()
    with RawLink.open("emu://healthy?speed=inf") as link:
        results = list(run_suite(link, only={"L1", "L2", "L5", "P2"}))
        sent_lc = [r for r in link.received if r.frame.type == 0x63]  # LC_RESULT answers only LC_REQUEST
        state = link.port.emulator._engine.state
    assert {r.clause.id: r.status for r in results} == {"L1": PASS, "L2": SKIPPED, "L5": SKIPPED, "P2": PASS}
    assert sent_lc == []
    assert state.lifecycle.name == "bound" and state.counter == 7


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pos_sim.cli", "conformance", *args], capture_output=True,
                          text=True, timeout=600, cwd=cwd, check=False)


def test_cli_json_and_junit_for_a_broken_terminal(tmp_path: Path) -> None:
    junit = tmp_path / "conformance.xml"
    done = _cli("emu://healthy?speed=inf&break=bad-page-crc", "--only", "P1,P2,F1", "--json",
                "--junit", str(junit))
    assert done.returncode == 8, done.stderr
    out = json.loads(done.stdout)
    assert out["conforms"] is False and out["exit_status"] == 8
    assert {r["clause"]: r["status"] for r in out["results"]} == {"F1": "pass", "P1": "pass", "P2": "fail"}
    assert "FAIL  P2 page CRCs and digest (section 10)" in done.stderr
    suite = ET.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("3", "1")
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed == ["P2 page CRCs and digest"]


def test_cli_passes_the_emulator_and_says_what_it_left_out() -> None:
    done = _cli("emu://healthy?speed=inf", "--only", "F2,S1,L3")
    assert done.returncode == 0, done.stderr
    assert "PASS  F2 garbage" in done.stdout and "PASS  S1 duplicate" in done.stdout
    assert "SKIP  L3 stale challenge (section 11): left out" in done.stdout
    assert done.stdout.rstrip().endswith("3 clauses: 2 passed, 0 failed, 0 could not be checked, 1 left out (L3)")


@pytest.mark.parametrize("args,status,words", [
    (["emu://healthy", "--only", "Z9"], 1, "no clause Z9"),
    (["/dev/nonexistent-conformance-port"], 2, "/dev/nonexistent-conformance-port"),
])
def test_cli_errors_are_one_line(args: list[str], status: int, words: str) -> None:
    done = _cli(*args)
    assert done.returncode == status
    assert words in done.stderr and len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_over_a_real_pty_at_9600_baud() -> None:
    # the line throttled to 9600 baud: every wait follows the line rate (section 5's formulas)
    with EmulatorServer("healthy", baud=9600, speed=float("inf")) as server:
        register_url_schemes()
        with RawLink.open(server.serve_pty(), baud=9600) as link:
            results = {r.clause.id: r.status for r in run_suite(link, only={"F1", "F2", "S1", "S3", "P2", "T4"})}
    assert results == dict.fromkeys(["F1", "F2", "S1", "S3", "P2", "T4"], PASS)


def test_emulate_break_serves_a_broken_terminal_on_a_pty_that_conformance_names() -> None:
    from tests.pos_sim.emulator.test_cli import emulate, first_line

    with emulate("--speed", "inf", "--break", "hello-keeps-snapshot") as proc:
        line = first_line(proc)
        assert line.startswith("PORT /dev/pts/")
        done = _cli(line.split(" ", 1)[1], "--only", "S5,S2")
        proc.terminate()
    assert done.returncode == 8, done.stderr
    assert "FAIL  S5 HELLO resets (section 6): TXLOG_READ after a new HELLO: answered TXLOG_PAGE" in done.stdout
    assert "PASS  S2 sequence wrap" in done.stdout


def test_emulate_refuses_an_unknown_break_in_one_line() -> None:
    done = subprocess.run([sys.executable, "-m", "pos_sim.cli", "emulate", "--break", "sloppy"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "no break 'sloppy'" in done.stderr and "bad-page-crc" in done.stderr
