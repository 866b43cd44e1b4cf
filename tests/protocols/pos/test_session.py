"""The host's session rules, on the pure machine and a fake clock (docs/protocol.md sections 5, 6).

Expected bytes come from the spec: its worked examples (section 14, read from docs/protocol.md
itself) and frames built here by hand from section 2's layout with ``binascii.crc_hqx``, the
CRC the spec names, never through the encoder under test.  Expected times are the spec's
formulas worked by hand: at 115200 baud before HELLO a maximal frame (1035 bytes) takes
10350 / 115200 s and ``T_resp = 0.5 + 2 x 10350 / 115200 = 0.6797 s``.
"""

from __future__ import annotations

import binascii
import re
import struct
from pathlib import Path
from typing import Any

import pytest

from protocols.pos.codes import NakReason
from protocols.pos.messages import MessageType
from protocols.pos.session import (
    Answered,
    DuplicateEvent,
    HostSession,
    KeepAliveSent,
    LinkDown,
    NotARequest,
    PayloadTooLarge,
    Refused,
    RequestOutstanding,
    SessionGone,
    StaleDropped,
    TerminalEvent,
    TimedOut,
    Violation,
)
from protocols.pos.timing import Timers

T = MessageType
RESPONSE, EVENT, RETRANSMIT = 0x01, 0x02, 0x04
SPEC = (Path(__file__).resolve().parents[3] / "docs" / "protocol.md").read_text(encoding="utf-8")
T_RESP = 0.5 + 2 * 10350 / 115200
HELLO = {"protocol_version": 1, "max_payload": 1024, "host": "pos-sim 0.1"}
INFO = {"manufacturer": "SimPOS", "model": "SP-M7", "serial": "SP1", "hardware_rev": "B", "firmware_version": "1",
        "lifecycle": "bound", "merchant_id": "", "activated_at": 0, "clock": 0}


def example(n: int) -> bytes:
    """The bytes of the spec's worked example ``n``."""
    m = re.search(rf"### Example {n}: .*?```hex\n(.*?)```", SPEC, re.DOTALL)
    assert m, f"no example {n} in the spec"
    return bytes.fromhex(m.group(1))


def frame(msg_type: int, payload: bytes, seq: int, flags: int = 0) -> bytes:
    """A frame by section 2's table: sync, version 1, flags, seq, type, length, payload, CRC."""
    body = struct.pack(">BBHBH", 1, flags, seq, msg_type, len(payload)) + payload
    return b"\xa5\x5a" + body + struct.pack(">H", binascii.crc_hqx(body, 0xFFFF))


def line(nbytes: int, baud: int = 115200) -> float:
    return nbytes * 10 / baud


def info_reply(seq: int, flags: int = RESPONSE) -> bytes:
    """INFO_REPLY of the spec's example 3 with another seq (its payload is the spec's bytes)."""
    return frame(0x11, example(3)[9:-2], seq, flags)


def run_until(machine: HostSession, t: float) -> None:
    """Advance the fake clock to ``t``, stopping at every deadline on the way (as the worker does)."""
    while (d := machine.next_deadline()) is not None and d <= t:
        machine.advance(d)
    machine.advance(t)


def kinds(machine: HostSession) -> list[str]:
    return [type(e).__name__ for e in machine.events()]


@pytest.fixture
def m() -> HostSession:
    return HostSession(Timers(), seq=0, now=0.0, name="pty")


# -- requests and answers ------------------------------------------------------------------


