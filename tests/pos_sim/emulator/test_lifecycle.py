"""Lifecycle operations (docs/protocol.md section 11): HMAC, counter, replay, state table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pos_sim.emulator.engine import TerminalEngine
from pos_sim.emulator.scenario import load_scenario
from pos_sim.emulator.state import DeviceState, StateStore
from protocols.pos import FrameDeframer, Message
from protocols.pos.auth import lifecycle_args, lifecycle_mac
from protocols.pos.codes import LifecycleOp
from tests.pos_sim.emulator.hosts import RESPONSE, RETRANSMIT, EngineHost, T


def lc(host: EngineHost, op: str, counter: int | None = None, *, activation_code: str = "", merchant_id: str = "",
       reason: str = "", key: bytes | None = None, tamper: dict[str, Any] | None = None,
       seq: int | None = None) -> Message:
    """Challenge, sign with the scenario's key (or ``key``) and send; return LC_RESULT."""
    challenge = host.request(T.LC_CHALLENGE_REQUEST, {"operation": op})
    assert challenge.type == T.LC_CHALLENGE, challenge
    c = challenge.fields
    assert c["operation"] == op and len(c["nonce"]) == 16
    counter = c["counter"] + 1 if counter is None else counter
    sc = host.engine.scenario
    mac = lifecycle_mac(key or sc.lifecycle.key, c["serial"], int(LifecycleOp[op]),
                        lifecycle_args(activation_code, merchant_id, reason), c["nonce"], counter)
    fields = {"operation": op, "counter": counter, "nonce": c["nonce"], "activation_code": activation_code,
              "merchant_id": merchant_id, "reason": reason, "mac": mac, **(tamper or {})}
    result = host.request(T.LC_REQUEST, fields, seq=seq)
    assert result.type == T.LC_RESULT, result
    return result


def lc_with(host: EngineHost, op: str, counter: int | None, args: dict[str, str]) -> Message:
    """:func:`lc` with the operation's arguments in a dict."""
    return lc(host, op, counter, activation_code=args.get("activation_code", ""),
              merchant_id=args.get("merchant_id", ""), reason=args.get("reason", ""))


def test_a_terminals_whole_life(tmp_path: Path) -> None:
    host = EngineHost("unactivated")
    host.hello()
    steps: list[tuple[str, dict[str, str], str]] = [
        ("revoke", {"reason": "bought by mistake"}, "revoked"),
        ("activate", {"activation_code": "A7K2-99QX", "merchant_id": "898310048169999"}, "activated"),
        ("bind", {"merchant_id": "898310048169999"}, "bound"),
        ("unbind", {"reason": "shop closed"}, "unactivated"),
        ("activate", {"activation_code": "B1", "merchant_id": "898310048160001"}, "activated"),
        ("factory_reset", {"reason": "resale"}, "unactivated"),
    ]
    counter = 0
    for op, args, state in steps:
        counter += 3  # any larger value will do
        result = lc_with(host, op, counter, args).fields
        assert (result["status"], result["state"], result["counter"]) == ("ok", state, counter), op
    info = host.request(T.INFO_REQUEST).fields
    assert info["lifecycle"] == "unactivated" and info["merchant_id"] == "" and info["activated_at"] == 0


def test_activation_records_merchant_and_time() -> None:
    host = EngineHost("unactivated")
    host.hello()
    lc(host, "activate", activation_code="CODE1", merchant_id="898310048160042")
    info = host.request(T.INFO_REQUEST).fields
    assert info["lifecycle"] == "activated" and info["merchant_id"] == "898310048160042"
    assert abs(info["activated_at"] - info["clock"]) <= 1


def test_the_spec_example_key_signs_for_the_healthy_terminal() -> None:
    host = EngineHost("healthy")
    host.hello()
    result = lc(host, "unbind", reason="repair", key=bytes(range(32)))
    assert result.fields["status"] == "ok" and result.fields["state"] == "unactivated"


@pytest.mark.parametrize("tamper", [
    {"mac": bytes(32)},
    {"merchant_id": "898310048160000"},  # an argument changed after signing
    {"reason": "something else"},
])
def test_altered_requests_are_refused_bad_auth_and_spend_nothing(tamper: dict[str, Any]) -> None:
    host = EngineHost("healthy")
    host.hello()
    result = lc(host, "unbind", 8, reason="repair", tamper=tamper)
    assert result.fields["status"] == "bad_auth"
    assert result.fields["counter"] == 7 and result.fields["state"] == "bound"
    assert lc(host, "unbind", 8, reason="repair").fields["status"] == "ok"


