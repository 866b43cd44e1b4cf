"""The emulator's exception family: one base, a few precise subclasses.

Each class carries the exit status the ``emulate`` command uses for it (docs/emulator.md): a
scenario or state file that cannot be used is a bad command line (1), a line that cannot be
opened is a port failure (2).
"""

from __future__ import annotations

from pos_sim import exitcodes


class EmulatorError(Exception):
    """Base of every error the emulator raises on purpose."""

    #: exit status of ``pos-sim emulate`` when this error stops it
    exit_code = exitcodes.USAGE


class ScenarioError(EmulatorError):
    """A scenario is unknown, unreadable, not TOML, or describes an impossible device."""


class StateFileError(EmulatorError):
    """The state file cannot be read, is not ours, or belongs to another terminal."""


class LineError(EmulatorError):
    """The line (pty, TCP port, descriptor) could not be opened or is already served."""

    exit_code = exitcodes.PORT