def test_the_specs_exchange_byte_for_byte(m: HostSession) -> None:
    h = m.send_request(T.HELLO, HELLO, 0.0)
    assert m.data_to_send() == example(1)            # HELLO, seq 1
    m.receive_data(frame(0x02, b"\x01\x04\x00\x0f\xfe\x03SP1\x00\x00\x12\x34", 1, RESPONSE), 0.05)
    [ev] = m.events()
    assert isinstance(ev, Answered) and ev.handle is h and ev.message.fields["boot_id"] == 0x1234
    h2 = m.send_request(T.INFO_REQUEST, None, 0.1)
    assert m.data_to_send() == frame(0x10, b"", 2)
    m.receive_data(example(3), 0.2)                 # the spec's INFO_REPLY, seq 2
    [ev] = m.events()
    assert isinstance(ev, Answered) and ev.handle is h2 and ev.message.fields["serial"] == "SP0000123"
    assert m.stats.requests == 2 and m.stats.retransmits == 0 and m.stats.stale == 0


def test_a_terminal_event_is_acknowledged_as_the_spec_shows(m: HostSession) -> None:
    event = frame(0x31, example(6)[9:-2], 1, EVENT)   # example 6's EVENT, numbered 1
    m.receive_data(event, 1.0)
    assert m.data_to_send() == example(2)             # ACK, RESPONSE, seq 1
    [ev] = m.events()
    assert isinstance(ev, TerminalEvent) and ev.message.fields["value"] == 0b101


def test_events_are_acked_every_time_and_delivered_once(m: HostSession) -> None:
    m.receive_data(example(5), 1.0)                            # SELFTEST_RESULT, EVENT, seq 40
    again = frame(0x22, example(5)[9:-2], 40, EVENT | RETRANSMIT)  # our ACK was lost
    m.receive_data(again, 1.7)
    assert m.data_to_send() == frame(0x06, b"", 40, RESPONSE) * 2
    # a result, even of a test not watched here, is said as one first (section 8's self-test watch)
    assert kinds(m) == ["SelfTestEnded", "TerminalEvent", "DuplicateEvent"]
    assert m.stats.events == 1 and m.stats.duplicate_events == 1


def test_the_host_remembers_the_last_32_events(m: HostSession) -> None:
    payload = example(6)[9:-2]
    for seq in range(100, 133):                         # 33 events: the first is forgotten
        m.receive_data(frame(0x31, payload, seq, EVENT), 1.0)
    m.events()
    m.receive_data(frame(0x31, payload, 132, EVENT | RETRANSMIT), 2.0)
    m.receive_data(frame(0x31, payload, 101, EVENT | RETRANSMIT), 2.0)
    m.receive_data(frame(0x31, payload, 100, EVENT | RETRANSMIT), 2.0)
    assert [type(e) for e in m.events()] == [DuplicateEvent, DuplicateEvent, TerminalEvent]


def test_a_malformed_event_is_naked_malformed(m: HostSession) -> None:
    m.receive_data(frame(0x31, b"\x01", 9, EVENT), 1.0)   # an EVENT is 10 bytes
    assert m.data_to_send() == frame(0x15, bytes([NakReason.malformed]), 9, RESPONSE)
    assert m.events() == [] and m.stats.malformed == 1


def test_the_terminals_ping_is_answered_with_the_hosts_uptime(m: HostSession) -> None:
    m.receive_data(frame(0x03, b"", 77), 12.345)
    assert m.data_to_send() == frame(0x04, struct.pack(">I", 12345), 77, RESPONSE)


def test_sequence_numbers_wrap_from_65535_to_0() -> None:
    m = HostSession(Timers(), seq=0xFFFE, now=0.0)
    seqs = []
    for i in range(3):
        h = m.send_request(T.PING, None, float(i))
        seqs.append(h.seq)
        m.receive_data(frame(0x04, b"\0\0\0\1", h.seq, RESPONSE), i + 0.1)
    assert seqs == [0xFFFF, 0, 1]
    assert m.data_to_send().count(frame(0x03, b"", 0)) == 1


# -- retransmits and timeouts --------------------------------------------------------------


