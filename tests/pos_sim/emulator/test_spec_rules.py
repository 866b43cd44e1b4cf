"""Spec revision 1.1's rules on the reference terminal: NAK precedence, unknown values, what a
new HELLO resets and how long a challenge lives (docs/protocol.md sections 4, 6 and 11).

Every expected answer below is read from the spec's tables by hand, one case per row pair, and
the frames go through the wire encoding only (the test host of ``hosts.py``).
"""

from __future__ import annotations

import struct

import pytest

from protocols.pos import Message, encode_frame
from protocols.pos.auth import lifecycle_args, lifecycle_mac
from protocols.pos.codes import LifecycleOp
from tests.pos_sim.emulator.hosts import EngineHost, T


def raw(host: EngineHost, mtype: int, payload: bytes) -> tuple[str, object]:
    """Send a frame with any type and payload; return (answer type, NAK reason or fields)."""
    seq = host.next_seq()
    host.engine.receive(encode_frame(mtype, payload, seq), host.now)
    answer = host.answer_to(seq)
    return answer.type.name, answer.fields.get("reason", answer.fields)


def nak(host: EngineHost, mtype: int, payload: bytes) -> str:
    kind, reason = raw(host, mtype, payload)
    assert kind == "NAK", (kind, reason)
    return str(reason)


@pytest.mark.parametrize("session,mtype,payload,reason", [
    # row 1 before row 3: an unknown type with a payload too large for the session
    (True, 0x7E, bytes(200), "unknown_type"),
    # row 2 before row 4: a reply type sent as a request, with a payload that decodes as nothing
    (True, int(T.PONG), b"\x01", "not_permitted"),
    # row 3 before row 4: larger than the 128 bytes negotiated, and not a STATUS_REQUEST either
    (True, int(T.STATUS_REQUEST), bytes(200), "too_large"),
    # row 4 before row 5: malformed and no session
    (False, int(T.STATUS_REQUEST), b"", "malformed"),
    # row 5: a well-formed request that needs a session, before HELLO
    (False, int(T.STATUS_REQUEST), bytes([0x05]), "not_permitted"),
    # row 8 before row 11: a component outside the table and a plan outside SelfTestPlan
    (True, int(T.SELFTEST_START), bytes([0x7E, 0x09, 0x00]), "not_permitted"),
    # row 11: a plan outside SelfTestPlan
    (True, int(T.SELFTEST_START), bytes([0x01, 0x09, 0x00]), "malformed"),
    # unknown values: an operation outside LifecycleOp in LC_CHALLENGE_REQUEST
    (True, int(T.LC_CHALLENGE_REQUEST), bytes([0x7E]), "malformed"),
    # unknown values: a component outside the table in SELFTEST_ABORT (not 0xFF)
    (True, int(T.SELFTEST_ABORT), bytes([0x7E]), "not_permitted"),
])
def test_the_first_refusal_in_the_spec_order_wins(session: bool, mtype: int, payload: bytes, reason: str) -> None:
    host = EngineHost("healthy")
    if session:
        host.hello(max_payload=128)
    assert nak(host, mtype, payload) == reason


def test_busy_comes_before_an_unknown_plan() -> None:
    host = EngineHost("healthy", speed=1.0)
    host.hello()
    assert host.request(T.SELFTEST_START, {"component": "network", "plan": "full", "interactive": False}).type == T.ACK
    assert nak(host, int(T.SELFTEST_START), bytes([0x08, 0x09, 0x00])) == "busy"


def test_an_lc_request_for_an_unknown_operation_is_no_challenge() -> None:
    host = EngineHost("healthy")
    host.hello()
    challenge = host.request(T.LC_CHALLENGE_REQUEST, {"operation": "unbind"})
    assert challenge.type == T.LC_CHALLENGE
    body = bytes([0x7E]) + struct.pack(">I", 99) + bytes(challenge.fields["nonce"]) + b"\x00\x00\x00" + bytes(32)
    kind, fields = raw(host, int(T.LC_REQUEST), body)
    assert kind == "LC_RESULT" and isinstance(fields, dict) and fields["status"] == "no_challenge"


def test_a_new_hello_clears_the_txlog_snapshot_and_the_challenge() -> None:
    host = EngineHost("healthy")
    host.hello()
    assert host.request(T.TXLOG_OPEN).type == T.TXLOG_INFO
    assert host.request(T.LC_CHALLENGE_REQUEST, {"operation": "unbind"}).type == T.LC_CHALLENGE
    host.hello()
    assert host.request(T.TXLOG_READ, {"page": 0}).fields == {"reason": "not_permitted"}
    result = _lc_request(host, "unbind", nonce=bytes(16), counter=10**6, reason="test")
    assert result.fields["status"] == "no_challenge"


def _lc_request(host: EngineHost, op: str, *, nonce: bytes, counter: int, reason: str = "",
                merchant_id: str = "") -> Message:
    sc = host.engine.scenario
    args = lifecycle_args(merchant_id=merchant_id, reason=reason)
    mac = lifecycle_mac(sc.lifecycle.key, sc.device.serial, int(LifecycleOp[op]), args, nonce, counter)
    return host.request(T.LC_REQUEST, {"operation": op, "counter": counter, "nonce": nonce, "activation_code": "",
                                       "merchant_id": merchant_id, "reason": reason, "mac": mac})


def test_a_challenge_survives_a_backup_in_between_and_unbind_clears_merchant_and_activation() -> None:
    host = EngineHost("healthy")
    host.hello()
    assert host.request(T.INFO_REQUEST).fields["lifecycle"] == "bound"
    challenge = host.request(T.LC_CHALLENGE_REQUEST, {"operation": "unbind"})
    info = host.request(T.TXLOG_OPEN).fields
    for page in range(info["pages"]):
        assert host.request(T.TXLOG_READ, {"page": page}).type == T.TXLOG_PAGE
    assert host.request(T.PING).type == T.PONG
    for _ in range(3):  # 27 s, inside the challenge's 60 s, the session kept alive with PINGs
        host.advance(9.0)
        assert host.request(T.PING).type == T.PONG
    result = _lc_request(host, "unbind", nonce=bytes(challenge.fields["nonce"]),
                         counter=challenge.fields["counter"] + 1, reason="repair")
    assert result.fields["status"] == "ok"
    after = host.request(T.INFO_REQUEST).fields
    assert (after["lifecycle"], after["merchant_id"], after["activated_at"]) == ("unactivated", "", 0)


def test_a_challenge_is_gone_after_sixty_seconds() -> None:
    host = EngineHost("healthy")
    host.hello()
    challenge = host.request(T.LC_CHALLENGE_REQUEST, {"operation": "unbind"})
    for _ in range(7):  # keep the session alive the way a host does, with PINGs
        host.advance(9.0)
        assert host.request(T.PING).type == T.PONG
    result = _lc_request(host, "unbind", nonce=bytes(challenge.fields["nonce"]),
                         counter=challenge.fields["counter"] + 1, reason="repair")
    assert result.fields["status"] == "no_challenge"
