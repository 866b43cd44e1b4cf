"""``pos-sim diag PORT``: run a diagnostic plan and report, smartctl-style.

Human output is a compact table (coloured on a terminal; ``NO_COLOR`` respected), progress while
tests run, and a "for the repair ticket" block.  ``--json`` prints one object (schema in
``pos_sim/diagnostics/report.schema.json``, fields in docs/diagnostics.md).  The exit status is
the bitmask of docs/diagnostics.md, "Exit status".
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, TextIO

from drivers.device import KINDS, Device, open_device
from drivers.errors import DriverError
from pos_sim import exitcodes
from pos_sim.diagnostics.catalogue import Catalogue, default_language, load_catalogue, normalize_language
from pos_sim.diagnostics.engine import (
    NATURAL_ORDER,
    PLANS,
    SCHEMA_VERSION,
    DiagnosticReport,
    DiagnosticsEngine,
    Finding,
    RunAborted,
    Update,
    completeness_text,
    verdict_detail_key,
)
from pos_sim.errors import UsageError
from pos_sim.ports import add_baud_option, register_url_schemes

DEFAULT_TIMEOUT = 10.0
_COLOURS = {"pass": "32", "warn": "33", "fail": "31", "skipped": "2", "error": "35",
            "ok": "1;32", "needs_attention": "1;33", "needs_repair": "1;31", "locked": "1;35"}


def add_parser(sub: Any) -> None:
    """Add ``diag`` to the command line."""
    p = sub.add_parser(
        "diag", help="run the self-tests and report what is wrong and what to do",
        description="Connect to the terminal on PORT, run a self-test plan and report every "
                    "component's verdict, the faults found with advice in Chinese or English, and "
                    "what to bring for a repair ticket. PORT is a device path, a socket:// or "
                    "rfc2217:// URL, or emu://SCENARIO for the built-in emulator.",
        epilog="Exit status is a bitmask: 1 bad command line, 2 port could not be opened, 4 "
               "communication failure, 8 a component failed (needs repair), 16 a warning the "
               "merchant can fix, 32 terminal locked (tamper), 64 the event log holds errors.")
    p.add_argument("port", metavar="PORT", help="device path or URL (see `pos-sim ports`)")
    p.add_argument("--plan", choices=sorted(PLANS), default="full",
                   help="full: every check; quick: only checks that need nobody; drop: the checks "
                        "after a fall, tamper first (default full)")
    p.add_argument("--tests", metavar="LIST",
                   help=f"only these components, comma-separated ({','.join(NATURAL_ORDER)})")
    p.add_argument("--device", choices=KINDS, default="auto",
                   help="what is on PORT: a pos-sim terminal, an ESC/POS receipt printer (docs/escpos.md), "
                        "or auto: DLE EOT 1 first, then HELLO (default auto)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--report", metavar="FILE", help="also write a report: FILE.html, FILE.md or FILE.json")
    p.add_argument("--lang", metavar="zh|en", help="language of verdicts and advice (default: from the locale)")
    p.add_argument("--non-interactive", action="store_true",
                   help="never ask the technician; checks that need a person are reported as skipped")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
                   help=f"give up if the terminal does not answer within S seconds (default {DEFAULT_TIMEOUT:g}; "
                        f"never before one request has had all its retransmits at the line rate)")
    p.add_argument("--capture", metavar="FILE",
                   help="record every byte of the session to FILE (FILE.gz compressed); see docs/capture-format.md")
    p.add_argument("--no-record", action="store_true", help="do not record the run in the registry")
    add_baud_option(p)
    from pos_sim.cli.registry import add_db_option

    add_db_option(p)
    p.set_defaults(func=run)


#: the answers a [y/n] prompt takes (anything else asks again)
YES = frozenset({"y", "yes", "是"})
NO = frozenset({"n", "no", "否"})
#: the exit status of a run the technician ended at a prompt (128 + SIGINT, as a shell reports it)
EXIT_ABORTED = exitcodes.INTERRUPTED


class ConsolePrompter:
    """Asks the technician on the terminal (only when stdin is one)."""

    def __init__(self, out: TextIO, catalogue: Catalogue | None = None, lang: str = "en") -> None:
        self.out = out
        self.catalogue = catalogue or load_catalogue()
        self.lang = lang

    def show(self, component: str, prompt: str, text: str) -> None:
        """Print what to do now."""
        print(f"  >> {text}", file=self.out, flush=True)

    def confirm(self, component: str, prompt: str, text: str) -> bool:
        """Ask yes/no until the answer is one (y/yes/是, n/no/否); end of input or Ctrl-C
        raises :class:`RunAborted`: a stray key never fails a part."""
        while True:
            print(f"  ?? {text} [y/n] ", end="", file=self.out, flush=True)
            try:
                answer = input().strip().lower()
            except (EOFError, KeyboardInterrupt):
                raise RunAborted("the technician ended the run at a prompt") from None
            if answer in YES:
                return True
            if answer in NO:
                return False
            print(f"  {self.catalogue.label('console', 'answer_yes_no', self.lang)}", file=self.out, flush=True)


def _colour(enabled: bool) -> Any:
    def paint(text: str, key: str) -> str:
        code = _COLOURS.get(key)
        return f"\033[{code}m{text}\033[0m" if enabled and code else text
    return paint


def run(args: argparse.Namespace) -> int:
    """Carry out ``pos-sim diag``."""
    try:
        lang = normalize_language(args.lang) if args.lang else default_language()
    except ValueError:
        raise UsageError(f"pos-sim diag: unknown language {args.lang!r} (use zh or en)") from None
    if args.report and not args.report.lower().endswith((".html", ".htm", ".md", ".json")):
        raise UsageError("pos-sim diag: --report must end in .html, .htm, .md or .json")
    if not args.timeout > 0:
        raise UsageError("pos-sim diag: --timeout must be more than 0")
    if args.report:
        from pos_sim.reports import ReportError, check_report_path

        try:   # before the port opens: a run whose report cannot be written is a wasted run
            check_report_path(args.report)
        except ReportError as exc:
            raise UsageError(f"pos-sim diag: {exc}") from None
    tests = [t.strip() for t in args.tests.split(",") if t.strip()] if args.tests else None
    if tests:
        unknown = [t for t in tests if t not in NATURAL_ORDER]
        if unknown:
            raise UsageError(f"pos-sim diag: unknown component {', '.join(unknown)}; "
                             f"components: {', '.join(NATURAL_ORDER)}")
    if getattr(args, "capture", None) and getattr(args, "device", "auto") == "escpos":
        raise UsageError("pos-sim diag: --capture records the terminal protocol; it does not take --device escpos")
    catalogue = load_catalogue()
    register_url_schemes()
    interactive = not args.non_interactive and sys.stdin.isatty()
    progress_out = sys.stderr if args.json else sys.stdout
    show_progress = progress_out.isatty() or not args.json
    paint = _colour(progress_out.isatty() and "NO_COLOR" not in os.environ)

    term: Device
    try:
        if getattr(args, "capture", None):
            from drivers.capture import open_terminal
            from drivers.escpos import ReceiptPrinter

            if getattr(args, "device", "auto") == "auto":   # a printer must get no HELLO frame to print
                found = ReceiptPrinter.probe(args.port, baud=getattr(args, "baud", None))
                if found is not None:
                    found.close()
                    raise UsageError(f"pos-sim diag: {args.port} is an ESC/POS receipt printer; --capture records "
                                     "the terminal protocol's frames, so run without it")
            term = open_terminal(args.port, args.capture, timeout=args.timeout, baud=getattr(args, "baud", None),
                                 extra={"plan": args.plan, "tests": tests, "interactive": interactive})
        else:
            term = open_device(args.port, getattr(args, "device", "auto"), baud=getattr(args, "baud", None),
                               timeout=args.timeout)
    except DriverError as exc:
        return _fail(args, exc, lang, catalogue)
    with term:
        term.set_deadline(None)   # the plan itself takes as long as the tests do
        if tests:
            fitted = term.hello.components if term.hello else ()
            missing = [t for t in tests if t not in fitted]
            if missing:
                print(f"pos-sim diag: not fitted on this terminal: {', '.join(missing)}", file=sys.stderr)
                return exitcodes.NOT_FOUND

        def on_update(u: Update) -> None:
            if not show_progress:
                return
            name = catalogue.label("component", u.component, lang) if u.component in NATURAL_ORDER else u.component
            if u.kind == "started":
                print(f"  … {name}", file=progress_out, flush=True)
            elif u.kind == "finished" and u.finding is not None:
                v = u.finding.verdict
                print(f"  {paint(catalogue.label('verdict', v, lang), v)} {name}", file=progress_out, flush=True)

        engine = DiagnosticsEngine(term, lang=lang, catalogue=catalogue, on_update=on_update, port=args.port,
                                   prompter=ConsolePrompter(progress_out, catalogue, lang) if interactive else None)
        if show_progress:
            plan_name = catalogue.label("plan", args.plan, lang)
            print(f"{plan_name} · {args.port}", file=progress_out, flush=True)
        try:
            report = engine.run(args.plan, tests, interactive=interactive)
        except (RunAborted, KeyboardInterrupt):
            # the prompt's line is still open: end it, then one line; no report, no record
            print(file=progress_out, flush=True)
            print(f"pos-sim diag: {catalogue.label('console', 'aborted', lang)}", file=sys.stderr, flush=True)
            return EXIT_ABORTED
        mismatch = getattr(getattr(term.link.port, "player", None), "mismatch", None)   # replay://
        if mismatch is not None:
            print(f"pos-sim diag: {mismatch}", file=sys.stderr)

    capture_problem = getattr(term.link.port, "capture_problem", "")   # --capture on a full disk
    if capture_problem:
        print(f"pos-sim diag: {capture_problem}", file=sys.stderr)
    if not getattr(args, "no_record", False) and report.device is not None:
        _record(report, getattr(args, "db", None))
    if args.report:
        from pos_sim.reports import write_report

        try:
            write_report(report, args.report)
        except (OSError, ValueError) as exc:
            print(f"pos-sim diag: {exc}", file=sys.stderr)
            report.exit_status |= exitcodes.USAGE
    if args.json:
        print(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
    else:
        print_human(report, catalogue, paint, sys.stdout)
    return report.exit_status


def _fail(args: argparse.Namespace, exc: DriverError, lang: str, catalogue: Catalogue) -> int:
    if args.json:
        print(json.dumps({"schema_version": SCHEMA_VERSION, "port": args.port, "device": None, "results": [],
                          "verdict": None, "complete": False, "not_tested": [], "error": str(exc),
                          "exit_status": exc.exit_code}, ensure_ascii=False))
    print(f"pos-sim diag: {exc}", file=sys.stderr)
    return exc.exit_code


def print_human(report: DiagnosticReport, cat: Catalogue, paint: Any, out: TextIO) -> None:
    """The table, the advice and the repair-ticket block."""
    lang = report.lang
    d = report.device
    print(file=out)
    if d is not None:
        print(f"{d.manufacturer} {d.model}  {cat.label('ticket_field', 'serial_number', lang)} {d.serial}  "
              f"{cat.label('ticket_field', 'firmware_version', lang)} {d.firmware_version}  "
              f"[{d.lifecycle}{' · ' + d.merchant_id if d.merchant_id else ''}]", file=out)
    why = {n.component: cat.label("not_tested_reason", n.reason, lang) for n in report.not_tested}
    rows = [(cat.label("component", f.component, lang) if f.component in NATURAL_ORDER else f.component,
             f.verdict, cat.label("verdict", f.verdict, lang), f.code or "",
             f"({why[f.component]})" if f.verdict == "skipped" and f.component in why else f.message)
            for f in report.results]
    width = max((_width(r[0]) for r in rows), default=8) + 2
    vwidth = max((_width(r[2]) for r in rows), default=6) + 2
    for name, key, verdict, code, message in rows:
        print(f"  {_pad(name, width)}{paint(_pad(verdict, vwidth), key)}{code + '  ' if code else ''}"
              f"{'' if key == 'pass' and not code else message}", file=out)
    for f in report.communication:
        print(f"  {_pad(cat.label('category', 'communication', lang), width)}"
              f"{paint(_pad(cat.label('verdict', f.verdict, lang), vwidth), f.verdict)}{f.code}  {f.message}",
              file=out)
    bad = [f for f in [*report.results, *report.communication]
           if f.advice and f.verdict in ("fail", "warn", "error", "skipped")]
    if bad:
        print(file=out)
        print(cat.label("heading", "advice", lang), file=out)
        printed: set[str] = set()
        for names, message, all_steps in advice_groups(bad, cat, lang):
            steps = [s for s in all_steps if s not in printed]
            if not steps:
                continue    # every step was given above for another part
            printed.update(steps)
            print(f"  {', '.join(names)}: {message}", file=out)
            for i, step in enumerate(steps, 1):
                print(f"    {i}. {step}", file=out)
    print(file=out)
    print(f"{cat.label('heading', 'overall', lang)}: {verdict_line(report, cat, paint)}  exit {report.exit_status}",
          file=out)
    ticket = [f for f in report.results if f.repair_ticket]
    if ticket and d is not None:
        print(file=out)
        print(cat.label("ticket", "title", lang), file=out)
        print(f"  {cat.label('ticket_field', 'model', lang)}: {d.manufacturer} {d.model}", file=out)
        print(f"  {cat.label('ticket_field', 'serial_number', lang)}: {d.serial}", file=out)
        print(f"  {cat.label('ticket_field', 'firmware_version', lang)}: {d.firmware_version}", file=out)
        print(f"  {cat.label('ticket_field', 'hardware_revision', lang)}: {d.hardware_rev}", file=out)
        print(f"  {cat.label('ticket_field', 'fault_descriptions', lang)}:", file=out)
        for f in ticket:
            print(f"    - {cat.label('component', f.component, lang)}: {f.code} {f.message}", file=out)
        print(f"  {cat.label('ticket', 'materials_intro', lang)}", file=out)
        for key in cat.keys("ticket_material"):
            print(f"    - {cat.label('ticket_material', key, lang)}", file=out)
        print(f"  {cat.label('ticket', 'backup_first', lang)}", file=out)


def verdict_line(report: DiagnosticReport, cat: Catalogue, paint: Any = None) -> str:
    """The overall verdict as the human output says it: with its explanation when every check of
    the plan ran, else with what it covers ("OK for the 4 checks that ran; 7 not tested ...")."""
    lang = report.lang
    paint = paint or (lambda text, key: text)
    overall = cat.label("overall", report.verdict, lang)
    detail = cat.label("overall_detail", verdict_detail_key(report), lang)
    if report.complete:
        return f"{paint(overall, report.verdict)} ({detail})"
    text = completeness_text(report, cat).replace(overall, paint(overall, report.verdict), 1)
    # "every check passed" is not true of an incomplete run; the other explanations still are
    return text if report.verdict == "ok" else f"{text} ({detail})"


def advice_groups(findings: list[Finding], cat: Catalogue, lang: str) -> list[tuple[list[str], str, list[str]]]:
    """Findings with the same message and advice as one entry (every part it concerns, the steps
    once): a link failure shows as each interrupted part and as a communication finding."""
    groups: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for f in findings:
        name = (cat.label("component", f.component, lang) if f.component in NATURAL_ORDER
                else cat.label("category", "communication", lang) if f.component == "link" else f.component)
        names = groups.setdefault((f.message, f.advice), [])
        if name not in names:
            names.append(name)
    return [(names, message, list(steps)) for (message, steps), names in groups.items()]


def _width(text: str) -> int:
    """Columns a string takes on a terminal (CJK characters take two)."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def _record(report: DiagnosticReport, db: str | None) -> None:
    """File the run in the registry; say so only once it is committed, and never fail the run."""
    from pos_sim.registry import Registry, RegistryError

    try:
        with Registry.open(db) as reg:
            saved = reg.record_run(report)
    except (RegistryError, OSError) as exc:
        print(f"pos-sim diag: the run was not recorded in the registry: {exc}", file=sys.stderr)
        return
    print(f"recorded as run #{saved.id} (pos-sim runs {saved.serial})", file=sys.stderr)
