"""A hypothesis state machine over the pure session machine on a fake clock: answers lost, held
back and released late, duplicated and corrupted, harmless requests asked again on a noisy
line.  The invariants: a request is only ever completed by its own answer, exactly once; a
retransmit keeps its sequence number and carries RETRANSMIT; a sequence number is sent at most
four times; a new one is taken only for a harmless request after damage; every stale and every
corrupt answer is counted.  Between exchanges a self-test runs with its reports arriving at
random gaps, some spoilt: it is lost exactly when the silence since its last intact report
reaches the spec's ``T_lost`` (worked by hand: 4.168 s at 115200 baud before HELLO), noisy
exactly when damaged frames arrived in that silence, and otherwise ended by its result."""

from __future__ import annotations

import binascii
import struct
from collections import Counter

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from protocols.pos.framing import decode_frame
from protocols.pos.messages import MessageType
from protocols.pos.session import (
    Answered,
    HostSession,
    Refused,
    SelfTestEnded,
    SelfTestLost,
    SelfTestStarted,
    TimedOut,
    Violation,
)
from protocols.pos.timing import Timers

RESP, RETRANSMIT = 0x01, 0x04
ACTIONS = ("answer", "lose", "hold", "corrupt", "duplicate", "late")
#: T_prog + line(F) + 4 (line(F) + T_resp) at 115200 baud, F = 1035 (docs/protocol.md section 5)
T_LOST = 1 + 10350 / 115200 + 4 * (10350 / 115200 + 0.5 + 2 * 10350 / 115200)


def event_frame(msg_type: int, payload: bytes, seq: int) -> bytes:
    """An event frame (flag EVENT) by section 2's layout."""
    body = struct.pack(">BBHBH", 1, 0x02, seq, msg_type, len(payload)) + payload
    return b"\xa5\x5a" + body + struct.pack(">H", binascii.crc_hqx(body, 0xFFFF))


def ack_frame(seq: int) -> bytes:
    body = struct.pack(">BBHBH", 1, RESP, seq, 0x06, 0)
    return b"\xa5\x5a" + body + struct.pack(">H", binascii.crc_hqx(body, 0xFFFF))


def page_answer(seq: int, page: int) -> bytes:
    """EVENTLOG_PAGE (type 0x41) for ``page`` of 60000, no entries, built by section 2's layout."""
    body = struct.pack(">BBHBH", 1, RESP, seq, 0x41, 5) + struct.pack(">HHB", page, 60000, 0)
    return b"\xa5\x5a" + body + struct.pack(">H", binascii.crc_hqx(body, 0xFFFF))


