"""PortWorker drives any machine that keeps the small Machine protocol, over a real pty: what the
machine queues is written, what the port reads is handed in with the worker's clock, events go
to the owner, and a pulled cable ends the thread through ``on_error``."""

from __future__ import annotations

import threading
import time
from typing import Any

from drivers.link import Machine, PortWorker
from drivers.transport import open_port
from tests.drivers.ptypeer import PtyPeer


class Shouter:
    """A toy line protocol: every line received is answered in capitals, and an event says so."""

    def __init__(self) -> None:
        self.buffer = b""
        self.out: list[bytes] = [b"hello\n"]
        self.pending: list[Any] = []
        self.times: list[float] = []

    def receive_data(self, data: bytes, now: float) -> None:
        self.times.append(now)
        self.buffer += data
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            self.out.append(line.upper() + b"\n")
            self.pending.append(("line", line))

    def advance(self, now: float) -> None:
        self.times.append(now)

    def next_deadline(self) -> float | None:
        return None

    def frames_to_send(self) -> list[bytes]:
        out, self.out = self.out, []
        return out

    def events(self) -> list[Any]:
        ev, self.pending = self.pending, []
        return ev


def wait_for(cond: Any, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "condition not reached"
        time.sleep(0.01)


def test_the_worker_drives_another_protocols_machine(peer: PtyPeer) -> None:
    machine: Machine = Shouter()
    got: list[Any] = []
    written: list[bytes] = []
    errors: list[tuple[BaseException, bool]] = []
    ticks = iter(range(1_000_000))
    worker = PortWorker(open_port(peer.path, read_timeout=0.02), machine, name="toy", lock=threading.Lock(),
                        on_events=got.extend, on_written=written.append,
                        on_error=lambda e, closing: errors.append((e, closing)),
                        clock=lambda: float(next(ticks)))
    worker.start()
    try:
        assert peer.read_raw(1.0).startswith(b"hello\n")
        peer.write(b"ping\nabc\n")
        wait_for(lambda: len(got) == 2)
        assert got == [("line", b"ping"), ("line", b"abc")]
        wait_for(lambda: len(written) == 3)
        assert written == [b"hello\n", b"PING\n", b"ABC\n"]
        times = machine.times   # type: ignore[attr-defined]
        assert times == sorted(times) and all(t == int(t) for t in times)   # the worker's clock, no other
        peer.unplug()
        wait_for(lambda: bool(errors))
        assert errors[0][1] is False        # not closing: a broken port
        worker.thread.join(5)
        assert worker.stopping and not worker.thread.is_alive()
    finally:
        worker.stop()
