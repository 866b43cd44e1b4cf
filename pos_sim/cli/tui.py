"""``pos-sim tui [PORT]`` and ``pos-sim demo [--scenario NAME]``: the live TUI.

``tui --device escpos`` (or ``auto`` finding one) shows a receipt printer: its one tile with
its decoded status bits and its self-test; what only a terminal has (device screen, keypad,
capture) says "not on a receipt printer" or is hidden.

``demo`` starts the emulated terminal in this process on a pseudo-terminal and connects to it
through the real serial path, so a newcomer sees the whole product without hardware.  Without a
terminal on stdout it prints ``pos-sim diag`` output instead and exits with its status.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from drivers.device import KINDS
from pos_sim.cli.registry import add_db_option
from pos_sim.errors import UsageError
from pos_sim.ports import add_baud_option

DEMO_SCENARIO = "dropped"
DEMO_SPEED = 5.0


def keys_epilog() -> str:
    """Every key of the main screen, one a line (the help screen's table, in English)."""
    from pos_sim.tui.text import DEVICE_HELP_ROWS, HELP_ROWS

    def table(rows: tuple[tuple[str, tuple[str, str]], ...]) -> str:
        return "\n".join(f"  {key:<8} {texts[1]}" for key, texts in rows)

    return f"keys of the main screen:\n{table(HELP_ROWS)}\n\nkeys of the device screen (d):\n{table(DEVICE_HELP_ROWS)}"


def add_parser(sub: Any) -> None:
    """Add ``tui`` and ``demo`` to the command line."""
    p = sub.add_parser(
        "tui", help="the live bench screen: tiles, keypad map, frame log",
        description="Open the live TUI on PORT (device path, pyserial URL or emu://SCENARIO); "
                    "without PORT, a picker lists the serial ports and the emulator's scenarios. "
                    "The tiles show each component's status before any test runs; when a run ends "
                    "the screen says the overall verdict, what was not tested and why, and records "
                    "the run in the registry as `pos-sim diag` does (docs/tui.md).",
        epilog=keys_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("port", metavar="PORT", nargs="?", help="device path or URL (see `pos-sim ports`)")
    p.add_argument("--lang", metavar="zh|en", help="language (default: from the locale)")
    p.add_argument("--plan", choices=("full", "quick", "drop"), default="full", help="plan for run all (default full)")
    p.add_argument("--keys", metavar="FILE",
                   help="key file for the device screen's lifecycle actions (default: POS_SIM_KEYS, else "
                        "keys.toml in your config directory)")
    add_db_option(p)
    p.add_argument("--no-record", action="store_true",
                   help="do not record the runs in the registry (the screen says so after each run)")
    p.add_argument("--backup-dir", metavar="DIR",
                   help="where the device screen puts transaction-log backups (default ~/pos-sim-backups)")
    p.add_argument("--device", choices=KINDS, default="auto",
                   help="what is on PORT: a pos-sim terminal, an ESC/POS receipt printer (its one tile with "
                        "its status bits and test; docs/escpos.md), or auto: DLE EOT 1 first, then HELLO "
                        "(default auto)")
    add_baud_option(p)
    p.set_defaults(func=run_tui)

    d = sub.add_parser(
        "demo", help="run the emulated terminal live in the TUI (no hardware needed)",
        description="Start the built-in emulator on a pseudo-terminal, connect to it through the real "
                    "serial path and run the full self-test live. Without a terminal on stdout, print "
                    "`pos-sim diag` output instead (non-interactive) and exit with its status.")
    d.add_argument("--scenario", default=DEMO_SCENARIO, metavar="NAME",
                   help=f"emulator scenario (default {DEMO_SCENARIO})")
    d.add_argument("--lang", metavar="zh|en", help="language (default: from the locale)")
    d.add_argument("--speed", type=float, default=DEMO_SPEED, metavar="X",
                   help=f"emulator speed factor (default {DEMO_SPEED:g})")
    add_baud_option(d, help="the emulated terminal's line rate, in baud (default 115200): the emulator moves "
                            "bytes at it and the TUI's timers follow it")
    d.set_defaults(func=run_demo)


def _lang(value: str | None, command: str) -> str | None:
    if value is None:
        return None
    from pos_sim.diagnostics.catalogue import normalize_language

    try:
        return normalize_language(value)
    except ValueError:
        raise UsageError(f"pos-sim {command}: unknown language {value!r} (use zh or en)") from None


def run_tui(args: argparse.Namespace) -> int:
    """Carry out ``pos-sim tui``."""
    from drivers.link import LinkTimings
    from pos_sim.tui import PosSimApp

    timings = LinkTimings(baud=args.baud) if getattr(args, "baud", None) else None
    app = PosSimApp(args.port, lang=_lang(args.lang, "tui"), plan=args.plan, keys=args.keys, db=args.db,
                    backup_dir=args.backup_dir, timings=timings, record=not args.no_record,
                    device_kind=getattr(args, "device", "auto"), baud=getattr(args, "baud", None))
    app.run()
    return app.return_code or 0


def run_demo(args: argparse.Namespace, *, tty: bool | None = None) -> int:
    """Carry out ``pos-sim demo``; the emulator is stopped whatever happens."""
    from pos_sim.emulator import EmulatorServer, ScenarioError, load_scenario, scenario_names

    lang = _lang(args.lang, "demo")
    if not args.speed > 0:
        raise UsageError("pos-sim demo: --speed must be more than 0")
    try:
        scenario = load_scenario(args.scenario)
    except (ScenarioError, OSError):
        raise UsageError(f"pos-sim demo: no scenario {args.scenario!r}; scenarios: "
                         f"{', '.join(scenario_names())}") from None
    baud = getattr(args, "baud", None) or 115200
    server = EmulatorServer(scenario, speed=args.speed, baud=baud)
    try:
        path = server.serve_pty()
        if tty is None:
            tty = sys.stdout.isatty()
        if not tty:
            from pos_sim.cli import diag as diag_cmd

            return diag_cmd.run(argparse.Namespace(
                port=path, plan="full", tests=None, json=False, report=None, lang=lang, non_interactive=True,
                timeout=diag_cmd.DEFAULT_TIMEOUT, baud=baud))
        from drivers.link import LinkTimings
        from pos_sim.tui import PosSimApp

        app = PosSimApp(path, lang=lang, autorun=True, timings=LinkTimings(baud=baud))
        app.run()
        return app.return_code or 0
    finally:
        server.stop()
