"""``pos-sim conformance PORT``: check a terminal's side of the protocol, clause by clause.

For a firmware engineer: every clause of docs/protocol.md section 15 is one check
(:mod:`pos_sim.conformance`), printed as it finishes; ``--json`` gives one object at the end and
``--junit FILE`` a JUnit XML report for CI.  Exit status 0 only when every check that ran
passed; 8 when a clause failed; 4 when the terminal stopped answering; 2 when the port could not
be opened.  Lifecycle clauses are left out unless ``--allow-lifecycle`` (they never change the
terminal's state, but they send lifecycle requests and spend counter values).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from drivers.errors import DriverError
from drivers.files import FileWriteError, write_atomically
from drivers.raw import RawLink
from pos_sim import exitcodes
from pos_sim.conformance import BY_ID, CLAUSES, ERROR, FAIL, PASS, SKIPPED, CheckResult, junit_xml, run_suite
from pos_sim.errors import UsageError
from pos_sim.ports import add_baud_option, register_url_schemes

SCHEMA_VERSION = 1
_MARK = {PASS: "PASS", FAIL: "FAIL", ERROR: "ERROR", SKIPPED: "SKIP"}


def add_parser(sub: Any) -> None:
    """Add ``conformance`` to the command line."""
    p = sub.add_parser(
        "conformance", help="check a terminal's side of the protocol, one check per clause of the spec",
        description="Run the conformance checklist of docs/protocol.md section 15 against the terminal on "
                    "PORT (a device path or URL; emu://SCENARIO for the built-in emulator). Each check "
                    "names its clause and section. The checks send what a conforming host never would "
                    "(unknown types, oversized payloads, duplicates, 10 s of silence) and take about half "
                    "a minute at 115200 baud. Exit status 0: every check that ran passed; 8: a clause "
                    "failed; 4: the terminal stopped answering; 2: the port could not be opened.")
    p.add_argument("port", metavar="PORT", help="device path or URL (see `pos-sim ports`)")
    p.add_argument("--json", action="store_true", help="print one JSON object at the end (progress on stderr)")
    p.add_argument("--junit", metavar="FILE", help="also write a JUnit XML report to FILE")
    p.add_argument("--allow-lifecycle", action="store_true",
                   help="run the lifecycle clauses L2-L6 too: they send LC_REQUESTs the terminal must refuse "
                        "(its lifecycle state never changes; L6 spends two counter values)")
    p.add_argument("--keys", metavar="FILE",
                   help="key file with the terminal's lifecycle key, for clause L6 (default: POS_SIM_KEYS, "
                        "else keys.toml in your config directory; without a key L6 is left out)")
    p.add_argument("--only", metavar="CLAUSES", type=_clauses,
                   help="run only these clauses, comma-separated (e.g. F1,S1,P2)")
    add_baud_option(p)
    p.set_defaults(func=run)


def _clauses(text: str) -> set[str]:
    wanted = {c.strip().upper() for c in text.split(",") if c.strip()}
    unknown = sorted(wanted - set(BY_ID))
    if unknown or not wanted:
        raise argparse.ArgumentTypeError(f"no clause {', '.join(unknown) or '(none given)'}; the clauses are "
                                         + ", ".join(c.id for c in CLAUSES))
    return wanted


def _key_lookup(args: argparse.Namespace) -> Any:
    """serial -> key, from the key file (None when there is no file or no key for it)."""
    from pos_sim.services.keys import KeyFile, KeyFileError

    try:
        keys = KeyFile.load(args.keys)
    except KeyFileError as exc:
        if args.keys:
            raise UsageError(f"pos-sim conformance: {exc}") from None
        return lambda serial: None
    return keys.keys.get


def exit_status(results: list[CheckResult]) -> int:
    """0 when every check that ran passed; FAILED for a clause failed; COMMUNICATION for no answer."""
    status = exitcodes.OK
    if any(r.status == FAIL for r in results):
        status |= exitcodes.FAILED
    if any(r.status == ERROR for r in results):
        status |= exitcodes.COMMUNICATION
    return status


def run(args: argparse.Namespace) -> int:
    """Carry out ``pos-sim conformance``."""
    register_url_schemes()
    keys = _key_lookup(args) if args.allow_lifecycle else None
    out = sys.stderr if args.json else sys.stdout
    results: list[CheckResult] = []
    try:
        with RawLink.open(args.port, baud=args.baud) as link:
            for r in run_suite(link, allow_lifecycle=args.allow_lifecycle, keys=keys, only=args.only):
                results.append(r)
                print(f"{_MARK[r.status]:5} {r.clause.id} {r.clause.title} (section {r.clause.section}): "
                      f"{r.detail}", file=out, flush=True)
    except DriverError as exc:
        print(f"pos-sim conformance: {exc}", file=sys.stderr)
        if not results:
            return exc.exit_code
        results.append(CheckResult(results[-1].clause, ERROR, str(exc)))
    counts = {s: sum(r.status == s for r in results) for s in (PASS, FAIL, ERROR, SKIPPED)}
    left_out = [r.clause.id for r in results if r.status == SKIPPED]
    summary = (f"{len(results)} clauses: {counts[PASS]} passed, {counts[FAIL]} failed, {counts[ERROR]} could "
               f"not be checked, {counts[SKIPPED]} left out" + (f" ({', '.join(left_out)})" if left_out else ""))
    print(summary, file=out)
    status = exit_status(results)
    if args.junit:
        try:
            write_atomically(args.junit, junit_xml(results, name=args.port))
        except FileWriteError as exc:
            print(f"pos-sim conformance: could not write the JUnit report: {exc}", file=sys.stderr)
            status |= exitcodes.USAGE
    if args.json:
        print(json.dumps({"schema_version": SCHEMA_VERSION, "port": args.port,
                          "conforms": status == exitcodes.OK and counts[PASS] > 0,
                          "counts": counts, "results": [r.as_dict() for r in results],
                          "exit_status": status}, ensure_ascii=False))
    return status
