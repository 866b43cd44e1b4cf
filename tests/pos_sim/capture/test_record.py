"""``pos-sim record``: a pass-through tap between a new pty and a port, recording both ways."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drivers.capture import Chunk, read_capture
from pos_sim.cli.capture import replay_capture

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_record_relays_a_diagnosis_and_the_capture_replays(tmp_path: Path, stop: signal.Signals) -> None:
    out = tmp_path / "session.cap.gz"
    rec = subprocess.Popen([sys.executable, "-m", "pos_sim.cli.capture", "record", "emu://paper-out?speed=50",
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
    # the line also carried auto-detection's DLE EOT 1 (3 bytes, on its own open before HELLO)
    assert sum(len(c.data) for c in chunks if c.direction == ">") == link["bytes_out"] + 3
    assert sum(len(c.data) for c in chunks if c.direction == "<") == link["bytes_in"]
    outcome = replay_capture(out)
    assert outcome.got is not None and outcome.got["verdict"] == "needs_attention"
    assert outcome.got["exit_status"] == 16 and outcome.replay_problem == ""


def test_record_on_a_missing_port_is_exit_2(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "pos_sim.cli.capture", "record", "/dev/no-such-tty", "-o",
                        str(tmp_path / "x.cap")], capture_output=True, text=True, timeout=30, check=False, cwd=ROOT)
    assert r.returncode == 2 and "no such port" in r.stderr and not (tmp_path / "x.cap").exists()


def test_record_notices_a_hang_up_and_notes_it(tmp_path: Path) -> None:
    """The terminal's side of the line goes away: record ends by itself, exit 4, one line, and
    the capture ends with a ``@ disconnected`` note after the bytes that came before."""
    import os
    import pty
    import tty

    from drivers.capture import Note

    master, slave = pty.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    out = tmp_path / "hup.cap"
    rec = subprocess.Popen([sys.executable, "-m", "pos_sim.cli.capture", "record", os.ttyname(slave), "-o", str(out)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert rec.stdout is not None
        assert rec.stdout.readline().startswith("PORT ")
        os.write(master, b"before the cable went")
        # wait until record has the bytes (the capture's first chunk), then pull the cable
        for _ in range(500):
            if out.exists() and "<" in out.read_text():
                break
            time.sleep(0.01)
    finally:
        os.close(slave)
        os.close(master)
    _, err = rec.communicate(timeout=30)   # ends by itself: no signal is sent
    assert rec.returncode == 4, err
    assert len(err.strip().splitlines()) == 1 and "disconnected" in err and "Traceback" not in err
    records = list(read_capture(out))
    assert b"".join(r.data for r in records if isinstance(r, Chunk)) == b"before the cable went"
    assert isinstance(records[-1], Note) and records[-1].key == "disconnected"