def test_a_wrong_key_is_bad_auth() -> None:
    host = EngineHost("healthy")
    host.hello()
    assert lc(host, "unbind", reason="x", key=bytes(32)).fields["status"] == "bad_auth"


def test_a_recorded_request_cannot_be_played_again() -> None:
    host = EngineHost("healthy")
    host.hello()
    challenge = host.request(T.LC_CHALLENGE_REQUEST, {"operation": "unbind"}).fields
    args = lifecycle_args(reason="repair")
    mac = lifecycle_mac(bytes(range(32)), "SP0000123", int(LifecycleOp.unbind), args, challenge["nonce"], 8)
    request = {"operation": "unbind", "counter": 8, "nonce": challenge["nonce"], "activation_code": "",
               "merchant_id": "", "reason": "repair", "mac": mac}
    assert host.request(T.LC_REQUEST, request).fields["status"] == "ok"
    # the same request again (a new seq, so it is not a retransmission): the nonce is spent
    assert host.request(T.LC_REQUEST, request).fields["status"] == "no_challenge"
    # with a fresh challenge the old nonce does not match
    host.request(T.LC_CHALLENGE_REQUEST, {"operation": "unbind"})
    assert host.request(T.LC_REQUEST, request).fields["status"] == "replay"


def test_counter_must_go_up() -> None:
    host = EngineHost("healthy")  # last accepted counter 7
    host.hello()
    for counter in (0, 7):
        result = lc(host, "unbind", counter, reason="x").fields
        assert (result["status"], result["counter"]) == ("replay", 7)


def test_no_challenge_wrong_operation_and_expiry() -> None:
    host = EngineHost("healthy")
    host.hello()
    bare = {"operation": "unbind", "counter": 9, "nonce": bytes(16), "activation_code": "", "merchant_id": "",
            "reason": "x", "mac": bytes(32)}
    assert host.request(T.LC_REQUEST, bare).fields["status"] == "no_challenge"
    challenge = host.request(T.LC_CHALLENGE_REQUEST, {"operation": "bind"}).fields
    wrong_op = {**bare, "nonce": challenge["nonce"]}
    assert host.request(T.LC_REQUEST, wrong_op).fields["status"] == "no_challenge"
    challenge = host.request(T.LC_CHALLENGE_REQUEST, {"operation": "unbind"}).fields
    host.advance(9.0)
    host.request(T.PING)
    host.advance(9.0)
    for _ in range(6):
        host.request(T.PING)
        host.advance(9.0)
    mac = lifecycle_mac(bytes(range(32)), "SP0000123", int(LifecycleOp.unbind), lifecycle_args(reason="x"),
                        challenge["nonce"], 9)
    late = {**bare, "nonce": challenge["nonce"], "mac": mac}
    assert host.request(T.LC_REQUEST, late).fields["status"] == "no_challenge", "a challenge lasts 60 s"


def test_a_new_challenge_replaces_the_old_one() -> None:
    host = EngineHost("healthy")
    host.hello()
    first = host.request(T.LC_CHALLENGE_REQUEST, {"operation": "unbind"}).fields
    host.request(T.LC_CHALLENGE_REQUEST, {"operation": "unbind"})
    mac = lifecycle_mac(bytes(range(32)), "SP0000123", int(LifecycleOp.unbind), lifecycle_args(reason="x"),
                        first["nonce"], 9)
    req = {"operation": "unbind", "counter": 9, "nonce": first["nonce"], "activation_code": "",
           "merchant_id": "", "reason": "x", "mac": mac}
    assert host.request(T.LC_REQUEST, req).fields["status"] == "replay"


