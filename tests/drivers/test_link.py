"""The link's rules (docs/protocol.md section 5), against a terminal played by the test on a pty."""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from drivers.errors import DeviceDisconnected, RequestRefused, ResponseTimeout
from drivers.link import Link, LinkTimings
from drivers.transport import open_port
from protocols.pos import Message, MessageType, encode_message
from protocols.pos.codes import FrameFlag
from tests.drivers.ptypeer import PtyPeer

FAST = LinkTimings(response_base=0.15, inter_byte=0.05, keepalive_idle=60.0, busy_backoff=0.05)
INFO = {"manufacturer": "SimPOS", "model": "SP-M7", "serial": "SP1", "hardware_rev": "B", "firmware_version": "1",
        "lifecycle": "bound", "merchant_id": "", "activated_at": 0, "clock": 0}
RETRANSMIT = int(FrameFlag.RETRANSMIT)
EVENT = int(FrameFlag.EVENT)


def make_link(peer: PtyPeer, timings: LinkTimings = FAST, **kw: Any) -> Link:
    return Link(open_port(peer.path, read_timeout=timings.read_slice), timings=timings, **kw).start()


def info_request(pool: ThreadPoolExecutor, link: Link) -> Future[Message]:
    return pool.submit(link.request, MessageType.INFO_REQUEST)


def test_request_and_answer(peer: PtyPeer, pool: ThreadPoolExecutor) -> None:
    with make_link(peer) as link:
        fut = info_request(pool, link)
        req = peer.expect_message(MessageType.INFO_REQUEST)
        assert req.flags == 0
        peer.send(MessageType.INFO_REPLY, INFO, seq=req.seq)
        assert fut.result(timeout=2).fields["serial"] == "SP1"
        assert link.stats.retransmits == 0 and link.stats.stale == 0


def test_lost_answer_is_retransmitted_with_the_same_seq(peer: PtyPeer, pool: ThreadPoolExecutor) -> None:
    with make_link(peer) as link:
        fut = info_request(pool, link)
        first = peer.expect_message(MessageType.INFO_REQUEST)
        again = peer.expect_message(MessageType.INFO_REQUEST, timeout=2)   # we "lost" the answer
        assert again.seq == first.seq and again.flags & RETRANSMIT and not first.flags & RETRANSMIT
        peer.send(MessageType.INFO_REPLY, INFO, seq=again.seq)
        assert fut.result(timeout=2).fields["model"] == "SP-M7"
        assert link.stats.retransmits == 1


def test_three_retransmits_then_timeout(peer: PtyPeer, pool: ThreadPoolExecutor) -> None:
    with make_link(peer) as link:
        fut = info_request(pool, link)
        sends = [peer.expect_message(MessageType.INFO_REQUEST, timeout=2) for _ in range(4)]
        assert len({f.seq for f in sends}) == 1
        with pytest.raises(ResponseTimeout, match="after 4 sends"):
            fut.result(timeout=FAST.worst_case + 1)
        assert peer.quiet(FAST.response_timeout) == []   # no fifth send


def test_stale_answer_is_never_matched_to_a_newer_request(peer: PtyPeer, pool: ThreadPoolExecutor) -> None:
    with make_link(peer) as link:
        fut = info_request(pool, link)
        sends = [peer.expect_message(MessageType.INFO_REQUEST, timeout=2) for _ in range(4)]
        with pytest.raises(ResponseTimeout):
            fut.result(timeout=FAST.worst_case + 1)
        old_seq = sends[0].seq
        fut2 = pool.submit(link.request, MessageType.STATUS_REQUEST, {"component": "power"})
        req2 = peer.expect_message(MessageType.STATUS_REQUEST)
        assert req2.seq != old_seq
        # the late answer to the first request arrives now, then the real one
        peer.send(MessageType.INFO_REPLY, INFO, seq=old_seq)
        peer.send(MessageType.STATUS_REPLY, {"component": "power", "status": {
            "source": "ac", "voltage_mv": 5000, "current_ma": 100, "battery_pct": 90,
            "battery_status": "charging", "battery_temp_c": 30}}, seq=req2.seq)
        assert fut2.result(timeout=2).type == MessageType.STATUS_REPLY
        assert link.stats.stale == 1


def test_nak_busy_is_retried_and_not_permitted_is_final(peer: PtyPeer, pool: ThreadPoolExecutor) -> None:
    with make_link(peer) as link:
        fut = info_request(pool, link)
        req = peer.expect_message(MessageType.INFO_REQUEST)
        peer.send(MessageType.NAK, {"reason": "busy"}, seq=req.seq)
        retry = peer.expect_message(MessageType.INFO_REQUEST, timeout=1)
        assert retry.seq == req.seq and retry.flags & RETRANSMIT
        peer.send(MessageType.INFO_REPLY, INFO, seq=req.seq)
        assert fut.result(timeout=2).type == MessageType.INFO_REPLY

        fut = info_request(pool, link)
        req = peer.expect_message(MessageType.INFO_REQUEST)
        peer.send(MessageType.NAK, {"reason": "not_permitted"}, seq=req.seq)
        with pytest.raises(RequestRefused, match="not_permitted") as info:
            fut.result(timeout=2)
        assert info.value.reason == "not_permitted"
        assert peer.quiet(FAST.response_timeout * 1.5) == []


