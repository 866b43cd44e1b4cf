"""pyserial URL handler ``emu://``: an emulated terminal in this process, as a serial port.

    serial.serial_for_url("emu://healthy?speed=50&baud=115200&state=/tmp/x.json")
    serial.serial_for_url("emu:///abs/path/to/scenario.toml?speed=inf")

Options (all optional): ``speed`` (a number, or ``inf``), ``baud`` (the emulated line's rate;
default: the port's ``baudrate``, which pyserial defaults to 9600; once open, ``baudrate``
reports the URL's rate so the host's timers follow it), ``state`` (a state file path),
``confirm_timeout`` and ``session_timeout`` (seconds; tests shorten them), ``break`` (names of
:mod:`pos_sim.emulator.breaks`, comma-separated: firmware that breaks one conformance clause each).

Opening starts an :class:`~pos_sim.emulator.server.EmulatorServer` on one end of a
``socket.socketpair()`` and reads and writes the other end, like pyserial's own
``protocol_socket``; closing stops it.  The server is ``port.emulator``, so a test can call
``port.emulator.unplug()`` or ``unplug_after_bytes(n)``: afterwards ``read`` raises
``SerialException`` as on a closed socket.  ``cancel_read()`` and ``cancel_write()`` wake a
blocked ``read`` / ``write`` from another thread, as on pyserial's POSIX ports.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import select
import socket
import struct
import termios
import urllib.parse
from typing import Any

from serial.serialutil import (
    PortNotOpenError,
    SerialBase,
    SerialException,
    SerialTimeoutException,
    Timeout,
    to_bytes,
)

from pos_sim.emulator.errors import EmulatorError
from pos_sim.emulator.server import EmulatorServer
from pos_sim.emulator.urlhandler.modem_lines import NoModemLines

_OPTIONS = ("speed", "baud", "state", "confirm_timeout", "session_timeout", "break")


def parse_url(url: str) -> tuple[str, dict[str, Any]]:
    """Split an ``emu://`` URL into the scenario (name or path) and the server's options."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() != "emu":
        raise SerialException(f"expected a URL like emu://SCENARIO?speed=50, not {url!r}")
    target = urllib.parse.unquote(parts.netloc + parts.path)
    if target != "/":
        target = target.rstrip("/")
    if not target:
        raise SerialException(f"{url}: no scenario (emu://healthy, or emu:///path/to/scenario.toml)")
    options: dict[str, Any] = {}
    for key, values in urllib.parse.parse_qs(parts.query, keep_blank_values=True).items():
        if key not in _OPTIONS:
            raise SerialException(f"{url}: unknown option {key!r} (known: {', '.join(_OPTIONS)})")
        value = values[-1]
        try:
            if key == "baud":
                if not value.isdigit() or int(value) <= 0:
                    raise SerialException(f"{url}: option baud={value!r} is not a positive whole number of baud")
                options[key] = int(value)
            elif key == "state":
                options["state_path"] = value
            elif key == "break":
                from pos_sim.emulator.breaks import check_breaks

                try:
                    options["breaks"] = sorted(check_breaks(value.split(",")))
                except ValueError as exc:
                    raise SerialException(f"{url}: {exc}") from None
            else:
                number = float(value)
                if math.isnan(number) or number <= 0:
                    raise ValueError(value)
                options[key] = number
        except ValueError:
            raise SerialException(f"{url}: option {key}={value!r} is not a positive number") from None
    return target, options


def _drain(fd: int) -> None:
    with contextlib.suppress(BlockingIOError):
        while os.read(fd, 1024):
            pass