def test_the_retransmit_schedule_and_then_a_timeout(m: HostSession) -> None:
    m.send_request(T.INFO_REQUEST, None, 0.0)
    first = frame(0x10, b"", 1)
    per_send = line(len(first)) + T_RESP               # the answer time runs from the last byte
    assert m.data_to_send() == first
    assert m.next_deadline() == pytest.approx(per_send)
    sends = [first]
    for k in range(1, 4):
        m.advance(k * per_send - 1e-6)
        assert m.data_to_send() == b"", f"send {k + 1} came early"
        m.advance(k * per_send)
        sends.append(m.data_to_send())
    assert sends[1:] == [frame(0x10, b"", 1, RETRANSMIT)] * 3    # same seq, RETRANSMIT, its own CRC
    m.advance(4 * per_send - 1e-6)
    assert m.events() == []
    m.advance(4 * per_send)
    [ev] = m.events()
    assert isinstance(ev, TimedOut) and not ev.noisy
    assert ev.text == "pty: no answer to INFO_REQUEST after 4 sends (nothing received at all: is the terminal on, " \
                      "and is this its port?)"
    assert m.data_to_send() == b"" and m.stats.retransmits == 3 and m.stats.timeouts == 1
    # the whole schedule is the spec's T_sched for this frame, under the maximal-frame figure
    assert 4 * per_send <= Timers().worst_case


@pytest.mark.parametrize(("baud", "t_resp"), [(1200, 17.75), (9600, 2.65625), (921600, 0.522460)])
def test_the_answer_time_follows_the_line_rate(baud: int, t_resp: float) -> None:
    m = HostSession(Timers(baud=baud), seq=0, now=0.0)
    m.send_request(T.PING, None, 0.0)
    sent = m.data_to_send()
    assert m.next_deadline() == pytest.approx(line(len(sent), baud) + t_resp, rel=1e-4)


def test_a_smaller_negotiated_payload_shortens_the_answer_time(m: HostSession) -> None:
    m.timers = Timers(max_payload=128)
    m.send_request(T.PING, None, 0.0)
    sent = m.data_to_send()
    assert m.next_deadline() == pytest.approx(line(len(sent)) + 0.5 + 2 * line(139))


def test_an_answer_still_arriving_at_the_deadline_is_waited_for(m: HostSession) -> None:
    m.send_request(T.INFO_REQUEST, None, 0.0)
    deadline = m.next_deadline()
    assert deadline is not None
    m.data_to_send()
    answer = info_reply(1)
    m.receive_data(answer[:30], deadline - 0.01)       # bytes arriving as the time runs out
    m.advance(deadline + 0.05)                          # within T_ib of the last byte
    assert m.data_to_send() == b"", "retransmitted while the answer was arriving"
    m.receive_data(answer[30:], deadline + 0.06)
    assert [type(e) for e in m.events()] == [Answered] and m.stats.retransmits == 0


def test_the_wait_for_an_arriving_answer_is_bounded_by_one_maximal_frame(m: HostSession) -> None:
    m.send_request(T.INFO_REQUEST, None, 0.0)
    deadline = m.next_deadline()
    assert deadline is not None
    m.data_to_send()
    noise = bytes(range(1, 101))                         # garbage trickling in, never a frame
    t = deadline - 0.01
    while t < deadline + line(1035):
        m.receive_data(noise[:5], t)
        assert m.data_to_send() == b""
        t += 0.05
    m.receive_data(noise[:5], t)
    assert m.data_to_send() == frame(0x10, b"", 1, RETRANSMIT)


def test_nak_bad_crc_is_retransmitted_at_once(m: HostSession) -> None:
    m.send_request(T.STATUS_REQUEST, {"component": "printer"}, 0.0)
    m.data_to_send()
    m.receive_data(frame(0x15, bytes([NakReason.bad_crc]), 1, RESPONSE), 0.1)
    assert m.data_to_send() == frame(0x12, b"\x05", 1, RETRANSMIT)
    assert m.stats.naks == 1 and m.events() == []


