"""``pos-sim protocol [MESSAGE] [--json]``: the wire protocol's message catalogue (docs/protocol.md)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from pos_sim.errors import UsageError
from protocols.pos.spec import catalogue_json


def add_parser(sub: argparse._SubParsersAction[Any]) -> None:
    """Add the ``protocol`` command to a ``pos-sim`` subparsers object."""
    p = sub.add_parser("protocol", help="show the wire protocol's message catalogue",
                       description="Print the message catalogue of the wire protocol: every "
                                   "message type, its number, direction and fields. The full "
                                   "specification is docs/protocol.md.")
    p.add_argument("message", nargs="?", help="one message, by name (INFO_REPLY) or number (0x11)")
    p.add_argument("--json", action="store_true", help="print the catalogue as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the catalogue (or one message); return the exit status."""
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