@pytest.mark.parametrize(("scenario", "op", "args", "message"), [
    ("unactivated", "bind", {"merchant_id": "123"}, "not allowed when unactivated"),
    ("unactivated", "unbind", {"reason": "x"}, "not allowed when unactivated"),
    ("healthy", "revoke", {"reason": "x"}, "unbind first"),
    ("healthy", "activate", {"activation_code": "A", "merchant_id": "1"}, "unbind first"),
    ("healthy", "bind", {"merchant_id": "1"}, "not allowed when bound"),
])
def test_the_state_table_refuses_with_a_reason_and_still_spends_the_counter(
        scenario: str, op: str, args: dict[str, str], message: str) -> None:
    host = EngineHost(scenario)
    host.hello()
    before = host.engine.state.counter
    result = lc_with(host, op, before + 5, args).fields
    assert result["status"] == "refused_state" and message in result["message"]
    assert result["counter"] == before + 5, "a verified MAC spends the counter"


@pytest.mark.parametrize(("op", "args"), [
    ("bind", {"merchant_id": ""}),
    ("unbind", {"reason": ""}),
    ("unbind", {"reason": "x", "merchant_id": "1"}),
    ("activate", {"activation_code": "", "merchant_id": "1"}),
])
def test_missing_or_stray_arguments_are_bad_arguments(op: str, args: dict[str, str]) -> None:
    host = EngineHost("healthy" if op != "activate" else "unactivated")
    host.hello()
    assert lc_with(host, op, None, args).fields["status"] == "bad_arguments"


@pytest.mark.parametrize("op", [o.name for o in LifecycleOp])
def test_a_locked_terminal_refuses_every_operation(op: str) -> None:
    host = EngineHost("dropped")
    host.hello()
    args = {"activate": {"activation_code": "A", "merchant_id": "1"}, "bind": {"merchant_id": "1"}}.get(
        op, {"reason": "please"})
    result = lc_with(host, op, None, args).fields
    assert result["status"] == "refused_state" and result["state"] == "locked"
    assert "tamper" in result["message"]


def test_the_counter_is_saved_before_the_answer_is_sent(tmp_path: Path) -> None:
    saved: list[tuple[int, list[int]]] = []

    class Watching(StateStore):
        """Records, at each save, the counter on disk and the frames the terminal has queued."""

        engine: TerminalEngine | None = None

        def save(self, state: DeviceState) -> None:
            super().save(state)
            assert self.path is not None
            if self.engine is not None:  # the engine also saves while it boots
                queued = [f.type for f in FrameDeframer().feed(b"".join(self.engine._out))]
                saved.append((json.loads(self.path.read_text())["lifecycle"]["counter"], queued))

    store = Watching(tmp_path / "state.json")
    host = EngineHost("healthy", store=store)
    store.engine = host.engine
    host.hello()
    saved.clear()
    result = lc(host, "unbind", 12, reason="repair")
    assert result.fields["status"] == "ok"
    assert saved == [(12, [])], "saved once, with LC_RESULT not yet queued"


def test_a_retransmitted_lifecycle_request_is_answered_from_memory_not_run_again() -> None:
    host = EngineHost("healthy")
    host.hello()
    nonce = host.request(T.LC_CHALLENGE_REQUEST, {"operation": "unbind"}).fields["nonce"]
    mac = lifecycle_mac(bytes(range(32)), "SP0000123", int(LifecycleOp.unbind), lifecycle_args(reason="x"),
                        nonce, 9)
    fields = {"operation": "unbind", "counter": 9, "nonce": nonce, "activation_code": "", "merchant_id": "",
              "reason": "x", "mac": mac}
    first = host.request(T.LC_REQUEST, fields, seq=4000)
    assert first.fields["status"] == "ok"
    # the LC_RESULT was lost; the host sends the identical request again
    again = host.request(T.LC_REQUEST, fields, seq=4000, flags=RETRANSMIT)
    assert again.type == T.LC_RESULT and again.flags == RESPONSE | RETRANSMIT
    assert again.fields == first.fields, "not 'no_challenge': the request was not executed twice"
    assert host.engine.stats.duplicates == 1


def test_counter_survives_factory_reset(tmp_path: Path) -> None:
    host = EngineHost("healthy", store=StateStore(tmp_path / "s.json"))
    host.hello()
    lc(host, "factory_reset", 50, reason="resale")
    assert host.engine.state.counter == 50
    assert load_scenario("healthy").lifecycle.counter == 7
    again = EngineHost("healthy", store=StateStore(tmp_path / "s.json"))
    again.hello()
    assert lc(again, "activate", 50, activation_code="A", merchant_id="1").fields["status"] == "replay"
