"""Session benchmark: a full self-test of every component against the emulator, against line time.

The emulator runs on a real pseudo-terminal, throttled to 115200 baud, with every component's
duration at zero (``speed=inf``), so the only unavoidable cost is moving the bytes: the lower
bound is (bytes both ways) / 11,520 B/s.  ``overhead_ratio`` is wall time over that bound;
target 1.15 or lower.  Two runs: components one after another (what a cautious tool does) and
all started at once (what the diagnostics engine does where the terminal allows it).

    python bench/session.py [--baud N] [--repeat N] [--scenario NAME]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from drivers.link import LinkTimings  # noqa: E402
from drivers.terminal import SelfTestResult, Terminal  # noqa: E402
from pos_sim.emulator import EmulatorServer, load_scenario  # noqa: E402

TARGET = 1.15


def sequential(term: Terminal, components: Sequence[str]) -> list[SelfTestResult]:
    """Each component's full self-test, one after another."""
    return [term.run_self_test(c, "full", interactive=False) for c in components]


def concurrent(term: Terminal, components: Sequence[str]) -> list[SelfTestResult]:
    """Every component's self-test started at once, then all awaited."""
    runs = [term.start_self_test(c, "full", interactive=False) for c in components]
    return [r.wait() for r in runs]


def measure(scenario: str, baud: int, run: Callable[[Terminal, Sequence[str]], list[SelfTestResult]]
            ) -> tuple[float, int, int]:
    """One session: (wall seconds of the self-tests, bytes on the wire, results)."""
    server = EmulatorServer(load_scenario(scenario), baud=baud, speed=float("inf"))
    path = server.serve_pty()
    try:
        with Terminal.open(path, timings=LinkTimings(baud=baud, keepalive_idle=3600)) as term:
            assert term.hello is not None
            components = list(term.hello.components)
            before = term.link.stats.bytes_in + term.link.stats.bytes_out
            t0 = time.perf_counter()
            results = run(term, components)
            wall = time.perf_counter() - t0
            # the last ACK may still be on its way out: let the link flush before counting
            time.sleep(0.05)
            nbytes = term.link.stats.bytes_in + term.link.stats.bytes_out - before
    finally:
        server.stop()
    return wall, nbytes, len(results)


def main(argv: Sequence[str] | None = None) -> int:
    """Run both plans, print wall time, bytes, line-time bound and the overhead ratio."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baud", type=int, default=115200)
    ap.add_argument("--repeat", type=int, default=5, help="sessions per plan; the median is reported")
    ap.add_argument("--scenario", default="healthy")
    args = ap.parse_args(argv)
    bps = args.baud / 10
    print(f"emulator scenario {args.scenario!r} on a pty at {args.baud} baud ({bps:,.0f} B/s), "
          f"component durations zero; median of {args.repeat} sessions")
    print(f"{'plan':<12}{'wall ms':>9}{'bytes':>8}{'bound ms':>10}{'ratio':>8}{'results':>9}")
    ratios: dict[str, float] = {}
    for name, fn in (("sequential", sequential), ("concurrent", concurrent)):
        samples = [measure(args.scenario, args.baud, fn) for _ in range(args.repeat)]
        wall = statistics.median(s[0] for s in samples)
        nbytes = int(statistics.median(s[1] for s in samples))
        bound = nbytes / bps
        ratios[name] = wall / bound
        print(f"{name:<12}{wall * 1e3:>9.1f}{nbytes:>8}{bound * 1e3:>10.1f}{ratios[name]:>8.3f}{samples[0][2]:>9}")
    print()
    seq = ratios["sequential"]
    print(f"overhead_ratio={seq:.3f}  (sequential, the stricter; concurrent {ratios['concurrent']:.3f}: "
          "the line carries both directions at once)")
    print(f"target: overhead_ratio ≤ {TARGET} ({'met' if seq <= TARGET else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