class SessionMachine(RuleBasedStateMachine):
    """The test plays a misbehaving terminal against the machine; time is a number."""

    def __init__(self) -> None:
        super().__init__()
        self.m = HostSession(Timers(), seq=0xFFF0, now=0.0)   # near the wrap
        self.now = 0.0
        self.page = 0
        self.held: list[tuple[int, bytes]] = []
        self.expected_stale = 0
        self.expected_bad_crc = 0
        self.event_seq = 0

    def _feed(self, data: bytes, seq: int) -> bool:
        """Put one answer on the line; True when it is the outstanding request's own."""
        current = self.m.outstanding
        mine = current is not None and current.seq == seq
        if not mine:
            self.expected_stale += 1
        self.m.receive_data(data, self.now)
        return mine

    def _play(self, action: str, seq: int) -> None:
        answer = page_answer(seq, self.page)
        if action == "answer":
            self._feed(answer, seq)
        elif action == "duplicate":
            self._feed(answer, seq)
            self._feed(answer, seq)           # the second copy finds no request waiting
        elif action == "hold":
            self.held.append((seq, answer))
        elif action == "corrupt":
            damaged = bytearray(answer)
            damaged[9] ^= 0x10                # a payload bit: only the CRC can tell
            self.m.receive_data(bytes(damaged), self.now)
            self.expected_bad_crc += 1
        elif action == "late" and self.held:
            held_seq, held = self.held.pop(0)
            self._feed(held, held_seq)

    @rule(actions=st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=12), harmless=st.booleans())
    def exchange(self, actions: list[str], harmless: bool) -> None:
        self.page += 1
        h = self.m.send_request(MessageType.EVENTLOG_READ, {"page": self.page}, self.now, repeat=harmless)
        plan = iter(actions)
        sends: Counter[int] = Counter()
        last_seq = h.seq
        damage_at_seq = {h.seq: self.m.damage}
        outcomes = []
        while True:
            for data in self.m.frames_to_send():
                f = decode_frame(data)
                assert f.type == MessageType.EVENTLOG_READ
                if f.seq != last_seq:
                    # a new sequence number: only for a harmless request, after damage, all sends out
                    assert f.seq == (last_seq + 1) % 65536
                    assert harmless and sends[last_seq] == 4 and self.m.damage > damage_at_seq[last_seq]
                    damage_at_seq[f.seq], last_seq = self.m.damage, f.seq
                sends[f.seq] += 1
                assert sends[f.seq] <= 4, "more than four sends of one sequence number"
                assert bool(f.flags & RETRANSMIT) == (sends[f.seq] > 1)
                self._play(next(plan, "lose"), f.seq)
            outcomes += [e for e in self.m.events() if isinstance(e, Answered | Refused | TimedOut | Violation)]
            if h.done:
                break
            deadline = self.m.next_deadline()
            assert deadline is not None and deadline >= self.now
            self.now = deadline
            self.m.advance(self.now)
        outcomes += [e for e in self.m.events() if isinstance(e, Answered | Refused | TimedOut | Violation)]
        assert len(outcomes) == 1 and outcomes[0].handle is h, outcomes
        done = outcomes[0]
        if isinstance(done, Answered):
            assert done.message.fields["page"] == self.page, "completed by another request's answer"
            assert done.frame.seq == h.seq
        else:
            assert isinstance(done, TimedOut), done
        assert len(sends) <= 4, "asked again more than three times"
        self.now += 0.001

    @rule(reports=st.lists(st.tuples(st.floats(min_value=0.05, max_value=1.6 * T_LOST), st.booleans()),
                           max_size=6))
    def selftest(self, reports: list[tuple[float, bool]]) -> None:
        """A printer self-test: each report ``gap`` s after the one before, ``spoilt`` or intact."""
        h = self.m.send_request(MessageType.SELFTEST_START, {"component": "printer", "plan": "quick",
                                                              "interactive": False}, self.now)
        self.m.frames_to_send()
        self.m.receive_data(ack_frame(h.seq), self.now)
        kinds = [type(e) for e in self.m.events()]
        assert kinds == [SelfTestStarted, Answered]
        heard, damaged = self.now, False
        for gap, spoilt in reports:
            if abs(self.now + gap - heard - T_LOST) < 1e-6:
                continue   # (not at the boundary itself: floating point decides that)
            target = self.now + gap
            while (d := self.m.next_deadline()) is not None and d <= target:
                self.now = d
                self.m.advance(d)
            self.now = target
            self.m.advance(target)
            lost = [e for e in self.m.events() if isinstance(e, SelfTestLost)]
            if target - heard >= T_LOST:
                assert len(lost) == 1 and lost[0].noisy == damaged
                self.now += 0.001
                return
            assert lost == [], f"lost after {target - heard:.3f} s of silence"
            self.event_seq += 1
            data = event_frame(0x21, bytes([5, 50, 1, 0]), self.event_seq)   # printer, 50 %, step 1
            if spoilt:
                bad = bytearray(data)
                bad[-1] ^= 0x10
                self.m.receive_data(bytes(bad), self.now)
                self.expected_bad_crc += 1
                damaged = True
            else:
                self.m.receive_data(data, self.now)
                heard, damaged = self.now, False
            self.m.frames_to_send()
            self.m.events()
        self.event_seq += 1
        note = b"ok"
        result = struct.pack(">BBBHIB", 5, 1, 0, 0, 100, 0) + bytes([len(note)]) + note
        self.m.receive_data(event_frame(0x22, result, self.event_seq), self.now)
        self.m.frames_to_send()
        assert [type(e) for e in self.m.events() if isinstance(e, SelfTestEnded | SelfTestLost)] == [SelfTestEnded]
        assert self.m.running_selftests == ()
        self.now += 0.001

    @rule()
    def release_late_answer(self) -> None:
        if self.held:
            seq, held = self.held.pop(0)
            self._feed(held, seq)
            assert [type(e).__name__ for e in self.m.events()] == ["StaleDropped"]

    @invariant()
    def counters_add_up(self) -> None:
        assert self.m.stats.stale == self.expected_stale
        assert self.m.deframer.stats.bad_crc == self.expected_bad_crc


SessionMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=12, deadline=None)
TestSessionMachine = SessionMachine.TestCase
