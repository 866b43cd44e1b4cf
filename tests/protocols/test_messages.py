"""Every message round-trips, and the generated decoders agree with construct's parser."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.pos import (
    MAX_PAYLOAD,
    EncodeError,
    MalformedPayload,
    ProtocolError,
    UnknownMessageType,
    decode_frame,
    decode_message,
    decode_payload,
    encode_message,
    encode_payload,
)
from protocols.pos.codes import Component
from protocols.pos.compiler import UnsupportedConstruct, compile_decoder
from protocols.pos.messages import CATALOGUE, MessageType, decode_payload_construct
from protocols.pos.spec import examples
from tests.protocols.strategies import expected_decoding, message_strategy

TYPES = list(CATALOGUE)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _outcome(fn: Callable[..., Any], *args: Any) -> tuple[str, Any]:
    """('ok', value) or ('error', exception class family) for parity comparisons."""
    try:
        return ("ok", fn(*args))
    except MalformedPayload:
        return ("error", MalformedPayload)


@pytest.mark.parametrize("msg_type", TYPES, ids=lambda t: t.name)
@SETTINGS
@given(data=st.data())
def test_round_trip(msg_type: MessageType, data: st.DataObject) -> None:
    decl = CATALOGUE[msg_type].declaration
    fields = data.draw(message_strategy(msg_type))
    payload = encode_payload(msg_type, fields)
    if len(payload) > MAX_PAYLOAD:
        with pytest.raises(EncodeError):
            encode_message(msg_type, fields)
        return
    seq = data.draw(st.integers(0, 0xFFFF))
    flags = data.draw(st.integers(0, 7))
    frame = decode_frame(encode_message(msg_type, fields, seq=seq, flags=flags))
    msg = decode_message(frame)
    assert msg.type == msg_type and msg.seq == seq and msg.flags == flags
    assert msg.fields == expected_decoding(decl, fields)
    # both decoders agree, and re-encoding the decoding gives the same bytes
    assert decode_payload_construct(msg_type, payload) == msg.fields
    assert encode_payload(msg_type, msg.fields) == payload


@pytest.mark.parametrize("msg_type", TYPES, ids=lambda t: t.name)
@SETTINGS
@given(data=st.data())
def test_fast_decoder_matches_construct_on_mutations(msg_type: MessageType, data: st.DataObject) -> None:
    payload = encode_payload(msg_type, data.draw(message_strategy(msg_type)))
    cut = data.draw(st.integers(0, len(payload)))
    extra = data.draw(st.binary(max_size=8))
    for variant in (payload[:cut], payload + extra, payload[:cut] + extra + payload[cut:]):
        assert _outcome(decode_payload, msg_type, variant) == _outcome(decode_payload_construct, msg_type, variant)


def test_fast_decoder_matches_construct_on_random_bytes() -> None:
    rng = random.Random(20261123)
    for _ in range(4000):
        t = rng.choice(TYPES)
        blob = rng.randbytes(rng.choice((0, 1, 2, 5, 9, 17, 40, 120)))
        assert _outcome(decode_payload, t, blob) == _outcome(decode_payload_construct, t, blob), (t, blob.hex())


def test_truncated_payload_is_malformed_never_short() -> None:
    for _title, frame_bytes in examples():
        frame = decode_frame(frame_bytes)
        for k in range(len(frame.payload)):
            with pytest.raises(MalformedPayload):
                decode_payload(frame.type, frame.payload[:k])


def test_trailing_byte_is_refused() -> None:
    with pytest.raises(MalformedPayload, match="after the last field"):
        decode_payload(MessageType.NAK, bytes([3, 0]))


def test_invalid_utf8_is_malformed() -> None:
    payload = encode_payload(MessageType.HELLO, {"protocol_version": 1, "max_payload": 1024, "host": "ab"})
    bad = payload[:-2] + b"\xff\xfe"
    with pytest.raises(MalformedPayload, match="utf"):
        decode_payload(MessageType.HELLO, bad)


def test_unknown_type() -> None:
    with pytest.raises(UnknownMessageType, match="0xee"):
        decode_payload(0xEE, b"")
    with pytest.raises(UnknownMessageType):
        encode_payload(0xEE, {})


def test_unknown_enum_value_survives() -> None:
    payload = bytes([0x7F])  # component 0x7F is not in the catalogue
    assert decode_payload(MessageType.STATUS_REQUEST, payload) == {"component": 0x7F}


def test_status_reply_dispatches_on_component() -> None:
    fields = {"component": "power", "status": {"source": "battery", "voltage_mv": 3650, "current_ma": -310,
                                               "battery_pct": 9, "battery_status": "low", "battery_temp_c": 30}}
    payload = encode_payload(MessageType.STATUS_REPLY, fields)
    assert payload.hex() == "09010e42feca09041e"
    assert decode_payload(MessageType.STATUS_REPLY, payload) == fields


def test_encode_errors_are_ours() -> None:
    with pytest.raises(EncodeError, match="NAK"):
        encode_payload(MessageType.NAK, {})
    with pytest.raises(EncodeError):
        encode_payload(MessageType.NAK, {"reason": "no-such-reason"})
    with pytest.raises(EncodeError):
        encode_payload(MessageType.PONG, {"uptime_ms": -1})
    assert issubclass(EncodeError, ProtocolError)


def test_compiler_refuses_what_it_cannot_translate() -> None:
    from construct import Struct, VarInt

    with pytest.raises(UnsupportedConstruct, match="VarInt"):
        compile_decoder(Struct("n" / VarInt))


@pytest.mark.parametrize("component", ["power", 9, Component.power])
def test_status_reply_builds_by_name_or_number(component: object) -> None:
    status = {"source": "ac", "voltage_mv": 5000, "current_ma": 800, "battery_pct": 100,
              "battery_status": "charge_complete", "battery_temp_c": 25}
    payload = encode_payload(MessageType.STATUS_REPLY, {"component": component, "status": status})
    assert decode_payload(MessageType.STATUS_REPLY, payload) == {"component": "power", "status": status}
