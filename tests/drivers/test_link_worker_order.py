"""The port worker's order within one round, over a real pty: what the machine queued in answer
to the bytes just read is on the wire before the events of those bytes are handed on (an ACK
does not wait for the subscribers)."""

from __future__ import annotations

import threading
import time
from typing import Any

from drivers.link import PortWorker
from drivers.transport import open_port
from tests.drivers.ptypeer import PtyPeer
from tests.drivers.test_link_worker import Shouter


def wait_for(cond: Any, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "condition not reached"
        time.sleep(0.01)


def test_answers_are_written_before_their_events_are_handed_on(peer: PtyPeer) -> None:
    machine = Shouter()
    written: list[bytes] = []
    seen_at_event: list[tuple[Any, list[bytes]]] = []
    worker = PortWorker(open_port(peer.path, read_timeout=0.02), machine, name="toy", lock=threading.Lock(),
                        on_events=lambda evs: seen_at_event.extend((ev, list(written)) for ev in evs),
                        on_written=written.append, on_error=lambda e, closing: None)
    worker.start()
    try:
        assert peer.read_raw(1.0).startswith(b"hello\n")
        for word in (b"one", b"two", b"three"):
            peer.write(word + b"\n")
            wait_for(lambda w=word: any(ev == ("line", w) for ev, _ in seen_at_event))
        for (_, line), before in seen_at_event:
            assert line.upper() + b"\n" in before, f"{line!r}: its answer was written before the event went on"
    finally:
        worker.stop()
        worker.thread.join(5)
