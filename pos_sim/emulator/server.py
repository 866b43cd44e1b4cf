"""Serving the emulated terminal on a line: a pseudo-terminal, a TCP port, or a descriptor.

:class:`EmulatorServer` runs one :class:`~pos_sim.emulator.engine.TerminalEngine` in one
background thread.  That thread alone touches the line: it reads what the host sends, holds
it back to line rate (:class:`~pos_sim.emulator.line.LineDirection`) before the engine sees
it, and writes what the engine answers in small slices at line rate.  It sleeps in ``select``
until the earliest of: input, the engine's next deadline, the next slice due either way, or a
wake-up from another thread (stop, unplug).  No polling interval, so the only latency added
to the line time is the thread's wake-up.

A pulled cable is :meth:`EmulatorServer.unplug` (the line closes at once: on a pty the master
is closed, so the host's reads fail as they do when a USB terminal is pulled) or
:meth:`EmulatorServer.unplug_after_bytes` (after exactly n more bytes, both directions
counted, for tests that cut an exchange at every byte offset).

A power cycle is :meth:`EmulatorServer.restart`: the line stays open, the firmware starts
again (a new engine: a new boot id, uptime from zero, no session, no self-test running, bytes
in flight lost) from the state it had saved, as a terminal does when its power is cut and
comes back while the cable stays in.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import select
import socket
import threading
import time
import tty
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from pos_sim.emulator.engine import TerminalEngine
from pos_sim.emulator.errors import LineError, StateFileError
from pos_sim.emulator.line import LineDirection
from pos_sim.emulator.scenario import Scenario, load_scenario
from pos_sim.emulator.state import StateStore

_READ_SIZE = 65536
#: Linux's TCP_QUICKACK (absent elsewhere)
_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)
#: how long unplug() and stop() wait for the server thread to act
_JOIN_TIMEOUT = 5.0


@dataclass(frozen=True)
class ServerStats:
    """A snapshot of what crossed the line and what the deframer and the faults did."""

    bytes_in: int
    bytes_out: int
    frames_in: int
    frames_out: int
    connections: int
    deframer: dict[str, int] = field(default_factory=dict)
    engine: dict[str, int] = field(default_factory=dict)
    #: what the line's faults did: corrupted / dropped / delayed, per direction
    link: dict[str, int] = field(default_factory=dict)


class _Reboot:
    """One :meth:`EmulatorServer.restart` call, waiting for the server thread to carry it out."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: Exception | None = None

    def finish(self, error: Exception | None) -> None:
        self.error = error
        self.done.set()


