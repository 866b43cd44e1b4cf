"""``pos-sim ports``: list serial ports, known terminals first, by their stable names."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from drivers.discovery import KnownTerminals, KnownTerminalsError, PortInfo, list_ports
from pos_sim import exitcodes

SCHEMA_VERSION = 1

NONE_FOUND = "No serial ports found."
NONE_FOUND_HINT = (
    "Plug in the terminal (or its USB-serial cable) and run this again; `dmesg | tail` shows what "
    "the kernel saw when it was plugged in. No terminal at hand? `pos-sim emulate --scenario healthy` "
    "serves an emulated one, and `pos-sim ports --all` lists the built-in emu:// scenarios."
)


class PortLister(Protocol):
    """What ``run`` calls to enumerate ports (``list_ports``, or a test's enumeration)."""

    def __call__(self, *, known: KnownTerminals | None = None) -> list[PortInfo]: ...


def add_parser(sub: Any) -> None:
    """Add ``ports`` to the command line."""
    p = sub.add_parser(
        "ports", help="list serial ports and mark the ones that look like payment terminals",
        description="List this machine's serial ports: known payment terminals first, then other "
                    "USB ports, then the rest. Each port is shown by its /dev/serial/by-id name "
                    "when udev made one, because that name survives re-plugging and changes in "
                    "enumeration order (/dev/ttyACM0 may become /dev/ttyACM1); pass it to "
                    "`pos-sim info PORT`. Ports whose USB VID:PID is in the known-terminals table "
                    "are marked with the terminal's vendor and model, or as a USB-serial adapter "
                    "a terminal may sit behind. Exit status is 0, also when no port is found.",
        epilog="The known-terminals table is drivers/data/known_terminals.toml; each entry names "
               "its source.")
    p.add_argument("--json", action="store_true",
                   help='print one JSON object: {"schema_version": 1, "ports": [...]}')
    p.add_argument("--all", action="store_true",
                   help="also list the built-in emulator's scenarios as emu://NAME pseudo-ports")
    p.set_defaults(func=run)


def emulator_scenarios() -> list[str] | None:
    """The emulator's scenario names, or None when this build has no emulator."""
    try:
        module = importlib.import_module("pos_sim.emulator")
    except ModuleNotFoundError as exc:
        if exc.name in ("pos_sim.emulator", "pos_sim"):
            return None
        raise
    names = getattr(module, "scenario_names", None)
    if names is None:
        return None
    found = names() if callable(names) else names
    return sorted(str(name) for name in found)


def emulated_port(scenario: str) -> dict[str, Any]:
    """An ``emu://`` pseudo-port as JSON data, with the same keys as a real port."""
    data = PortInfo(device=f"emu://{scenario}", description=f"emulated terminal, scenario {scenario}").as_dict()
    data["kind"] = "emulator"
    return data


def run(args: argparse.Namespace, *, lister: PortLister = list_ports,
        scenarios: Callable[[], list[str] | None] = emulator_scenarios) -> int:
    """Carry out ``pos-sim ports``; always exit status 0."""
    try:
        ports = lister()
    except KnownTerminalsError as exc:
        # the ports themselves are still worth listing: only the terminal marks are lost
        print(f"pos-sim ports: warning: {exc}; terminals are not marked", file=sys.stderr)
        ports = lister(known=KnownTerminals())
    emulated: list[str] = []
    no_emulated = ""
    if args.all:
        names = scenarios()
        emulated = names or []
        if names is None:
            no_emulated = "(this build has no emulator, so there are no emu:// ports to list)"
        elif not names:
            no_emulated = "(the emulator has no scenarios, so there are no emu:// ports to list)"
    if args.json:
        entries = [port.as_dict() for port in ports] + [emulated_port(name) for name in emulated]
        print(json.dumps({"schema_version": SCHEMA_VERSION, "ports": entries}, indent=2, ensure_ascii=False))
        return exitcodes.OK
    for line in render_table(ports, emulated):
        print(line)
    if no_emulated:
        print(no_emulated)
    return exitcodes.OK


def render_table(ports: Sequence[PortInfo], emulated: Sequence[str] = ()) -> list[str]:
    """The human listing: an aligned table, or what to do when nothing was found."""
    lines: list[str] = []
    rows = [_row(port) for port in ports] + [
        (f"emu://{name}", "-", "-", f"emulated terminal, scenario {name}", "emulator") for name in emulated]
    if not ports:
        lines += [NONE_FOUND, NONE_FOUND_HINT]
        if rows:
            lines.append("")
    if rows:
        header = ("PORT", "VID:PID", "SERIAL", "DESCRIPTION", "IDENTIFIED AS")
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for r in [header, *rows]:
            lines.append("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
    if rows:
        lines += ["", f"{count_line(ports, emulated)}. Connect with `pos-sim info PORT`."]
    return lines


def count_line(ports: Sequence[PortInfo], emulated: Sequence[str] = ()) -> str:
    """What the table lists, counted: ``3 ports, 1 known terminal, 8 emulated (emu://)``."""
    terminals = sum(port.is_terminal for port in ports)
    found = f"{len(ports)} {'serial ' if not ports else ''}port{'s' if len(ports) != 1 else ''}"
    if terminals:
        found += f", {terminals} known terminal{'s' if terminals != 1 else ''}"
    if emulated:
        found += f", {len(emulated)} emulated terminal{'s' if len(emulated) != 1 else ''} (emu://)"
    return found


def _row(port: PortInfo) -> tuple[str, str, str, str, str]:
    known = port.known
    if known is None:
        identified = ""
    elif known.is_terminal:
        identified = f"terminal: {known.label}"
    elif known.is_printer:
        identified = f"receipt printer: {known.label} (pos-sim diag --device escpos)"
    else:
        identified = f"adapter: {known.label}; a terminal may sit behind it"
    return (port.preferred_path, port.vid_pid or "-", port.serial_number or "-",
            port.description or "-", identified)
