#!/usr/bin/env python3
"""Capture decode benchmark: ``pos-sim decode``'s analysis of a large capture, in constant memory.

Run from the repository root::

    python bench/replay.py                 # a capture of 1,000,000 frames
    python bench/replay.py --frames 50000  # smoke test

What it does:

1. Writes a capture of at least ``--frames`` intact frames to a temporary file, streaming: a
   child process asks bench/decode.py's generator for blocks of about 1 MB of mixed frames
   (1 % damaged: bit flips, garbage runs), writes them with :class:`drivers.capture.CaptureWriter`
   in 4 KiB chunks, alternating direction by block, and forgets each block.  The generation
   runs in a child so that its memory does not count below.
2. Times, in this process, our streaming analysis (:func:`drivers.capture.analyse`: read the
   text, both directions' deframers, dropped-range attribution) plus ``decode_message`` on
   every frame, against a reference on the same file: a bare line parser, bench/decode.py's
   hand-written ``struct`` + ``crc_hqx`` deframer and payload decoders, nothing else.
3. Prints frames/s for both, the ratio (ours / reference) and the peak resident memory of this
   process (VmHWM, else ``ru_maxrss``; target under 100 MB), and checks both found the same frames.

Exit status 0 when the frame counts agree and the peak is under the target, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
for p in (REPO_ROOT, REPO_ROOT / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from drivers.capture import CapturedFrame, CaptureWriter, analyse, read_capture  # noqa: E402
from protocols.pos import ProtocolError, decode_message  # noqa: E402

TARGET_PEAK_MB = 100.0
BLOCK_BYTES = 1_000_000
CHUNK = 4096


def generate(path: Path, frames: int, seed: int) -> int:
    """Stream a capture of at least ``frames`` intact frames to ``path``; return the count."""
    from bench.decode import generate_stream

    intact = 0
    t = 0.0
    block = 0
    with CaptureWriter(path, port="bench", baud=115200) as w:
        while intact < frames:
            stream = generate_stream(BLOCK_BYTES, seed + block)
            intact += sum(1 for o in stream.originals if o.intact)
            direction = "<" if block % 4 else ">"
            data = stream.data
            for i in range(0, len(data), CHUNK):
                w.record(direction, data[i: i + CHUNK], at=t)
                t += 0.001        # well under the inter-byte timeout: no partial frame is given up
            block += 1
    return intact


def ours(path: Path) -> tuple[int, int]:
    """Our analysis and payload decoding; returns (frames, malformed payloads)."""
    frames = malformed = 0
    with read_capture(path) as reader:
        for item in analyse(reader):
            if type(item) is CapturedFrame:
                frames += 1
                try:
                    decode_message(item.frame)
                except ProtocolError:
                    malformed += 1
    return frames, malformed


def reference(path: Path) -> int:
    """The hand-written reference on the same file: split, unhex, deframe, decode."""
    from bench.decode import _REF_ERRORS, REF_DECODERS, RefDeframer

    deframers = {">": RefDeframer(), "<": RefDeframer()}
    decoders = REF_DECODERS
    frames = 0
    with open(path, encoding="ascii") as f:
        for line in f:
            head = line[0]
            if head != ">" and head != "<":  # noqa: PLR1714 (a tuple test costs more per line)
                continue
            data = bytes.fromhex(line[line.rindex(" ") + 1:])
            for _v, _flags, _seq, msg_type, payload in deframers[head].feed(data):
                frames += 1
                try:  # noqa: SIM105 (contextlib.suppress would cost a context manager per frame)
                    decoders[msg_type](payload)
                except _REF_ERRORS:
                    pass
    return frames


def peak_mb() -> float:
    """Peak resident memory of this process so far, MB.

    VmHWM from /proc where there is one: ``ru_maxrss`` survives exec on Linux, so a bench started
    from a big process (pytest late in a run) would report its parent's peak.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass  # not Linux: fall back to getrusage
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    """Generate, time, print."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1_000_000, help="at least this many intact frames")
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--keep", metavar="FILE", help="write the capture here and keep it")
    ap.add_argument("--generate", metavar="FILE", help=argparse.SUPPRESS)   # the child's job
    args = ap.parse_args()
    if args.generate:
        print(generate(Path(args.generate), args.frames, args.seed))
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.keep) if args.keep else Path(tmp) / "bench.cap"
        t0 = time.perf_counter()
        child = subprocess.run([sys.executable, __file__, "--generate", str(path), "--frames", str(args.frames),
                                "--seed", str(args.seed)], capture_output=True, text=True, check=True)
        intact = int(child.stdout)
        size = os.path.getsize(path)
        print(f"capture: {size / 1e6:.1f} MB, {intact:,} intact frames, written in "
              f"{time.perf_counter() - t0:.1f} s")
        base = peak_mb()
        t0 = time.perf_counter()
        n_ours, malformed = ours(path)
        t_ours = time.perf_counter() - t0
        peak_ours = peak_mb()
        t0 = time.perf_counter()
        n_ref = reference(path)
        t_ref = time.perf_counter() - t0
    peak = peak_mb()
    ours_fps, ref_fps = n_ours / t_ours, n_ref / t_ref
    print(f"{'run':<28}{'frames':>12}{'seconds':>10}{'frames/s':>12}{'MB/s (file)':>13}")
    print(f"{'ours (analyse + decode)':<28}{n_ours:>12,}{t_ours:>10.2f}{ours_fps:>12,.0f}{size / 1e6 / t_ours:>13.1f}")
    print(f"{'reference (struct+crc_hqx)':<28}{n_ref:>12,}{t_ref:>10.2f}{ref_fps:>12,.0f}{size / 1e6 / t_ref:>13.1f}")
    print(f"frames_decoded={n_ours} reference_frames={n_ref} intact_generated={intact} malformed={malformed}")
    print(f"ratio_vs_reference={ours_fps / ref_fps:.2f}")
    print(f"peak_rss_mb={peak_ours:.1f} (before decoding {base:.1f}, after the reference {peak:.1f}; "
          f"target < {TARGET_PEAK_MB:.0f})")
    ok = n_ours == n_ref == intact and peak_ours < TARGET_PEAK_MB
    if not ok:
        print("CHECK FAILED: frame counts differ or the peak is over the target", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
