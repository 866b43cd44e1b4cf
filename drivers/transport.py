"""Opening ports: any pyserial URL or device path, with errors a technician can act on.

``open_port`` goes through ``serial.serial_for_url`` so device paths, ``socket://``,
``rfc2217://`` and our own schemes (``emu://`` registered by the application through
``serial.protocol_handler_packages``) all take the same code path.  Local serial devices are
opened exclusively (``flock``), so a second program cannot interleave bytes with ours.
"""

from __future__ import annotations

import errno
import os
import re
from typing import Any

import serial

from drivers.errors import DriverError, PermissionDenied, PortBusy, PortNotFound, PortOpenError

DEFAULT_BAUD = 115200
#: how long the I/O thread blocks in one read when nothing arrives (it is woken early to send)
READ_SLICE = 0.02

_PERMISSION_HINT = (
    "add yourself to the port's group (usually dialout: `sudo usermod -aG dialout $USER`, then log in "
    "again) or install a udev rule giving the device to your user"
)


def _is_url(port: str) -> bool:
    return re.match(r"^[a-z][a-z0-9+.-]*://", port) is not None


def describe_open_error(port: str, exc: BaseException) -> DriverError:
    """Turn what pyserial or the OS said about an open into one of our typed errors."""
    code = getattr(exc, "errno", None)
    text = str(exc)
    if code is None:
        m = re.search(r"\[Errno (\d+)\]", text)
        code = int(m.group(1)) if m else None
    if isinstance(exc, ValueError) and "protocol" in text:
        scheme = port.split("://", 1)[0]
        return PortNotFound(f"{port}: unknown port scheme {scheme!r} (use a device path, socket://, "
                            "rfc2217:// or emu://SCENARIO)")
    if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
        hint = "is the terminal plugged in? `pos-sim ports` lists what is connected"
        return PortNotFound(f"{port}: no such port ({hint})")
    if code in (errno.EACCES, errno.EPERM):
        return PermissionDenied(f"{port}: permission denied; {_PERMISSION_HINT}")
    if code in (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK) or "exclusively lock" in text:
        return PortBusy(f"{port}: port busy, another program has it open (close it, or find it with "
                        f"`fuser {port}`)")
    if code == errno.ECONNREFUSED or "Connection refused" in text:
        return PortNotFound(f"{port}: connection refused, nothing is listening there")
    first = text.splitlines()[0] if text else type(exc).__name__
    return PortOpenError(f"{port}: could not open: {first}")


def open_port(port: str, *, baudrate: int = DEFAULT_BAUD, read_timeout: float = READ_SLICE,
              exclusive: bool = True, **kwargs: Any) -> serial.SerialBase:
    """Open a device path or pyserial URL for the protocol: 8N1, no flow control, exclusive."""
    if not _is_url(port) and not os.path.exists(port):
        raise describe_open_error(port, FileNotFoundError(errno.ENOENT, "No such file or directory"))
    try:
        ser = serial.serial_for_url(port, baudrate=baudrate, timeout=read_timeout, write_timeout=2.0,
                                    do_not_open=True, **kwargs)
        if exclusive and isinstance(ser, serial.Serial):
            ser.exclusive = True
        ser.open()
    except (serial.SerialException, OSError, ValueError) as exc:
        raise describe_open_error(port, exc) from exc
    return ser