class Serial(NoModemLines, SerialBase):  # type: ignore[misc]  # pyserial ships no type information
    """A serial port whose other end is an emulated terminal in this process."""

    is_open: bool
    _baudrate: int
    BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._socket: socket.socket | None = None
        self._abort_read: tuple[int, int] | None = None
        self._abort_write: tuple[int, int] | None = None
        #: the emulator behind this port (for tests: unplug, stats)
        self.emulator: EmulatorServer | None = None
        super().__init__(*args, **kwargs)

    def open(self) -> None:
        """Start the emulator and connect to it."""
        if self._port is None:
            raise SerialException("Port must be configured before it can be used.")
        if self.is_open:
            raise SerialException("Port is already open.")
        target, options = parse_url(self.portstr)
        options.setdefault("baud", int(self.baudrate))
        # the URL's rate is the line's: report it, so the host's timers follow it
        self._baudrate = options["baud"]
        try:
            server = EmulatorServer(target, **options)
        except (EmulatorError, ValueError) as exc:
            raise SerialException(str(exc)) from exc
        ours, theirs = socket.socketpair()
        try:
            server.serve_fd(theirs.detach())
        except EmulatorError as exc:
            ours.close()
            server.stop()
            raise SerialException(str(exc)) from exc
        ours.setblocking(False)
        self._socket = ours
        self._abort_read = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._abort_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.emulator = server
        self.is_open = True

    def close(self) -> None:
        """Disconnect and stop the emulator (its state is saved)."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        for pipe in (self._abort_read, self._abort_write):
            for fd in pipe or ():
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._abort_read = self._abort_write = None
        if self.emulator is not None:
            self.emulator.stop()
        self.is_open = False

    def _reconfigure_port(self) -> None:
        """Nothing to configure: the line speed was fixed when the emulator started."""

    def _sock(self) -> socket.socket:
        if not self.is_open or self._socket is None:
            raise PortNotOpenError()
        return self._socket

    @property
    def in_waiting(self) -> int:
        """Bytes received and not yet read."""
        sock = self._sock()
        raw = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
        return int(struct.unpack("I", raw)[0])

    def read(self, size: int = 1) -> bytes:
        """Read up to ``size`` bytes, waiting at most ``timeout`` (None: until they are all in)."""
        sock = self._sock()
        assert self._abort_read is not None
        abort = self._abort_read[0]
        data = bytearray()
        timeout = Timeout(self._timeout)
        while len(data) < size:
            ready, _, _ = select.select([sock.fileno(), abort], [], [], timeout.time_left())
            if abort in ready:
                _drain(abort)  # cancel_read(): return what we have
                break
            if not ready:
                break
            try:
                chunk = sock.recv(size - len(data))
            except BlockingIOError:
                continue
            except OSError as exc:
                raise SerialException(f"read failed: {exc}") from exc
            if not chunk:
                raise SerialException("emulator disconnected (line unplugged or emulator stopped)")
            data += chunk
            if timeout.expired():
                break
        return bytes(data)

    def write(self, data: Any) -> int:
        """Write everything, waiting at most ``write_timeout``."""
        sock = self._sock()
        view = memoryview(to_bytes(data))
        total = len(view)
        timeout = Timeout(self._write_timeout)
        while view:
            try:
                sent = sock.send(view)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                raise SerialException(f"write failed: {exc}") from exc
            view = view[sent:]
            if not view:
                break
            if timeout.is_non_blocking:
                return total - len(view)
            assert self._abort_write is not None
            abort = self._abort_write[0]
            readable, ready, _ = select.select([abort], [sock], [], timeout.time_left())
            if abort in readable:
                _drain(abort)  # cancel_write(): report what went out
                return total - len(view)
            if not ready:
                raise SerialTimeoutException("Write timeout")
        return total

    def cancel_read(self) -> None:
        """Wake a ``read`` blocked in another thread; it returns what it has."""
        if self._abort_read is not None:
            with contextlib.suppress(BlockingIOError):
                os.write(self._abort_read[1], b"x")

    def cancel_write(self) -> None:
        """Wake a ``write`` blocked in another thread."""
        if self._abort_write is not None:
            with contextlib.suppress(BlockingIOError):
                os.write(self._abort_write[1], b"x")

    def reset_input_buffer(self) -> None:
        """Discard what was received and not read."""
        sock = self._sock()
        while True:
            try:
                if not sock.recv(4096):
                    return
            except BlockingIOError:
                return
            except OSError as exc:
                raise SerialException(f"read failed: {exc}") from exc

    def _require_open(self) -> None:
        self._sock()

    def fileno(self) -> int:
        """The socket's descriptor, for select."""
        return self._sock().fileno()
