"""The pos-sim wire protocol: frames, messages, codes and the streaming deframer.

Pure code: no I/O, no clocks, no threads, and nothing of ours imported.  The specification is
``docs/protocol.md``; its tables are generated from the declarations here.
"""

from protocols.pos.codes import Component, FaultCode, FrameFlag, LifecycleState, NakReason
from protocols.pos.deframer import DeframerStats, FrameDeframer
from protocols.pos.errors import (
    BadCRC,
    BadSync,
    EncodeError,
    FrameError,
    IncompleteFrame,
    MalformedPayload,
    OversizeFrame,
    ProtocolError,
    TrailingBytes,
    UnknownMessageType,
    UnsupportedVersion,
)
from protocols.pos.framing import (
    MAX_FRAME,
    MAX_PAYLOAD,
    PROTOCOL_VERSION,
    SYNC,
    Frame,
    crc16,
    decode_frame,
    encode_frame,
)
from protocols.pos.messages import (
    CATALOGUE,
    Message,
    MessageType,
    decode_message,
    decode_payload,
    encode_message,
    encode_payload,
)

__all__ = [
    "CATALOGUE", "MAX_FRAME", "MAX_PAYLOAD", "PROTOCOL_VERSION", "SYNC", "BadCRC", "BadSync",
    "Component", "DeframerStats", "EncodeError", "FaultCode", "Frame", "FrameDeframer",
    "FrameError", "FrameFlag", "IncompleteFrame", "LifecycleState", "MalformedPayload", "Message",
    "MessageType", "NakReason", "OversizeFrame", "ProtocolError", "TrailingBytes",
    "UnknownMessageType", "UnsupportedVersion", "crc16", "decode_frame", "decode_message",
    "decode_payload", "encode_frame", "encode_message", "encode_payload",
]
