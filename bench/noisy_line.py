"""Noisy-line check: many `pos-sim diag` runs against one long-running emulator on a bad cable.

The ``flaky-link`` scenario is a healthy terminal behind a line that flips a bit in 1 % of the
bytes, loses 0.2 % and holds 0.2 % back.  One ``pos-sim emulate`` process serves it on a pty
for the whole bench (as a terminal on a bench stays powered), and ``pos-sim diag --non-interactive
--json`` runs against it again and again, each a new host process.  The reference is the same
terminal on a clean line, in the same run: the scenario with its ``[link]`` faults taken out.

A run is *clean* when its component verdicts equal the clean line's and the cable got its
warning (exit status 16).  A *component error* is a component reported ``error`` (lost on the
line) instead of its verdict: what the protocol's retransmit rules exist to prevent.

    python bench/noisy_line.py [--runs 20] [--speed 1]

prints one line a run, then ``clean_runs=N/M``, ``clean_ratio=``, ``component_errors=`` (target:
at least 19 of 20 clean, no component error).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from pos_sim.emulator.scenario import SCENARIO_DIR  # noqa: E402

TARGET_CLEAN = 0.95
SCENARIO = "flaky-link"


@dataclass
class RunOutcome:
    """One diag run, classified against the clean line's verdicts."""

    exit_status: int
    verdicts: dict[str, str]
    communication: list[str]
    errors: list[str] = field(default_factory=list)
    clean: bool = False
    seconds: float = 0.0


def clean_copy(directory: Path, name: str = SCENARIO) -> Path:
    """The scenario without its line faults: the same terminal on a good cable."""
    text = SCENARIO_DIR.joinpath(f"{name}.toml").read_text(encoding="utf-8")
    # drop the [link] table (up to the next table or the end)
    text = re.sub(r"^\[link\]\n(?:(?!\[).*\n?)*", "", text, flags=re.M)
    path = directory / f"{name}-clean-line.toml"
    path.write_text(text, encoding="utf-8")
    return path


@contextmanager
def emulator(scenario: str, speed: float, env: dict[str, str]) -> Iterator[str]:
    """``pos-sim emulate`` in its own process; yields its pty path."""
    proc = subprocess.Popen([sys.executable, "-m", "pos_sim.cli", "emulate", "--scenario", scenario,
                             "--speed", str(speed)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        if not first.startswith("PORT "):
            raise RuntimeError(f"pos-sim emulate did not start: {first!r} {proc.stderr.read() if proc.stderr else ''}")
        yield first.split(None, 1)[1].strip()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def diag(port: str, env: dict[str, str], capture: Path | None = None) -> tuple[int, dict[str, Any], float]:
    """One `pos-sim diag` process: (exit status, its JSON, seconds)."""
    t0 = time.perf_counter()
    extra = ["--capture", str(capture)] if capture is not None else []
    r = subprocess.run([sys.executable, "-m", "pos_sim.cli", "diag", port, "--non-interactive", "--json",
                        "--no-record", "--lang", "en", *extra], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, env=env, timeout=600, check=False)
    seconds = time.perf_counter() - t0
    try:
        report = json.loads(r.stdout)
    except json.JSONDecodeError:
        report = {"results": [], "communication": [], "error": r.stderr.strip()}
    return r.returncode, report, seconds


def classify(status: int, report: dict[str, Any], reference: dict[str, str], seconds: float) -> RunOutcome:
    """Compare a run with the clean line's verdicts."""
    verdicts = {f["component"]: f["verdict"] for f in report.get("results", [])}
    communication = sorted(f["code"] for f in report.get("communication", []))
    errors = [f"{f['component']}:{f['code']}" for f in report.get("results", []) if f["verdict"] == "error"]
    if report.get("error"):
        errors.append(str(report["error"]))
    clean = verdicts == reference and status == 16 and "link_crc_errors" in communication
    return RunOutcome(status, verdicts, communication, errors, clean, seconds)


def run_bench(runs: int, speed: float, out: Any = sys.stdout, keep: Path | None = None) -> list[RunOutcome]:
    """The reference run on a clean line, then ``runs`` runs on the noisy one; prints as it goes."""
    env = {**os.environ, "NO_COLOR": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        env["XDG_DATA_HOME"] = tmp   # --no-record, but keep any stray registry out of the user's
        with emulator(str(clean_copy(Path(tmp))), speed, env) as port:
            status, report, seconds = diag(port, env)
        reference = {f["component"]: f["verdict"] for f in report["results"]}
        bad = [c for c, v in reference.items() if v == "error"]
        if status & 4 or bad:
            raise RuntimeError(f"the clean-line reference run failed (exit {status}, errors {bad})")
        print(f"clean line: exit {status}, {seconds:.1f} s, "
              f"{', '.join(f'{c}={v}' for c, v in reference.items())}", file=out, flush=True)
        outcomes: list[RunOutcome] = []
        with emulator(SCENARIO, speed, env) as port:
            for i in range(1, runs + 1):
                capture = keep / f"run-{i:02d}.cap.gz" if keep is not None else None
                status, report, seconds = diag(port, env, capture)
                o = classify(status, report, reference, seconds)
                if capture is not None and o.clean:
                    capture.unlink(missing_ok=True)   # keep only the runs worth reading
                outcomes.append(o)
                retransmits = report.get("link", {}).get("retransmits", "?")
                print(f"run {i:2d}: exit {status:3d}  {'clean' if o.clean else 'NOT CLEAN'}  {seconds:5.1f} s  "
                      f"retransmits {retransmits}  {' '.join(o.communication)}"
                      f"{'  errors: ' + ', '.join(o.errors) if o.errors else ''}", file=out, flush=True)
    return outcomes


def main(argv: list[str] | None = None) -> int:
    """Run the bench and print its figures; exit 1 when it misses the target."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--speed", type=float, default=1.0, help="emulator speed factor (1: real durations)")
    p.add_argument("--keep-captures", metavar="DIR", type=Path,
                   help="record every run (pos-sim diag --capture) and keep the captures of runs that were not clean")
    args = p.parse_args(argv)
    if args.keep_captures is not None:
        args.keep_captures.mkdir(parents=True, exist_ok=True)
    outcomes = run_bench(args.runs, args.speed, keep=args.keep_captures)
    clean = sum(o.clean for o in outcomes)
    component_errors = sum(1 for o in outcomes for e in o.errors if ":" in e)
    ratio = clean / len(outcomes)
    mean = sum(o.seconds for o in outcomes) / len(outcomes)
    print(f"clean_runs={clean}/{len(outcomes)}")
    print(f"clean_ratio={ratio:.2f} (target {TARGET_CLEAN:.2f} or more)")
    print(f"component_errors={component_errors} (target 0)")
    print(f"mean_run_seconds={mean:.1f}")
    return 0 if ratio >= TARGET_CLEAN and component_errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
