"""A hypothesis state machine over the link on a real pty: answers lost, held back and released
late, duplicated and corrupted; the invariant is that a request is only ever completed by its
own answer, never by a late answer to an older one.

The rules themselves are explored on the pure machine and a fake clock
(tests/protocols/pos/test_session_machine.py); this smaller run proves what only the real thing
can: the I/O thread, pyserial's reads and the caller's wake-ups keep them.  It asks
LC_CHALLENGE_REQUEST, which is never asked again as a new request, so every send the test sees
belongs to the one sequence number of each exchange."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from drivers.errors import ResponseTimeout
from drivers.link import Link, LinkTimings
from drivers.transport import open_port
from protocols.pos import MessageType, encode_message
from protocols.pos.codes import FrameFlag
from tests.drivers.ptypeer import PtyPeer

# a fast line so a lost answer costs ~70 ms, not ~700
TIMINGS = LinkTimings(baud=1_000_000, response_base=0.05, inter_byte=0.03, keepalive_idle=3600)
RESP = int(FrameFlag.RESPONSE)
ACTIONS = ("answer", "lose", "hold", "corrupt", "duplicate", "late")


def page_answer(seq: int, page: int) -> bytes:
    """The challenge answering exchange ``page``: its number in the nonce."""
    return encode_message(MessageType.LC_CHALLENGE, {"operation": "bind", "nonce": page.to_bytes(16, "big"),
                                                     "counter": 1, "serial": "SP1"}, seq=seq, flags=RESP)


class LinkMachine(RuleBasedStateMachine):
    """The test plays a misbehaving terminal; the link must never mix answers up."""

    def __init__(self) -> None:
        super().__init__()
        self.peer = PtyPeer()
        self.link = Link(open_port(self.peer.path, read_timeout=TIMINGS.read_slice), timings=TIMINGS).start()
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.page = 0
        self.held: list[tuple[int, bytes]] = []   # (seq, answer) held back, to be released late
        self.expected_stale = 0
        self.expected_bad_crc = 0

    def teardown(self) -> None:
        self.link.close()
        self.pool.shutdown()
        self.peer.close()

    def _play(self, action: str, seq: int) -> bool:
        """Act on one send of the current request; True when it delivered a valid answer."""
        answer = page_answer(seq, self.page)
        if action == "answer":
            self.peer.write(answer)
            return True
        if action == "duplicate":
            self.peer.write(answer + answer)
            self.expected_stale += 1          # the second copy finds no request waiting
            return True
        if action == "hold":
            self.held.append((seq, answer))
        elif action == "corrupt":
            damaged = bytearray(answer)
            damaged[9] ^= 0x10                # a payload bit: only the CRC can tell
            self.peer.write(bytes(damaged))
            self.expected_bad_crc += 1
        elif action == "late" and self.held:
            held_seq, held = self.held.pop(0)
            self.peer.write(held)
            if held_seq == seq:
                return True                   # the first send's answer, late: still this request's own
            self.expected_stale += 1
        return False

    @rule(actions=st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=5))
    def exchange(self, actions: list[str]) -> None:
        self.page += 1
        page = self.page
        fut = self.pool.submit(self.link.request, MessageType.LC_CHALLENGE_REQUEST, {"operation": "bind"})
        sends = TIMINGS.retransmits + 1
        plan = (actions + ["lose"] * sends)[:sends]
        seq = None
        answered = False
        for action in plan:
            frame = self.peer.expect_message(MessageType.LC_CHALLENGE_REQUEST, timeout=2)
            assert seq is None or frame.seq == seq, "a retransmit keeps its sequence number"
            seq = frame.seq
            if self._play(action, frame.seq):
                answered = True
                break
        if answered:
            msg = fut.result(timeout=5)
            got = int.from_bytes(msg.fields["nonce"], "big")
            assert got == page, f"exchange {page} completed by the answer to {got}"
        else:
            with pytest.raises(ResponseTimeout):
                fut.result(timeout=5)
        assert self.peer.quiet(0.0) == []

    @rule()
    def release_late_answer(self) -> None:
        if self.held:
            self.peer.write(self.held.pop(0)[1])
            self.expected_stale += 1

    @invariant()
    def counters_add_up(self) -> None:
        # answers may still be in flight on the pty: counters can lag, never lead
        assert self.link.stats.stale <= self.expected_stale
        assert self.link.deframer.stats.bad_crc <= self.expected_bad_crc
        assert self.link.error is None

    def check_final_counters(self) -> None:
        """After quiet, every stale answer and every corrupt one was seen and dropped."""
        import time

        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and (self.link.stats.stale < self.expected_stale
                                               or self.link.deframer.stats.bad_crc < self.expected_bad_crc):
            time.sleep(0.01)
        assert self.link.stats.stale == self.expected_stale
        assert self.link.deframer.stats.bad_crc == self.expected_bad_crc


class FinalCheckMachine(LinkMachine):
    """Adds the exact-count check at the end of each run."""

    def teardown(self) -> None:
        try:
            self.check_final_counters()
        finally:
            super().teardown()


FinalCheckMachine.TestCase.settings = settings(
    max_examples=6, stateful_step_count=6, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TestLinkStateMachine = FinalCheckMachine.TestCase
