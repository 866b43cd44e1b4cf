"""What a verdict covers, through the real command: `complete`, `not_tested`, the verdict line,
advice printed once, a link failure never a merchant fix, the --report path checked first, and
a Chinese report in Chinese. Expected texts are written out here, not produced by the code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.link import LinkTimings
from drivers.terminal import Terminal
from pos_sim.diagnostics.engine import DiagnosticsEngine
from pos_sim.emulator import EmulatorServer, load_scenario
from pos_sim.reports import render_report

POS_SIM = str(Path(sys.executable).with_name("pos-sim"))


def diag(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([POS_SIM, "diag", *args, "--no-record"], capture_output=True, text=True, timeout=300,
                          check=False, stdin=subprocess.DEVNULL, env={**os.environ, "NO_COLOR": "1"})


def test_a_quick_plan_is_complete_when_its_own_checks_ran() -> None:
    r = diag("emu://healthy?speed=50", "--plan", "quick", "--json", "--lang", "en")
    report = json.loads(r.stdout)
    assert report["complete"] is True and report["not_tested"] == [] and r.returncode == 0
    human = diag("emu://healthy?speed=50", "--plan", "quick", "--lang", "en")
    assert "Overall verdict: OK (Every check passed; the terminal can stay in use.)  exit 0" in human.stdout


def test_a_run_without_a_person_is_incomplete_and_says_so_in_chinese() -> None:
    r = diag("emu://healthy?speed=50", "--non-interactive", "--lang", "zh")
    assert "总体结论: 已运行的 4 项检查：正常；7 项未检测（需要人工操作）  exit 0" in r.stdout.splitlines()
    assert "各项检测正常" not in r.stdout     # "every check passed" is not said of 4 of 11


def test_a_firmware_crash_is_not_a_merchant_fix_and_its_advice_is_printed_once() -> None:
    r = diag("emu://firmware-crash?speed=50", "--non-interactive", "--lang", "en")
    assert r.returncode & 4
    out = r.stdout
    steps = [line.split(". ", 1)[1] for line in out.splitlines() if line.startswith("    ") and ". " in line
             and line.strip()[0].isdigit()]
    assert steps and len(steps) == len(set(steps)), out
    verdict = next(line for line in out.splitlines() if line.startswith("Overall verdict:"))
    assert "the merchant can fix" not in verdict and "after-sales" in verdict, verdict
    report = json.loads(diag("emu://firmware-crash?speed=50", "--non-interactive", "--lang", "en", "--json").stdout)
    assert not any(f["merchant_fixable"] for f in [*report["results"], *report["communication"]])
    assert report["event_log"] is None and {"component": "event_log", "reason": "link_failed",
                                            "partial": False} in report["not_tested"]


def test_missing_keys_are_a_repair_and_not_a_lock() -> None:
    r = diag("emu://keys-erased?speed=50", "--non-interactive", "--lang", "en", "--json")
    report = json.loads(r.stdout)
    assert not r.returncode & 32 and r.returncode & 8 and report["verdict"] == "needs_repair"


def test_a_locked_terminal_refusing_tests_has_them_not_tested_in_both_languages() -> None:
    en = diag("emu://locked?speed=50", "--non-interactive", "--lang", "en")
    table = en.stdout[en.stdout.index("SimPOS"):]    # the table, not the progress lines above it
    rows = [line for line in table.splitlines() if line.startswith("  ") and "Skipped" in line]
    assert len(rows) == 11 and all(row.endswith("(terminal locked)") for row in rows), en.stdout
    assert "Communication" not in en.stdout and not en.returncode & 4
    assert "Overall verdict: Locked, but no check ran; 11 not tested (terminal locked)" in en.stdout
    zh = diag("emu://locked?speed=50", "--non-interactive", "--lang", "zh")
    assert "11 项未检测（终端已锁定）" in zh.stdout


@pytest.mark.parametrize("where", ["missing/report.html", "a-file/report.md"])
def test_an_unwritable_report_path_stops_before_the_port_opens(tmp_path: Path, where: str) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    capture = tmp_path / "session.cap"
    # a port that does not exist: had diag opened it, the exit would be 2, not 1
    r = diag(str(tmp_path / "no-such-port"), "--report", str(tmp_path / where), "--capture", str(capture))
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "cannot write the report" in r.stderr and "--report" in r.stderr
    assert not capture.exists()


@pytest.fixture
def crashing_terminal() -> Iterator[Terminal]:
    with EmulatorServer(load_scenario("firmware-crash"), speed=50) as server:
        term = Terminal.open(server.serve_pty(), timings=LinkTimings(keepalive_idle=3600))
        try:
            yield term
        finally:
            term.close()


class Yes:
    """A technician who confirms everything."""

    def show(self, component: str, prompt: str, text: str) -> None:
        pass

    def confirm(self, component: str, prompt: str, text: str) -> bool:
        return True


def test_a_chinese_report_translates_the_hosts_details(crashing_terminal: Terminal) -> None:
    # printer and scanner run one at a time with a person: the printer hangs the firmware, so
    # the scanner is never started, and its note is the host's own words
    report = DiagnosticsEngine(crashing_terminal, lang="zh", prompter=Yes()).run("full", ["printer", "scanner"])
    scanner = next(f for f in report.results if f.component == "scanner")
    assert scanner.note == "未运行：连接在这项检测之前中断了"
    text = render_report(report, "md")
    assert "未运行：连接在这项检测之前中断了" in text and "not run" not in text
    assert {(n.component, n.reason) for n in report.not_tested} >= {("printer", "link_failed"),
                                                                    ("scanner", "link_failed")}


def test_an_event_log_the_terminal_refuses_is_a_finding_not_an_empty_list(tmp_path: Path) -> None:
    # The `locked` capture, with the terminal's answer to EVENTLOG_READ replaced by NAK
    # unknown_type: firmware that does not have the message. Every other byte is as recorded.
    from protocols.pos import FrameDeframer, MessageType, NakReason, decode_message, encode_message

    source = (Path(__file__).resolve().parents[3] / "fixtures" / "captures" / "locked.cap").read_text()
    lines, out, host = source.splitlines(), [], FrameDeframer()
    replacing = False
    for line in lines:
        if line.startswith(">"):
            replacing = False
            for frame in host.feed(bytes.fromhex(line.split()[2])):
                if decode_message(frame).type == MessageType.EVENTLOG_READ:
                    out.append(line)
                    nak = encode_message(MessageType.NAK, {"reason": NakReason.unknown_type}, seq=frame.seq,
                                         flags=1)
                    out.append(f"< {float(line.split()[1]) + 0.001:.6f} {nak.hex()}")
                    replacing = True
                    break
            else:
                out.append(line)
        elif line.startswith("<") and replacing:
            continue
        else:
            out.append(line)
    capture = tmp_path / "refused-log.cap"
    capture.write_text("\n".join(out) + "\n")
    r = diag(f"replay://{capture}", "--non-interactive", "--lang", "en", "--json")
    report = json.loads(r.stdout)
    assert report["event_log"] is None, report["event_log"]
    assert [f["code"] for f in report["communication"]] == ["eventlog_refused"]
    assert {"component": "event_log", "reason": "terminal_refused", "partial": False} in report["not_tested"]
    # the tamper lock still stands; no link failure and no log bit: the log was not read
    assert r.returncode == report["exit_status"] == 32, r.stderr
    human = diag(f"replay://{capture}", "--non-interactive", "--lang", "en")
    assert "event log not read (the terminal refused)" in human.stdout
    assert "The terminal refused to hand over its event log" in human.stdout


def test_the_chinese_report_shows_the_terminals_not_run_note_in_chinese(tmp_path: Path) -> None:
    path = tmp_path / "dropped.md"
    r = diag("emu://dropped?speed=50", "--non-interactive", "--lang", "zh", "--report", str(path))
    assert r.returncode == 104, r.stderr
    text = path.read_text(encoding="utf-8")
    # the terminal's note is "1873 dead pixels; not run: test pattern (no person present), ..."
    assert "未运行：测试图案（无人操作），触摸（无人操作）" in text
    assert "not run" not in text and "no person present" not in text
    steps = [line for line in text.splitlines() if line[:1].isdigit() and ". " in line]
    assert steps and len(steps) == len(set(steps)), "an advice step was given twice"
