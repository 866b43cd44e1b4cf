"""`Terminal.status_all`, against a terminal played by the test on a real pty: a component's
refusal or silence is that component's result; a silent terminal or a lost session is raised."""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from drivers.errors import ResponseTimeout, SessionLost
from drivers.link import Link, LinkTimings
from drivers.terminal import ComponentStatus, Terminal
from drivers.transport import open_port
from protocols.pos import Frame, FrameDeframer, MessageType, encode_message
from protocols.pos.codes import FrameFlag
from tests.drivers.ptypeer import PtyPeer

FAST = LinkTimings(response_base=0.15, inter_byte=0.05, keepalive_idle=60.0, busy_backoff=0.05)
RESP = int(FrameFlag.RESPONSE)
# system (bit 1), printer (bit 5), power (bit 9)
HELLO_REPLY = {"protocol_version": 1, "max_payload": 1024, "components": (1 << 1) | (1 << 5) | (1 << 9),
               "serial": "SP5", "boot_id": 3}
INFO = {"manufacturer": "SimPOS", "model": "SP-M7", "serial": "SP5", "hardware_rev": "B", "firmware_version": "1",
        "lifecycle": "bound", "merchant_id": "", "activated_at": 0, "clock": 0}
POWER = {"source": "battery", "voltage_mv": 3700, "current_ma": -150, "battery_pct": 44, "battery_status": "normal",
         "battery_temp_c": 25}

#: what the played terminal answers to a frame: (type, fields) to send, or None for silence
Answer = Callable[[Frame], tuple[int, dict[str, Any]] | None]


@pytest.fixture
def played() -> Iterator[Callable[[Answer], tuple[Terminal, list[Frame]]]]:
    """A Terminal connected (HELLO answered) to a terminal the test plays with ``answer``;
    also the frames the host sent, as they arrive."""
    running: list[tuple[Terminal, PtyPeer, threading.Event, threading.Thread]] = []

    def start(answer: Answer) -> tuple[Terminal, list[Frame]]:
        peer = PtyPeer()
        stop = threading.Event()
        seen: list[Frame] = []
        deframer = FrameDeframer()

        def loop() -> None:
            while not stop.is_set():
                r, _, _ = select.select([peer.master], [], [], 0.05)
                if not r:
                    continue
                for frame in deframer.feed(os.read(peer.master, 4096)):
                    seen.append(frame)
                    reply = (MessageType.HELLO_REPLY, HELLO_REPLY) if frame.type == MessageType.HELLO else answer(frame)
                    if reply is not None:
                        peer.write(encode_message(reply[0], reply[1], seq=frame.seq, flags=RESP))

        t = threading.Thread(target=loop, name="played terminal")
        t.start()
        link = Link(open_port(peer.path, read_timeout=FAST.read_slice), timings=FAST, name=peer.path)
        term = Terminal(link)
        link.start()
        running.append((term, peer, stop, t))
        term.connect()
        return term, seen

    yield start
    for term, peer, stop, t in running:
        term.close()
        stop.set()
        t.join()
        peer.close()


def _status_requests(seen: list[Frame]) -> list[int]:
    """The component byte of every STATUS_REQUEST sent, retransmits included."""
    return [f.payload[0] for f in seen if f.type == MessageType.STATUS_REQUEST]


def test_each_component_gets_its_own_result(played: Callable[[Answer], tuple[Terminal, list[Frame]]]) -> None:
    def answer(frame: Frame) -> tuple[int, dict[str, Any]] | None:
        if frame.type == MessageType.INFO_REQUEST:
            return MessageType.INFO_REPLY, INFO
        if frame.type == MessageType.PING:
            return MessageType.PONG, {"uptime_ms": 50_000_000}
        if frame.type == MessageType.STATUS_REQUEST:
            if frame.payload[0] == 9:
                return MessageType.STATUS_REPLY, {"component": "power", "status": POWER}
            if frame.payload[0] == 5:
                return MessageType.NAK, {"reason": "not_permitted"}
        return None   # the system's status never comes

    term, seen = played(answer)
    assert term.hello is not None and term.hello.components == ("system", "printer", "power")
    results = term.status_all()
    assert list(results) == ["system", "printer", "power"]
    assert results["power"] == ComponentStatus("power", POWER)
    assert results["power"].ok
    assert results["printer"] == ComponentStatus("printer", None, "refused", "not_permitted")
    system = results["system"]
    assert not system.ok and system.problem == "timeout" and "STATUS_REQUEST" in system.reason
    # four sends for the silent one, then on to the next: it was asked and nothing more
    assert _status_requests(seen) == [1, 1, 1, 1, 5, 9]
    assert any(f.type == MessageType.PING for f in seen)   # the terminal itself was checked


def test_only_the_components_asked_for(played: Callable[[Answer], tuple[Terminal, list[Frame]]]) -> None:
    term, seen = played(lambda f: (MessageType.STATUS_REPLY, {"component": "power", "status": POWER})
                        if f.type == MessageType.STATUS_REQUEST else None)
    assert list(term.status_all(["power"])) == ["power"]
    assert _status_requests(seen) == [9]


def test_a_silent_terminal_is_raised_not_reported_per_component(
        played: Callable[[Answer], tuple[Terminal, list[Frame]]]) -> None:
    term, seen = played(lambda f: None)   # HELLO answered, then nothing at all
    with pytest.raises(ResponseTimeout, match="PING"):
        term.status_all()
    assert _status_requests(seen) == [1, 1, 1, 1]   # the printer and power were never asked


def test_a_lost_session_is_raised(played: Callable[[Answer], tuple[Terminal, list[Frame]]]) -> None:
    # the terminal restarted: it refuses every request that needs a session, INFO included
    term, _ = played(lambda f: (MessageType.NAK, {"reason": "not_permitted"})
                     if f.type in (MessageType.STATUS_REQUEST, MessageType.INFO_REQUEST) else None)
    with pytest.raises(SessionLost):
        term.status_all()
