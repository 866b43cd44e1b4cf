"""Port URLs the application adds to pyserial: ``emu://`` (the built-in emulator) and
``replay://`` (a recorded capture served as a terminal); the ``--baud`` option every command
that opens a port shares."""

from __future__ import annotations

import argparse
from typing import Any

from pos_sim import replay
from pos_sim.emulator import register_url_scheme as register_emu


def register_url_schemes() -> None:
    """Make ``serial.serial_for_url`` know our schemes; safe to call more than once."""
    register_emu()
    replay.register_url_scheme()


#: the rates a serial terminal is set to in the field, for --help (any positive rate is taken)
COMMON_RATES = "1200 2400 4800 9600 19200 38400 57600 115200 230400 460800 921600"


def baud_rate(text: str) -> int:
    """argparse type for ``--baud``: a whole number of bits a second, 50 to 4,000,000."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of baud: {text!r}") from None
    if not 50 <= value <= 4_000_000:
        raise argparse.ArgumentTypeError(f"{value} baud is out of range (50 to 4000000; usual: {COMMON_RATES})")
    return value


def add_baud_option(p: Any, help: str | None = None) -> None:
    """Add ``--baud N`` to a command that opens a port."""
    p.add_argument("--baud", type=baud_rate, default=None, metavar="N",
                   help=help or "the line rate the terminal is set to, in baud (default 115200; every timer "
                                "follows it; an emu:// or replay:// URL takes ?baud=N instead)")
