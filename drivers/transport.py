"""Opening ports: any pyserial URL or device path, with errors a technician can act on.

``open_port`` goes through ``serial.serial_for_url`` so device paths, ``socket://``,
``rfc2217://`` and our own schemes (``emu://`` registered by the application through
``serial.protocol_handler_packages``) all take the same code path.  Local serial devices are
opened exclusively (``flock``), so a second program cannot interleave bytes with ours.

``rfc2217://`` is pyserial's RFC 2217 client with two things made right for a remote bench:
no write timeout (the client cannot take one) and a reader thread that ends quietly when the
server hangs up; docs/drivers.md ("Remote bench") has the ser2net side and the quirks.
"""

from __future__ import annotations

import errno
import os
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import serial
import serial.rfc2217

from drivers.errors import DriverError, PermissionDenied, PortBusy, PortNotFound, PortOpenError
from protocols.pos import timing

DEFAULT_BAUD = timing.DEFAULT_BAUD
#: how long the I/O thread blocks in one read when nothing arrives (it is woken early to send)
READ_SLICE = 0.02
#: longest a write may block (a device that stopped reading) on backends that can bound it
WRITE_TIMEOUT = 2.0

_PERMISSION_HINT = (
    "add yourself to the port's group (usually dialout: `sudo usermod -aG dialout $USER`, then log in "
    "again) or install a udev rule giving the device to your user"
)


def _is_url(port: str) -> bool:
    return re.match(r"^[a-z][a-z0-9+.-]*://", port) is not None


class _Rfc2217Port(serial.rfc2217.Serial):  # type: ignore[misc]  # pyserial ships no type information
    """pyserial's RFC 2217 client, with a reader thread that ends quietly when the server hangs up.

    pyserial 3.5 answers the server's telnet options from its reader thread; when the server has
    closed the connection meanwhile (ser2net does, after "Port already in use", for a client of a
    port that is taken), the BrokenPipeError or ConnectionResetError of that answer kills the
    thread with a traceback on stderr.  Here the thread ends as on any hang-up instead: the open
    fails in one line, and later reads fail with "reader thread died" (DeviceDisconnected).
    """

    #: how the server ended the connection, when it did (None: it did not, or we closed it)
    hung_up: str | None = None

    def _telnet_read_loop(self) -> None:
        try:
            super()._telnet_read_loop()
        except OSError as exc:
            self.hung_up = exc.strerror or str(exc) or type(exc).__name__
            self._read_buffer.put(None)   # what pyserial's own loop leaves for readers on a hang-up
            return
        if self.is_open:   # the loop ends by itself only when the connection did
            self.hung_up = "it closed the connection"


def _new_port(port: str, **settings: Any) -> serial.SerialBase:
    """``serial.serial_for_url(port, do_not_open=True, **settings)``, with :class:`_Rfc2217Port`
    for rfc2217:// (built the way serial_for_url builds pyserial's own class)."""
    if port.lower().startswith("rfc2217://"):
        ser = _Rfc2217Port(None, **settings)
        ser.port = port
        return ser
    return serial.serial_for_url(port, do_not_open=True, **settings)


def _takes_write_timeout(ser: serial.SerialBase) -> bool:
    """Whether this backend accepts a write timeout.

    pyserial 3.5's RFC 2217 client raises NotImplementedError from every (re)configuration
    once ``write_timeout`` is set, so it must never be set there; its writes are bounded
    anyway, by the 5 s timeout of its TCP socket.
    """
    return not isinstance(ser, serial.rfc2217.Serial)


#: the options pyserial 3.5's ``from_url`` accepts after ``?`` for each network scheme; anything
#: else makes it refuse the URL
_NETWORK_URL_OPTIONS: dict[str, tuple[str, ...]] = {
    "socket": ("logging",),
    "rfc2217": ("ign_set_control", "logging", "poll_modem", "timeout"),
}
_LOG_LEVELS = ("debug", "info", "warning", "error")


def _url_problem(port: str, scheme: str) -> str | None:
    """What pyserial 3.5 finds wrong with a socket:// or rfc2217:// URL, said plainly (None: nothing).

    pyserial's own wording is no help here: a missing port number comes out as a comparison with
    None, and a bad socket:// option as a stray format field.
    """
    parts = urlsplit(port)
    try:
        number = parts.port
    except ValueError:
        return "the port number is not a number from 0 to 65535"
    if not parts.hostname and number is None:
        return "there is no host or port"
    if number is None:
        return "there is no port number after the host"
    known = _NETWORK_URL_OPTIONS[scheme]
    for option, values in parse_qs(parts.query, keep_blank_values=True).items():
        if option not in known:
            return f"{scheme}:// knows no option {option!r} (it takes {', '.join(known)})"
        value = values[-1]
        if option == "logging" and value not in _LOG_LEVELS:
            return f"logging= takes {'|'.join(_LOG_LEVELS)}, not {value!r}"
        if option == "timeout":
            try:
                float(value)
            except ValueError:
                return f"timeout= takes seconds, not {value!r}"
    return None


def _with_option(port: str, option: str) -> str:
    return f"{port}{'&' if '?' in port else '?'}{option}"


