"""pyserial URL handler ``replay://``: a recorded terminal, as a serial port.

    serial.serial_for_url("replay://fixtures/captures/healthy.cap")      # relative path
    serial.serial_for_url("replay:///tmp/session.cap.gz?max_gap=0.1")    # absolute path

Options: ``max_gap`` (seconds, default 0.25): the longest recorded gap kept between the
terminal's chunks; ``baud``: the line rate the host's timers assume (default: the rate in the
capture's header, which ``baudrate`` reports once open).  The host's writes are compared with
the recording; a frame it does not have raises :class:`~pos_sim.replay.player.ReplayMismatch`
(a ``SerialException``) from ``write``.
The player is ``port.player`` (``mismatch``, ``finished``, ``unplayed_host_frames``).
"""

from __future__ import annotations

import math
import urllib.parse
from typing import Any

from serial.serialutil import PortNotOpenError, SerialBase, SerialException, to_bytes

from pos_sim.emulator.urlhandler.modem_lines import NoModemLines
from pos_sim.replay.player import DEFAULT_MAX_GAP, CapturePlayer

_OPTIONS = ("max_gap", "baud")


def parse_url(url: str) -> tuple[str, dict[str, float]]:
    """Split a ``replay://`` URL into the capture's path and the player's options."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() != "replay":
        raise SerialException(f"expected a URL like replay://FILE, not {url!r}")
    path = urllib.parse.unquote(parts.netloc + parts.path)
    if not path:
        raise SerialException(f"{url}: no capture file (replay://path/to/capture.cap)")
    options: dict[str, float] = {}
    for key, values in urllib.parse.parse_qs(parts.query, keep_blank_values=True).items():
        if key not in _OPTIONS:
            raise SerialException(f"{url}: unknown option {key!r} (known: {', '.join(_OPTIONS)})")
        try:
            number = float(values[-1])
        except ValueError:
            number = math.nan
        if key == "baud" and not (number.is_integer() and number > 0):
            raise SerialException(f"{url}: option baud={values[-1]!r} is not a positive whole number")
        if math.isnan(number) or number < 0:
            raise SerialException(f"{url}: option {key}={values[-1]!r} is not a number of seconds")
        options[key] = number
    return path, options


class Serial(NoModemLines, SerialBase):  # type: ignore[misc]  # pyserial ships no type information
    """A serial port whose other end is a recorded terminal."""

    is_open: bool

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        #: the player behind this port (for tests and ``pos-sim replay``)
        self.player: CapturePlayer | None = None
        super().__init__(*args, **kwargs)

    def open(self) -> None:
        """Load the capture."""
        if self._port is None:
            raise SerialException("Port must be configured before it can be used.")
        if self.is_open:
            raise SerialException("Port is already open.")
        path, options = parse_url(self.portstr)
        # a capture that cannot be read raises SerialException naming the file and the problem
        self.player = CapturePlayer(path, max_gap=options.get("max_gap", DEFAULT_MAX_GAP))
        # the recorded line's rate (the URL's ?baud= first): the host's timers follow it
        baud = int(options.get("baud", 0)) or getattr(self.player.header, "baud", 0)
        if isinstance(baud, int) and baud > 0:
            self._baudrate = baud
        self.is_open = True

    def close(self) -> None:
        """Stop playing (the player keeps its state for inspection)."""
        if self.player is not None:
            self.player.cancel()
        self.is_open = False

    def _reconfigure_port(self) -> None:
        """Nothing to configure."""

    def _player(self) -> CapturePlayer:
        if not self.is_open or self.player is None:
            raise PortNotOpenError()
        return self.player

    @property
    def in_waiting(self) -> int:
        """Recorded bytes due now and not yet read."""
        return self._player().in_waiting

    def read(self, size: int = 1) -> bytes:
        """Read what the recorded terminal sends, waiting at most ``timeout``."""
        return self._player().read(size, self._timeout)

    def write(self, data: Any) -> int:
        """Compare with the recording; raises ``ReplayMismatch`` on a difference."""
        raw = to_bytes(data)
        self._player().write(raw)
        return len(raw)

    def cancel_read(self) -> None:
        """Wake a blocked ``read`` from another thread."""
        if self.player is not None:
            self.player.cancel()

    def cancel_write(self) -> None:
        """Writes never block."""

    def reset_input_buffer(self) -> None:
        """Ignored: every recorded byte is delivered."""
        self._player()

    def _require_open(self) -> None:
        self._player()
