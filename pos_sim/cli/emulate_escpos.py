"""``pos-sim emulate --device escpos``: an emulated receipt printer until told to stop.

Like the terminal emulator, the first line on stdout is ``PORT <where>`` (``PORT /dev/pts/N``
or ``PORT socket://127.0.0.1:N``), flushed at once; SIGINT or SIGTERM stops it (exit 0).
"""

from __future__ import annotations

import argparse
import sys

from pos_sim import exitcodes
from pos_sim.cli.emulate import serve_until, stop_on_signal
from pos_sim.emulator.escpos import EscPosPrinter, EscPosServer


def run_escpos(args: argparse.Namespace) -> int:
    """Serve the printer named by ``args`` until a signal; return the exit status."""
    misplaced = [opt for opt, given in (("--scenario", args.scenario != "healthy"), ("--state", args.state),
                                        ("--write-keys", args.write_keys)) if given]
    if misplaced:
        print(f"pos-sim emulate: {', '.join(misplaced)} are for --device terminal; a printer takes --fault "
              "and --receipt", file=sys.stderr)
        return exitcodes.USAGE
    faults = set(args.fault or ())
    try:
        server = EscPosServer(EscPosPrinter(faults), receipt=args.receipt)
    except OSError as exc:
        print(f"pos-sim emulate: cannot write the receipt file {args.receipt}: {exc.strerror or exc}",
              file=sys.stderr)
        return exitcodes.USAGE
    with stop_on_signal() as stop:
        kind, tcp_port = args.transport
        try:
            port = server.serve_pty() if kind == "pty" else server.serve_tcp(tcp_port)
        except OSError as exc:
            server.stop()
            print(f"pos-sim emulate: cannot open a {kind}: {exc.strerror or exc}", file=sys.stderr)
            return exitcodes.PORT
        print(f"PORT {port}", flush=True)
        ident = server.printer.identity
        print(f"emulating an ESC/POS receipt printer ({ident.maker} {ident.model}, serial {ident.serial}), "
              f"fault {', '.join(sorted(faults)) or 'none'}")
        print(f"receipt {args.receipt or 'kept in memory only'}")
        print("stop with Ctrl-C or SIGTERM", flush=True)
        serve_until(stop, server)
    if server.error is not None:
        print(f"pos-sim emulate: the printer emulator stopped: {server.error}", file=sys.stderr)
        return exitcodes.COMMUNICATION
    print("stopped", flush=True)
    return 0
