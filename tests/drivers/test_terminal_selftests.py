"""The Terminal driver's self-tests over a real pty, with the session machine deciding: a
SELFTEST_START whose sends all went unanswered is asked once more, and ``NAK busy`` to it then
means the first start went through (docs/protocol.md section 5, "A noisy line"); an aborted
run's late result does not end the next run of the same component (section 8).

The terminal is played by the test on a pty; the timers are shortened (response base 0.15 s)
so that a request's four sends take about 0.6 s.  What is expected comes from the spec's rules,
not from the driver.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from drivers.errors import LinkClosed, RequestRefused, ResponseTimeout
from drivers.link import Link, LinkTimings
from drivers.terminal import Terminal
from drivers.transport import open_port
from protocols.pos import MessageType
from protocols.pos.codes import FrameFlag
from tests.drivers.ptypeer import PtyPeer

EVENT, RETRANSMIT = int(FrameFlag.EVENT), int(FrameFlag.RETRANSMIT)
FAST = LinkTimings(response_base=0.15, inter_byte=0.05, keepalive_idle=3600)


def result(outcome: str) -> dict[str, object]:
    return {"component": "printer", "plan": "full", "outcome": outcome, "code": "none", "duration_ms": 900,
            "measurements": [], "note": "done"}


def terminal(peer: PtyPeer) -> Terminal:
    return Terminal(Link(open_port(peer.path, read_timeout=FAST.read_slice), timings=FAST).start())


def test_busy_to_the_start_asked_again_follows_the_test_the_first_one_started(peer: PtyPeer,
                                                                              pool: ThreadPoolExecutor) -> None:
    with terminal(peer) as term:
        fut = pool.submit(term.start_self_test, "printer")
        first = [peer.expect_message(MessageType.SELFTEST_START) for _ in range(4)]   # all unanswered
        assert {f.seq for f in first} == {first[0].seq}
        again = peer.expect_message(MessageType.SELFTEST_START)
        assert again.seq == (first[0].seq + 1) & 0xFFFF and not again.flags & RETRANSMIT
        peer.send(MessageType.NAK, {"reason": "busy"}, seq=again.seq)   # it is testing: the first went through
        run = fut.result(timeout=5)
        assert run.adopted and run.component == "printer"
        assert peer.quiet(FAST.busy_backoff * 3) == []                   # no retransmit after that busy
        peer.send(MessageType.SELFTEST_RESULT, result("passed"), seq=900, flags=EVENT)
        assert run.wait(timeout=10).outcome == "passed"


def test_busy_to_a_first_start_is_the_terminals_refusal(peer: PtyPeer, pool: ThreadPoolExecutor) -> None:
    with terminal(peer) as term:
        fut = pool.submit(term.start_self_test, "printer")
        for _ in range(4):
            req = peer.expect_message(MessageType.SELFTEST_START)
            peer.send(MessageType.NAK, {"reason": "busy"}, seq=req.seq)
        with pytest.raises(RequestRefused) as caught:
            fut.result(timeout=5)
        assert caught.value.reason == "busy" and caught.value.definite


def test_a_start_unanswered_twice_is_a_timeout(peer: PtyPeer, pool: ThreadPoolExecutor) -> None:
    with terminal(peer) as term:
        fut = pool.submit(term.start_self_test, "printer")
        sends = [peer.expect_message(MessageType.SELFTEST_START) for _ in range(8)]
        assert len({f.seq for f in sends}) == 2
        with pytest.raises(ResponseTimeout):
            fut.result(timeout=10)


def test_an_aborted_runs_late_result_does_not_end_the_next_run(peer: PtyPeer, pool: ThreadPoolExecutor) -> None:
    with terminal(peer) as term:
        fut = pool.submit(term.start_self_test, "printer")
        peer.send(MessageType.ACK, {}, seq=peer.expect_message(MessageType.SELFTEST_START).seq)
        old = fut.result(timeout=5)
        fut2 = pool.submit(term.abort, "printer")
        peer.send(MessageType.ACK, {}, seq=peer.expect_message(MessageType.SELFTEST_ABORT).seq)
        fut2.result(timeout=5)
        # (the aborted result's first copy is lost on the line)
        fut = pool.submit(term.start_self_test, "printer")
        peer.send(MessageType.ACK, {}, seq=peer.expect_message(MessageType.SELFTEST_START).seq)
        new = fut.result(timeout=5)
        peer.send(MessageType.SELFTEST_RESULT, result("aborted"), seq=901, flags=EVENT | RETRANSMIT)
        assert peer.expect_message(MessageType.ACK).seq == 901
        assert new.poll() is None                                   # still running: not its result
        peer.send(MessageType.SELFTEST_RESULT, result("passed"), seq=902, flags=EVENT)
        assert new.wait(timeout=10).outcome == "passed"
        assert term.results["printer"].outcome == "passed"
        assert old.result is not None and old.result.outcome == "aborted"   # the late result was the old run's


def test_a_test_waited_on_when_the_link_is_closed_ends_at_once(peer: PtyPeer, pool: ThreadPoolExecutor) -> None:
    # the machine no longer hears the line, so it can never call the test lost: the wait ends
    term = terminal(peer)
    fut = pool.submit(term.start_self_test, "printer")
    peer.send(MessageType.ACK, {}, seq=peer.expect_message(MessageType.SELFTEST_START).seq)
    run = fut.result(timeout=5)
    waiting = pool.submit(run.wait)
    term.close()
    with pytest.raises(LinkClosed):
        waiting.result(timeout=5)
    with pytest.raises(LinkClosed):
        run.poll()