def test_nak_busy_is_retransmitted_after_the_back_off(m: HostSession) -> None:
    for _ in range(4):                                   # the spec's example 7 answers seq 5
        h = m.send_request(T.PING, None, 0.0)
        m.receive_data(frame(0x04, b"\0\0\0\1", h.seq, RESPONSE), 0.0)
    m.send_request(T.INFO_REQUEST, None, 1.0)
    m.data_to_send()
    m.events()
    m.receive_data(example(7), 1.1)                      # NAK busy, seq 5
    assert m.next_deadline() == pytest.approx(1.3)
    m.advance(1.299)
    assert m.data_to_send() == b""
    m.advance(1.3)
    assert m.data_to_send() == frame(0x10, b"", 5, RETRANSMIT)


def test_bad_crc_and_busy_are_retried_three_times_at_most(m: HostSession) -> None:
    h = m.send_request(T.INFO_REQUEST, None, 0.0)
    t = 0.0
    for _ in range(4):
        assert m.data_to_send().startswith(b"\xa5\x5a")
        t += 0.3
        m.receive_data(frame(0x15, bytes([NakReason.busy]), 1, RESPONSE), t)
        m.advance(t + 0.2)
    [ev] = m.events()
    assert isinstance(ev, Refused) and ev.handle is h and ev.reason == "busy" and ev.definite
    assert m.data_to_send() == b""


@pytest.mark.parametrize("reason", [r for r in NakReason if r not in (NakReason.bad_crc, NakReason.busy)])
def test_every_other_nak_reason_is_final(m: HostSession, reason: NakReason) -> None:
    h = m.send_request(T.TXLOG_OPEN, None, 0.0)
    m.data_to_send()
    m.receive_data(frame(0x15, bytes([reason]), 1, RESPONSE), 0.1)
    [ev] = m.events()
    assert isinstance(ev, Refused) and ev.handle is h and ev.reason == reason.name and ev.definite
    assert ev.text == f"TXLOG_OPEN refused by the terminal: {reason.name}"
    m.advance(10.0)
    assert m.data_to_send() == b"" and m.stats.retransmits == 0


def test_a_refusal_after_an_unanswered_send_is_not_definite(m: HostSession) -> None:
    m.send_request(T.LC_CHALLENGE_REQUEST, {"operation": "bind"}, 0.0)
    deadline = m.next_deadline()
    assert deadline is not None
    m.advance(deadline)                                   # the first send timed out: maybe executed
    assert m.data_to_send().endswith(frame(0x60, b"\x02", 1, RETRANSMIT))
    m.receive_data(frame(0x15, bytes([NakReason.not_permitted]), 1, RESPONSE), deadline + 0.1)
    [ev] = m.events()
    assert isinstance(ev, Refused) and not ev.definite


def test_a_duplicate_answer_is_stale(m: HostSession) -> None:
    m.send_request(T.INFO_REQUEST, None, 0.0)
    m.receive_data(info_reply(1) + info_reply(1, RESPONSE | RETRANSMIT), 0.1)
    assert [type(e) for e in m.events()] == [Answered, StaleDropped]
    assert m.stats.stale == 1


def test_a_late_answer_is_never_matched_to_a_newer_request(m: HostSession) -> None:
    m.send_request(T.INFO_REQUEST, None, 0.0)
    run_until(m, 100.0)
    assert [type(e) for e in m.events()] == [TimedOut]
    h2 = m.send_request(T.INFO_REQUEST, None, 101.0)
    assert h2.seq == 2
    m.receive_data(info_reply(1), 101.1)               # the first request's answer, late
    assert [type(e) for e in m.events()] == [StaleDropped]
    m.receive_data(info_reply(2), 101.2)
    [ev] = m.events()
    assert isinstance(ev, Answered) and ev.handle is h2 and m.stats.stale == 1


def test_an_answer_of_the_wrong_type_is_a_violation(m: HostSession) -> None:
    h = m.send_request(T.INFO_REQUEST, None, 0.0)
    m.receive_data(frame(0x06, b"", 1, RESPONSE), 0.1)   # ACK answers commands, not INFO_REQUEST
    [ev] = m.events()
    assert isinstance(ev, Violation) and ev.handle is h and "INFO_REQUEST answered with" in ev.text


