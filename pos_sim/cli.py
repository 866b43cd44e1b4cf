"""The ``pos-sim`` command line.

Exit statuses come from one table, :mod:`pos_sim.exitcodes` (docs/cli.md): the diagnostic
bitmask of docs/diagnostics.md (smartctl's model: 1 bad command line, 2 the port could not be
opened, 4 a protocol or communication failure, 8 a component failed, 16 a warning the merchant
can fix, 32 the terminal is locked, 64 the event log holds errors), 128 the registry failed and
130 interrupted.  Every failure is one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
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


def _cmd_protocol(args: argparse.Namespace) -> int:
    from protocols.pos.spec import catalogue_json

    cat = catalogue_json()
    messages = cat["messages"]
    if args.message:
        wanted = args.message.upper()
        try:
            number = int(args.message, 0)
        except ValueError:
            number = None
        messages = [m for m in messages if m["name"] == wanted or m["type"] == number]
        if not messages:
            names = ", ".join(m["name"] for m in cat["messages"])
            raise UsageError(f"pos-sim protocol: no message {args.message!r}; known: {names}")
    if args.json:
        cat["messages"] = messages
        print(json.dumps(cat, indent=2, ensure_ascii=False))
        return 0
    if not args.message:
        print(f"pos-sim wire protocol, version {cat['protocol_version']} (full specification: docs/protocol.md)")
        print("frame: A5 5A | version u8 | flags u8 | seq u16 | type u8 | length u16 | payload | "
              f"crc16   big-endian, CRC-16/CCITT-FALSE, max payload {cat['max_payload']}")
        print()
    for m in messages:
        print(f"0x{m['type']:02X} {m['name']:<21} {m['direction']:<16} answered by {m['answer']}")
        if args.message:
            print(f"     {m['doc']}")
            _print_fields(m["fields"], "     ")
        else:
            summary = ", ".join(f"{f['name']} {f['type']}" for f in m["fields"]) or "(empty)"
            print(f"     {summary}")
    if not args.message:
        print()
        print("pos-sim protocol NAME shows one message with every field's meaning; --json gives it all as data.")
    return 0


def _print_fields(fields: list[dict[str, object]], indent: str) -> None:
    for f in fields:
        print(f"{indent}{f['name']:<22} {f['type']:<22} {f['doc']}")
        items = f.get("items")
        if isinstance(items, list):
            _print_fields(items, indent + "  ")
        cases = f.get("cases")
        if isinstance(cases, dict):
            for key, sub in cases.items():
                print(f"{indent}  when {key}:")
                _print_fields(sub, indent + "    ")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = _Parser(
        prog="pos-sim",
        description="A workbench for POS payment terminals: talk to real terminals over serial "
                    "or USB, run the emulated terminal, diagnose and manage devices.",
        epilog="Exit status is a bitmask: 1 bad command line (or not found, or refused), 2 port could "
               "not be opened, 4 protocol/communication failure, 8 component failed, 16 warning, "
               "32 locked, 64 event log has errors; 128 registry failed, 130 interrupted "
               "(every command's, in docs/cli.md).",
    )
    parser.add_argument("--version", action="version", version=f"pos-sim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    p = sub.add_parser("protocol", help="show the wire protocol's message catalogue",
                       description="Print the message catalogue of the wire protocol: every "
                                   "message type, its number, direction and fields. The full "
                                   "specification is docs/protocol.md.")
    p.add_argument("message", nargs="?", help="one message, by name (INFO_REPLY) or number (0x11)")
    p.add_argument("--json", action="store_true", help="print the catalogue as JSON")
    p.set_defaults(func=_cmd_protocol)

    from pos_sim import capture_cmd, device_cmd, diag_cmd, info_cmd, ports_cmd, registry_cmd, status_cmd, tui_cmd
    from pos_sim.emulator import cli as emulate_cmd

    ports_cmd.add_parser(sub)
    info_cmd.add_parser(sub)
    status_cmd.add_parser(sub)
    diag_cmd.add_parser(sub)
    emulate_cmd.add_parser(sub)
    capture_cmd.add_parser(sub)
    tui_cmd.add_parser(sub)
    registry_cmd.add_parser(sub)
    registry_cmd.add_ticket_and_audit_parsers(sub)
    device_cmd.add_parser(sub)
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


if __name__ == "__main__":
    sys.exit(main())
