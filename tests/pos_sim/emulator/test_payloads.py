"""The emulator's fast payload builders give construct's bytes, and construct's errors, for every
message they translate: checked against construct's own ``build`` of the same declarations on
many random messages (valid ones, and ones with a field out of range, of the wrong type or
missing), plus a few frames written out by hand from docs/protocol.md."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from construct import Int8ub, Int16sl, Int16ub, PascalString, PrefixedArray, Struct, Terminated
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pos_sim.emulator.payloads import ENCODERS, compile_encoder, encode_payload
from protocols.pos import EncodeError, MessageType
from protocols.pos import messages as reference
from protocols.pos.codes import Component, EventKind, SelfTestPlan
from protocols.pos.messages import CATALOGUE
from tests.protocols.strategies import message_strategy

TRANSLATED = sorted(MessageType(t) for t in ENCODERS)


def construct_build(t: MessageType, fields: dict[str, Any]) -> bytes | type[BaseException]:
    """What construct gives: the bytes, or the kind of error (through the catalogue's encoder)."""
    try:
        return reference.encode_payload(t, fields)
    except EncodeError:
        return EncodeError


def test_every_message_the_terminal_sends_during_a_self_test_is_translated() -> None:
    # the hot path: the answer, progress, results, events and errors of a self-test
    for t in (MessageType.ACK, MessageType.NAK, MessageType.PONG, MessageType.SELFTEST_PROGRESS,
              MessageType.SELFTEST_RESULT, MessageType.EVENT, MessageType.ERROR):
        assert int(t) in ENCODERS, t.name


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), t=st.sampled_from(TRANSLATED))
def test_valid_messages_give_constructs_bytes(data: st.DataObject, t: MessageType) -> None:
    fields = data.draw(message_strategy(t))
    expected = reference.encode_payload(t, fields)
    assert ENCODERS[int(t)](fields) == expected
    assert encode_payload(t, fields) == expected


_ODD_VALUES = st.one_of(st.integers(-2, 2), st.integers(250, 70000), st.integers(2**32 - 2, 2**32 + 2),
                        st.text(max_size=3), st.text(min_size=256, max_size=300), st.none(), st.floats(0, 2),
                        st.binary(max_size=3), st.booleans(), st.lists(st.integers(0, 3), max_size=2))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), t=st.sampled_from(TRANSLATED), drop=st.booleans())
def test_a_bad_field_gives_constructs_answer(data: st.DataObject, t: MessageType, drop: bool) -> None:
    fields = data.draw(message_strategy(t))
    if not fields:
        return
    name = data.draw(st.sampled_from(sorted(fields)))
    if drop:
        del fields[name]
    else:
        fields[name] = data.draw(_ODD_VALUES)
    expected = construct_build(t, fields)
    if expected is EncodeError:
        with pytest.raises(EncodeError):
            encode_payload(t, fields)
        with pytest.raises(Exception):  # noqa: B017 - any error: the wrapper then asks construct
            ENCODERS[int(t)](fields)
    else:
        assert encode_payload(t, fields) == expected
        assert ENCODERS[int(t)](fields) == expected


def test_frames_written_out_from_the_spec() -> None:
    # EVENT: event u8, component u8, uptime_ms u32 big-endian, value u32 big-endian
    event = {"event": int(EventKind.card_swiped), "component": "magstripe", "uptime_ms": 0x01020304, "value": 5}
    assert encode_payload(MessageType.EVENT, event) == bytes([3, 2, 1, 2, 3, 4, 0, 0, 0, 5])
    # SELFTEST_RESULT: component, plan, outcome, code u16, duration u32, n measurements (id u8 +
    # value s32 each), note as length + UTF-8
    result = {"component": Component.magstripe, "plan": int(SelfTestPlan.full), "outcome": "passed",
              "code": 0, "duration_ms": 1500, "measurements": [{"id": 1, "value": -2}], "note": "ok é"}
    note = "ok é".encode()
    assert encode_payload(MessageType.SELFTEST_RESULT, result) == (
        bytes([2, int(SelfTestPlan.full), 0]) + struct.pack(">HI", 0, 1500)
        + bytes([1, 1]) + struct.pack(">i", -2) + bytes([len(note)]) + note)
    assert encode_payload(MessageType.ACK, {}) == b"" == encode_payload(MessageType.ACK)


def test_what_is_not_translated_is_left_to_construct() -> None:
    untranslated = [t for t in CATALOGUE if int(t) not in ENCODERS]
    assert untranslated, "some messages use shapes kept for construct (Switch, Bytes(n))"
    little = Struct("a" / Int16sl, Terminated)
    assert compile_encoder(little) is None, "a little-endian field is not packed big-endian"
    fn = compile_encoder(Struct("n" / Int16ub, "s" / PascalString(Int8ub, "utf8"),
                                "xs" / PrefixedArray(Int8ub, Struct("v" / Int8ub)), Terminated))
    assert fn is not None
    assert fn({"n": 258, "s": "ab", "xs": [{"v": 7}, {"v": 9}]}) == b"\x01\x02\x02ab\x02\x07\x09"
