"""``pos-sim record ... --pcapng FILE``: the pcapng written live is the export of the capture.

Through a real pty: the recorder relays ``pos-sim info`` to the emulator, then stops on SIGINT;
the live pcapng must be byte for byte what ``pos-sim pcap`` makes of the capture it wrote.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from drivers.pcapng import export_capture

ROOT = Path(__file__).resolve().parents[3]


def test_record_writes_the_pcapng_live(tmp_path: Path) -> None:
    cap, live = tmp_path / "s.cap", tmp_path / "live.pcapng"
    rec = subprocess.Popen([sys.executable, "-m", "pos_sim.cli", "record", "emu://healthy?speed=50", "-o", str(cap),
                            "--pcapng", str(live)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert rec.stdout is not None
        first = rec.stdout.readline().split()
        assert first[0] == "PORT"
        info = subprocess.run([sys.executable, "-m", "pos_sim.cli", "info", first[1], "--json"],
                              capture_output=True, text=True, timeout=60, check=False, cwd=ROOT)
        assert info.returncode == 0, info.stderr
    finally:
        rec.send_signal(signal.SIGINT)
        _, err = rec.communicate(timeout=30)
    assert rec.returncode == 0, err
    packets, reader = export_capture(cap, tmp_path / "after.pcapng")
    assert reader.complete and packets >= 4          # HELLO, its reply, INFO_REQUEST, INFO_REPLY, a note
    assert live.read_bytes() == (tmp_path / "after.pcapng").read_bytes()


def test_record_with_an_unwritable_pcapng_is_one_line_exit_1(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "pos_sim.cli", "record", "emu://healthy", "-o", str(tmp_path / "x.cap"),
                        "--pcapng", str(tmp_path / "no" / "x.pcapng")], capture_output=True, text=True, timeout=60,
                       check=False, cwd=ROOT)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "cannot write the pcapng" in r.stderr
