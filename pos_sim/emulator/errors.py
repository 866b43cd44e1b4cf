"""The emulator's exception family: one base, a few precise subclasses.

The ``emulate`` command turns each into its exit status (docs/emulator.md): a scenario or
state file that cannot be used is a bad command line, a line that cannot be opened is a port
failure.  The emulator imports nothing of the application, so the numbers live there.
"""

from __future__ import annotations


class EmulatorError(Exception):
    """Base of every error the emulator raises on purpose."""


class ScenarioError(EmulatorError):
    """A scenario is unknown, unreadable, not TOML, or describes an impossible device."""


class StateFileError(EmulatorError):
    """The state file cannot be read, is not ours, or belongs to another terminal."""


class LineError(EmulatorError):
    """The line (pty, TCP port, descriptor) could not be opened or is already served."""