def test_the_callers_time_limit_ends_the_request(m: HostSession) -> None:
    m.send_request(T.INFO_REQUEST, None, 0.0, timeout=1.0)
    m.advance(0.999)
    assert m.events() == []
    m.advance(1.0)
    assert [type(e) for e in m.events()] == [TimedOut]


def test_requests_the_machine_refuses(m: HostSession) -> None:
    with pytest.raises(NotARequest):
        m.send_request(T.ACK, None, 0.0)
    m.timers = Timers(max_payload=128)
    with pytest.raises(PayloadTooLarge) as big:
        m.send_request(T.HELLO, {**HELLO, "host": "x" * 200}, 0.0)
    assert (big.value.size, big.value.limit) == (204, 128)
    assert m.data_to_send() == b"" and m.seq == 0          # nothing sent, no number used
    m.send_request(T.PING, None, 0.0)
    with pytest.raises(RequestOutstanding):
        m.send_request(T.PING, None, 0.0)


# -- the deframer's inter-byte timeout -----------------------------------------------------


def test_a_partial_frame_is_dropped_after_the_inter_byte_timeout(m: HostSession) -> None:
    m.send_request(T.INFO_REQUEST, None, 0.0)
    m.data_to_send()
    answer = info_reply(1)
    m.receive_data(answer[:20], 0.10)
    assert m.next_deadline() == pytest.approx(0.20)       # T_ib = 100 ms at 115200
    m.advance(0.199)
    assert m.deframer.pending == 20
    m.advance(0.20)
    assert m.deframer.pending == 0 and m.deframer.stats.partial_dropped == 1
    m.receive_data(answer, 0.25)
    assert [type(e) for e in m.events()] == [Answered]


def test_the_inter_byte_timeout_grows_at_slow_rates() -> None:
    m = HostSession(Timers(baud=1200), seq=0, now=0.0)
    m.receive_data(info_reply(1)[:20], 1.0)
    assert m.next_deadline() == pytest.approx(1.0 + 24 * 10 / 1200)   # 200 ms: 24 byte times


# -- keep-alive ----------------------------------------------------------------------------


def test_an_idle_link_is_pinged_after_two_seconds(m: HostSession) -> None:
    m.keepalive = True
    assert m.next_deadline() == pytest.approx(2.0)
    m.advance(1.999)
    assert m.data_to_send() == b""
    m.advance(2.0)
    assert m.data_to_send() == frame(0x03, b"", 1)
    [ev] = m.events()
    assert isinstance(ev, KeepAliveSent)
    m.receive_data(frame(0x04, b"\0\0\x07\xd0", 1, RESPONSE), 2.01)
    assert m.events() == []                                # nobody waits for it
    assert m.next_deadline() == pytest.approx(4.01)        # idle counts from the last frame


def test_traffic_puts_the_keep_alive_off(m: HostSession) -> None:
    m.keepalive = True
    m.receive_data(frame(0x31, example(6)[9:-2], 3, EVENT), 1.5)
    m.advance(2.0)
    assert m.data_to_send() == frame(0x06, b"", 3, RESPONSE)   # only the event's ACK
    m.advance(3.5)
    assert m.data_to_send() == frame(0x03, b"", 1)


def test_a_silent_keep_alive_means_the_link_is_down(m: HostSession) -> None:
    m.keepalive = True
    m.advance(2.0)
    t, evs = 2.0, m.events()
    assert [type(e) for e in evs] == [KeepAliveSent]
    evs = []
    while not evs and (d := m.next_deadline()) is not None and d < 100:
        t = d
        m.advance(t)
        evs = m.events()
    [down] = evs
    assert isinstance(down, LinkDown) and "stopped answering keep-alives" in down.text
    per_send = line(11) + T_RESP
    assert t == pytest.approx(2.0 + 4 * per_send)


