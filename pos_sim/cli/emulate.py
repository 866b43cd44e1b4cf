"""``pos-sim emulate``: run an emulated terminal on a pty or a TCP port until told to stop.

The first line on stdout is ``PORT <where>`` (``PORT /dev/pts/N`` or
``PORT socket://127.0.0.1:N``), flushed at once so a script can read it and connect; a short
description follows.  SIGINT or SIGTERM stops it cleanly: the thread is joined, the state
saved, exit status 0.  A scenario or state file that cannot be used is exit status 1 (bad
command line), a port that cannot be opened 2, each as one line on stderr.

``add_parser`` plugs the command into the main ``pos-sim`` parser; :func:`main` runs it on
its own (``main(["--scenario", "dropped"])``).  The serving code is :mod:`pos_sim.emulator`.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import Any, Protocol

from pos_sim import exitcodes
from pos_sim.emulator.errors import EmulatorError, LineError
from pos_sim.emulator.escpos import FAULTS as ESCPOS_FAULTS
from pos_sim.emulator.scenario import load_scenario, scenario_names
from pos_sim.emulator.server import EmulatorServer

EXIT_USAGE = exitcodes.USAGE
EXIT_PORT = exitcodes.PORT
EXIT_BROKEN = exitcodes.COMMUNICATION


def exit_status(exc: EmulatorError) -> int:
    """The exit status for an emulator error: a line that cannot be opened is a port failure,
    anything else (scenario, state file) a bad command line."""
    return EXIT_PORT if isinstance(exc, LineError) else EXIT_USAGE


def _transport(text: str) -> tuple[str, int]:
    """``pty``, ``tcp`` or ``tcp:PORT``."""
    kind, _, port = text.partition(":")
    if kind == "pty" and not port:
        return "pty", 0
    if kind == "tcp":
        if not port:
            return "tcp", 0
        if port.isdigit() and 0 < int(port) < 65536:
            return "tcp", int(port)
    raise argparse.ArgumentTypeError(f"{text!r} is not pty, tcp or tcp:PORT (PORT 1-65535)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number (or inf)")
    return value


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``emulate`` command to a ``pos-sim`` subparsers object."""
    names = ", ".join(scenario_names())
    p = subparsers.add_parser(
        "emulate",
        help="run an emulated terminal on a pseudo-terminal or TCP port",
        description="Run an emulated POS terminal that speaks the pos-sim wire protocol byte for byte, "
                    "throttled to the baud rate, with the faults of a scenario. The first line printed "
                    "is 'PORT <port>': give that port to any pos-sim command (or to pyserial). "
                    "Stop with Ctrl-C or SIGTERM; the terminal's state is saved.",
        epilog=f"Scenarios: {names}. docs/emulator.md describes each one, the state file and timing. "
               f"Exit status: {exitcodes.OK} stopped by a signal, {EXIT_USAGE} bad command line or scenario or "
               f"state file, {EXIT_PORT} the port could not be opened.",
    )
    p.add_argument("--device", choices=("terminal", "escpos"), default="terminal",
                   help="terminal: a POS terminal speaking the pos-sim protocol (default); escpos: an ESC/POS "
                        "receipt printer answering DLE EOT and GS r (docs/escpos.md)")
    p.add_argument("--scenario", default="healthy", metavar="NAME|PATH",
                   help=f"built-in scenario ({names}) or path of a scenario .toml file (default: healthy)")
    p.add_argument("--fault", choices=ESCPOS_FAULTS, action="append", metavar="FAULT",
                   help=f"with --device escpos: the printer's fault ({', '.join(ESCPOS_FAULTS)}); may be given twice")
    p.add_argument("--receipt", metavar="FILE",
                   help="with --device escpos: write every byte the printer prints to FILE (started empty)")
    p.add_argument("--transport", default=("pty", 0), type=_transport, metavar="pty|tcp[:PORT]",
                   help="pty: a new pseudo-terminal, printed as PORT /dev/pts/N (default); "
                        "tcp: 127.0.0.1 on PORT or any free port, printed as PORT socket://127.0.0.1:N "
                        "(one client at a time)")
    p.add_argument("--baud", type=_positive_int, default=115200, metavar="N",
                   help="line speed in bits per second; bytes move at N/10 a second both ways (default: 115200)")
    p.add_argument("--speed", type=_speed, default=1.0, metavar="X",
                   help="divide every component duration (printing, network waits, the simulated "
                        "person) by X; 'inf' makes them zero. Protocol timers and line time are not "
                        "scaled (default: 1)")
    p.add_argument("--state", metavar="FILE",
                   help="keep the terminal's state (lifecycle, counter, event and transaction logs, "
                        "battery) in FILE across restarts (default: in memory only)")
    p.add_argument("--break", dest="breaks", action="append", default=[], metavar="NAME",
                   type=_break_name,
                   help="serve firmware that gets one conformance clause wrong, for testing "
                        "`pos-sim conformance` (repeatable; the names are in docs/conformance.md)")
    p.add_argument("--write-keys", metavar="FILE",
                   help="add this emulated terminal's lifecycle key to the key file FILE (created with "
                        "mode 600; other terminals' keys are kept), as a manufacturer would hand it over, "
                        "so `pos-sim device` can sign for it")
    p.set_defaults(func=run)


