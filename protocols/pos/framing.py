"""The frame: its construct declaration, and the encode / decode derived from it.

Wire layout (big-endian throughout)::

    offset  size  field
    0       2     sync      A5 5A
    2       1     version   1
    3       1     flags     FrameFlag bits
    4       2     seq       sequence number
    6       1     type      message type
    7       2     length    payload length, 0..max_payload (1024 unless HELLO lowered it)
    9       n     payload
    9+n     2     crc       CRC-16/CCITT-FALSE over bytes 2 .. 9+n-1 (everything after sync)

:data:`FRAME` is the single source of truth.  The fast paths below (:data:`HEADER`, the
deframer, :func:`encode_frame`) read their layout out of it at import time, and the tests
check them against ``FRAME.parse`` / ``FRAME.build`` byte for byte.
"""

from __future__ import annotations

import binascii
import struct
from typing import NamedTuple

from construct import (
    Bytes,
    Checksum,
    ChecksumError,
    Const,
    ConstructError,
    FormatField,
    Int8ub,
    Int16ub,
    RawCopy,
    Rebuild,
    Renamed,
    Struct,
    len_,
    this,
)

from protocols.pos.errors import (
    BadCRC,
    BadSync,
    EncodeError,
    IncompleteFrame,
    OversizeFrame,
    TrailingBytes,
    UnsupportedVersion,
)

SYNC = b"\xa5\x5a"
PROTOCOL_VERSION = 1
#: largest payload any implementation of version 1 accepts; HELLO may lower it, never raise it
MAX_PAYLOAD = 1024
CRC_INIT = 0xFFFF


def crc16(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, xorout 0; check 0x29B1."""
    return binascii.crc_hqx(data, CRC_INIT)


FRAME = Struct(
    "sync" / Const(SYNC) * "sync pattern, marks a possible frame start",
    "body" / RawCopy(Struct(
        "version" / Int8ub * "protocol version, 1",
        "flags" / Int8ub * "FrameFlag bits; undefined bits are sent as 0 and ignored",
        "seq" / Int16ub * "sequence number, 0..65535, wraps",
        "type" / Int8ub * "message type (catalogue below)",
        "length" / Rebuild(Int16ub, len_(this.payload)) * "payload length in bytes",
        "payload" / Bytes(this.length) * "message payload, `length` bytes",
    )),
    "crc" / Checksum(Int16ub, crc16, this.body.data) * "CRC-16/CCITT-FALSE over body",
)


def _strip(c: object) -> object:
    while isinstance(c, (Renamed, Rebuild)):
        c = c.subcon
    return c


def _derive_layout() -> tuple[bytes, struct.Struct, tuple[str, ...], struct.Struct]:
    """Read sync, header fields and trailer out of :data:`FRAME`."""
    sync_c, body_c, crc_c = (_strip(c) for c in FRAME.subcons)
    assert isinstance(sync_c, Const) and isinstance(sync_c.value, bytes)
    assert isinstance(body_c, RawCopy)
    body = _strip(body_c.subcon)
    assert isinstance(body, Struct)
    fmt, names = ">", []
    for sub in body.subcons:
        inner = _strip(sub)
        if isinstance(inner, Bytes):
            break
        assert isinstance(inner, FormatField), sub
        fmt += inner.fmtstr.lstrip("<>=!")
        names.append(sub.name)
    assert isinstance(crc_c, Checksum)
    trailer = _strip(crc_c.checksumfield)
    assert isinstance(trailer, FormatField)
    return sync_c.value, struct.Struct(fmt), tuple(names), struct.Struct(trailer.fmtstr)


_SYNC, HEADER, HEADER_FIELDS, TRAILER = _derive_layout()
assert _SYNC == SYNC and HEADER_FIELDS == ("version", "flags", "seq", "type", "length")
#: bytes before the payload (sync + header) and after it (crc)
HEADER_SIZE = len(SYNC) + HEADER.size
TRAILER_SIZE = TRAILER.size
OVERHEAD = HEADER_SIZE + TRAILER_SIZE
MAX_FRAME = OVERHEAD + MAX_PAYLOAD


class Frame(NamedTuple):
    """One intact frame: header fields and the raw payload (not yet decoded)."""

    version: int
    flags: int
    seq: int
    type: int
    payload: bytes


def encode_frame(msg_type: int, payload: bytes, seq: int, flags: int = 0,
                 version: int = PROTOCOL_VERSION) -> bytes:
    """Frame a payload: sync, header, payload and CRC, exactly as ``FRAME.build`` would."""
    if len(payload) > MAX_PAYLOAD:
        raise EncodeError(f"payload of {len(payload)} bytes exceeds the maximum {MAX_PAYLOAD}")
    try:
        body = HEADER.pack(version, flags, seq, msg_type, len(payload)) + payload
    except struct.error as exc:
        raise EncodeError(f"header field out of range: {exc}") from exc
    return SYNC + body + TRAILER.pack(crc16(body))


def encode_frame_construct(frame: Frame) -> bytes:
    """The same as :func:`encode_frame`, through construct (slow; the reference for tests)."""
    try:
        return bytes(FRAME.build({"body": {"value": {
            "version": frame.version, "flags": frame.flags, "seq": frame.seq,
            "type": frame.type, "payload": frame.payload}}}))
    except ConstructError as exc:
        raise EncodeError(str(exc)) from exc


def decode_frame(data: bytes, max_payload: int = MAX_PAYLOAD) -> Frame:
    """Decode exactly one frame from ``data``.

    Raises :class:`IncompleteFrame` when ``data`` is a strict prefix of a possible frame,
    and a :class:`FrameError` subclass when it cannot be one.
    """
    n = len(data)
    if data[: min(n, len(SYNC))] != SYNC[: min(n, len(SYNC))]:
        raise BadSync(f"frame starts with {bytes(data[:2]).hex()}, not {SYNC.hex()}")
    if n < HEADER_SIZE:
        raise IncompleteFrame(f"{n} bytes, a header needs {HEADER_SIZE}")
    version, flags, seq, msg_type, length = HEADER.unpack_from(data, len(SYNC))
    if length > max_payload:
        raise OversizeFrame(f"length {length} exceeds the maximum payload {max_payload}")
    end = HEADER_SIZE + length + TRAILER_SIZE
    if n < end:
        raise IncompleteFrame(f"{n} of {end} bytes")
    if n > end:
        raise TrailingBytes(f"{n - end} bytes after the end of the frame")
    (crc,) = TRAILER.unpack_from(data, end - TRAILER_SIZE)
    calc = crc16(memoryview(data)[len(SYNC): end - TRAILER_SIZE])
    if crc != calc:
        raise BadCRC(f"CRC {crc:04x} does not match the contents ({calc:04x})")
    if version != PROTOCOL_VERSION:
        raise UnsupportedVersion(f"protocol version {version}, this side speaks {PROTOCOL_VERSION}")
    return Frame(version, flags, seq, msg_type, bytes(data[HEADER_SIZE: end - TRAILER_SIZE]))


def decode_frame_construct(data: bytes) -> Frame:
    """Decode one frame through ``FRAME.parse`` (slow; the reference the tests compare with)."""
    try:
        parsed = FRAME.parse(data)
    except ChecksumError as exc:
        raise BadCRC(str(exc)) from exc
    except ConstructError as exc:
        raise IncompleteFrame(str(exc)) from exc
    v = parsed.body.value
    return Frame(v.version, v.flags, v.seq, v.type, bytes(v.payload))
