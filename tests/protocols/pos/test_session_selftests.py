"""The self-test watch of the host's session machine, on a fake clock (docs/protocol.md section 5,
"Long operations" and "A noisy line"; section 8).

Every timeline here is written by hand from the spec: frames are built from section 2's layout
with ``binascii.crc_hqx`` and section 7's payload tables (never through the encoder under test),
and the times are the spec's formulas worked by hand.  At 115200 baud with 1024-byte payloads a
maximal frame (1035 bytes) takes ``L = 10350 / 115200 = 0.0898 s``, ``T_resp = 0.5 + 2 L =
0.6797 s``, the terminal's schedule of one report ``T_sched = 4 (L + T_resp) = 3.078 s`` and
``T_lost = T_prog + L + T_sched = 1 + 0.0898 + 3.078 = 4.168 s``.
"""

from __future__ import annotations

import binascii
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.pos.messages import MessageType
from protocols.pos.session import (
    Answered,
    HostSession,
    LateResult,
    Refused,
    SelfTestEnded,
    SelfTestLost,
    SelfTestStarted,
    SessionGone,
    TerminalEvent,
    TimedOut,
)
from protocols.pos.timing import Timers

T = MessageType
RESPONSE, EVENT, RETRANSMIT = 0x01, 0x02, 0x04
PRINTER, POWER = 0x05, 0x09                      # section 13, Component
PASSED, ABORTED = 0x00, 0x04                     # section 13, Outcome
BUSY, NOT_PERMITTED = 0x03, 0x04                 # section 13, NakReason
L = 10350 / 115200
T_RESP = 0.5 + 2 * L
T_SCHED = 4 * (L + T_RESP)
T_LOST = 1 + L + T_SCHED
START = {"component": "printer", "plan": "full", "interactive": False}


def frame(msg_type: int, payload: bytes, seq: int, flags: int = 0) -> bytes:
    """A frame by section 2's table: sync, version 1, flags, seq, type, length, payload, CRC."""
    body = struct.pack(">BBHBH", 1, flags, seq, msg_type, len(payload)) + payload
    return b"\xa5\x5a" + body + struct.pack(">H", binascii.crc_hqx(body, 0xFFFF))


def ack(seq: int) -> bytes:
    return frame(0x06, b"", seq, RESPONSE)


def nak(seq: int, reason: int) -> bytes:
    return frame(0x15, bytes([reason]), seq, RESPONSE)


def progress(seq: int, component: int = PRINTER, percent: int = 50, flags: int = EVENT) -> bytes:
    """SELFTEST_PROGRESS (0x21): component, percent, step, prompt (none)."""
    return frame(0x21, bytes([component, percent, 1, 0]), seq, flags)


def result(seq: int, component: int = PRINTER, outcome: int = PASSED, flags: int = EVENT) -> bytes:
    """SELFTEST_RESULT (0x22): component, plan (full), outcome, code (none), duration_ms, no
    measurements, note (str8)."""
    note = b"all checks passed"
    payload = struct.pack(">BBBHIB", component, 0, outcome, 0, 900, 0) + bytes([len(note)]) + note
    return frame(0x22, payload, seq, flags)


def spoil(data: bytes) -> bytes:
    """The frame with one bit of its CRC flipped (section 3 drops it as bad_crc)."""
    bad = bytearray(data)
    bad[-1] ^= 0x10
    return bytes(bad)


def run_until(machine: HostSession, t: float) -> None:
    """Advance the fake clock to ``t``, stopping at every deadline on the way (as the worker does)."""
    while (d := machine.next_deadline()) is not None and d <= t:
        machine.advance(d)
    machine.advance(t)


def of(machine: HostSession, kind: type) -> list[object]:
    return [e for e in machine.events() if isinstance(e, kind)]


@pytest.fixture
def m() -> HostSession:
    return HostSession(Timers(), seq=0, now=0.0, name="pty")


def started(m: HostSession, at: float = 0.0, acked: float = 0.05, fields: dict[str, object] | None = None) -> None:
    """SELFTEST_START sent at ``at``, ACKed at ``acked``: the watch begins at the ACK."""
    h = m.send_request(T.SELFTEST_START, fields or START, at)
    m.data_to_send()
    m.receive_data(ack(h.seq), acked)
    evs = m.events()
    assert [type(e) for e in evs] == [SelfTestStarted, Answered]     # the watch first, then the caller
    first = evs[0]
    assert isinstance(first, SelfTestStarted) and first.handle is h and not first.adopted


