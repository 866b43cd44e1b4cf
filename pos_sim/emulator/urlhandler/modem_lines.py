"""What a port without wires answers about modem lines and breaks.

Our in-process pyserial ports (``emu://``, ``replay://``) have no RTS/DTR/CTS/DSR, no carrier and
no break condition: this mixin gives them the answers a three-wire serial cable would, in one
place.  A port class puts it before ``SerialBase`` and says how to check that it is open.
"""

from __future__ import annotations


class NoModemLines:
    """Modem lines always ready, breaks ignored; every call still fails on a closed port."""

    def _require_open(self) -> None:
        """Raise ``PortNotOpenError`` when the port is closed (each port knows how)."""
        raise NotImplementedError

    def reset_output_buffer(self) -> None:
        """Nothing is buffered on the way out."""
        self._require_open()

    def send_break(self, duration: float = 0.25) -> None:
        """There is no break condition; ignored."""
        self._require_open()

    def _update_break_state(self) -> None:
        """Ignored (no break condition)."""

    def _update_rts_state(self) -> None:
        """Ignored (no modem lines)."""

    def _update_dtr_state(self) -> None:
        """Ignored (no modem lines)."""

    @property
    def cts(self) -> bool:
        """Always clear to send."""
        self._require_open()
        return True

    @property
    def dsr(self) -> bool:
        """Always ready."""
        self._require_open()
        return True

    @property
    def ri(self) -> bool:
        """Never ringing."""
        self._require_open()
        return False

    @property
    def cd(self) -> bool:
        """Carrier always present."""
        self._require_open()
        return True
