"""The emulated terminal: a POS terminal in software that speaks docs/protocol.md byte for byte.

Scenarios (``pos_sim/emulator/scenarios/*.toml``) describe a device and its faults; the engine is the
firmware (sans-I/O); the server puts it on a line (pty, TCP, or in-process through the
``emu://`` pyserial URL scheme) at the configured baud rate.  docs/emulator.md is the manual.
"""

from __future__ import annotations

from pos_sim.emulator.errors import EmulatorError, LineError, ScenarioError, StateFileError
from pos_sim.emulator.scenario import Scenario, load_scenario, scenario_names
from pos_sim.emulator.server import EmulatorServer, ServerStats

#: the package pyserial searches for ``protocol_emu``
URL_HANDLER_PACKAGE = "pos_sim.emulator.urlhandler"


def register_url_scheme() -> None:
    """Make ``serial.serial_for_url("emu://...")`` open an in-process emulator (idempotent)."""
    import serial

    if URL_HANDLER_PACKAGE not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append(URL_HANDLER_PACKAGE)


__all__ = [
    "URL_HANDLER_PACKAGE",
    "EmulatorError",
    "EmulatorServer",
    "LineError",
    "Scenario",
    "ScenarioError",
    "ServerStats",
    "StateFileError",
    "load_scenario",
    "register_url_scheme",
    "scenario_names",
]