def test_the_spec_figures() -> None:
    assert Timers().selftest_lost_after == pytest.approx(T_LOST)
    assert abs(T_LOST - 4.168) < 0.001


def test_the_watch_starts_at_the_answer_and_its_deadline_is_t_lost(m: HostSession) -> None:
    started(m, 0.0, 0.05)
    assert m.running_selftests == ("printer",)
    assert m.next_deadline() == pytest.approx(0.05 + T_LOST)


def test_silence_short_of_t_lost_is_not_lost_and_at_t_lost_it_is(m: HostSession) -> None:
    started(m)
    m.receive_data(progress(700), 1.0)
    run_until(m, 1.0 + T_LOST - 0.001)
    assert of(m, SelfTestLost) == [] and m.running_selftests == ("printer",)
    run_until(m, 1.0 + T_LOST)
    [lost] = of(m, SelfTestLost)
    assert isinstance(lost, SelfTestLost) and lost.component == "printer" and not lost.noisy
    assert lost.silent_for == pytest.approx(T_LOST) and "4.2 s" in lost.text
    assert m.next_deadline() is None and "printer" not in m.running_selftests
    run_until(m, 100.0)
    assert of(m, SelfTestLost) == []                                  # lost once


def test_a_result_on_the_terminals_last_retransmit_is_heard_not_lost(m: HostSession) -> None:
    # progress at 1.0; the result is due within T_prog, waits behind a maximal frame, and its
    # first three copies are spoilt: the terminal sends one every L + T_resp, the fourth
    # arriving at 1 + L + L + 3 (L + T_resp) = 4.49 s, 3.49 s after the progress: later than a
    # fixed 3 s timer would have waited, inside T_lost
    started(m)
    m.receive_data(progress(700), 1.0)
    first = 1.0 + 1.0 + L
    for copy in range(3):
        at = first + copy * (L + T_RESP) + L
        run_until(m, at)
        m.receive_data(spoil(result(701, flags=EVENT | (RETRANSMIT if copy else 0))), at)
    last = first + 3 * (L + T_RESP) + L
    assert last - 1.0 > 3.0 and last - 1.0 < T_LOST
    run_until(m, last)
    m.receive_data(result(701, flags=EVENT | RETRANSMIT), last)
    evs = m.events()
    assert not any(isinstance(e, SelfTestLost) for e in evs)
    ended = [e for e in evs if isinstance(e, SelfTestEnded)]
    assert len(ended) == 1 and ended[0].message.fields["outcome"] == "passed"
    assert m.deframer.stats.bad_crc == 3 and m.running_selftests == ()


def test_silence_amid_damaged_frames_is_a_noisy_loss(m: HostSession) -> None:
    started(m)
    m.receive_data(spoil(result(900)), 1.5)
    run_until(m, 0.05 + T_LOST)
    [lost] = of(m, SelfTestLost)
    assert isinstance(lost, SelfTestLost) and lost.noisy and "noisy line" in lost.text


def test_damage_before_the_last_report_does_not_make_the_silence_after_it_noisy(m: HostSession) -> None:
    started(m)
    m.receive_data(spoil(progress(700)), 0.5)
    m.receive_data(progress(701), 1.0)                # intact: the count is taken again here
    run_until(m, 1.0 + T_LOST)
    [lost] = of(m, SelfTestLost)
    assert isinstance(lost, SelfTestLost) and not lost.noisy


def test_each_progress_report_starts_the_timer_again(m: HostSession) -> None:
    started(m)
    # reports late on a bad line (3.9 s apart, each still within T_lost of the one before)
    for i, at in enumerate((3.9, 7.8, 11.7, 15.6)):
        run_until(m, at)
        m.receive_data(progress(700 + i, percent=10 * i), at)
    assert of(m, SelfTestLost) == []
    assert m.next_deadline() == pytest.approx(15.6 + T_LOST)
    run_until(m, 15.6 + T_LOST)
    assert len(of(m, SelfTestLost)) == 1


def test_another_components_progress_does_not_keep_this_one_alive(m: HostSession) -> None:
    started(m)
    for i, at in enumerate((1.0, 2.0, 3.0, 4.0)):
        m.receive_data(progress(700 + i, component=POWER), at)
    run_until(m, 0.05 + T_LOST)
    [lost] = of(m, SelfTestLost)
    assert isinstance(lost, SelfTestLost) and lost.component == "printer"


