"""Session benchmark: a full self-test of every component against the emulator, against line time.

The emulator runs on a real pseudo-terminal, throttled to each line rate in turn (1200 to
921600 baud), with every component's duration at zero (``speed=inf``), so the only unavoidable
cost is moving the bytes: the lower bound is (bytes both ways) / (baud / 10) B/s.
``overhead_ratio`` is wall time over that bound, per rate; target 1.10 or lower at every rate
from 9600 baud up.  Two runs: components one after another (what a cautious tool does) and
all started at once (what the diagnostics engine does where the terminal allows it).

The reference in the same run is the floor of this machine: two Python threads passing a
request-sized and an answer-sized block back and forth over a bare pty, no protocol, no line
time.  ``floor_ratio`` = (line time + requests x that round trip) / line time is the best any
host and emulator written in Python could reach here with stop-and-wait requests; when it is
close to the target, the target leaves no room for processing at all.

    python bench/session.py [--baud N [N ...]] [--repeat N] [--scenario NAME]
"""

from __future__ import annotations

import argparse
import os
import pty
import statistics
import sys
import threading
import time
import tty
from collections.abc import Callable, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from drivers.link import LinkTimings  # noqa: E402
from drivers.terminal import SelfTestResult, Terminal  # noqa: E402
from pos_sim.emulator import EmulatorServer, load_scenario  # noqa: E402

TARGET = 1.10


def sequential(term: Terminal, components: Sequence[str]) -> list[SelfTestResult]:
    """Each component's full self-test, one after another."""
    return [term.run_self_test(c, "full", interactive=False) for c in components]


def concurrent(term: Terminal, components: Sequence[str]) -> list[SelfTestResult]:
    """Every component's self-test started at once, then all awaited."""
    runs = [term.start_self_test(c, "full", interactive=False) for c in components]
    return [r.wait() for r in runs]


def pty_round_trip(request: int = 14, answer: int = 60, rounds: int = 2000) -> float:
    """Median seconds for ``request`` bytes out and ``answer`` bytes back over a bare pty."""
    master, slave = pty.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    reply = bytes(answer)

    def peer() -> None:
        for _ in range(rounds):
            got = 0
            while got < request:
                got += len(os.read(master, 4096))
            os.write(master, reply)

    thread = threading.Thread(target=peer, daemon=True)
    thread.start()
    samples = []
    block = bytes(request)
    try:
        for _ in range(rounds):
            t0 = time.perf_counter()
            os.write(slave, block)
            got = 0
            while got < answer:
                got += len(os.read(slave, 4096))
            samples.append(time.perf_counter() - t0)
    finally:
        thread.join(5)
        os.close(master)
        os.close(slave)
    return statistics.median(samples)


def measure(scenario: str, baud: int, run: Callable[[Terminal, Sequence[str]], list[SelfTestResult]]
            ) -> tuple[float, int, int, int]:
    """One session: (wall seconds of the self-tests, bytes on the wire, results, requests)."""
    server = EmulatorServer(load_scenario(scenario), baud=baud, speed=float("inf"))
    path = server.serve_pty()
    try:
        with Terminal.open(path, timings=LinkTimings(baud=baud, keepalive_idle=3600)) as term:
            assert term.hello is not None
            components = list(term.hello.components)
            before = term.link.stats.bytes_in + term.link.stats.bytes_out
            requests0 = term.link.stats.requests
            t0 = time.perf_counter()
            results = run(term, components)
            wall = time.perf_counter() - t0
            # the last ACK may still be on its way out: let the link flush before counting
            time.sleep(0.05)
            nbytes = term.link.stats.bytes_in + term.link.stats.bytes_out - before
            requests = term.link.stats.requests - requests0
    finally:
        server.stop()
    return wall, nbytes, len(results), requests


RATES = (1200, 2400, 9600, 19200, 38400, 57600, 115200, 230400, 921600)
#: the target holds from this rate up; below it the bench still runs, to show it works
TARGET_FROM = 9600


def main(argv: Sequence[str] | None = None) -> int:
    """Run both plans at each rate, print wall time, bytes, line-time bound and the overhead ratio."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baud", type=int, nargs="+", default=list(RATES), help="line rates (default: all nine)")
    ap.add_argument("--repeat", type=int, default=5,
                    help=f"sessions per plan from {TARGET_FROM} baud up, the median is reported with the "
                         "lowest and highest ratio as the spread (one session below)")
    ap.add_argument("--scenario", default="healthy")
    args = ap.parse_args(argv)
    print(f"emulator scenario {args.scenario!r} on a pty, component durations zero; median of {args.repeat} "
          f"sessions ({TARGET_FROM} baud and up)")
    rtt = pty_round_trip()
    print(f"reference: a bare pty round trip between two Python threads takes {rtt * 1e6:.0f} us (median)")
    print(f"{'baud':>7}  {'plan':<12}{'wall ms':>10}{'bytes':>8}{'bound ms':>10}{'ratio':>8}{'spread':>14}"
          f"{'results':>9}{'requests':>10}")
    summary: dict[int, tuple[float, float, float, str]] = {}
    for baud in args.baud:
        bps = baud / 10
        repeat = args.repeat if baud >= TARGET_FROM else 1
        ratios: dict[str, float] = {}
        floor = 0.0
        seq_spread = ""
        for name, fn in (("sequential", sequential), ("concurrent", concurrent)):
            samples = [measure(args.scenario, baud, fn) for _ in range(repeat)]
            wall = statistics.median(s[0] for s in samples)
            nbytes = int(statistics.median(s[1] for s in samples))
            bound = nbytes / bps
            ratios[name] = wall / bound
            each = sorted(s[0] / (s[1] / bps) for s in samples)
            spread = f"{each[0]:.3f}-{each[-1]:.3f}"
            requests = int(statistics.median(s[3] for s in samples))
            if name == "sequential":
                floor = (bound + requests * rtt) / bound
                seq_spread = spread
            print(f"{baud:>7}  {name:<12}{wall * 1e3:>10.1f}{nbytes:>8}{bound * 1e3:>10.1f}{ratios[name]:>8.3f}"
                  f"{spread:>14}{samples[0][2]:>9}{requests:>10}", flush=True)
        summary[baud] = (ratios["sequential"], ratios["concurrent"], floor, seq_spread)
    print()
    missed = []
    for baud, (seq, conc, floor, seq_spread) in summary.items():
        applies = baud >= TARGET_FROM
        if applies and seq > TARGET:
            missed.append(baud)
        note = ("met" if seq <= TARGET else "MISSED") if applies else "no target below 9600"
        print(f"overhead_ratio[{baud}]={seq:.3f}  (sequential, the stricter, spread {seq_spread}; "
              f"concurrent {conc:.3f})  {note}"
              f"   floor_ratio[{baud}]={floor:.3f}")
    print(f"target: overhead_ratio <= {TARGET} at every rate from {TARGET_FROM} up "
          f"({'met' if not missed else 'MISSED at ' + ', '.join(map(str, missed))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
