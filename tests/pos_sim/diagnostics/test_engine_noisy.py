"""The diagnostics engine on a noisy line: a result the line spoilt costs a re-run, not a verdict;
a terminal that no longer answers stops the plan.

The terminal is a script on a real pty (tests/drivers/ptypeer.py), so what the line spoils is
exact: the result frame's CRC is flipped.  The timers are shortened (response base 0.1 s,
progress interval 0.2 s) so that T_lost is under a second.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from drivers.link import Link, LinkTimings
from drivers.terminal import Terminal
from drivers.transport import open_port
from pos_sim.diagnostics.engine import NOISY_RETRIES, DiagnosticReport, DiagnosticsEngine
from protocols.pos import Frame, MessageType, encode_message
from protocols.pos.codes import FrameFlag
from tests.drivers.ptypeer import PtyPeer

RESPONSE, EVENT = int(FrameFlag.RESPONSE), int(FrameFlag.EVENT)
TIMINGS = LinkTimings(response_base=0.1, inter_byte=0.05, progress_interval=0.2, keepalive_idle=3600)
INFO = {"manufacturer": "SimPOS", "model": "SP-M7", "serial": "SP1", "hardware_rev": "B", "firmware_version": "1",
        "lifecycle": "bound", "merchant_id": "", "activated_at": 0, "clock": 0}
RESULT = {"component": "power", "plan": "quick", "outcome": "passed", "code": "none", "duration_ms": 100,
          "measurements": [], "note": "all checks passed"}


class ScriptedTerminal:
    """Answers the host on a pty; ``on_start(n)`` says what the n-th SELFTEST_START gets."""

    def __init__(self, peer: PtyPeer, on_start: Callable[[int], str]) -> None:
        self.peer, self.on_start = peer, on_start
        self.starts = 0
        self.pings_answered = True
        self._stop = threading.Event()
        self._event_seq = 100
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self.peer.expect(0.1)
            except AssertionError:
                continue
            self._answer(frame)

    def _answer(self, f: Frame) -> None:
        send, seq = self.peer.send, f.seq
        if f.flags & RESPONSE:
            return   # the host's ACK of an event
        if f.type == MessageType.PING and self.pings_answered:
            send(MessageType.PONG, {"uptime_ms": 10_000}, seq=seq)
        elif f.type == MessageType.INFO_REQUEST:
            send(MessageType.INFO_REPLY, INFO, seq=seq)
        elif f.type == MessageType.EVENTLOG_READ:
            send(MessageType.EVENTLOG_PAGE, {"page": 0, "pages": 0, "entries": []}, seq=seq)
        elif f.type == MessageType.SELFTEST_START:
            self.starts += 1
            send(MessageType.ACK, {}, seq=seq)
            what = self.on_start(self.starts)
            self._event_seq += 1
            data = bytearray(encode_message(MessageType.SELFTEST_RESULT, RESULT, seq=self._event_seq, flags=EVENT))
            if what == "spoilt":
                data[-1] ^= 0x10         # the line flips a bit of the CRC
                self.peer.write(bytes(data))
            elif what == "hang":
                self.peer.write(bytes(data[:-1]) + bytes([data[-1] ^ 0x10]))
                self.pings_answered = False   # and the firmware stops answering anything
            else:
                self.peer.write(bytes(data))


@pytest.fixture
def peer() -> Iterator[PtyPeer]:
    p = PtyPeer()
    yield p
    p.close()


def run_power_test(peer: PtyPeer, on_start: Callable[[int], str]) -> tuple[DiagnosticReport, ScriptedTerminal]:
    """The quick plan's power test against a scripted terminal; the report and the script."""
    script = ScriptedTerminal(peer, on_start)
    link = Link(open_port(peer.path, read_timeout=TIMINGS.read_slice), timings=TIMINGS).start()
    term = Terminal(link)
    try:
        return DiagnosticsEngine(term, lang="en").run("quick", ["power"], interactive=False), script
    finally:
        term.close()
        script.close()


def test_a_result_spoilt_twice_is_run_again_and_keeps_its_verdict(peer: PtyPeer) -> None:
    report, script = run_power_test(peer, lambda n: "spoilt" if n <= 2 else "intact")
    [finding] = report.results
    assert (finding.component, finding.verdict) == ("power", "pass")
    assert script.starts == 3
    assert not report.exit_status & 4


def test_a_result_spoilt_every_time_is_lost_alone(peer: PtyPeer) -> None:
    report, script = run_power_test(peer, lambda n: "spoilt")
    [finding] = report.results
    assert (finding.verdict, finding.code) == ("error", "selftest_lost")
    assert script.starts == 1 + NOISY_RETRIES
    assert report.exit_status & 4


def test_a_terminal_that_stops_answering_on_a_noisy_line_is_not_run_again(peer: PtyPeer) -> None:
    report, script = run_power_test(peer, lambda n: "hang")
    [finding] = report.results
    assert (finding.verdict, finding.code) == ("error", "selftest_lost")
    assert script.starts == 1            # its PING went unanswered: hung, not a spoilt result
    assert report.exit_status & 4