def test_a_retransmitted_progress_report_already_delivered_does_not_reset_the_timer(m: HostSession) -> None:
    started(m)
    m.receive_data(progress(700), 1.0)
    m.receive_data(progress(700, flags=EVENT | RETRANSMIT), 3.0)   # our ACK was lost: a copy of the old report
    run_until(m, 1.0 + T_LOST)
    assert len(of(m, SelfTestLost)) == 1


@pytest.mark.parametrize(("baud", "payload", "t_lost"), [
    # 10 F / baud for F = payload + 11, then T_prog + L + 4 (L + 0.5 + 2 L), by hand
    (9600, 1024, 1 + 1.078125 + 4 * (1.078125 + 0.5 + 2 * 1.078125)),      # 17.02 s
    (1200, 1024, 1 + 8.625 + 4 * (8.625 + 0.5 + 2 * 8.625)),              # 115.1 s
    (115200, 128, 1 + 1390 / 115200 + 4 * (1390 / 115200 + 0.5 + 2 * 1390 / 115200)),   # 3.16 s
])
def test_t_lost_follows_the_line_rate_and_the_negotiated_payload(baud: int, payload: int, t_lost: float) -> None:
    m = HostSession(Timers(baud=baud, max_payload=payload), now=0.0)
    started(m)
    run_until(m, 0.05 + t_lost - 0.01)
    assert of(m, SelfTestLost) == []
    run_until(m, 0.05 + t_lost)
    assert len(of(m, SelfTestLost)) == 1


def test_a_fixed_lost_after_overrides_the_line(m: HostSession) -> None:
    m.lost_after = 120.0
    started(m)
    run_until(m, 100.0)
    assert of(m, SelfTestLost) == []
    assert m.next_deadline() == pytest.approx(120.05)


def test_the_result_ends_the_watch(m: HostSession) -> None:
    started(m)
    m.receive_data(result(701), 2.0)
    evs = m.events()
    assert [type(e) for e in evs if not isinstance(e, Answered)] == [SelfTestEnded, TerminalEvent]
    assert m.running_selftests == () and m.next_deadline() is None
    run_until(m, 50.0)
    assert m.events() == []


def test_a_refused_start_is_not_watched(m: HostSession) -> None:
    h = m.send_request(T.SELFTEST_START, START, 0.0)
    m.receive_data(nak(h.seq, NOT_PERMITTED), 0.05)
    assert [type(e) for e in m.events()] == [Refused]
    assert m.running_selftests == ()


def test_a_restart_ends_the_watch_without_calling_the_tests_lost(m: HostSession) -> None:
    hello = {"protocol_version": 1, "max_payload": 1024, "host": "pos-sim"}
    reply = b"\x01\x04\x00\x0f\xfe\x03SP1"
    h = m.send_request(T.HELLO, hello, 0.0)
    m.receive_data(frame(0x02, reply + struct.pack(">I", 0xAAAA), h.seq, RESPONSE), 0.01)
    assert [type(e) for e in m.events()] == [Answered]
    started(m, 0.1, 0.15)
    h = m.send_request(T.HELLO, hello, 1.0)
    m.receive_data(frame(0x02, reply + struct.pack(">I", 0xBBBB), h.seq, RESPONSE), 1.01)
    assert [type(e) for e in m.events()] == [SessionGone, Answered]
    assert m.running_selftests == ()
    run_until(m, 30.0)
    assert of(m, SelfTestLost) == []


def test_a_test_followed_without_starting_it_is_watched_too(m: HostSession) -> None:
    m.watch_selftest("printer", 2.0)
    [ev] = m.events()
    assert isinstance(ev, SelfTestStarted) and ev.handle is None and ev.component == "printer"
    run_until(m, 2.0 + T_LOST)
    assert len(of(m, SelfTestLost)) == 1


# -- an aborted run's late result (section 8) ----------------------------------------------------


def _abort(m: HostSession, at: float) -> None:
    h = m.send_request(T.SELFTEST_ABORT, {"component": "printer"}, at)
    m.receive_data(ack(h.seq), at + 0.05)
    assert [type(e) for e in m.events()] == [Answered]


def test_an_aborted_runs_late_result_is_not_taken_by_the_next_run(m: HostSession) -> None:
    started(m, 0.0, 0.05)
    _abort(m, 1.0)
    m.receive_data(spoil(result(701, outcome=ABORTED)), 1.1)      # its result, spoilt on the line
    started(m, 1.2, 1.25)                                         # a new run of the same component
    m.receive_data(result(701, outcome=ABORTED, flags=EVENT | RETRANSMIT), 1.9)   # the old run's copy
    evs = m.events()
    assert [type(e) for e in evs] == [LateResult, TerminalEvent]
    assert m.running_selftests == ("printer",)                    # the new run is still watched
    m.receive_data(result(702), 3.0)
    [ended] = of(m, SelfTestEnded)
    assert isinstance(ended, SelfTestEnded) and ended.message.fields["outcome"] == "passed"