def _break_name(text: str) -> str:
    from pos_sim.emulator.breaks import BREAKS

    if text not in BREAKS:
        raise argparse.ArgumentTypeError(f"no break {text!r} (known: {', '.join(BREAKS)})")
    return text


@contextlib.contextmanager
def stop_on_signal() -> Iterator[threading.Event]:
    """An event that SIGINT and SIGTERM set while the block runs; the handlers that were there
    before come back when it ends."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _Served(Protocol):
    @property
    def running(self) -> bool: ...

    def stop(self) -> None: ...


def serve_until(stop: threading.Event, server: _Served) -> None:
    """Wait for ``stop``, waking now and then to notice a server thread that died on its own;
    the server is stopped either way."""
    try:
        while not stop.wait(0.5) and server.running:
            pass
    finally:
        server.stop()


def run(args: argparse.Namespace) -> int:
    """Serve the emulator until SIGINT or SIGTERM; return the exit status."""
    if args.device == "escpos":
        from pos_sim.cli.emulate_escpos import run_escpos

        return run_escpos(args)
    if args.fault or args.receipt:
        print("pos-sim emulate: --fault and --receipt are for --device escpos; a terminal's faults come "
              "from its --scenario", file=sys.stderr)
        return EXIT_USAGE
    try:
        scenario = load_scenario(args.scenario)
        server = EmulatorServer(scenario, baud=args.baud, speed=args.speed, state_path=args.state,
                                breaks=getattr(args, "breaks", []))
    except EmulatorError as exc:
        print(f"pos-sim emulate: {exc}", file=sys.stderr)
        return exit_status(exc)
    if args.write_keys:
        written = _write_key(args.write_keys, scenario.device.serial, scenario.lifecycle.key)
        if written:
            print(f"pos-sim emulate: {written}", file=sys.stderr)
            return EXIT_USAGE
    # the handlers go in before PORT is printed: a script may signal as soon as it reads it
    with stop_on_signal() as stop:
        kind, tcp_port = args.transport
        try:
            port = server.serve_pty() if kind == "pty" else server.serve_tcp(tcp_port)
        except (EmulatorError, OSError) as exc:
            server.stop()
            if isinstance(exc, EmulatorError):
                print(f"pos-sim emulate: {exc}", file=sys.stderr)
                return exit_status(exc)
            print(f"pos-sim emulate: cannot open a {kind}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_PORT
        print(f"PORT {port}", flush=True)
        device = scenario.device
        summary = scenario.description.splitlines()[0] if scenario.description else scenario.name
        print(f"emulating {device.manufacturer} {device.model} serial {device.serial}, scenario {summary}")
        speed = "durations zero" if math.isinf(args.speed) else f"durations / {args.speed:g}"
        print(f"line {args.baud} baud 8N1, {speed}, state {args.state or 'in memory only'}")
        print("stop with Ctrl-C or SIGTERM", flush=True)
        serve_until(stop, server)
    if server.error is not None:
        print(f"pos-sim emulate: the emulator stopped: {server.error}", file=sys.stderr)
        return EXIT_BROKEN
    print("stopped", flush=True)
    return 0


def _write_key(path: str, serial: str, key: bytes) -> str:
    """Add ``serial``'s key to the key file at ``path``; return what went wrong ("" if nothing)."""
    from pathlib import Path

    from pos_sim.services.keys import KeyFile, KeyFileError

    try:
        keys = KeyFile.load(path) if Path(path).expanduser().exists() else KeyFile(Path(path).expanduser(), {})
        keys.with_key(serial, key).save()
    except KeyFileError as exc:
        return str(exc)
    except OSError as exc:
        return f"cannot write the key file {path}: {exc.strerror or exc}"
    return ""


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``emulate`` on its own: ``argv`` holds its options (default: the command line)."""
    from pos_sim.cli import _Parser
    from pos_sim.errors import UsageError

    parser = _Parser(prog="pos-sim")
    add_parser(parser.add_subparsers(dest="command", parser_class=_Parser))
    try:
        args = parser.parse_args(["emulate", *(sys.argv[1:] if argv is None else argv)])
    except UsageError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    return run(args)
