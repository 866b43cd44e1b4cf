"""`pos-sim info` against ports that misbehave: one line, the right exit bit, no traceback, no hang."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator

import pytest

from protocols.pos import FrameDeframer, MessageType, encode_message
from protocols.pos.codes import FrameFlag
from tests.drivers.ptypeer import PtyPeer

HELLO_REPLY = {"protocol_version": 1, "max_payload": 1024, "components": 0b1111111111110, "serial": "SP9",
               "boot_id": 7}
INFO = {"manufacturer": "SimPOS", "model": "SP-M7", "serial": "SP9", "hardware_rev": "B2",
        "firmware_version": "3.2.1", "lifecycle": "bound", "merchant_id": "898310048161234",
        "activated_at": 1767225600, "clock": 0}
RESP = int(FrameFlag.RESPONSE)


def run_info(*args: str, timeout: float = 2.0) -> subprocess.CompletedProcess[str]:
    # subprocess timeout: a hang detector only, far above the tool's own --timeout
    return subprocess.run([sys.executable, "-m", "pos_sim.cli", "info", *args, "--timeout", str(timeout)],
                          capture_output=True, text=True, timeout=timeout + 20, check=False)


Behaviour = Callable[[PtyPeer, bytes], bool]   # (peer, bytes received) -> keep going?


@pytest.fixture
def terminal_on_pty() -> Iterator[Callable[[Behaviour], PtyPeer]]:
    peers: list[tuple[PtyPeer, threading.Event, threading.Thread]] = []

    def start(behaviour: Behaviour) -> PtyPeer:
        peer = PtyPeer()
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set() and peer.master >= 0:
                r, _, _ = select.select([peer.master], [], [], 0.05)
                if not r:
                    continue
                try:
                    data = os.read(peer.master, 4096)
                except OSError:
                    return
                if not behaviour(peer, data):
                    return

        t = threading.Thread(target=loop, name="pty terminal")
        t.start()
        peers.append((peer, stop, t))
        return peer

    yield start
    for peer, stop, t in peers:
        stop.set()
        t.join()
        peer.close()


def scripted(answers: dict[int, Callable[[PtyPeer, int], bool]]) -> Behaviour:
    deframer = FrameDeframer()

    def behaviour(peer: PtyPeer, data: bytes) -> bool:
        for frame in deframer.feed(data):
            act = answers.get(frame.type)
            if act is not None and not act(peer, frame.seq):
                return False
        return True

    return behaviour


def reply(msg_type: MessageType, fields: dict[str, object]) -> Callable[[PtyPeer, int], bool]:
    def act(peer: PtyPeer, seq: int) -> bool:
        peer.write(encode_message(msg_type, fields, seq=seq, flags=RESP))
        return True
    return act


def test_info_from_a_working_terminal(terminal_on_pty: Callable[[Behaviour], PtyPeer]) -> None:
    peer = terminal_on_pty(scripted({MessageType.HELLO: reply(MessageType.HELLO_REPLY, HELLO_REPLY),
                                     MessageType.INFO_REQUEST: reply(MessageType.INFO_REPLY, INFO)}))
    r = run_info(peer.path)
    assert r.returncode == 0, r.stderr
    assert "SimPOS SP-M7   serial SP9" in r.stdout and "lifecycle: bound, merchant 898310048161234" in r.stdout
    r = run_info(peer.path, "--json")
    data = json.loads(r.stdout)
    assert data["device"]["serial"] == "SP9" and data["exit_status"] == 0
    assert "printer" in data["protocol"]["components"]


def _one_line_failure(r: subprocess.CompletedProcess[str], bit: int, words: str) -> None:
    assert r.returncode == bit, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], lines


def test_silent_port(terminal_on_pty: Callable[[Behaviour], PtyPeer]) -> None:
    peer = terminal_on_pty(lambda p, d: True)
    _one_line_failure(run_info(peer.path, timeout=1.5), 4, "nothing received at all")


def test_garbage_port(terminal_on_pty: Callable[[Behaviour], PtyPeer]) -> None:
    def garbage(p: PtyPeer, data: bytes) -> bool:
        p.write(os.urandom(300).replace(b"\xa5", b"\x00"))
        return True
    peer = terminal_on_pty(garbage)
    _one_line_failure(run_info(peer.path, timeout=1.5), 4, "not frames")


def test_echoing_port(terminal_on_pty: Callable[[Behaviour], PtyPeer]) -> None:
    def echo(p: PtyPeer, data: bytes) -> bool:
        p.write(data)
        return True
    peer = terminal_on_pty(echo)
    _one_line_failure(run_info(peer.path, timeout=1.5), 4, "echoes")


def test_unplugged_mid_exchange(terminal_on_pty: Callable[[Behaviour], PtyPeer]) -> None:
    def pull(peer: PtyPeer, seq: int) -> bool:
        peer.write(encode_message(MessageType.INFO_REPLY, INFO, seq=seq, flags=RESP)[:15])   # half a reply
        peer.unplug()
        return False
    peer = terminal_on_pty(scripted({MessageType.HELLO: reply(MessageType.HELLO_REPLY, HELLO_REPLY),
                                     MessageType.INFO_REQUEST: pull}))
    _one_line_failure(run_info(peer.path, timeout=3), 4, "disconnected")


def test_missing_port_is_the_open_bit() -> None:
    _one_line_failure(run_info("/dev/ttyNOSUCH0"), 2, "no such port")


def test_bad_timeout_is_a_usage_error() -> None:
    r = subprocess.run([sys.executable, "-m", "pos_sim.cli", "info", "/dev/null", "--timeout", "-1"],
                       capture_output=True, text=True, timeout=30, check=False)
    _one_line_failure(r, 1, "must be more than 0")