def test_when_the_new_run_is_aborted_too_an_aborted_result_ends_it(m: HostSession) -> None:
    started(m, 0.0, 0.05)
    _abort(m, 1.0)
    started(m, 1.2, 1.25)
    _abort(m, 1.5)
    m.receive_data(result(702, outcome=ABORTED), 1.6)
    assert [type(e) for e in m.events()] == [SelfTestEnded, TerminalEvent]
    assert m.running_selftests == ()


def test_the_old_runs_result_is_owed_only_for_its_schedule(m: HostSession) -> None:
    # past T_lost from the abort no copy of that result can still arrive: an aborted result
    # then is not the old run's (the terminal does not invent one for a run nobody aborted,
    # but the watch must not hold on to a debt the line has long settled)
    started(m, 0.0, 0.05)
    _abort(m, 1.0)
    started(m, 1.2, 1.25)
    m.receive_data(progress(703), 4.0)
    assert [type(e) for e in m.events()] == [TerminalEvent]
    m.receive_data(result(704, outcome=ABORTED), 1.05 + T_LOST + 0.1)
    assert [type(e) for e in m.events()] == [SelfTestEnded, TerminalEvent]


def test_without_an_abort_a_new_run_takes_the_next_result(m: HostSession) -> None:
    started(m, 0.0, 0.05)
    m.receive_data(result(701), 1.0)
    assert [type(e) for e in m.events()] == [SelfTestEnded, TerminalEvent]
    started(m, 1.2, 1.25)
    m.receive_data(result(702), 2.0)
    assert [type(e) for e in m.events()] == [SelfTestEnded, TerminalEvent]
    assert m.running_selftests == ()


# -- SELFTEST_START asked once more (section 5, "A noisy line") ------------------------------------


def _sends(m: HostSession) -> list[tuple[int, int, int]]:
    """(type, seq, flags) of each request queued (not the ACKs of events), from section 2's
    header offsets."""
    return [(d[6], struct.unpack(">H", d[4:6])[0], d[3]) for d in m.frames_to_send() if not d[3] & RESPONSE]


def _all_unanswered(m: HostSession, h_seq: int, t: float) -> float:
    """Let every send of ``h_seq`` go unanswered; return the time of the last deadline."""
    for send in range(4):
        [(typ, seq, flags)] = _sends(m)
        assert (typ, seq) == (0x20, h_seq) and bool(flags & RETRANSMIT) == (send > 0)
        t = m.next_deadline() or t
        m.advance(t)
    return t


def test_a_start_whose_sends_all_went_unanswered_is_asked_once_more_as_a_new_request(m: HostSession) -> None:
    h = m.send_request(T.SELFTEST_START, START, 0.0)
    t = _all_unanswered(m, 1, 0.0)
    [(typ, seq, flags)] = _sends(m)
    assert (typ, seq, flags & RETRANSMIT) == (0x20, 2, 0) and h.seq == 2 and m.events() == []
    m.receive_data(ack(2), t + 0.1)
    evs = m.events()
    assert [type(e) for e in evs] == [SelfTestStarted, Answered] and h.done
    assert m.running_selftests == ("printer",)


def test_busy_to_the_second_start_means_the_first_went_through(m: HostSession) -> None:
    h = m.send_request(T.SELFTEST_START, START, 0.0)
    t = _all_unanswered(m, 1, 0.0)
    _sends(m)
    m.receive_data(nak(2, BUSY), t + 0.1)
    [ev] = m.events()
    assert isinstance(ev, SelfTestStarted) and ev.adopted and ev.handle is h and h.done
    assert ev.message is not None and ev.message.type == T.NAK
    assert m.running_selftests == ("printer",) and _sends(m) == []    # no retransmit after this busy
    m.receive_data(result(800), t + 1.0)
    assert len(of(m, SelfTestEnded)) == 1


