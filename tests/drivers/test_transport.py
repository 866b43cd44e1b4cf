"""Opening ports: every failure is a typed error with a message a technician can act on."""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from drivers.errors import PermissionDenied, PortBusy, PortNotFound, PortOpenError
from drivers.transport import describe_open_error, open_port
from tests.drivers.ptypeer import PtyPeer


@pytest.fixture
def peer() -> Iterator[PtyPeer]:
    p = PtyPeer()
    yield p
    p.close()


def test_opens_a_pty_exclusively(peer: PtyPeer) -> None:
    port = open_port(peer.path)
    try:
        assert port.is_open and port.baudrate == 115200
        with pytest.raises(PortBusy, match="another program"):
            open_port(peer.path)
    finally:
        port.close()
    open_port(peer.path).close()   # free again once closed


def test_missing_device() -> None:
    with pytest.raises(PortNotFound, match=r"no such port.*pos-sim ports"):
        open_port("/dev/ttyNOSUCHPORT9")


def test_unknown_scheme() -> None:
    with pytest.raises(PortNotFound, match="unknown port scheme 'nosuch'"):
        open_port("nosuch://x")


def test_nothing_listening() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port_no = s.getsockname()[1]
    s.close()   # the port is free now: nothing listens there
    with pytest.raises(PortNotFound, match="connection refused"):
        open_port(f"socket://127.0.0.1:{port_no}")


def test_not_a_serial_device(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "plain-file")
    with open(path, "w") as f:
        f.write("x")
    with pytest.raises(PortOpenError) as info:
        open_port(path)
    assert info.value.exit_code == 2


def test_permission_denied_says_how_to_fix_it(peer: PtyPeer) -> None:
    if os.geteuid() != 0:
        os.chmod(peer.path, 0)
        with pytest.raises(PermissionDenied, match=r"dialout.*udev"):
            open_port(peer.path)
        return
    # root opens anything, so feed the mapping what pyserial raises for EACCES
    exc = serial.SerialException(errno.EACCES, f"could not open port {peer.path}: [Errno 13] Permission denied")
    err = describe_open_error(peer.path, exc)
    assert isinstance(err, PermissionDenied) and "dialout" in str(err) and "udev" in str(err)
    assert err.exit_code == 2


@pytest.mark.parametrize("kind", ["file", "directory", "devnull"])
def test_a_path_that_is_not_a_tty_is_not_a_serial_port(tmp_path: Path, kind: str) -> None:
    path = {"file": tmp_path / "notes.txt", "directory": tmp_path, "devnull": Path("/dev/null")}[kind]
    if kind == "file":
        path.write_text("not a port\n")
    with pytest.raises(PortOpenError) as info:
        open_port(str(path))
    message = str(info.value)
    assert message == (f"{path}: not a serial port (give a device path such as /dev/ttyUSB0 or a URL; "
                       "`pos-sim ports` lists what is connected)")
    assert "Inappropriate ioctl" not in message and "\n" not in message