def test_a_callers_request_takes_the_line_from_a_keep_alive(m: HostSession) -> None:
    m.keepalive = True
    m.advance(2.0)
    m.events()
    m.data_to_send()
    h = m.send_request(T.INFO_REQUEST, None, 2.1)
    assert h.seq == 2
    m.receive_data(frame(0x04, b"\0\0\0\1", 1, RESPONSE), 2.2)   # the ping's answer: stale now
    m.receive_data(info_reply(2), 2.3)
    assert [type(e) for e in m.events()] == [StaleDropped, Answered]


# -- a noisy line --------------------------------------------------------------------------


def _spoil(data: bytes) -> bytes:
    bad = bytearray(data)
    bad[-1] ^= 0x10
    return bytes(bad)


def _all_sends_spoilt(m: HostSession, seq: int, t: float) -> float:
    """Answer each of the four sends of ``seq`` with a damaged frame; return the time after."""
    for _ in range(4):
        m.data_to_send()
        m.receive_data(_spoil(info_reply(seq)), t + 0.05)
        t = m.next_deadline() or t
        m.advance(t)
    return t


def test_a_harmless_request_is_asked_again_when_the_line_spoils_its_answers(m: HostSession) -> None:
    h = m.send_request(T.INFO_REQUEST, None, 0.0)
    t = _all_sends_spoilt(m, 1, 0.0)
    assert m.data_to_send() == frame(0x10, b"", 2), "asked again as a new request"
    assert h.seq == 2 and m.events() == []
    m.receive_data(info_reply(2), t + 0.1)
    [ev] = m.events()
    assert isinstance(ev, Answered) and ev.handle is h
    assert m.stats.requests == 2 and m.stats.timeouts == 1 and m.deframer.stats.bad_crc == 4


def test_the_noisy_repeat_stops_after_three_and_reports_the_first_failure(m: HostSession) -> None:
    m.send_request(T.STATUS_REQUEST, {"component": "power"}, 0.0)
    t = 0.0
    for seq in range(1, 5):
        t = _all_sends_spoilt(m, seq, t)
    [ev] = m.events()
    assert isinstance(ev, TimedOut) and ev.noisy and "STATUS_REQUEST after 4 sends" in ev.text
    assert m.seq == 4 and m.stats.requests == 4


def test_silence_is_not_asked_again(m: HostSession) -> None:
    m.send_request(T.INFO_REQUEST, None, 0.0)
    run_until(m, 100.0)
    [ev] = m.events()
    assert isinstance(ev, TimedOut) and not ev.noisy and m.seq == 1


@pytest.mark.parametrize(("msg_type", "fields"), [
    (T.LC_CHALLENGE_REQUEST, {"operation": "bind"}), (T.SELFTEST_ABORT, {"component": "printer"}),
    (T.TXLOG_OPEN, None)])
def test_a_request_that_changes_something_is_never_asked_again(m: HostSession, msg_type: MessageType,
                                                                fields: dict[str, Any] | None) -> None:
    m.send_request(msg_type, fields, 0.0)
    _all_sends_spoilt(m, 1, 0.0)
    [ev] = m.events()
    assert isinstance(ev, TimedOut) and ev.noisy and m.seq == 1


# -- noticing a restart --------------------------------------------------------------------


def _hello(m: HostSession, boot_id: int, now: float) -> list[object]:
    h = m.send_request(T.HELLO, HELLO, now)
    reply = b"\x01\x04\x00\x0f\xfe\x03SP1" + struct.pack(">I", boot_id)
    m.receive_data(frame(0x02, reply, h.seq, RESPONSE), now + 0.01)
    m.data_to_send()
    return list(m.events())


