"""``pos-sim record``: a pass-through tap between a new pty and a port, recording both ways."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from drivers.capture import Chunk, read_capture
from pos_sim.capture_cmd import replay_capture

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_record_relays_a_diagnosis_and_the_capture_replays(tmp_path: Path, stop: signal.Signals) -> None:
    out = tmp_path / "session.cap.gz"
    rec = subprocess.Popen([sys.executable, "-m", "pos_sim.capture_cmd", "record", "emu://paper-out?speed=50",
                            "-o", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert rec.stdout is not None
        first = rec.stdout.readline().split()
        assert first[0] == "PORT" and first[1].startswith("/dev/pts/")
        diag = subprocess.run([sys.executable, "-m", "pos_sim.cli", "diag", first[1], "--json", "--non-interactive",
                               "--lang", "en"], capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
                              stdin=subprocess.DEVNULL)
        report = json.loads(diag.stdout)
        assert report["verdict"] == "needs_attention" and diag.returncode == 16, diag.stderr
    finally:
        rec.send_signal(stop)
        _, err = rec.communicate(timeout=30)
    assert rec.returncode == 0, err
    assert "recorded " in err
    reader = read_capture(out)
    chunks = [r for r in reader if isinstance(r, Chunk)]
    assert reader.complete and not reader.torn
    link = report["link"]
    assert sum(len(c.data) for c in chunks if c.direction == ">") == link["bytes_out"]
    assert sum(len(c.data) for c in chunks if c.direction == "<") == link["bytes_in"]
    outcome = replay_capture(out)
    assert outcome.got is not None and outcome.got["verdict"] == "needs_attention"
    assert outcome.got["exit_status"] == 16 and outcome.replay_problem == ""


def test_record_on_a_missing_port_is_exit_2(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "pos_sim.capture_cmd", "record", "/dev/no-such-tty", "-o",
                        str(tmp_path / "x.cap")], capture_output=True, text=True, timeout=30, check=False, cwd=ROOT)
    assert r.returncode == 2 and "no such port" in r.stderr and not (tmp_path / "x.cap").exists()
