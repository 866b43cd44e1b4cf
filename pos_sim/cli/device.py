"""``pos-sim device activate|bind|unbind|revoke|reset|backup PORT ...``: a terminal's life.

Each lifecycle operation is signed with the terminal's own key from the key file (--keys,
POS_SIM_KEYS or keys.toml in the config directory; docs/lifecycle.md) and recorded, with the
terminal's answer, in the registry and its audit log.  Unbind needs a verified backup of the
transaction log (pos-sim device backup) unless --force with a --reason, which is audited.  On a
terminal, unbind, revoke and reset ask for confirmation unless --yes.
Exit status (docs/cli.md): 0 done; 1 bad command line, key file, output directory, missing
backup or not confirmed; 2 port could not be opened; 4 communication failure, no answer (state
unknown) or signature refused; 8 the terminal refused the operation; 32 the terminal is locked;
128 the registry failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from drivers.errors import DriverError
from drivers.terminal import Terminal
from pos_sim import exitcodes
from pos_sim.cli.info import DEFAULT_TIMEOUT, _positive
from pos_sim.cli.registry import add_db_option
from pos_sim.ports import add_baud_option, register_url_schemes
from pos_sim.registry import Registry, RegistryError
from pos_sim.services.keys import ENV_VAR as KEYS_ENV
from pos_sim.services.keys import KeyFile, KeyFileError
from pos_sim.services.lifecycle import OPERATIONS, BackupNotRecorded, DeviceManager, LifecycleFailed

SCHEMA_VERSION = 1
DESTRUCTIVE = ("unbind", "revoke", "reset")
_HELP = {
    "activate": "activate a terminal for a merchant with an activation code",
    "bind": "bind an activated terminal to a merchant account",
    "unbind": "unbind a terminal from its merchant (needs a verified backup, or --force --reason)",
    "revoke": "revoke an un-activated terminal (an activated one must be unbound first)",
    "reset": "factory reset: erase configuration and binding (logs, key and counter survive)",
}


def add_parser(sub: Any) -> None:
    """Add ``device`` and its subcommands to the command line."""
    p = sub.add_parser("device", help="lifecycle operations and transaction-log backup on a terminal",
                       description=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    dsub = p.add_subparsers(dest="device_command", metavar="OPERATION", required=True,
                            parser_class=type(p))
    for name, text in _HELP.items():
        d = dsub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        d.add_argument("port", metavar="PORT", help="device path or URL (see `pos-sim ports`)")
        if name == "activate":
            d.add_argument("--code", required=True, help="the activation code from the acquirer")
        if name in ("activate", "bind"):
            d.add_argument("--merchant", required=True, metavar="ID", help="merchant number (letters and digits)")
        if name in DESTRUCTIVE:
            d.add_argument("--reason", required=True, metavar="TEXT", help="why (kept in the audit log)")
            d.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        if name == "unbind":
            d.add_argument("--force", action="store_true",
                           help="unbind without a verified backup (needs --reason; audited)")
        d.add_argument("--keys", metavar="FILE",
                       help=f"key file (default: {KEYS_ENV}, else keys.toml in your config directory)")
        d.add_argument("--timeout", type=_positive, default=DEFAULT_TIMEOUT, metavar="S",
                       help=f"seconds for the exchange before and after your confirmation, not counting "
                            f"the time you take to confirm (default {DEFAULT_TIMEOUT:g})")
        _common(d)
        d.set_defaults(func=run_lifecycle, operation=name)
    b = dsub.add_parser("backup", help="back up the transaction log (paged, verified, atomic, masked)",
                        description="Export the terminal's transaction log to DIR/SERIAL-txlog-TIME.json: each "
                                    "page CRC-checked, the whole SHA-256 verified against the terminal's, the "
                                    "file written atomically with card numbers masked, then read back and "
                                    "recorded in the registry with its digest.")
    b.add_argument("port", metavar="PORT", help="device path or URL (see `pos-sim ports`)")
    b.add_argument("-o", "--output", required=True, metavar="DIR", help="directory for the backup file")
    _common(b)
    b.set_defaults(func=run_backup)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_baud_option(p)
    add_db_option(p)


def _fail(args: argparse.Namespace, message: str, code: int, extra: dict[str, Any] | None = None) -> int:
    if args.json:
        print(json.dumps({"schema_version": SCHEMA_VERSION, "port": args.port, "error": message,
                          "exit_status": code, **(extra or {})}, ensure_ascii=False))
    print(f"pos-sim device {args.device_command}: {message}", file=sys.stderr)
    return code


def _confirm(args: argparse.Namespace, serial: str, state: str, merchant: str) -> bool:
    if args.yes or not sys.stdin.isatty():
        return True
    who = f" (merchant {merchant})" if merchant else ""
    print(f"{args.operation} {serial}, now {state}{who}: this cannot be undone. Type the serial to go on: ",
          end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip() == serial


def run_lifecycle(args: argparse.Namespace) -> int:
    """Carry out ``pos-sim device activate|bind|unbind|revoke|reset``."""
    try:
        keys = KeyFile.load(args.keys)
    except KeyFileError as exc:
        return _fail(args, str(exc), exc.exit_code)
    register_url_schemes()
    try:
        with Registry.open(args.db) as reg, Terminal.open(args.port, baud=args.baud, timeout=args.timeout) as term:
            mgr = DeviceManager(term, reg, keys)
            prepared = mgr.prepare(args.operation, activation_code=getattr(args, "code", ""),
                                   merchant_id=getattr(args, "merchant", ""), reason=getattr(args, "reason", ""),
                                   force=getattr(args, "force", False))
            dev = prepared.device
            for warning in prepared.warnings:
                print(f"pos-sim device {args.device_command}: warning: {warning}", file=sys.stderr)
            if args.operation in DESTRUCTIVE and not _confirm(args, dev.serial, dev.lifecycle, dev.merchant_id):
                return _fail(args, "not confirmed: nothing was sent", exitcodes.REFUSED)
            term.set_deadline(args.timeout)   # the time spent confirming is the person's
            if prepared.stale:   # the confirmation took longer than the terminal's challenge lives
                prepared = mgr.prepare(args.operation, activation_code=getattr(args, "code", ""),
                                       merchant_id=getattr(args, "merchant", ""), reason=getattr(args, "reason", ""),
                                       force=getattr(args, "force", False))
            outcome = mgr.submit(prepared)
    except KeyFileError as exc:
        return _fail(args, str(exc), exc.exit_code)
    except LifecycleFailed as exc:
        extra = {"status": exc.record.status, "record": exc.record.id} if exc.record else None
        return _fail(args, str(exc), exc.exit_code, extra)
    except DriverError as exc:
        return _fail(args, str(exc), exc.exit_code)
    except RegistryError as exc:
        return _fail(args, f"registry: {exc}", exc.exit_code)
    r, dev = outcome.result, outcome.device
    if args.json:
        print(json.dumps({"schema_version": SCHEMA_VERSION, "port": args.port, "serial": dev.serial,
                          "operation": r.operation, "status": r.status, "state_before": dev.lifecycle,
                          "state": r.state, "counter": r.counter, "forced": outcome.record.forced,
                          "backup": outcome.backup.path if outcome.backup else None, "record": outcome.record.id,
                          "exit_status": exitcodes.OK}, ensure_ascii=False))
        return exitcodes.OK
    print(f"{dev.serial}: {r.operation} done, {dev.lifecycle} → {r.state} (counter {r.counter})")
    if outcome.backup:
        print(f"transaction log backed up in {outcome.backup.path} (sha256 {outcome.backup.sha256[:16]}…)")
    elif outcome.record.forced:
        print("unbound WITHOUT a verified backup (--force); the reason is in the audit log")
    print(f"recorded in the registry (lifecycle record #{outcome.record.id}) and the audit log")
    return exitcodes.OK


class _Progress:
    """A one-line progress bar on a terminal; a line per tenth otherwise."""

    def __init__(self, out: TextIO, label: str) -> None:
        self.out, self.label, self.tty, self.shown = out, label, out.isatty(), -1

    def __call__(self, done: int, total: int) -> None:
        if self.tty:
            width = 30
            fill = width * done // max(total, 1)
            print(f"\r{self.label} [{'#' * fill}{'.' * (width - fill)}] {done}/{total} pages",
                  end="" if done < total else "\n", file=self.out, flush=True)
            return
        tenth = 10 * done // max(total, 1)
        if tenth != self.shown:
            self.shown = tenth
            print(f"{self.label}: {done}/{total} pages", file=self.out, flush=True)


def run_backup(args: argparse.Namespace) -> int:
    """Carry out ``pos-sim device backup``."""
    problem = output_dir_problem(args.output)
    if problem:
        return _fail(args, f"{problem} (nothing was read from the terminal)", exitcodes.USAGE)
    register_url_schemes()
    progress_out = sys.stderr if args.json else sys.stdout
    try:
        reg = Registry.open(args.db)
    except RegistryError as exc:
        return _fail(args, f"registry: {exc} (nothing was read from the terminal)", exc.exit_code)
    try:
        # no overall deadline: a long log at a low baud rate takes its time; each page is still
        # bounded by the link's answer timeout and retransmits
        with reg, Terminal.open(args.port, baud=args.baud) as term:
            serial = term.hello.serial if term.hello else "terminal"
            out = DeviceManager(term, reg).backup(args.output, on_progress=_Progress(progress_out,
                                                                                    f"backup {serial}"))
    except DriverError as exc:
        return _fail(args, f"{exc} (no backup was recorded)", exc.exit_code)
    except BackupNotRecorded as exc:
        return _fail(args, f"{exc.path} was written and verified ({exc.records} transactions, sha256 "
                           f"{exc.sha256}) and is kept, but the registry could not record it: {exc}; nothing "
                           f"is in the registry, so unbind will not count this backup until you back up again "
                           f"with the registry working",
                     exc.exit_code, {"path": str(exc.path), "sha256": exc.sha256, "records": exc.records,
                                     "recorded": False})
    except RegistryError as exc:
        return _fail(args, f"registry: {exc} (no backup file was written, nothing was recorded)", exc.exit_code)
    if args.json:
        print(json.dumps({"schema_version": SCHEMA_VERSION, "port": args.port, "serial": out.device.serial,
                          "path": str(out.path), "records": out.record.records, "pages": out.pages,
                          "sha256": out.record.sha256, "backup": out.record.id, "exit_status": exitcodes.OK}))
        return exitcodes.OK
    print(f"{out.device.serial}: {out.record.records} transactions in {out.pages} pages → {out.path}")
    print(f"sha256 {out.record.sha256} verified; recorded as backup #{out.record.id}")
    return exitcodes.OK


def output_dir_problem(directory: str) -> str:
    """What stops a backup from being written into ``directory`` (empty when nothing does),
    checked before the terminal is asked for anything.  A directory that does not exist yet
    is made by the backup, so its nearest existing parent must be a directory we can write."""
    try:
        d = Path(directory).expanduser()
    except RuntimeError:   # ~user that does not exist
        return f"cannot use {directory} for the backup: that user has no home directory here; give another -o"
    existing = d
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return (f"cannot use {d} for the backup: {existing} is a file, not a directory; give a directory "
                f"with -o")
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"cannot write into {existing} (permission denied): give a directory you can write to with -o"
    return ""


__all__ = ["OPERATIONS", "add_parser", "output_dir_problem", "run_backup", "run_lifecycle"]
