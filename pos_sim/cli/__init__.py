"""The ``pos-sim`` command line: the parser and :func:`main`; each command is a module beside this one.

Exit statuses come from one table, :mod:`pos_sim.exitcodes` (docs/cli.md): the diagnostic
bitmask of docs/diagnostics.md (smartctl's model), one code for a registry failure and one for
an interrupt.  Every failure is one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from pos_sim import __version__, exitcodes
from pos_sim.errors import UsageError

EXIT_USAGE = exitcodes.USAGE


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad command line is exit status 1 (not 2) with one line."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = _Parser(
        prog="pos-sim",
        description="A workbench for POS payment terminals: talk to real terminals over serial "
                    "or USB, run the emulated terminal, diagnose and manage devices.",
        epilog=exitcodes.summary(),
    )
    parser.add_argument("--version", action="version", version=f"pos-sim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    from pos_sim.cli import (
        capture,
        conformance,
        device,
        diag,
        emulate,
        info,
        pcap,
        ports,
        protocol,
        registry,
        status,
        tui,
        wireshark,
    )

    protocol.add_parser(sub)
    ports.add_parser(sub)
    info.add_parser(sub)
    status.add_parser(sub)
    diag.add_parser(sub)
    emulate.add_parser(sub)
    capture.add_parser(sub)
    conformance.add_parser(sub)
    pcap.add_parser(sub)
    wireshark.add_parser(sub)
    tui.add_parser(sub)
    registry.add_parser(sub)
    registry.add_ticket_and_audit_parsers(sub)
    device.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return EXIT_USAGE
        return int(args.func(args))
    except UsageError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("pos-sim: interrupted", file=sys.stderr)
        return exitcodes.INTERRUPTED
    except BrokenPipeError:
        # output piped into `head` and closed: not an error worth a traceback
        sys.stderr.close()
        return exitcodes.OK

