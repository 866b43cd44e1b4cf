"""``pos-sim record``, ``pos-sim decode`` and ``pos-sim replay``: captures on the command line.

* ``record PORT -o FILE``: a pass-through tap.  It opens PORT, creates a pty, prints
  ``PORT /dev/pts/N`` first, relays bytes both ways between the pty and PORT and records them
  until SIGINT or SIGTERM (the capture is then complete, with its end line).
* ``decode FILE [--json] [--raw]``: every frame with its time and direction, every dropped byte
  range with its reason, like a protocol analyser; streams, so a capture of any size decodes in
  constant memory.
* ``replay FILE... [--expect DIR] [--junit OUT.xml] [--update]``: diagnoses each capture through
  ``replay://`` and compares the outcome with ``DIR/<name>.json``.

Exit status: 0 fine; 1 bad command line or an unreadable capture; 2 the port could not be
opened (record); 4 a replay differed from its expectation or from its recording.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import os
import select
import signal
import sys
import time
import tty
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from drivers.capture import (
    HOST_TO_TERMINAL,
    TERMINAL_TO_HOST,
    CapturedFrame,
    CaptureError,
    CaptureReader,
    CaptureTap,
    CaptureWriter,
    DroppedBytes,
    Note,
    analyse,
    read_capture,
)
from drivers.errors import DriverError
from drivers.masking import mask_bytes, mask_fields, mask_wire_frame
from drivers.transport import DEFAULT_BAUD, open_port
from pos_sim import exitcodes
from pos_sim.errors import UsageError
from pos_sim.ports import add_baud_option, register_url_schemes
from protocols.pos import ProtocolError
from protocols.pos.messages import describe_frame, flag_names

EXIT_DIFFERENT = exitcodes.DIFFERS


def add_parser(sub: Any) -> None:
    """Add ``record``, ``decode`` and ``replay`` to the command line."""
    p = sub.add_parser(
        "record", help="relay a port through a new pty and record every byte (a capture tap)",
        description="Open PORT, create a pty and print `PORT /dev/pts/N` as the first line; every byte a "
                    "program sends to that pty goes to PORT and back, and is recorded to FILE "
                    "(docs/capture-format.md) until SIGINT or SIGTERM.")
    p.add_argument("port", metavar="PORT", help="device path or URL (emu://SCENARIO for the emulator)")
    p.add_argument("-o", "--output", metavar="FILE", required=True, help="the capture (FILE.gz compressed)")
    p.add_argument("--pcapng", metavar="FILE.pcapng",
                   help="also write a pcapng file as it records, for Wireshark (docs/wireshark.md)")
    add_baud_option(p, help="the line rate to open PORT at, in baud (default 115200; an emu:// URL's ?baud=N "
                            "wins); it goes into the capture's header, and replay and decode time the capture by it")
    p.set_defaults(func=run_record)

    p = sub.add_parser(
        "decode", help="decode a capture like a protocol analyser",
        description="Print every frame of a capture with its time and direction (> host to terminal, "
                    "< terminal to host), and every dropped byte range with its reason.")
    p.add_argument("capture", metavar="FILE")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--raw", action="store_true", help="add the raw bytes as hex")
    p.set_defaults(func=run_decode)

    p = sub.add_parser(
        "replay", help="diagnose captures through replay:// and compare with expected results",
        description="Replay each capture as a terminal (replay://FILE), run the diagnosis it recorded and "
                    "compare the outcome with DIR/<name>.json. Exit status 4 when any differs.")
    p.add_argument("captures", metavar="FILE", nargs="+")
    p.add_argument("--expect", metavar="DIR", help="directory of expected results, <capture name>.json")
    p.add_argument("--junit", metavar="OUT.xml", help="also write JUnit XML, one testcase per capture")
    p.add_argument("--update", action="store_true", help="rewrite the expected results with what came out")
    p.add_argument("--timeout", type=float, default=30.0, metavar="S",
                   help="give up on a replay after S seconds (default 30)")
    p.set_defaults(func=run_replay)


def capture_name(path: str | Path) -> str:
    """``healthy`` for ``fixtures/captures/healthy.cap.gz``."""
    name = Path(path).name
    for suffix in (".gz", ".cap", ".txt"):
        name = name.removesuffix(suffix)
    return name


# -- record --------------------------------------------------------------------------------


def run_record(args: argparse.Namespace) -> int:
    """Carry out ``pos-sim record``."""
    register_url_schemes()
    try:
        ser = open_port(args.port, baudrate=args.baud or DEFAULT_BAUD, read_timeout=0)
    except DriverError as exc:
        print(f"pos-sim record: {exc}", file=sys.stderr)
        return exc.exit_code
    try:
        # the rate the port runs at: an emu://...?baud= URL's own, else the one asked for
        writer: CaptureWriter
        if getattr(args, "pcapng", None):
            from drivers.pcapng import PcapngCaptureWriter

            writer = PcapngCaptureWriter(args.output, args.pcapng, port=args.port, baud=int(ser.baudrate))
        else:
            writer = CaptureWriter(args.output, port=args.port, baud=int(ser.baudrate))
    except CaptureError as exc:
        ser.close()
        print(f"pos-sim record: {exc}", file=sys.stderr)
        return exc.exit_code
    tap = CaptureTap(ser, writer)
    master, slave = os.openpty()
    tty.setraw(slave)   # no echo, no line discipline: bytes pass as they are
    os.set_blocking(master, False)
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    stop: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.append(signum)
        with contextlib.suppress(OSError):
            os.write(wake_w, b"x")

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    print(f"PORT {os.ttyname(slave)}", flush=True)
    lost = 0
    try:
        lost = _relay(tap, master, wake_r, stop)
    except DriverError as exc:
        print(f"pos-sim record: {exc}", file=sys.stderr)
        return exc.exit_code
    except (OSError, ValueError) as exc:   # pyserial's SerialException is an OSError
        print(f"pos-sim record: {args.port}: device disconnected ({exc})", file=sys.stderr)
        return exitcodes.COMMUNICATION
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        with contextlib.suppress(OSError, ValueError):
            tap.close()
        writer.close()
        for fd in (master, slave, wake_r, wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
    pcapng_problem = getattr(writer, "pcapng_problem", "")
    if pcapng_problem:
        print(f"pos-sim record: {pcapng_problem}", file=sys.stderr)
    sent = writer.bytes_recorded
    note = f", {lost} bytes from the terminal had no reader" if lost else ""
    print(f"recorded {sent[HOST_TO_TERMINAL]} bytes to the terminal and {sent[TERMINAL_TO_HOST]} from it "
          f"to {args.output}{note}", file=sys.stderr)
    return 0


def _relay(tap: CaptureTap, master: int, wake: int, stop: list[int]) -> int:
    """Move bytes between the pty and the port until a signal; return bytes nobody read."""
    port_fd: int | None
    try:
        port_fd = int(tap.fileno())
    except (AttributeError, OSError, ValueError):
        port_fd = None
    lost = 0
    while not stop:
        fds = [master, wake] + ([port_fd] if port_fd is not None else [])
        ready, _, _ = select.select(fds, [], [], 0.05 if port_fd is not None else 0.005)
        if master in ready:
            try:
                data = os.read(master, 4096)
            except (BlockingIOError, InterruptedError):
                data = b""
            except OSError:   # EIO: no program has the pty open; wait for one
                data = b""
                time.sleep(0.01)
            if data:
                tap.write(data)
        waiting = tap.in_waiting
        if waiting:
            data = tap.read(waiting)
            view = memoryview(data)
            while view:
                try:
                    n = os.write(master, view)
                except (BlockingIOError, OSError):
                    lost += len(view)   # nobody reads the pty: the capture still has the bytes
                    break
                view = view[n:]
    return lost


# -- decode --------------------------------------------------------------------------------


@dataclass
class DecodeTotals:
    """What ``decode`` counted, per direction."""

    frames: dict[str, int] = field(default_factory=lambda: {HOST_TO_TERMINAL: 0, TERMINAL_TO_HOST: 0})
    dropped: dict[str, int] = field(default_factory=lambda: {HOST_TO_TERMINAL: 0, TERMINAL_TO_HOST: 0})
    malformed: int = 0


def decoded_lines(reader: CaptureReader, *, as_json: bool, raw: bool, totals: DecodeTotals) -> Iterator[str]:
    """The lines ``pos-sim decode`` prints, one per frame, dropped range or note (streaming)."""
    for item in analyse(reader):
        if isinstance(item, CapturedFrame):
            totals.frames[item.direction] += 1
            yield _frame_line(item, as_json=as_json, raw=raw, totals=totals)
        elif isinstance(item, DroppedBytes):
            totals.dropped[item.direction] += len(item.data)
            if as_json:
                obj: dict[str, Any] = {"t": round(item.time, 6), "dir": item.direction, "kind": "dropped",
                                       "offset": item.offset, "bytes": len(item.data), "reasons": list(item.reasons)}
                if raw:
                    obj["raw"] = mask_bytes(item.data).hex()
                yield json.dumps(obj)
            else:
                tail = f"  {mask_bytes(item.data).hex()}" if raw else ""
                yield (f"{item.time:12.6f} {item.direction} DROPPED {len(item.data)} bytes at offset {item.offset}: "
                       f"{', '.join(item.reasons)}{tail}")
        elif isinstance(item, Note):
            value = mask_fields(item.value)
            if as_json:
                yield json.dumps({"t": round(item.time, 6), "kind": "note", "key": item.key, "value": value},
                                 ensure_ascii=False)
            else:
                yield f"{item.time:12.6f} @ {item.key} {json.dumps(value, ensure_ascii=False)}"


def _frame_line(item: CapturedFrame, *, as_json: bool, raw: bool, totals: DecodeTotals) -> str:
    frame = item.frame
    try:
        desc = describe_frame(frame)
        # a capture written by another tool (or by hand) may hold card data: shown as the driver would
        desc["fields"] = mask_fields(desc["fields"])
        error = None
    except ProtocolError as exc:
        totals.malformed += 1
        from protocols.pos import MessageType

        desc = {"version": frame.version, "flags": flag_names(frame.flags), "seq": frame.seq,
                "type": MessageType.describe(frame.type), "fields": None}
        error = str(exc)
    if as_json:
        obj: dict[str, Any] = {"t": round(item.time, 6), "dir": item.direction, "kind": "frame",
                               "offset": item.offset, **desc}
        if error:
            obj["error"] = error
        if raw:
            obj["raw"] = mask_wire_frame(frame, item.raw).hex()
        return json.dumps(obj, ensure_ascii=False)
    flags = "|".join(desc["flags"]) or "-"
    body = f"malformed payload: {error}" if error else json.dumps(desc["fields"], ensure_ascii=False)
    tail = f"  {mask_wire_frame(frame, item.raw).hex()}" if raw else ""
    return f"{item.time:12.6f} {item.direction} {desc['type']:<18} seq={frame.seq:<5} {flags:<18} {body}{tail}"


def run_decode(args: argparse.Namespace) -> int:
    """Carry out ``pos-sim decode``."""
    try:
        reader = read_capture(args.capture)
    except CaptureError as exc:
        print(f"pos-sim decode: {exc}", file=sys.stderr)
        return exitcodes.USAGE
    h = reader.header
    totals = DecodeTotals()
    out = sys.stdout
    if args.json:
        print(json.dumps({"kind": "header", "format_version": h.format_version, "tool": h.tool, "port": h.port,
                          "baud": h.baud, "started": h.started, **h.extra}, ensure_ascii=False), file=out)
    else:
        print(f"capture {args.capture}: {h.tool}, port {h.port}, {h.baud} baud, started {h.started}", file=out)
    try:
        with reader:
            for line in decoded_lines(reader, as_json=args.json, raw=args.raw, totals=totals):
                out.write(line + "\n")
    except CaptureError as exc:
        print(f"pos-sim decode: {exc}", file=sys.stderr)
        return exitcodes.USAGE
    summary = {"kind": "summary", "frames": totals.frames, "dropped_bytes": totals.dropped,
               "malformed": totals.malformed, "complete": reader.complete, "torn": reader.torn,
               "problem": reader.problem, "timestamps_backwards": reader.backwards}
    if args.json:
        print(json.dumps(summary), file=out)
    else:
        print(f"{totals.frames['>']} frames >, {totals.frames['<']} frames <; dropped {totals.dropped['>']} "
              f"bytes >, {totals.dropped['<']} bytes <; {totals.malformed} malformed payloads", file=out)
    if reader.problem:
        print(f"pos-sim decode: {args.capture}: {reader.problem}", file=sys.stderr)
    if reader.time_warning:
        print(f"pos-sim decode: {args.capture}: {reader.time_warning}", file=sys.stderr)
    return 0


# -- replay --------------------------------------------------------------------------------


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """What an expectation pins (the shape tests/pos_sim/test_diag.py compares)."""
    return {
        "verdict": report["verdict"],
        "exit_status": report["exit_status"],
        "lifecycle": report["device"]["lifecycle"] if report["device"] else None,
        "results": {f["component"]: [f["verdict"], f["code"], f["category"]] for f in report["results"]},
        "communication": sorted(f["code"] for f in report["communication"]),
    }


@dataclass
class ReplayOutcome:
    """One capture replayed: what came out, and what went wrong on the way."""

    name: str
    path: str
    got: dict[str, Any] | None = None
    error: str = ""
    #: the capture itself could not be read (exit status 1, not 4)
    unreadable: bool = False
    replay_problem: str = ""
    #: the capture's timestamps go backwards (a warning: the replay still counts)
    warning: str = ""
    seconds: float = 0.0
    frames: int = 0
    dropped: int = 0


def replay_capture(path: str | Path, *, timeout: float = 30.0) -> ReplayOutcome:
    """Decode ``path``, then diagnose it through ``replay://`` with the plan it recorded."""
    from drivers.terminal import Terminal
    from pos_sim.diagnostics.catalogue import load_catalogue
    from pos_sim.diagnostics.engine import DiagnosticsEngine

    register_url_schemes()
    started = time.monotonic()
    outcome = ReplayOutcome(capture_name(path), str(path))
    try:
        reader = read_capture(path)
        with reader:
            for item in analyse(reader):
                if isinstance(item, CapturedFrame):
                    outcome.frames += 1
                elif isinstance(item, DroppedBytes):
                    outcome.dropped += len(item.data)
        extra = reader.header.extra
        outcome.warning = reader.time_warning
    except (OSError, CaptureError) as exc:
        outcome.error = str(exc) if isinstance(exc, CaptureError) else f"{path}: {exc.strerror or exc}"
        outcome.unreadable = True
        return outcome
    url = "replay://" + str(Path(path).resolve())
    try:
        term = Terminal.open(url, timeout=timeout)
    except DriverError as exc:
        outcome.error = str(exc)
        outcome.seconds = time.monotonic() - started
        return outcome
    with term:
        term.set_deadline(timeout)
        engine = DiagnosticsEngine(term, lang="en", catalogue=load_catalogue(), port=url)
        report = engine.run(str(extra.get("plan") or "full"), extra.get("tests") or None, interactive=False)
        player = getattr(term.link.port, "player", None)
    if player is not None and player.mismatch is not None:
        outcome.replay_problem = str(player.mismatch)
    outcome.got = summary(report.as_json())
    outcome.seconds = time.monotonic() - started
    return outcome


