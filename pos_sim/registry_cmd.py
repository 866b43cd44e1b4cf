"""``pos-sim devices`` and ``pos-sim runs SERIAL``: what the registry knows.

The registry is SQLite in the user's data directory unless ``--db URL`` or ``POS_SIM_DB`` says
otherwise (any SQLAlchemy URL: a repair centre can point every bench at one server).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from datetime import datetime
from typing import Any

from pos_sim.registry import Registry, RegistryError


def add_db_option(p: argparse.ArgumentParser) -> None:
    """``--db URL`` on a command that uses the registry."""
    p.add_argument("--db", metavar="URL",
                   help="registry database (SQLAlchemy URL or file path; default: POS_SIM_DB, else "
                        "registry.db in your data directory)")


def add_parser(sub: Any) -> None:
    """Add ``devices`` and ``runs``."""
    p = sub.add_parser("devices", help="list the terminals the registry knows",
                       description="Every terminal a diagnosis or lifecycle operation has seen, with its "
                                   "model, firmware, lifecycle state and when it was last seen.")
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


def run_devices(args: argparse.Namespace) -> int:
    """Carry out ``pos-sim devices``."""
    try:
        with Registry.open(args.db) as reg:
            devices = reg.devices()
    except RegistryError as exc:
        print(f"pos-sim devices: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"schema_version": 1, "devices": [asdict(d) for d in devices]}, ensure_ascii=False))
        return 0
    if not devices:
        print("no terminals recorded yet: `pos-sim diag PORT` records each run")
        return 0
    for d in devices:
        print(f"{d.serial:<14} {d.manufacturer} {d.model:<10} fw {d.firmware:<8} {d.lifecycle:<12} "
              f"{d.merchant or '-':<16} last seen {_when(d.last_seen)}")
    return 0


def run_runs(args: argparse.Namespace) -> int:
    """Carry out ``pos-sim runs SERIAL``."""
    try:
        with Registry.open(args.db) as reg:
            runs = reg.runs(args.serial)
    except RegistryError as exc:
        print(f"pos-sim runs: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"schema_version": 1, "serial": args.serial, "runs": [asdict(r) for r in runs]},
                         ensure_ascii=False))
        return 0
    for r in runs:
        bad = [f"{x.component}:{x.code or x.verdict}" for x in r.results if x.verdict not in ("pass", "skipped")]
        print(f"#{r.id:<5} {_when(r.started_at)}  {r.plan:<6} {r.verdict:<16} exit {r.exit_status:<4} "
              f"{', '.join(bad) or 'all fine'}")
    return 0
