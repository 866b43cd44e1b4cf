"""``pos-sim devices`` and ``pos-sim runs SERIAL``: what the registry knows.

The registry is SQLite in the user's data directory unless ``--db URL`` or ``POS_SIM_DB`` says
otherwise (any SQLAlchemy URL: a repair centre can point every bench at one server).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from pos_sim import exitcodes
from pos_sim.registry import Registry, RegistryError, UnknownDevice


def add_db_option(p: argparse.ArgumentParser) -> None:
    """``--db URL`` on a command that uses the registry."""
    p.add_argument("--db", metavar="URL",
                   help="registry database (SQLAlchemy URL or file path; default: POS_SIM_DB, else "
                        "registry.db in your data directory)")


def add_parser(sub: Any) -> None:
    """Add ``devices`` and ``runs``."""
    p = sub.add_parser("devices", help="list the terminals the registry knows, or one terminal's record",
                       description="Every terminal a diagnosis or lifecycle operation has seen, with its "
                                   "model, firmware, lifecycle state and when it was last seen. With SERIAL: "
                                   "that terminal's record, backups, lifecycle operations, repair tickets "
                                   "and its number of diagnostic runs (`pos-sim runs SERIAL` lists them).")
    p.add_argument("serial", metavar="SERIAL", nargs="?", help="show this terminal in full")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_db_option(p)
    p.set_defaults(func=run_devices)
    p = sub.add_parser("runs", help="list the diagnostic runs of one terminal",
                       description="Every recorded `pos-sim diag` run of the terminal with this serial "
                                   "number, oldest first, with its verdict and the components that were "
                                   "not fine.")
    p.add_argument("serial", metavar="SERIAL")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_db_option(p)
    p.set_defaults(func=run_runs)


def _when(t: float) -> str:
    return datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M")


def registry_failed(command: str, exc: RegistryError) -> int:
    """Print a registry error as one line; return its exit status (docs/cli.md)."""
    print(f"pos-sim {command}: {exc}", file=sys.stderr)
    return exc.exit_code


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Aligned columns under a header, two spaces apart, no trailing blanks."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]


def run_devices(args: argparse.Namespace) -> int:
    """Carry out ``pos-sim devices``."""
    if args.serial:
        return _device_detail(args)
    try:
        with Registry.open(args.db) as reg:
            devices = reg.devices()
    except RegistryError as exc:
        return registry_failed("devices", exc)
    if args.json:
        print(json.dumps({"schema_version": 1, "devices": [asdict(d) for d in devices]}, ensure_ascii=False))
        return exitcodes.OK
    if not devices:
        print("no terminals recorded yet: `pos-sim diag PORT` records each run")
        return exitcodes.OK
    rows = [(d.serial, f"{d.manufacturer} {d.model}".strip() or "-", d.firmware or "-", d.lifecycle,
             d.merchant or "-", _when(d.last_seen)) for d in devices]
    for line in table(("SERIAL", "MODEL", "FIRMWARE", "LIFECYCLE", "MERCHANT", "LAST SEEN"), rows):
        print(line)
    return exitcodes.OK


def _device_detail(args: argparse.Namespace) -> int:
    """``pos-sim devices SERIAL``."""
    try:
        with Registry.open(args.db) as reg:
            d = reg.device(args.serial)
            backups, ops = reg.backups(args.serial), reg.lifecycle_ops(args.serial)
            tickets, runs = reg.tickets(args.serial), reg.runs(args.serial)
    except RegistryError as exc:
        return registry_failed("devices", exc)
    if args.json:
        print(json.dumps({"schema_version": 1, "device": asdict(d), "backups": [asdict(b) for b in backups],
                          "lifecycle": [asdict(o) for o in ops], "tickets": [asdict(t) for t in tickets],
                          "runs": len(runs)}, ensure_ascii=False, default=dict))
        return exitcodes.OK
    print(f"{d.serial}  {d.manufacturer} {d.model}  firmware {d.firmware}  {d.lifecycle}"
          f"{'  merchant ' + d.merchant if d.merchant else ''}")
    print(f"first seen {_when(d.first_seen)}, last seen {_when(d.last_seen)}; {len(runs)} diagnostic run(s)"
          f"{f', last {runs[-1].verdict} on {_when(runs[-1].started_at)}' if runs else ''}")
    print("backups:" if backups else "backups: none")
    for b in backups:
        print(f"  #{b.id:<4} {_when(b.created_at)}  {b.records} transactions  sha256 {b.sha256[:16]}…  {b.path}")
    print("lifecycle:" if ops else "lifecycle: no operations recorded")
    for o in ops:
        extra = "  FORCED" if o.forced else (f"  backup #{o.backup_id}" if o.backup_id else "")
        print(f"  #{o.id:<4} {_when(o.at)}  {o.operation:<13} {o.status:<13} {o.state_before} → "
              f"{o.state_after or '?'}  counter {o.counter}  by {o.actor}@{o.origin}{extra}")
    print("repair tickets:" if tickets else "repair tickets: none")
    for t in tickets:
        print(f"  #{t.id:<4} {t.state:<14} opened {_when(t.opened_at)}  {t.fault}")
    return exitcodes.OK


def run_runs(args: argparse.Namespace) -> int:
    """Carry out ``pos-sim runs SERIAL``."""
    try:
        with Registry.open(args.db) as reg:
            runs = reg.runs(args.serial)
    except RegistryError as exc:
        return registry_failed("runs", exc)
    if args.json:
        print(json.dumps({"schema_version": 1, "serial": args.serial, "runs": [asdict(r) for r in runs]},
                         ensure_ascii=False))
        return exitcodes.OK
    if not runs:
        print(f"no diagnostic runs recorded for {args.serial}: `pos-sim diag PORT` records each run")
        return exitcodes.OK
    for r in runs:
        bad = [f"{x.component}:{x.code or x.verdict}" for x in r.results if x.verdict not in ("pass", "skipped")]
        print(f"#{r.id:<5} {_when(r.started_at)}  {r.plan:<6} {r.verdict:<16} exit {r.exit_status:<4} "
              f"{', '.join(bad) or 'all fine'}")
    return exitcodes.OK


def add_ticket_and_audit_parsers(sub: Any) -> None:
    """Add ``ticket open|show|advance|list`` and ``audit show|verify``."""
    from pos_sim.registry import MATERIALS, TICKET_STATES

    t = sub.add_parser("ticket", help="repair tickets: open, show, advance, list",
                       description="Repair tickets with a timestamped timeline and the materials checklist "
                                   f"({', '.join(MATERIALS)}). States: {' → '.join(TICKET_STATES)}.")
    tsub = t.add_subparsers(dest="ticket_command", metavar="ACTION", required=True)
    p = tsub.add_parser("open", help="open a ticket for a terminal",
                        description="Open a repair ticket (state opened) for the terminal with this serial "
                                    "number, with what is wrong and the materials already provided. A serial "
                                    "the registry has never seen is registered (a dead terminal cannot report "
                                    "itself), with a warning to check it against the label.")
    p.add_argument("serial", metavar="SERIAL")
    p.add_argument("--fault", required=True, help="what is wrong, in a few words")
    p.add_argument("--have", default="", metavar="LIST",
                   help=f"materials already provided, comma-separated ({','.join(MATERIALS)})")
    p = tsub.add_parser("show", help="one ticket with its timeline",
                        description="One repair ticket: its state, fault, every step with its time and note, "
                                    "and the checklist items still missing. Exit 1 when there is no such "
                                    "ticket.")
    p.add_argument("id", type=int, metavar="ID")
    p = tsub.add_parser("advance", help="move a ticket to its next state",
                        description=f"Move a ticket to STATE, which must follow its state "
                                    f"({' → '.join(TICKET_STATES)}; awaiting_parts may be skipped), with a note "
                                    f"and the materials received. A step the states do not allow is refused "
                                    f"with the ones that may come next (exit 1).")
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("state", choices=TICKET_STATES, metavar="STATE", help=", ".join(TICKET_STATES))
    p.add_argument("--note", default="", help="what happened")
    p.add_argument("--have", default="", metavar="LIST",
                   help="materials received with this step, comma-separated (e.g. invoice,repair_payment)")
    p = tsub.add_parser("list", help="every ticket (or one terminal's)",
                        description="Every repair ticket, oldest first, with its timeline; --serial keeps one "
                                    "terminal's.")
    p.add_argument("--serial", metavar="SERIAL")
    for p in tsub.choices.values():
        p.add_argument("--json", action="store_true", help="print JSON")
        add_db_option(p)
    t.set_defaults(func=run_ticket)

    a = sub.add_parser("audit", help="the append-only audit log: show it, verify its hash chain",
                       description="Every lifecycle operation and every forced action is in the audit log; "
                                   "each record carries the hash of the one before. verify walks the chain "
                                   "and names the first record that was altered.")
    asub = a.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    p = asub.add_parser("show", help="the latest records",
                        description="The latest audit records, oldest first, as a table: id, time (UTC), who, "
                                    "from which host, action, outcome and what it was done to. --json gives "
                                    "each record's details and hashes.")
    p.add_argument("--limit", type=int, default=50, help="how many (default 50)")
    p = asub.add_parser("verify", help="check the hash chain (exit 4 when broken)",
                        description="Walk the audit log's hash chain from its first record and name the first "
                                    "one that was altered, removed or does not link to the one before (exit 4).")
    for p in asub.choices.values():
        p.add_argument("--json", action="store_true", help="print JSON")
        add_db_option(p)
    a.set_defaults(func=run_audit)


def _ticket_lines(tk: Any) -> list[str]:
    out = [f"ticket #{tk.id}  {tk.serial}  {tk.state}  opened {_when(tk.opened_at)}  fault: {tk.fault}"]
    out += [f"  {_when(e.at)}  {e.from_state or '-'} → {e.to_state}  {e.note}" for e in tk.timeline]
    if tk.missing_materials:
        out.append(f"  still needed: {', '.join(tk.missing_materials)}")
    return out


def run_ticket(args: argparse.Namespace) -> int:
    """Carry out ``pos-sim ticket ...``."""
    from pos_sim.registry import MATERIALS

    try:
        with Registry.open(args.db) as reg:
            have = [m.strip() for m in getattr(args, "have", "").split(",") if m.strip()]
            unknown = [m for m in have if m not in MATERIALS]
            if unknown:
                print(f"pos-sim ticket: unknown material {', '.join(unknown)}; known: {', '.join(MATERIALS)}",
                      file=sys.stderr)
                return exitcodes.USAGE
            if args.ticket_command == "open":
                try:
                    reg.device(args.serial)
                except UnknownDevice:
                    print(f"pos-sim ticket: warning: {args.serial} has never been seen by this registry (no "
                          f"diagnosis or lifecycle operation); check the serial on the terminal's label",
                          file=sys.stderr)
                tickets = [reg.open_ticket(args.serial, args.fault, dict.fromkeys(have, True))]
            elif args.ticket_command == "show":
                tickets = [reg.ticket(args.id)]
            elif args.ticket_command == "advance":
                tickets = [reg.advance_ticket(args.id, args.state, args.note, dict.fromkeys(have, True))]
            else:
                tickets = reg.tickets(args.serial)
    except RegistryError as exc:
        return registry_failed("ticket", exc)
    if args.json:
        print(json.dumps({"schema_version": 1, "tickets": [asdict(t) for t in tickets]}, ensure_ascii=False,
                         default=dict))
        return exitcodes.OK
    for tk in tickets:
        print("\n".join(_ticket_lines(tk)))
    if not tickets:
        print("no repair tickets" + (f" for {args.serial}" if getattr(args, "serial", None) else ""))
    return exitcodes.OK


def run_audit(args: argparse.Namespace) -> int:
    """Carry out ``pos-sim audit show|verify``."""
    try:
        with Registry.open(args.db) as reg:
            if args.audit_command == "verify":
                result = reg.verify_audit()
                if args.json:
                    print(json.dumps(asdict(result)))
                elif result.ok:
                    print(f"audit log intact: {result.checked} records, hash chain verified")
                else:
                    print(f"pos-sim audit: record {result.first_broken} is broken: {result.reason}", file=sys.stderr)
                return exitcodes.OK if result.ok else exitcodes.DIFFERS
            entries = reg.audit_log(args.limit)
    except RegistryError as exc:
        return registry_failed("audit", exc)
    if args.json:
        print(json.dumps({"schema_version": 1, "entries": [asdict(e) for e in entries]}, ensure_ascii=False,
                         default=dict))
        return exitcodes.OK
    if not entries:
        print("the audit log is empty")
        return exitcodes.OK
    rows = [(f"#{e.id}", e.at, e.actor, e.origin, e.action, e.outcome, e.target) for e in entries]
    for line in table(("ID", "AT (UTC)", "ACTOR", "FROM", "ACTION", "OUTCOME", "TARGET"), rows):
        print(line)
    return exitcodes.OK
