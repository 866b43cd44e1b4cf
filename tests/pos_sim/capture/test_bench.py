"""bench/replay.py runs, finds every frame and stays small (a smoke test on a small capture)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_replay_bench_smoke() -> None:
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "replay.py"), "--frames", "3000"], capture_output=True,
                       text=True, timeout=120, check=False, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    values = dict(line.split("=", 1) for line in r.stdout.split() if "=" in line)
    assert values["frames_decoded"] == values["reference_frames"] == values["intact_generated"]
    assert int(values["frames_decoded"]) >= 3000 and float(values["ratio_vs_reference"]) > 0
    assert float(values["peak_rss_mb"]) < 100