def test_another_boot_id_is_a_restart(m: HostSession) -> None:
    _hello(m, 0xAAAA, 0.0)
    assert [type(e) for e in _hello(m, 0xAAAA, 1.0)] == [Answered]
    evs = _hello(m, 0xBBBB, 2.0)
    assert [type(e) for e in evs] == [SessionGone, Answered]    # told before the caller wakes
    gone = evs[0]
    assert isinstance(gone, SessionGone) and gone.cause == "boot_id" and "0000aaaa is now 0000bbbb" in gone.text
    assert m.restarts == 1 and m.session_lost is None


def test_not_permitted_to_info_after_hello_is_a_restart(m: HostSession) -> None:
    h = m.send_request(T.INFO_REQUEST, None, 0.0)
    m.receive_data(frame(0x15, bytes([NakReason.not_permitted]), h.seq, RESPONSE), 0.1)
    assert [type(e) for e in m.events()] == [Refused]           # before any HELLO: nothing to lose
    _hello(m, 1, 1.0)
    h = m.send_request(T.INFO_REQUEST, None, 2.0)
    m.receive_data(frame(0x15, bytes([NakReason.not_permitted]), h.seq, RESPONSE), 2.1)
    assert [type(e) for e in m.events()] == [SessionGone, Refused]
    assert m.session_lost is not None and m.session_lost.cause == "not_permitted"


def test_an_uptime_that_went_back_is_checked_with_info(m: HostSession) -> None:
    _hello(m, 1, 0.0)
    m.keepalive = True
    m.advance(2.02)                                          # a keep-alive after 2 s idle
    ping = m.data_to_send()
    assert ping == frame(0x03, b"", 2)
    m.receive_data(frame(0x04, struct.pack(">I", 60_000), 2, RESPONSE), 2.03)   # up a minute
    m.advance(4.04)
    assert m.data_to_send() == frame(0x03, b"", 3)
    m.receive_data(frame(0x04, struct.pack(">I", 20), 3, RESPONSE), 4.05)       # back to 20 ms
    m.advance(4.05)
    assert m.data_to_send() == frame(0x10, b"", 4)           # the session check, at once
    m.receive_data(frame(0x15, bytes([NakReason.not_permitted]), 4, RESPONSE), 4.06)
    evs = [e for e in m.events() if not isinstance(e, KeepAliveSent)]
    assert [type(e) for e in evs] == [SessionGone]
    gone = evs[0]
    assert isinstance(gone, SessionGone) and gone.cause == "uptime" and "uptime read 0.0 s where about" in gone.text


def test_a_counter_that_wraps_is_not_a_doubt(m: HostSession) -> None:
    _hello(m, 1, 0.0)
    m.keepalive = True
    t, up = 2.5, (1 << 32) - 1000
    for _ in range(4):
        m.advance(t)
        ping = m.data_to_send()
        m.receive_data(frame(0x04, struct.pack(">I", up % (1 << 32)), m.seq, RESPONSE), t)
        assert ping == frame(0x03, b"", m.seq)
        t, up = t + 2.5, up + 2500
    assert m.session_lost is None and m.restarts == 0


def test_every_frame_from_the_terminal_is_reported_first_when_asked() -> None:
    """With report_frames, each deframed frame is a FrameReceived event ahead of what it causes
    (the TUI's frame log and the capture notes hang on it); without, no such event."""
    from protocols.pos.session import Answered, FrameReceived

    for report in (True, False):
        s = HostSession(seq=0, report_frames=report)
        handle = s.send_request(T.INFO_REQUEST, None, 0.0)
        s.data_to_send()
        s.receive_data(info_reply(1), 0.01)
        events = s.events()
        kinds = [type(e) for e in events]
        if report:
            assert kinds == [FrameReceived, Answered]
            first = events[0]
            assert isinstance(first, FrameReceived)
            assert first.frame.type == T.INFO_REPLY and first.frame.seq == 1
        else:
            assert kinds == [Answered]
        last = events[-1]
        assert isinstance(last, Answered) and last.handle is handle