class EmulatorServer:
    """An emulated terminal served on one line by one background thread."""

    def __init__(self, scenario: Scenario | str | Path, *, baud: int = 115200, speed: float = 1.0,
                 state_path: str | os.PathLike[str] | None = None, confirm_timeout: float | None = None,
                 session_timeout: float | None = None, breaks: Sequence[str] = ()) -> None:
        if baud <= 0:
            raise ValueError("baud must be positive")
        if not speed > 0:
            raise ValueError("speed must be positive (inf: every duration is zero)")
        self.scenario = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        self.baud = baud
        self.speed = speed
        self._store = StateStore(state_path)
        # read the state now, in the caller's thread, so a bad file is the caller's error
        self._state = self._store.load(self.scenario)
        self._engine_options: dict[str, Any] = {}
        if confirm_timeout is not None:
            self._engine_options["confirm_timeout"] = confirm_timeout
        if session_timeout is not None:
            self._engine_options["session_timeout"] = session_timeout
        #: non-conforming firmware on purpose (pos_sim.emulator.breaks), for conformance tests
        self._engine_class: type[TerminalEngine] = TerminalEngine
        if breaks:
            from pos_sim.emulator.breaks import BrokenEngine, check_breaks

            self._engine_options["breaks"] = check_breaks(breaks)
            self._engine_class = BrokenEngine
        self._engine: TerminalEngine | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._stopping = False
        self._unplug_requested = False
        #: the cut, as a count of bytes crossed (both ways, as ``stats`` counts them)
        self._cut_at: int | None = None
        self._reboots: list[_Reboot] = []
        #: how many times :meth:`restart` power-cycled the terminal
        self.restarts = 0
        self._line_closed = threading.Event()
        self._line_gone = False
        self._kind = ""
        self._line_fd: int | None = None
        self._slave_fd: int | None = None
        self._listener: socket.socket | None = None
        self._client: socket.socket | None = None
        self._rx = LineDirection(baud, self.scenario.link, "host->terminal")
        self._tx = LineDirection(baud, self.scenario.link, "terminal->host")
        self._unwritten = bytearray()
        self._bytes_in = 0
        self._bytes_out = 0
        self._connections = 0
        self._closed = False
        #: the URL or path the line is served at, once serving
        self.port: str | None = None
        #: an unexpected exception that ended the server thread (None when all went well)
        self.error: BaseException | None = None

    # -- serving -------------------------------------------------------------------------------

    def serve_pty(self) -> str:
        """Serve on a new pseudo-terminal; return the slave's path (``/dev/pts/N``)."""
        self._claim("pty")
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line discipline: bytes pass as they are
        os.set_blocking(master, False)
        # the slave stays open here too: without it the master reads EIO whenever no host has
        # the port open, and the emulator would spin instead of waiting for one
        self._line_fd, self._slave_fd = master, slave
        self._connections = 1
        self.port = os.ttyname(slave)
        self._start()
        return self.port

    def serve_tcp(self, port: int = 0) -> str:
        """Serve on TCP 127.0.0.1:``port`` (0: any free port); return ``socket://127.0.0.1:N``.

        One client at a time; a new client after a disconnect gets a fresh session.
        """
        self._claim("tcp")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", port))
            listener.listen(1)
        except OSError as exc:
            listener.close()
            self._kind = ""
            raise LineError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from exc
        listener.setblocking(False)
        self._listener = listener
        self.port = f"socket://127.0.0.1:{listener.getsockname()[1]}"
        self._start()
        return self.port

    def serve_fd(self, fd: int) -> None:
        """Serve on an open descriptor (one end of a socket pair); the server closes it."""
        self._claim("fd")
        os.set_blocking(fd, False)
        self._line_fd = fd
        self._connections = 1
        self.port = f"fd:{fd}"
        self._start()

    def _claim(self, kind: str) -> None:
        if self._kind or self._closed:
            raise LineError("this emulator is already serving a line (or was stopped); make a new one")
        self._kind = kind

    def _start(self) -> None:
        try:
            self._engine = self._engine_class(self.scenario, now=time.monotonic(), speed=self.speed, baud=self.baud,
                                          store=self._store, state=self._state, **self._engine_options)
        except OSError as exc:
            self._close_line()
            raise StateFileError(f"{self._store.path}: cannot write state file: {exc.strerror or exc}") from exc
        self._thread = threading.Thread(target=self._run, name=f"pos-sim-emulator-{self.scenario.name}",
                                        daemon=True)
        self._thread.start()

    # -- control from other threads ------------------------------------------------------------

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):  # a wake-up already pending is enough
            os.write(self._wake_w, b"!")

    def _on_server_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def unplug(self) -> None:
        """Pull the cable: close the line at once (the host's next read fails)."""
        if self._thread is None or not self._thread.is_alive():
            self._close_line()
            return
        with self._lock:
            self._unplug_requested = True
        self._wake()
        if not self._on_server_thread():
            self._line_closed.wait(_JOIN_TIMEOUT)

    def unplug_after_bytes(self, n: int) -> None:
        """Close the line after ``n`` more bytes have crossed it, both directions counted."""
        if n < 0:
            raise ValueError("n must be 0 or more")
        if n == 0:
            self.unplug()
            return
        with self._lock:
            # from the same counters as ``stats``: a write the host has already read is counted
            # the moment it is made, so it can never be charged to a cut set after it
            self._cut_at = self._bytes_in + self._bytes_out + n
        self._wake()

    def restart(self) -> None:
        """Power-cycle the terminal without touching the line; return once it has booted again.

        The engine saves its state, as the firmware does when the power goes, and a new one
        boots from that state: a new boot id (never the old one), uptime from zero, no host
        session, no self-test running, nothing of what was on its way out or in.  The pty,
        socket or descriptor stays open, so the host sees no disconnect: only a terminal that
        answers as if it had just been switched on (docs/protocol.md section 6).  A crashed
        firmware (firmware-crash) comes back too, and reports the watchdog reset at HELLO.
        """
        if self._thread is None or not self._thread.is_alive() or self._closed:
            raise LineError("this emulator is not serving a line: nothing to restart")
        reboot = _Reboot()
        with self._lock:
            self._reboots.append(reboot)
        if self._on_server_thread():
            return  # done when the thread comes round its loop
        self._wake()
        if not reboot.done.wait(_JOIN_TIMEOUT):
            raise LineError("the emulator did not restart in time")
        if reboot.error is not None:
            raise reboot.error

    def stop(self) -> None:
        """Stop serving: end the thread, close the line, save the state.  Safe to call twice."""
        if self._closed:
            return
        with self._lock:
            self._stopping = True
        self._wake()
        if self._thread is not None and not self._on_server_thread():
            self._thread.join(_JOIN_TIMEOUT)
        if self._thread is None:
            self._close_line()
        self._closed = True
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> EmulatorServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the server thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def line_closed(self) -> bool:
        """Whether the line has been closed (unplugged, cut after n bytes, or stopped)."""
        return self._line_closed.is_set()

    @property
    def crashed(self) -> bool:
        """Whether the emulated firmware has crashed (firmware-crash scenario)."""
        return self._engine is not None and self._engine.crashed

    @property
    def stats(self) -> ServerStats:
        """Bytes and frames each way, deframer counters, engine counters, link faults."""
        engine = self._engine
        link = {f"{name}_{d}": getattr(line, name) for d, line in (("in", self._rx), ("out", self._tx))
                for name in ("corrupted", "dropped", "delayed")}
        return ServerStats(
            bytes_in=self._bytes_in, bytes_out=self._bytes_out,
            frames_in=engine.stats.frames_in if engine else 0, frames_out=engine.stats.frames_out if engine else 0,
            connections=self._connections,
            deframer=engine.deframer.stats.as_dict() if engine else {},
            engine=engine.stats.as_dict() if engine else {}, link=link)

    # -- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        engine = self._engine
        assert engine is not None
        try:
            while True:
                with self._lock:
                    stopping, unplug = self._stopping, self._unplug_requested
                    self._unplug_requested = False
                    reboots, self._reboots = self._reboots, []
                if stopping:
                    for reboot in reboots:
                        reboot.finish(LineError("the emulator stopped before it could restart"))
                    break
                if unplug:
                    self._close_line()
                if reboots:
                    engine = self._reboot(engine, reboots)
                if self._gone():
                    break
                now = time.monotonic()
                self._pump(engine, now)
                if self._gone():
                    break
                self._wait(engine, now)
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            self._close_line()
            engine.save(time.monotonic())
            with self._lock:
                reboots, self._reboots = self._reboots, []
            for reboot in reboots:
                reboot.finish(LineError("the line closed before the emulator could restart"))

    def _reboot(self, engine: TerminalEngine, reboots: list[_Reboot]) -> TerminalEngine:
        """The power went and came back: a new engine from the saved state (server thread)."""
        now = time.monotonic()
        try:
            engine.save(now)
            new = self._engine_class(self.scenario, now=now, speed=self.speed, baud=self.baud, store=self._store,
                                 state=engine.state, **self._engine_options)
        except OSError as exc:
            # the old firmware goes on: the caller hears why no restart happened
            err = StateFileError(f"{self._store.path}: cannot write state file: {exc.strerror or exc}")
            for reboot in reboots:
                reboot.finish(err)
            return engine
        while new.boot_id == engine.boot_id:  # drawn at random: a repeat would hide the restart
            new.boot_id = secrets.randbits(32)
        # what was on the wire either way dies with the power
        self._rx.clear()
        self._tx.clear()
        self._unwritten.clear()
        self._engine = new
        self.restarts += 1
        for reboot in reboots:
            reboot.finish(None)
        return new

    def _wait(self, engine: TerminalEngine, now: float) -> None:
        """Sleep until input, a wake-up, or the earliest deadline of the engine or the line."""
        times = [t for t in (engine.next_deadline(), self._rx.next_time(), self._tx.next_time()) if t is not None]
        timeout = max(0.0, min(times) - now) if times else None
        readers: list[Any] = [self._wake_r]
        writers: list[Any] = []
        if self._line_fd is not None:
            readers.append(self._line_fd)
            if self._unwritten:
                writers.append(self._line_fd)
        if self._listener is not None:
            readers.append(self._listener)  # also while a client is served: extra ones are turned away
        readable, _, _ = select.select(readers, writers, [], timeout)
        if self._wake_r in readable:
            with contextlib.suppress(BlockingIOError):
                os.read(self._wake_r, 4096)
        if self._listener is not None and self._listener in readable:
            self._accept(engine)
        if self._line_fd is not None and self._line_fd in readable:
            self._read(engine)

    def _accept(self, engine: TerminalEngine) -> None:
        assert self._listener is not None
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        if self._client is not None:
            client.close()  # one host at a time, as on a serial line
            return
        client.setblocking(False)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small frames, no Nagle delay
        self._client = client
        self._line_fd = client.fileno()
        self._connections += 1
        now = time.monotonic()
        self._rx.clear()
        self._tx.clear()
        self._unwritten.clear()
        engine.reset_session(now)

    def _read(self, engine: TerminalEngine) -> None:
        assert self._line_fd is not None
        try:
            data = os.read(self._line_fd, _READ_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno == errno.EINTR:
                return
            data = b""
        if not data:
            self._peer_gone(engine)
            return
        if self._client is not None and _QUICKACK is not None:
            # acknowledge at once: a client without TCP_NODELAY (pyserial's socket:// has none)
            # holds its next small frame until our ACK, and a delayed ACK costs 40 ms a frame
            with contextlib.suppress(OSError):
                self._client.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        self._rx.push(data, time.monotonic())

    def _peer_gone(self, engine: TerminalEngine) -> None:
        """The other end closed: a TCP client may come back, a descriptor's peer may not."""
        if self._kind == "tcp" and self._client is not None:
            self._client.close()
            self._client = None
            self._line_fd = None
            self._rx.clear()
            self._tx.clear()
            self._unwritten.clear()
            engine.reset_session(time.monotonic())
            return
        self._close_line()

    def _spend(self, n: int) -> int:
        """How many of ``n`` bytes may still cross before the cut (all of them without one)."""
        with self._lock:
            if self._cut_at is None:
                return n
            return max(0, min(n, self._cut_at - self._bytes_in - self._bytes_out))

    def _check_cut(self) -> None:
        """Close the line once the bytes counted so far reach the cut."""
        with self._lock:
            cut = self._cut_at is not None and self._bytes_in + self._bytes_out >= self._cut_at
            if cut:
                self._cut_at = None
        if cut:
            self._close_line()

    def _pump(self, engine: TerminalEngine, now: float) -> None:
        """Move bytes: line to engine at line rate, engine timers, engine to line at line rate."""
        if self._rx.pending:
            data = self._rx.take(now, self._spend(self._rx.pending))
            if data:
                with self._lock:
                    self._bytes_in += len(data)
                engine.receive(data, now)
                self._check_cut()
                if self._gone():
                    return
        engine.tick(now)
        out = engine.take_output()
        if self._line_fd is None and self._kind == "tcp":
            out = b""  # no client: the bytes would go nowhere
        if out:
            self._tx.push(out, now)
        if self._tx.pending:
            self._unwritten += self._tx.take(now)
        if self._unwritten and self._line_fd is not None:
            self._flush(engine)

    def _flush(self, engine: TerminalEngine) -> None:
        assert self._line_fd is not None
        n = self._spend(len(self._unwritten))
        if n <= 0:
            return
        # counted, and a cut announced, before the write: the host may read these bytes and
        # look at the stats before this thread runs again
        with self._lock:
            self._bytes_out += n
            final = self._cut_at is not None and self._bytes_in + self._bytes_out == self._cut_at
        if final:
            self._line_closed.set()
        try:
            written = os.write(self._line_fd, self._unwritten[:n])
        except BlockingIOError:
            written = 0  # the host is not reading; select waits until it is
        except OSError:
            with self._lock:
                self._bytes_out -= n
            self._peer_gone(engine)  # the host went away (EPIPE, ECONNRESET, EIO)
            return
        with self._lock:
            self._bytes_out -= n - written
        del self._unwritten[:written]
        self._check_cut()

    def _gone(self) -> bool:
        # a method, not the attribute: the calls in between may close the line, and mypy
        # would otherwise keep the attribute narrowed
        return self._line_gone

    def _close_line(self) -> None:
        """Close the line now (idempotent); later bytes go nowhere."""
        if self._line_gone:
            return
        self._line_gone = True
        # announced before the descriptors close: whoever sees the line fail sees it closed
        self._line_closed.set()
        for fd in (self._line_fd if self._client is None else None, self._slave_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        if self._client is not None:
            with contextlib.suppress(OSError):
                self._client.close()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
        self._line_fd = self._slave_fd = None
        self._client = self._listener = None
        self._rx.clear()
        self._tx.clear()
        self._unwritten.clear()
