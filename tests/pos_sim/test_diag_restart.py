"""A terminal that restarts while `pos-sim diag` runs its plan: what was lost is named, exit bit 4.

The emulator runs in this process on a real pty, slower than life so that tests are still
running when it is power-cycled (``EmulatorServer.restart()``, the line stays open);
`pos-sim diag` runs as a subprocess on that pty path, and the test restarts the terminal as
soon as diag prints its first verdict.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from drivers.link import LinkTimings
from drivers.terminal import Terminal
from pos_sim.diagnostics.catalogue import load_catalogue
from pos_sim.diagnostics.engine import DiagnosticsEngine, Update
from pos_sim.emulator import EmulatorServer, load_scenario

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "pos_sim" / "diagnostics" / "report.schema.json").read_text())
#: the English labels diag prints for the components (the catalogue's, written out here)
NAMES = {"Main board and system": "system", "Security (tamper protection)": "security",
         "Power and battery": "power", "Network": "network", "Screen": "screen", "Keypad": "keypad",
         "Magnetic stripe reader": "magstripe", "Chip card reader": "chip", "Contactless reader": "contactless",
         "Printer": "printer", "QR scanner": "scanner"}


@pytest.fixture
def slow_terminal() -> Iterator[EmulatorServer]:
    server = EmulatorServer(load_scenario("healthy"), speed=0.25)
    server.serve_pty()
    yield server
    server.stop()


def test_diag_names_the_checks_a_restart_cost_and_sets_bit_4(slow_terminal: EmulatorServer, tmp_path: Path) -> None:
    assert slow_terminal.port is not None
    report_path = tmp_path / "report.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pos_sim.cli", "diag", slow_terminal.port, "--plan", "quick", "--non-interactive",
         "--lang", "en", "--report", str(report_path), "--no-record"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=dict(os.environ))
    assert proc.stdout is not None
    finished_before: dict[str, str] = {}
    lines: list[str] = []
    try:
        for line in proc.stdout:
            lines.append(line)
            words = line.strip().split(" ", 1)
            if line.startswith("  ") and len(words) == 2 and words[1] in NAMES and words[0] != "…":
                finished_before[NAMES[words[1]]] = words[0]
                slow_terminal.restart()   # the power goes, and comes back at once
                break
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert finished_before, "".join(lines)
    assert proc.returncode & 4, (proc.returncode, err)
    assert slow_terminal.restarts == 1
    assert err.count("\n") <= 1 and "Traceback" not in err

    report: dict[str, Any] = json.loads(report_path.read_text(encoding="utf-8"))
    jsonschema.validate(report, SCHEMA)
    assert report["exit_status"] == proc.returncode
    results = {f["component"]: f for f in report["results"]}
    lost = sorted(c for c, f in results.items() if f["code"] == "terminal_restarted")
    assert lost, results
    for component in lost:
        f = results[component]
        assert f["verdict"] == "error" and f["category"] == "communication"
        assert f["message"] == load_catalogue().fault("terminal_restarted").message("en")
    # what finished before the restart keeps its verdict
    for component, label in finished_before.items():
        assert results[component]["verdict"] == "pass" and label == "Pass"
    assert not set(finished_before) & set(lost)
    # the restart's own finding names what it cost
    (restart,) = [f for f in report["communication"] if f["code"] == "terminal_restarted"]
    assert restart["verdict"] == "error" and "restarted" in restart["note"]
    assert f"lost: {', '.join(c for c in report_components(report) if c in lost)}" in restart["note"]
    assert not any(f["code"] == "selftest_lost" for f in report["results"])
    # the human output shows each lost check with the code
    table = out.split("\n\n", 1)[1]
    assert sum("terminal_restarted" in row for row in table.splitlines()) >= len(lost)


def report_components(report: dict[str, Any]) -> list[str]:
    return [f["component"] for f in report["results"]]


def test_a_restart_between_tests_leaves_the_rest_not_run(slow_terminal: EmulatorServer) -> None:
    """Full plan with a person: the board runs first, then the screen and the printer one at a
    time; a restart after the board's verdict keeps that verdict and stops the plan there."""
    assert slow_terminal.port is not None
    with Terminal.open(slow_terminal.port, timings=LinkTimings(keepalive_idle=3600)) as term:
        def on_update(u: Update) -> None:
            if u.kind == "finished" and u.component == "system":
                slow_terminal.restart()   # nothing runs now: the host has not noticed yet

        engine = DiagnosticsEngine(term, lang="en", on_update=on_update)
        report = engine.run("full", ["system", "screen", "printer"], interactive=True)
    verdicts = {f.component: (f.verdict, f.code, f.note) for f in report.results}
    assert verdicts["system"][0] == "pass"
    for component in ("screen", "printer"):
        verdict, code, note = verdicts[component]
        assert verdict == "error" and code is None and note == "not run: the terminal restarted before this test"
    (restart,) = report.communication
    assert restart.code == "terminal_restarted" and restart.note.endswith("(lost: none; not run: screen, printer)")
    assert report.exit_status & 4 and report.verdict == "needs_attention"
