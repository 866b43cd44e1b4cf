"""Lifecycle authentication: the HMAC-SHA256 a host attaches to an LC_REQUEST.

``mac = HMAC-SHA256(key, "POSSIM-LC1" || str8(serial) || u8(operation) || SHA-256(args)
|| nonce || u32(counter))`` where ``args`` is the request's ``activation_code``,
``merchant_id`` and ``reason`` fields exactly as encoded on the wire (three str8), ``nonce``
the 16 bytes of the LC_CHALLENGE being answered and ``counter`` big-endian.  The key is the
terminal's own 32-byte lifecycle key; no master key is ever involved on either side.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

from construct import ConstructError, Int8ub, PascalString, Struct

from protocols.pos.errors import EncodeError

MAC_DOMAIN = b"POSSIM-LC1"
LC_ARGS = Struct(
    "activation_code" / PascalString(Int8ub, "utf8"),
    "merchant_id" / PascalString(Int8ub, "utf8"),
    "reason" / PascalString(Int8ub, "utf8"),
)


def lifecycle_args(activation_code: str = "", merchant_id: str = "", reason: str = "") -> bytes:
    """The argument bytes a MAC covers (the LC_REQUEST's three text fields as encoded)."""
    try:
        return bytes(LC_ARGS.build({"activation_code": activation_code,
                                    "merchant_id": merchant_id, "reason": reason}))
    except ConstructError as exc:
        raise EncodeError(f"lifecycle arguments: {exc}") from exc


def mac_input(serial: str, operation: int, args: bytes, nonce: bytes, counter: int) -> bytes:
    """The exact bytes that are signed (exposed so the spec's example can be checked)."""
    serial_b = serial.encode("utf-8")
    if len(serial_b) > 255 or len(nonce) != 16 or not 0 <= counter <= 0xFFFFFFFF:
        raise EncodeError("serial over 255 bytes, nonce not 16 bytes, or counter out of range")
    return (MAC_DOMAIN + bytes([len(serial_b)]) + serial_b + bytes([operation])
            + hashlib.sha256(args).digest() + nonce + struct.pack(">I", counter))


def lifecycle_mac(key: bytes, serial: str, operation: int, args: bytes, nonce: bytes,
                  counter: int) -> bytes:
    """HMAC-SHA256 over :func:`mac_input`."""
    return hmac.new(key, mac_input(serial, operation, args, nonce, counter), hashlib.sha256).digest()


def verify_mac(key: bytes, mac: bytes, serial: str, operation: int, args: bytes, nonce: bytes,
               counter: int) -> bool:
    """Constant-time check of a received MAC."""
    return hmac.compare_digest(mac, lifecycle_mac(key, serial, operation, args, nonce, counter))