def _pretty(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def run_replay(args: argparse.Namespace) -> int:
    """Carry out ``pos-sim replay``."""
    if args.update and not args.expect:
        raise UsageError("pos-sim replay: --update needs --expect DIR")
    if not args.timeout > 0:
        raise UsageError("pos-sim replay: --timeout must be more than 0")
    expect = Path(args.expect) if args.expect else None
    if expect is not None and not expect.is_dir():
        if not args.update:
            raise UsageError(f"pos-sim replay: --expect {expect}: no such directory")
        expect.mkdir(parents=True)
    status = 0
    cases: list[tuple[ReplayOutcome, str, str]] = []    # outcome, failure kind, text
    for path in args.captures:
        outcome = replay_capture(path, timeout=args.timeout)
        kind, text = _judge(outcome, expect, update=args.update, out=sys.stdout)
        if kind:
            status |= exitcodes.USAGE if outcome.unreadable else EXIT_DIFFERENT
        cases.append((outcome, kind, text))
    if args.junit:
        _write_junit(Path(args.junit), cases)
    return status


def _judge(o: ReplayOutcome, expect: Path | None, *, update: bool, out: TextIO) -> tuple[str, str]:
    """Print one capture's line (and diff); return ("", "") or (failure kind, text)."""
    head = f"{o.name}: {o.frames} frames, {o.dropped} bytes dropped, {o.seconds:.2f} s"
    if o.warning:
        print(f"pos-sim replay: {o.path}: {o.warning}", file=sys.stderr)
    if o.got is None:
        print(f"{head}: ERROR {o.error}", file=out)
        return "error", o.error
    verdict = f"{o.got['verdict']} (exit {o.got['exit_status']})"
    problem = f"; {o.replay_problem}" if o.replay_problem else ""
    if expect is None:
        print(f"{head}: {verdict}{problem}", file=out)
        return ("failure", o.replay_problem) if o.replay_problem else ("", "")
    path = expect / f"{o.name}.json"
    if update:
        path.write_text(_pretty(o.got))
        print(f"{head}: {verdict}, written to {path}{problem}", file=out)
        return ("failure", o.replay_problem) if o.replay_problem else ("", "")
    if not path.exists():
        text = f"no expected result {path} (run with --update to write it)"
        print(f"{head}: {verdict}; {text}", file=out)
        return "failure", text
    wanted = json.loads(path.read_text())
    if wanted == o.got and not o.replay_problem:
        print(f"{head}: {verdict}, as expected", file=out)
        return "", ""
    diff = "".join(difflib.unified_diff(_pretty(wanted).splitlines(keepends=True),
                                        _pretty(o.got).splitlines(keepends=True),
                                        fromfile=str(path), tofile=f"replay of {o.path}"))
    text = (o.replay_problem + "\n" if o.replay_problem else "") + diff
    print(f"{head}: {verdict}, DIFFERS from {path}{problem}", file=out)
    if diff:
        out.write(diff)
    return "failure", text


def _write_junit(path: Path, cases: list[tuple[ReplayOutcome, str, str]]) -> None:
    suite = ET.Element("testsuite", name="pos-sim replay", tests=str(len(cases)),
                       failures=str(sum(1 for _, k, _ in cases if k == "failure")),
                       errors=str(sum(1 for _, k, _ in cases if k == "error")),
                       time=f"{sum(o.seconds for o, _, _ in cases):.3f}")
    for o, kind, text in cases:
        case = ET.SubElement(suite, "testcase", classname="captures", name=o.name, file=o.path,
                             time=f"{o.seconds:.3f}")
        if kind:
            first = text.strip().splitlines()[0] if text.strip() else kind
            ET.SubElement(case, kind, message=first).text = text
        out = ET.SubElement(case, "system-out")
        out.text = _pretty(o.got) if o.got is not None else ""
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m pos_sim.cli.capture record|decode|replay ...`` (the same as ``pos-sim ...``)."""
    from pos_sim.cli import _Parser

    parser = _Parser(prog="pos-sim", description="captures: record, decode, replay")
    add_parser(parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser, required=True))
    try:
        args = parser.parse_args(argv)
        return int(args.func(args))
    except UsageError as exc:
        print(str(exc), file=sys.stderr)
        return exitcodes.USAGE
    except BrokenPipeError:
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