def test_busy_while_another_test_of_ours_runs_is_a_refusal(m: HostSession) -> None:
    # the terminal may be running the printer for our first START, or be unable to run two at
    # once: the host cannot tell, so it is the terminal's refusal (and not a definite one)
    started(m, 0.0, 0.05, {"component": "power", "plan": "full", "interactive": False})
    h = m.send_request(T.SELFTEST_START, START, 0.1)
    t = _all_unanswered(m, 2, 0.1)
    m.receive_data(progress(600, component=POWER), t)      # the power test reports on meanwhile
    for _ in range(4):   # every send of the second START refused busy: the back-off, then final
        [(typ, seq, _)] = _sends(m)
        assert (typ, seq) == (0x20, 3)
        m.receive_data(nak(3, BUSY), t + 0.01)
        t += 0.01 + 0.2
        m.advance(t)
    evs = [e for e in m.events() if isinstance(e, Refused | SelfTestStarted)]
    assert len(evs) == 1 and isinstance(evs[0], Refused)
    assert evs[0].handle is h and evs[0].reason == "busy" and not evs[0].definite
    assert m.running_selftests == ("power",)


def test_busy_without_an_unanswered_start_before_is_a_refusal(m: HostSession) -> None:
    h = m.send_request(T.SELFTEST_START, START, 0.0)
    t = 0.0
    for _ in range(4):
        [(_, seq, _)] = _sends(m)
        m.receive_data(nak(seq, BUSY), t + 0.01)
        t += 0.01 + 0.2
        m.advance(t)
    [ev] = m.events()
    assert isinstance(ev, Refused) and ev.handle is h and ev.reason == "busy" and ev.definite
    assert m.running_selftests == ()


def test_a_start_unanswered_twice_times_out_after_eight_sends(m: HostSession) -> None:
    m.send_request(T.SELFTEST_START, START, 0.0)
    t = _all_unanswered(m, 1, 0.0)
    _all_unanswered(m, 2, t)
    [ev] = m.events()
    assert isinstance(ev, TimedOut) and not ev.noisy
    assert m.stats.requests == 2 and m.stats.retransmits == 6


def test_a_start_with_repeat_off_is_not_asked_again(m: HostSession) -> None:
    m.send_request(T.SELFTEST_START, START, 0.0, repeat=False)
    _all_unanswered(m, 1, 0.0)
    [ev] = m.events()
    assert isinstance(ev, TimedOut) and m.seq == 1


def test_an_earlier_start_that_timed_out_lets_a_later_busy_adopt_the_test(m: HostSession) -> None:
    # the caller asked again itself (a new request after a TimedOut): busy still says it started
    m.send_request(T.SELFTEST_START, START, 0.0, repeat=False)
    t = _all_unanswered(m, 1, 0.0)
    assert isinstance(m.next_event(), TimedOut)
    h = m.send_request(T.SELFTEST_START, START, t + 1.0)
    [(_, seq, _)] = _sends(m)
    m.receive_data(nak(seq, BUSY), t + 1.1)
    [ev] = m.events()
    assert isinstance(ev, SelfTestStarted) and ev.adopted and ev.handle is h


# -- a property over random timelines ---------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(gaps=st.lists(st.floats(min_value=0.05, max_value=2 * T_LOST).filter(lambda g: abs(g - T_LOST) > 1e-6),
                     min_size=1, max_size=8))
def test_a_run_is_lost_exactly_when_a_gap_between_reports_reaches_t_lost(gaps: list[float]) -> None:
    # the oracle: the spec's rule itself, lost at the first silence of T_lost, never before
    m = HostSession(Timers(), now=0.0)
    started(m, 0.0, 0.0)
    now = 0.0
    for i, gap in enumerate(gaps):
        run_until(m, now + gap)
        lost = of(m, SelfTestLost)
        if gap > T_LOST:
            assert len(lost) == 1 and isinstance(lost[0], SelfTestLost)
            assert lost[0].silent_for == pytest.approx(T_LOST)
            assert m.running_selftests == ()
            return
        assert lost == []
        now += gap
        m.receive_data(progress(100 + i), now)
    run_until(m, now + T_LOST)
    assert len(of(m, SelfTestLost)) == 1


def test_a_result_after_an_unanswered_start_settles_it(m: HostSession) -> None:
    # the unanswered START did start the test, and its result came: a later busy is a refusal
    m.send_request(T.SELFTEST_START, START, 0.0, repeat=False)
    t = _all_unanswered(m, 1, 0.0)
    m.events()
    m.receive_data(result(800), t + 0.5)
    m.frames_to_send()
    m.events()
    h = m.send_request(T.SELFTEST_START, START, t + 1.0)
    for _ in range(4):
        [(_, seq, _)] = _sends(m)
        m.receive_data(nak(seq, BUSY), t + 1.01)
        t += 0.21
        m.advance(t + 1.01)
    [ev] = m.events()
    assert isinstance(ev, Refused) and ev.handle is h and ev.reason == "busy"
