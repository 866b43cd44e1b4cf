"""Port URLs the application adds to pyserial (``emu://`` for the built-in emulator)."""

from __future__ import annotations


def register_url_schemes() -> None:
    """Make ``serial.serial_for_url`` know our schemes; safe to call more than once."""
    try:
        from pos_sim.emulator import register_url_scheme
    except ImportError:  # the emulator package is optional for the rest of the tool
        return
    register_url_scheme()
