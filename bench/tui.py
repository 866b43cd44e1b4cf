"""TUI benchmark: key-to-screen latency and CPU use under a flood of 2,000 frames/s.

The app runs headless (Textual's test driver).  A thread pushes synthetic frames into the app's
``on_frame`` path (the ``FrameBuffer`` the link's thread feeds) at ``--rate`` frames a second, with
the frame log shown and not paused.  First, for ``--cpu-seconds``, nothing else happens: CPU is the
process's CPU time over wall time (the synthetic producer included).  Then ``g`` (switch language)
is pressed again and again, delivered as the terminal driver delivers keys; each sample is the
time from the key press until the composited screen (the compositor's strips, checked every 5 ms)
shows the other language's label.

    python bench/tui.py [--rate N] [--samples N] [--cpu-seconds S] [--size 120x40]

Target: median latency 100 ms or less under the flood, and no stall (p95 and max printed).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from textual import events  # noqa: E402

from pos_sim.tui import PosSimApp  # noqa: E402
from protocols.pos import Frame, MessageType  # noqa: E402
from protocols.pos.messages import encode_payload  # noqa: E402

TARGET_MS = 100.0
#: how often the screen is checked while waiting (each check composes the screen: ~3 ms)
POLL = 0.005
#: what the flood is made of: progress, events and their ACKs, as in a busy self-test
SAMPLES: list[tuple[str, Frame]] = [
    ("in", Frame(1, 0, 1, int(MessageType.SELFTEST_PROGRESS), encode_payload(
        int(MessageType.SELFTEST_PROGRESS), {"component": "keypad", "percent": 40, "step": 2,
                                              "prompt": "press_all_keys"}))),
    ("in", Frame(1, 0, 2, int(MessageType.EVENT), encode_payload(
        int(MessageType.EVENT), {"event": "key_pressed", "component": "keypad", "uptime_ms": 1234,
                                 "value": 0x31}))),
    ("out", Frame(1, 0, 2, int(MessageType.ACK), encode_payload(int(MessageType.ACK), {}))),
    ("out", Frame(1, 0, 3, int(MessageType.STATUS_REQUEST), encode_payload(
        int(MessageType.STATUS_REQUEST), {"component": "power"}))),
]


def flood(app: PosSimApp, rate: int, stop: threading.Event, sent: list[int]) -> None:
    """Push ``rate`` frames a second into the app, in 10 ms slices, until ``stop``."""
    per_slice = max(1, rate // 100)
    n = 0
    next_at = time.perf_counter()
    while not stop.is_set():
        for _ in range(per_slice):
            direction, frame = SAMPLES[n % len(SAMPLES)]
            app.frames.push(direction, frame)
            n += 1
        next_at += 0.01
        delay = next_at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    sent.append(n)


def screen_text(app: PosSimApp) -> str:
    """What the screen shows now, as text (the compositor's strips)."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(seg.text for seg in strip) for strip in strips)


async def measure(rate: int, samples: int, size: tuple[int, int],
                  cpu_seconds: float) -> tuple[list[float], float, float, int]:
    """Latencies (ms), CPU fraction, wall seconds and frames pushed."""
    app = PosSimApp("bench://none", lang="en", connect=False)
    latencies: list[float] = []
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.2)
        driver = app._driver
        assert driver is not None
        stop = threading.Event()
        sent: list[int] = []
        start = time.perf_counter()
        producer = threading.Thread(target=flood, args=(app, rate, stop, sent), name="bench-flood")
        producer.start()
        try:
            await pilot.pause(0.5)
            wall0, cpu0 = time.perf_counter(), time.process_time()
            await pilot.pause(cpu_seconds)
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            for i in range(samples):
                want = "电源" if app.lang == "en" else "Power"
                t0 = time.perf_counter()
                # the key arrives exactly as a terminal driver delivers one (Pilot.press adds its
                # own waits for idleness, which are the harness's time, not the app's)
                driver.send_message(events.Key("g", "g"))
                while want not in screen_text(app):
                    await asyncio.sleep(POLL)
                latencies.append((time.perf_counter() - t0) * 1000)
                await pilot.pause(0.05 + 0.01 * (i % 5))
        finally:
            stop.set()
            producer.join()
        total_wall = time.perf_counter() - start
        await pilot.press("q")
    return latencies, cpu / wall, total_wall, sent[0] if sent else 0


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=int, default=2000, help="frames a second (default 2000)")
    ap.add_argument("--samples", type=int, default=60, help="key presses to time (default 60)")
    ap.add_argument("--cpu-seconds", type=float, default=5.0,
                    help="flood-only period for the CPU figure (default 5)")
    ap.add_argument("--size", default="120x40", help="terminal size COLSxROWS (default 120x40)")
    args = ap.parse_args(argv)
    cols, rows = (int(v) for v in args.size.split("x"))
    latencies, cpu, wall, sent = asyncio.run(measure(args.rate, args.samples, (cols, rows), args.cpu_seconds))
    latencies.sort()
    median = statistics.median(latencies)
    p95 = latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]
    print(f"flood: {sent} frames in {wall:.1f} s = {sent / wall:.0f} frames/s into the frame log")
    print(f"key-to-screen latency over {len(latencies)} presses: median {median:.1f} ms, p95 {p95:.1f} ms, "
          f"max {latencies[-1]:.1f} ms")
    print(f"CPU under the flood alone: {100 * cpu:.0f} % of one core (process time / wall time, producer included)")
    print(f"target: median ≤ {TARGET_MS:.0f} ms ({'met' if median <= TARGET_MS else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
