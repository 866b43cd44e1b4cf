"""Opening network ports (rfc2217://, socket://): what a backend refuses is one line, exit 2.

The RFC 2217 server here is pyserial's own (``serial.rfc2217.PortManager``, the server half of
the client under test) in front of a ``loop://`` port, so the whole telnet and COM-PORT-OPTION
negotiation runs for real.  The same client against Debian's ser2net is in
tests/integration/test_ser2net.py.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Iterator

import pytest
import serial
import serial.rfc2217

from drivers.errors import PortNotFound, PortOpenError
from drivers.transport import describe_open_error, open_port


class _Connection:
    """The socket as PortManager wants it: something with a thread-safe ``write``."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lock = threading.Lock()

    def write(self, data: bytes) -> None:
        with self.lock:
            self.sock.sendall(data)


class Rfc2217LoopServer:
    """pyserial's RFC 2217 server on 127.0.0.1, serving ``loop://`` (what is written comes back)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"rfc2217://127.0.0.1:{self.listener.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="test rfc2217 server", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.listener], [], [], 0.05)
            if ready:
                conn, _ = self.listener.accept()
                with conn:
                    self._session(conn)

    def _session(self, conn: socket.socket) -> None:
        line = serial.serial_for_url("loop://", timeout=0)
        manager = serial.rfc2217.PortManager(line, _Connection(conn))
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([conn], [], [], 0.02)
                if ready:
                    data = conn.recv(4096)
                    if not data:
                        return
                    line.write(b"".join(manager.filter(data)))
                waiting = line.in_waiting
                if waiting:
                    manager.connection.write(b"".join(manager.escape(line.read(waiting))))
        except OSError:
            return   # the client went away mid-write
        finally:
            line.close()

    def close(self) -> None:
        """Stop serving and join the thread."""
        self._stop.set()
        self._thread.join(5)
        self.listener.close()


@pytest.fixture
def rfc2217_server() -> Iterator[Rfc2217LoopServer]:
    server = Rfc2217LoopServer()
    yield server
    server.close()


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word; yields its number."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            if select.select([listener], [], [], 0.05)[0]:
                accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept, name="test silent listener", daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(5)
    for conn in accepted:
        conn.close()
    listener.close()


def _one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text and "Traceback" not in text, text
    return text


def test_rfc2217_opens_and_carries_every_byte_value(rfc2217_server: Rfc2217LoopServer) -> None:
    # pyserial 3.5's RFC 2217 client raised NotImplementedError at open when given a write timeout
    port = open_port(rfc2217_server.url, read_timeout=0.1)
    try:
        assert port.is_open and port.baudrate == 115200
        sent = bytes(range(256))   # 0xFF is telnet's IAC: it must be escaped there and back
        port.write(sent)
        got = b""
        for _ in range(100):
            got += port.read(len(sent) - len(got))
            if len(got) == len(sent):
                break
        assert got == sent
    finally:
        port.close()


def test_a_setting_the_backend_refuses_is_a_one_line_open_error(rfc2217_server: Rfc2217LoopServer) -> None:
    # asked for explicitly, the write timeout reaches pyserial, whose RFC 2217 client raises
    # NotImplementedError after the telnet negotiation: still "could not open", exit 2
    with pytest.raises(PortOpenError) as info:
        open_port(rfc2217_server.url, write_timeout=1.0)
    text = _one_line(info.value)
    assert info.value.exit_code == 2
    assert text == f"{rfc2217_server.url}: could not open: write_timeout is currently not supported"
    assert isinstance(info.value.__cause__, NotImplementedError)


def test_rfc2217_to_a_server_that_says_nothing(silent_listener: int) -> None:
    url = f"rfc2217://127.0.0.1:{silent_listener}?timeout=0.5"
    with pytest.raises(PortOpenError) as info:
        open_port(url)
    text = _one_line(info.value)
    assert info.value.exit_code == 2
    assert text.startswith(f"{url}: could not open: the server there does not speak RFC 2217")
    assert "socket://" in text and "telnet(rfc2217)" in text


@pytest.mark.parametrize(("url", "says"), [
    ("rfc2217://127.0.0.1:{n}?nosuch", "rfc2217:// knows no option 'nosuch' (it takes ign_set_control, logging, "
                                       "poll_modem, timeout)"),
    ("rfc2217://127.0.0.1:{n}?ign_set_control&timeout=soon", "timeout= takes seconds, not 'soon'"),
    ("rfc2217://127.0.0.1:99999", "the port number is not a number from 0 to 65535"),
    ("rfc2217://127.0.0.1", "there is no port number after the host"),
    ("socket://127.0.0.1:{n}?nosuch", "socket:// knows no option 'nosuch' (it takes logging)"),
    ("socket://127.0.0.1:{n}?logging=loud", "logging= takes debug|info|warning|error, not 'loud'"),
    ("socket://127.0.0.1", "there is no port number after the host"),
])
def test_a_bad_network_url_is_one_line_saying_what_is_wrong(silent_listener: int, url: str, says: str) -> None:
    url = url.format(n=silent_listener)
    with pytest.raises(PortNotFound) as info:
        open_port(url)
    text = _one_line(info.value)
    assert info.value.exit_code == 2
    scheme = url.split("://")[0]
    assert text.startswith(f"{url}: not a usable {scheme}:// URL: {says}; write {scheme}://HOST:PORT"), text


def test_socket_url_options_pyserial_accepts_still_open(silent_listener: int) -> None:
    # the URL check only words pyserial's refusals: it must not refuse what pyserial takes
    port = open_port(f"socket://127.0.0.1:{silent_listener}?logging=error")
    with contextlib.closing(port):
        assert port.is_open


@pytest.mark.parametrize(("url", "suggested"), [
    ("rfc2217://bench:2217", "rfc2217://bench:2217?ign_set_control"),
    ("rfc2217://bench:2217?timeout=5", "rfc2217://bench:2217?timeout=5&ign_set_control"),
])
def test_an_unconfirmed_control_change_says_to_add_ign_set_control(url: str, suggested: str) -> None:
    # what pyserial 3.5's client raises when the server never answers SET_CONTROL (ser2net on a
    # pty does that for real: tests/integration/test_ser2net.py)
    exc = serial.SerialException("timeout while waiting for option 'control'")
    err = describe_open_error(url, exc)
    assert isinstance(err, PortOpenError) and err.exit_code == 2
    assert str(err).endswith(f"add ?ign_set_control to the URL: {suggested}")