def _network_open_error(port: str, scheme: str, text: str) -> DriverError | None:
    """Our error for what a socket:// or rfc2217:// open said, when it needs more than the OS's words."""
    problem = _url_problem(port, scheme)
    if problem is not None:
        return PortNotFound(f"{port}: not a usable {scheme}:// URL: {problem}; write {scheme}://HOST:PORT"
                            + ("[?ign_set_control]" if scheme == "rfc2217" else ""))
    if "Name or service not known" in text or "name resolution" in text or "No address associated" in text:
        return PortNotFound(f"{port}: unknown host {urlsplit(port).hostname!r} (check the bench PC's name "
                            "or use its IP address)")
    if text.endswith("timed out") and "Could not open port" in text:
        return PortNotFound(f"{port}: no answer from {urlsplit(port).netloc} (connection timed out): is that "
                            "machine on, reachable and serving the port?")
    if scheme != "rfc2217":
        return None
    # RFC 2217 negotiation, in the order pyserial 3.5's client runs it at open
    if "does not seem to support RFC2217" in text:
        return PortOpenError(f"{port}: could not open: the server there does not speak RFC 2217 (telnet "
                             "COM-PORT-OPTION); for a raw TCP port use socket://, or give ser2net's accepter "
                             "telnet(rfc2217),tcp,...")
    if "does not accept parameter change" in text:
        return PortOpenError(f"{port}: could not open: the RFC 2217 server did not confirm the line settings "
                             "(baud rate, 8N1); check the serial device on the server, or allow more time "
                             f"with {_with_option(port, 'timeout=10')}")
    m = re.search(r"timeout while waiting for option '(\w+)'", text)
    if m and m.group(1) == "control" and "ign_set_control" not in port:
        return PortOpenError(f"{port}: could not open: the RFC 2217 server never confirmed setting DTR/RTS "
                             "(ser2net does not when its device cannot set them, a pseudo-terminal for one); add "
                             f"?ign_set_control to the URL: {_with_option(port, 'ign_set_control')}")
    if m:
        return PortOpenError(f"{port}: could not open: the RFC 2217 server did not confirm {m.group(1)!r} in "
                             f"time; allow more with {_with_option(port, 'timeout=10')}")
    return None


def describe_open_error(port: str, exc: BaseException) -> DriverError:
    """Turn what pyserial or the OS said about an open into one of our typed errors."""
    code = getattr(exc, "errno", None)
    text = str(exc)
    if code is None:
        m = re.search(r"\[Errno (\d+)\]", text)
        code = int(m.group(1)) if m else None
    if isinstance(exc, ValueError) and "protocol" in text and "not known" in text:
        scheme = port.split("://", 1)[0]
        return PortNotFound(f"{port}: unknown port scheme {scheme!r} (use a device path, socket://, "
                            "rfc2217:// or emu://SCENARIO)")
    scheme = port.split("://", 1)[0] if _is_url(port) else ""
    if scheme in _NETWORK_URL_OPTIONS:
        found = _network_open_error(port, scheme, text)
        if found is not None:
            return found
    if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
        hint = "is the terminal plugged in? `pos-sim ports` lists what is connected"
        return PortNotFound(f"{port}: no such port ({hint})")
    if code in (errno.EACCES, errno.EPERM):
        return PermissionDenied(f"{port}: permission denied; {_PERMISSION_HINT}")
    if code in (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK) or "exclusively lock" in text:
        return PortBusy(f"{port}: port busy, another program has it open (close it, or find it with "
                        f"`fuser {port}`)")
    if code in (errno.ENOTTY, errno.EISDIR) or "Inappropriate ioctl" in text or re.search(r"\(25, ", text):
        # pyserial configures the line with termios, which a file, a directory or /dev/null refuse
        return PortOpenError(f"{port}: not a serial port (give a device path such as /dev/ttyUSB0 or a URL; "
                             f"`pos-sim ports` lists what is connected)")
    if code == errno.ECONNREFUSED or "Connection refused" in text:
        return PortNotFound(f"{port}: connection refused, nothing is listening there")
    first = text.splitlines()[0] if text else type(exc).__name__
    return PortOpenError(f"{port}: could not open: {first}")


def open_port(port: str, *, baudrate: int = DEFAULT_BAUD, read_timeout: float = READ_SLICE,
              exclusive: bool = True, **kwargs: Any) -> serial.SerialBase:
    """Open a device path or pyserial URL for the protocol: 8N1, no flow control, exclusive.

    Writes time out after :data:`WRITE_TIMEOUT` where the backend can bound them (not over
    rfc2217://, see :func:`_takes_write_timeout`); ``kwargs`` go to pyserial as they are.  Whatever
    pyserial or the OS raises at open leaves as a :class:`PortOpenError` (exit status 2).
    """
    if not _is_url(port) and not os.path.exists(port):
        raise describe_open_error(port, FileNotFoundError(errno.ENOENT, "No such file or directory"))
    ser: Any = None
    try:
        ser = _new_port(port, baudrate=baudrate, timeout=read_timeout, **kwargs)
        if "write_timeout" not in kwargs and _takes_write_timeout(ser):
            ser.write_timeout = WRITE_TIMEOUT
        if exclusive and isinstance(ser, serial.Serial):
            ser.exclusive = True
        ser.open()
    except (serial.SerialException, OSError, ValueError, NotImplementedError) as exc:
        # NotImplementedError too: a backend refusing a setting it does not have is still a port
        # that could not be opened, one line for the technician, not a traceback
        hung_up = getattr(ser, "hung_up", None)
        if hung_up is not None:
            raise PortOpenError(f"{port}: could not open: the server hung up during the RFC 2217 negotiation "
                                f"({hung_up}); is another client using the port? (ser2net tells it 'Port "
                                "already in use')") from exc
        raise describe_open_error(port, exc) from exc
    return ser
