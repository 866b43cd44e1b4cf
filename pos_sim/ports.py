"""Port URLs the application adds to pyserial: ``emu://`` (the built-in emulator) and
``replay://`` (a recorded capture served as a terminal)."""

from __future__ import annotations

from pos_sim import replay
from pos_sim.emulator import register_url_scheme as register_emu


def register_url_schemes() -> None:
    """Make ``serial.serial_for_url`` know our schemes; safe to call more than once."""
    register_emu()
    replay.register_url_scheme()
