"""``pos-sim diag --capture`` on a disk that fills mid-run: the diagnosis still completes, prints
and is recorded; the capture's problem is one line on stderr, and the torn file is marked with a
``capture_failed`` note that ``pos-sim decode`` reports (docs/capture-format.md).

Why a real tmpfs and not RLIMIT_FSIZE: a 4 KiB tmpfs gives the very error a full disk gives
(ENOSPC, from a real filesystem), for the capture file alone; RLIMIT_FSIZE gives EFBIG and
limits every file the process writes, the registry's too, so it would test something else.
Mounting needs root (CAP_SYS_ADMIN): elsewhere the test is skipped, saying so.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from drivers.capture import CAPTURE_FAILED, Note, read_capture


def test_a_full_disk_stops_the_capture_not_the_diagnosis(small_disk: Path, tmp_path: Path) -> None:
    cap = small_disk / "s.cap"
    db = tmp_path / "registry.db"
    r = subprocess.run([sys.executable, "-m", "pos_sim.cli", "diag", "emu://paper-out?speed=50", "--json",
                        "--non-interactive", "--lang", "en", "--db", str(db), "--capture", str(cap)],
                       capture_output=True, text=True, timeout=300, check=False, stdin=subprocess.DEVNULL)
    report = json.loads(r.stdout)
    # the diagnosis as without --capture (docs/emulator.md: paper-out is a printer warning)
    assert r.returncode == report["exit_status"] and report["verdict"] == "needs_attention"
    assert {f["component"]: f["code"] for f in report["results"]}["printer"] == "paper_end"
    assert "Traceback" not in r.stderr
    [line] = [x for x in r.stderr.splitlines() if "capture" in x]
    assert "No space left on device" in line and "marked" in line
    # recorded: the registry holds the run
    runs = subprocess.run([sys.executable, "-m", "pos_sim.cli", "runs", "SP0000789", "--json", "--db", str(db)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert [x["verdict"] for x in json.loads(runs.stdout)["runs"]] == ["needs_attention"]
    # the file: whole lines, ending with the note, which the reader and decode report
    text = cap.read_bytes()
    assert 0 < len(text) <= 4096 and text.endswith(b"\n")
    reader = read_capture(cap)
    records = list(reader)
    assert isinstance(records[-1], Note) and records[-1].key == CAPTURE_FAILED
    assert reader.cut_short and not reader.complete and "cut short" in reader.problem
    d = subprocess.run([sys.executable, "-m", "pos_sim.cli", "decode", str(cap)], capture_output=True, text=True,
                       timeout=120, check=False)
    assert d.returncode == 0 and "cut short" in d.stderr and len(d.stderr.splitlines()) == 1