def test_events_are_acknowledged_and_delivered_once(peer: PtyPeer) -> None:
    got: list[Message] = []
    with make_link(peer, on_event=got.append):
        fields = {"event": "key_pressed", "component": "keypad", "uptime_ms": 5, "value": 0x31}
        peer.send(MessageType.EVENT, fields, seq=700, flags=EVENT)
        ack = peer.expect_message(MessageType.ACK)
        assert ack.seq == 700 and ack.flags & FrameFlag.RESPONSE
        peer.send(MessageType.EVENT, fields, seq=700, flags=EVENT | RETRANSMIT)   # our ACK was "lost"
        assert peer.expect_message(MessageType.ACK).seq == 700
        peer.send(MessageType.EVENT, {**fields, "value": 0x32}, seq=701, flags=EVENT)
        assert peer.expect_message(MessageType.ACK).seq == 701
        deadline = time.monotonic() + 2
        while len(got) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert [m.fields["value"] for m in got] == [0x31, 0x32]


def test_partial_frame_is_dropped_after_the_inter_byte_timeout(peer: PtyPeer, pool: ThreadPoolExecutor) -> None:
    with make_link(peer) as link:
        fut = info_request(pool, link)
        req = peer.expect_message(MessageType.INFO_REQUEST)
        reply = encode_message(MessageType.INFO_REPLY, INFO, seq=req.seq, flags=int(FrameFlag.RESPONSE))
        peer.write(reply[:20])            # a frame cut short, then silence
        time.sleep(FAST.inter_byte * 3)
        peer.write(reply)                 # the whole frame again
        assert fut.result(timeout=2).fields["serial"] == "SP1"
        assert link.deframer.stats.partial_dropped == 1


def test_silent_port_times_out_with_a_useful_message(peer: PtyPeer) -> None:
    with make_link(peer) as link:
        t0 = time.monotonic()
        with pytest.raises(ResponseTimeout, match="nothing received at all"):
            link.request(MessageType.HELLO, {"protocol_version": 1, "max_payload": 1024, "host": "t"})
        assert time.monotonic() - t0 >= 4 * FAST.response_timeout   # all four sends were waited for


def test_garbage_is_named_as_such(peer: PtyPeer, pool: ThreadPoolExecutor) -> None:
    with make_link(peer) as link:
        fut = info_request(pool, link)
        peer.expect_message(MessageType.INFO_REQUEST)
        peer.write(bytes(range(200)) * 3)
        with pytest.raises(ResponseTimeout, match="not frames"):
            fut.result(timeout=FAST.worst_case + 1)


def test_echo_is_named_as_such(peer: PtyPeer, pool: ThreadPoolExecutor) -> None:
    with make_link(peer) as link:
        fut = info_request(pool, link)
        for _ in range(4):
            req = peer.expect(timeout=2)
            peer.write(bytes(peer.raw[-(11 + len(req.payload)):]))   # send back exactly what came in
            peer.raw.clear()
        with pytest.raises(ResponseTimeout, match="echoes"):
            fut.result(timeout=FAST.worst_case + 1)


def test_unplug_fails_the_waiting_request_promptly(peer: PtyPeer, pool: ThreadPoolExecutor) -> None:
    downs: list[Exception] = []
    link = make_link(peer, on_down=downs.append)
    try:
        fut = info_request(pool, link)
        peer.expect_message(MessageType.INFO_REQUEST)
        peer.unplug()
        with pytest.raises(DeviceDisconnected, match="disconnected"):
            fut.result(timeout=10)
        # promptly: the broken port ended the wait, not the request's own answer time
        assert link.stats.timeouts == 0
        assert isinstance(link.error, DeviceDisconnected) and len(downs) == 1
        with pytest.raises(DeviceDisconnected):
            link.request(MessageType.INFO_REQUEST)
    finally:
        link.close()


def test_idle_link_sends_keepalive(peer: PtyPeer) -> None:
    timings = LinkTimings(response_base=0.15, keepalive_idle=0.2)
    with make_link(peer, timings) as link:
        link.keepalive = True
        ping = peer.expect_message(MessageType.PING, timeout=2)
        peer.send(MessageType.PONG, {"uptime_ms": 1}, seq=ping.seq)
        second = peer.expect_message(MessageType.PING, timeout=2)
        assert second.seq != ping.seq
        peer.send(MessageType.PONG, {"uptime_ms": 2}, seq=second.seq)
        assert link.error is None


def test_unanswered_keepalive_takes_the_link_down(peer: PtyPeer) -> None:
    timings = LinkTimings(response_base=0.1, keepalive_idle=0.1)
    with make_link(peer, timings) as link:
        link.keepalive = True
        deadline = time.monotonic() + timings.keepalive_idle + timings.worst_case + 1
        while link.error is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert isinstance(link.error, ResponseTimeout) and "keep-alive" in str(link.error)
