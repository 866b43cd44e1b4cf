"""The printer's query rules (protocols.escpos.session) on a fake clock: times are given by hand.

Deadlines are checked against figures computed by hand from docs/escpos.md: at 9600 baud 8N1
a byte takes 1.0417 ms; DLE EOT n (3 bytes out, 1 back) waits 0.5 s + 2 x 4.1667 ms =
0.50833 s; GS r 1 waits 1.5 s + 8.3333 ms = 1.50833 s; GS I n (3 out, at least 2 back)
1.5 s + 2 x 5.2083 ms = 1.51042 s.
"""

from __future__ import annotations

import pytest

from protocols.escpos import DLE_EOT, GS_R_PAPER, IDENTITY_REQUESTS
from protocols.escpos.session import NoReply, PrinterSession, Reply


def test_one_request_at_a_time_in_order_each_with_its_reply() -> None:
    s = PrinterSession(baud=9600)
    t1 = s.request(DLE_EOT[1], 0.0)
    t2 = s.request(DLE_EOT[2], 0.0)
    assert s.frames_to_send() == [b"\x10\x04\x01"]   # the second waits for the first's reply
    assert s.frames_to_send() == []
    s.receive_data(b"\x12", 0.01)
    assert s.events() == [Reply(t1, DLE_EOT[1], 0x12, 0.01)]
    assert s.frames_to_send() == [b"\x10\x04\x02"]
    s.receive_data(b"\x16", 0.02)
    assert s.events() == [Reply(t2, DLE_EOT[2], 0x16, 0.02)]
    assert not s.busy
    assert (s.stats.requests, s.stats.bytes_out, s.stats.bytes_in, s.stats.timeouts) == (2, 6, 2, 0)


def test_the_deadline_is_the_line_rate_wait_from_the_moment_on_the_line() -> None:
    s = PrinterSession(baud=9600)
    t1 = s.request(DLE_EOT[1], 10.0)
    assert s.next_deadline() == pytest.approx(10.508333, abs=1e-6)
    s.advance(10.508)
    assert s.events() == []
    s.advance(10.509)
    (gone,) = s.events()
    assert isinstance(gone, NoReply) and gone.ticket == t1 and gone.waited == pytest.approx(0.508333, abs=1e-6)
    assert s.stats.timeouts == 1 and s.next_deadline() is None
    # GS r 1 queued behind a DLE EOT starts its wait when the DLE EOT is answered, not when asked
    s.frames_to_send()
    s.request(DLE_EOT[4], 20.0)
    s.request(GS_R_PAPER, 20.0)
    s.receive_data(b"\x12", 20.3)
    assert s.next_deadline() == pytest.approx(20.3 + 1.508333, abs=1e-6)
    assert s.frames_to_send() == [b"\x10\x04\x04", b"\x1d\x72\x01"]
    s2 = PrinterSession(baud=9600)
    s2.request(IDENTITY_REQUESTS["serial"], 0.0)
    assert s2.next_deadline() == pytest.approx(1.510417, abs=1e-6)
    s3 = PrinterSession(baud=9600)
    s3.request(DLE_EOT[1], 0.0, timeout=0.158)   # the probe's own, shorter wait
    assert s3.next_deadline() == pytest.approx(0.158)


def test_a_late_reply_after_the_give_up_is_garbage_not_the_next_requests() -> None:
    s = PrinterSession(baud=9600)
    s.request(DLE_EOT[1], 0.0)
    s.advance(1.0)
    s.events()
    t2 = s.request(GS_R_PAPER, 1.0)
    s.receive_data(b"\x12", 1.1)   # DLE EOT 1's reply, too late: 0x12 has bit 4 set, no GS r reply
    assert s.events() == [] and s.garbage.garbage == 1
    s.receive_data(b"\x03", 1.2)
    assert s.events() == [Reply(t2, GS_R_PAPER, 0x03, 1.2)]


def test_split_replies_among_garbage_and_a_block_reply() -> None:
    s = PrinterSession(baud=None)
    t = s.request(IDENTITY_REQUESTS["model"], 0.0)
    for chunk in (b"\x99", b"\x5fTM-", b"T88V", b"\x00"):
        s.receive_data(chunk, 0.1)
    assert s.events() == [Reply(t, IDENTITY_REQUESTS["model"], b"TM-T88V", 0.1)]
    assert s.garbage.garbage == 1


def test_print_data_goes_out_in_its_place_among_the_requests() -> None:
    s = PrinterSession(baud=9600)
    s.request(DLE_EOT[1], 0.0)
    s.send(b"\x1b\x40page", 0.0)
    s.request(DLE_EOT[2], 0.0)
    assert s.frames_to_send() == [b"\x10\x04\x01"]   # the page waits for the request before it
    s.receive_data(b"\x12", 0.1)
    assert s.frames_to_send() == [b"\x1b\x40page", b"\x10\x04\x02"]
    assert s.stats.bytes_out == 3 + 6 + 3
