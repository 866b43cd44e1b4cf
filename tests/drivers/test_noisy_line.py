"""A noisy line costs retransmits, not verdicts (docs/protocol.md section 5, "A noisy line").

The terminal is played by the test on a real pty, so the damage is exact: a frame with one
byte flipped (its CRC fails) sent when the spec lets the terminal send it.  Expected timings
come from the spec's formulas worked by hand at 115200 baud with 1024-byte payloads:
T_resp = 0.5 + 2 x 10350 / 115200 = 0.680 s, T_lost = 1 + 0.0898 + 4 x (0.0898 + 0.680) = 4.17 s.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from drivers.errors import RequestRefused, ResponseTimeout, SelfTestLost
from drivers.link import Link, LinkTimings
from drivers.terminal import SelfTestRun, Terminal
from drivers.transport import open_port
from protocols.pos import MessageType, encode_message
from protocols.pos.codes import FrameFlag
from tests.drivers.ptypeer import PtyPeer

EVENT = int(FrameFlag.EVENT)
RETRANSMIT = int(FrameFlag.RETRANSMIT)
T_RESP = 0.5 + 2 * 10350 / 115200
T_LOST = 1 + 10350 / 115200 + 4 * (10350 / 115200 + T_RESP)
INFO = {"manufacturer": "SimPOS", "model": "SP-M7", "serial": "SP1", "hardware_rev": "B", "firmware_version": "1",
        "lifecycle": "bound", "merchant_id": "", "activated_at": 0, "clock": 0}
RESULT = {"component": "printer", "plan": "full", "outcome": "passed", "code": "none", "duration_ms": 900,
          "measurements": [], "note": "all checks passed"}


def terminal(peer: PtyPeer, timings: LinkTimings | None = None) -> Terminal:
    t = timings or LinkTimings(keepalive_idle=3600)
    return Terminal(Link(open_port(peer.path, read_timeout=t.read_slice), timings=t).start())


def damaged(msg_type: MessageType, fields: dict[str, object], *, seq: int, flags: int) -> bytes:
    """The frame with one bit of its CRC flipped: intact sync, header and payload, failing CRC."""
    data = bytearray(encode_message(msg_type, fields, seq=seq, flags=flags))
    data[-1] ^= 0x10
    return bytes(data)


def started(peer: PtyPeer, pool: ThreadPoolExecutor, term: Terminal) -> SelfTestRun:
    fut = pool.submit(term.start_self_test, "printer")
    req = peer.expect_message(MessageType.SELFTEST_START)
    peer.send(MessageType.ACK, {}, seq=req.seq)
    return fut.result(timeout=5)


def test_the_spec_figures_are_the_drivers() -> None:
    t = LinkTimings()
    assert t.response_timeout == pytest.approx(T_RESP)
    assert t.selftest_lost_after == pytest.approx(T_LOST)


def test_a_result_on_its_last_retransmit_is_heard_not_lost(peer: PtyPeer, pool: ThreadPoolExecutor) -> None:
    # the terminal reports progress, then its result one progress interval later; the line spoils
    # the first three copies, and the terminal sends the fourth T_resp after each: 3.1 s after
    # the progress, later than a fixed 3 s timer would wait, within what the spec entitles it to
    with terminal(peer) as term:
        run = started(peer, pool, term)
        peer.send(MessageType.SELFTEST_PROGRESS, {"component": "printer", "percent": 50, "step": 1,
                                                  "prompt": "none"}, seq=700, flags=EVENT)
        assert peer.expect_message(MessageType.ACK).seq == 700
        heard = time.monotonic()
        time.sleep(1.0 + 10350 / 115200)   # the next report is due in 1 s, behind a maximal frame
        for copy in range(3):
            flags = EVENT | (RETRANSMIT if copy else 0)
            peer.write(damaged(MessageType.SELFTEST_RESULT, RESULT, seq=701, flags=flags))
            assert peer.quiet(T_RESP) == []       # nothing to acknowledge: the host saw no intact frame
        peer.send(MessageType.SELFTEST_RESULT, RESULT, seq=701, flags=EVENT | RETRANSMIT)
        late = time.monotonic() - heard
        result = run.wait()
        assert late > 3.0
        assert (result.component, result.outcome) == ("printer", "passed")
        assert peer.expect_message(MessageType.ACK).seq == 701
        assert term.link.deframer.stats.bad_crc == 3 and term.link.damage > 0


def test_a_test_that_falls_silent_is_lost_after_t_lost_and_not_before(peer: PtyPeer,
                                                                      pool: ThreadPoolExecutor) -> None:
    with terminal(peer) as term:
        run = started(peer, pool, term)
        peer.send(MessageType.SELFTEST_PROGRESS, {"component": "printer", "percent": 10, "step": 1,
                                                  "prompt": "none"}, seq=800, flags=EVENT)
        peer.expect_message(MessageType.ACK)
        t0 = time.monotonic()
        with pytest.raises(SelfTestLost) as caught:
            run.wait()
        assert time.monotonic() - t0 >= T_LOST - 0.05
        assert not caught.value.noisy   # nothing arrived at all: a hung terminal
        assert "4.2 s" in str(caught.value)


def test_silence_amid_damaged_frames_is_a_noisy_loss(peer: PtyPeer, pool: ThreadPoolExecutor) -> None:
    with terminal(peer) as term:
        run = started(peer, pool, term)
        time.sleep(0.5)
        peer.write(damaged(MessageType.SELFTEST_RESULT, RESULT, seq=900, flags=EVENT))
        with pytest.raises(SelfTestLost) as caught:
            run.wait()
        assert caught.value.noisy and "noisy line" in str(caught.value)


def test_a_result_with_its_sync_spoilt_is_noise_too(peer: PtyPeer, pool: ThreadPoolExecutor) -> None:
    # a flipped sync byte turns the whole frame into garbage: no CRC to fail, but once the
    # terminal has sent intact frames on this port, bytes thrown away are the line's doing
    with terminal(peer) as term:
        run = started(peer, pool, term)
        data = bytearray(encode_message(MessageType.SELFTEST_RESULT, RESULT, seq=901, flags=EVENT))
        data[0] ^= 0x01
        peer.write(bytes(data))
        with pytest.raises(SelfTestLost) as caught:
            run.wait()
        assert caught.value.noisy
        assert term.link.deframer.stats.bad_crc == 0


FAST = LinkTimings(response_base=0.15, inter_byte=0.05, keepalive_idle=3600)


def test_a_harmless_request_is_asked_again_when_its_answers_arrive_damaged(peer: PtyPeer,
                                                                          pool: ThreadPoolExecutor) -> None:
    with terminal(peer, FAST) as term:
        fut = pool.submit(term.info)
        first = peer.expect_message(MessageType.INFO_REQUEST)
        for send in range(4):   # every send of the first request answered, and spoilt on the way
            req = first if send == 0 else peer.expect_message(MessageType.INFO_REQUEST)
            assert req.seq == first.seq
            peer.write(damaged(MessageType.INFO_REPLY, INFO, seq=req.seq, flags=int(FrameFlag.RESPONSE)))
        again = peer.expect_message(MessageType.INFO_REQUEST)
        assert again.seq == (first.seq + 1) & 0xFFFF and not again.flags & RETRANSMIT   # a new request
        peer.send(MessageType.INFO_REPLY, INFO, seq=again.seq)
        assert fut.result(timeout=5).serial == "SP1"


def test_silence_is_not_asked_again(peer: PtyPeer, pool: ThreadPoolExecutor) -> None:
    with terminal(peer, FAST) as term:
        fut = pool.submit(term.info)
        sends = [peer.expect_message(MessageType.INFO_REQUEST) for _ in range(4)]
        assert {f.seq for f in sends} == {sends[0].seq}
        with pytest.raises(ResponseTimeout) as caught:
            fut.result(timeout=10)
        assert not caught.value.noisy
        assert peer.quiet(FAST.response_timeout * 2) == []   # no fifth send, no new request


def test_a_request_with_side_effects_is_never_asked_again(peer: PtyPeer, pool: ThreadPoolExecutor) -> None:
    # (SELFTEST_START is the one such request asked once more: tests/drivers/test_terminal_selftests.py)
    with terminal(peer, FAST) as term:
        fut = pool.submit(term.abort, "printer")
        for _ in range(4):
            req = peer.expect_message(MessageType.SELFTEST_ABORT)
            peer.write(damaged(MessageType.ACK, {}, seq=req.seq, flags=int(FrameFlag.RESPONSE)))
        with pytest.raises(ResponseTimeout) as caught:
            fut.result(timeout=10)
        assert caught.value.noisy
        assert peer.quiet(FAST.response_timeout * 2) == []


# -- a NAK is definite only when no send went unanswered ---------------------------------------------

NAK = {"reason": "not_permitted"}


def _lifecycle_request(pool: ThreadPoolExecutor, term: Terminal) -> Future[Any]:
    return pool.submit(term.link.request, MessageType.INFO_REQUEST)


@pytest.mark.parametrize(("answers", "definite"), [
    # each send's answer: None = silence, else a NAK reason; the last is final
    ([None, "not_permitted"], False),                      # the first send may have been executed
    (["busy", "not_permitted"], True),                     # every send refused: none executed
    (["bad_crc", "busy", None, "not_permitted"], False),
    (["bad_crc", "bad_crc", "bad_crc", "bad_crc"], True),  # four refusals, the last one final
    (["malformed"], True),
])
def test_a_nak_is_definite_only_when_every_send_was_answered(peer: PtyPeer, pool: ThreadPoolExecutor,
                                                             answers: list[str | None], definite: bool) -> None:
    with terminal(peer, FAST) as term:
        fut = _lifecycle_request(pool, term)
        for answer in answers:
            req = peer.expect_message(MessageType.INFO_REQUEST, timeout=5)
            if answer is not None:
                peer.send(MessageType.NAK, {"reason": answer}, seq=req.seq)
        with pytest.raises(RequestRefused) as caught:
            fut.result(timeout=10)
        assert caught.value.reason == answers[-1]
        assert caught.value.definite is definite


# -- keep-alives on a noisy line ------------------------------------------------------------------

def test_a_keepalive_whose_answers_were_spoilt_is_asked_again_not_the_end(peer: PtyPeer) -> None:
    timings = LinkTimings(response_base=0.1, inter_byte=0.05, keepalive_idle=0.2)
    link = Link(open_port(peer.path, read_timeout=timings.read_slice), timings=timings).start()
    link.keepalive = True
    try:
        first = peer.expect_message(MessageType.PING)
        for send in range(4):   # every send of the first keep-alive answered, spoilt on the line
            req = first if send == 0 else peer.expect_message(MessageType.PING)
            assert req.seq == first.seq
            peer.write(damaged(MessageType.PONG, {"uptime_ms": 1000}, seq=req.seq, flags=int(FrameFlag.RESPONSE)))
        again = peer.expect_message(MessageType.PING)
        assert again.seq != first.seq           # a new keep-alive at once, not the link going down
        peer.send(MessageType.PONG, {"uptime_ms": 2000}, seq=again.seq)
        time.sleep(0.1)
        assert link.alive and link.error is None
    finally:
        link.close()


def test_a_keepalive_met_with_silence_takes_the_link_down(peer: PtyPeer) -> None:
    timings = LinkTimings(response_base=0.1, inter_byte=0.05, keepalive_idle=0.2)
    link = Link(open_port(peer.path, read_timeout=timings.read_slice), timings=timings).start()
    link.keepalive = True
    try:
        sends = [peer.expect_message(MessageType.PING) for _ in range(4)]
        assert len({f.seq for f in sends}) == 1
        deadline = time.monotonic() + 10
        while link.error is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert isinstance(link.error, ResponseTimeout) and "keep-alives" in str(link.error)
    finally:
        link.close()
