"""Captures played back as a port: ``replay://FILE`` (see docs/capture-format.md, "Replay").

:class:`~pos_sim.replay.player.CapturePlayer` plays the terminal's side of a capture;
:mod:`pos_sim.replay.urlhandler.protocol_replay` makes it a pyserial port, so the whole stack
(link, terminal, diagnostics) runs against a recording.
"""

from __future__ import annotations

from pos_sim.replay.player import CapturePlayer, ReplayMismatch

URL_HANDLER_PACKAGE = "pos_sim.replay.urlhandler"


def register_url_scheme() -> None:
    """Make ``serial.serial_for_url("replay://FILE")`` play a capture (idempotent)."""
    import serial

    if URL_HANDLER_PACKAGE not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append(URL_HANDLER_PACKAGE)


__all__ = ["URL_HANDLER_PACKAGE", "CapturePlayer", "ReplayMismatch", "register_url_scheme"]
