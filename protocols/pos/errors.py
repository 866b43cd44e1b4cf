"""The protocol layer's exception family.

Everything that goes wrong while framing, deframing, encoding or decoding leaves the
``protocols`` package as a :class:`ProtocolError` (or one of its subclasses), never as a
``construct`` error, ``struct.error`` or ``UnicodeDecodeError``.  Each class carries the bit of
the command line's exit status that it stands for (docs/diagnostics.md, "Exit status").
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base of every error raised by the protocol layer."""

    #: bit of the exit status: 4, "protocol or communication failure"
    exit_code = 4


class IncompleteFrame(ProtocolError):
    """The bytes end before the frame does: more input is needed, nothing is wrong yet."""


class FrameError(ProtocolError):
    """The bytes cannot be a frame of this protocol (bad sync, version, length or CRC)."""


class BadSync(FrameError):
    """The frame does not start with the sync pattern."""


class UnsupportedVersion(FrameError):
    """The frame's version byte is not one this implementation speaks."""


class OversizeFrame(FrameError):
    """The length field exceeds the negotiated maximum payload."""


class BadCRC(FrameError):
    """The CRC-16 at the end of the frame does not match its contents."""


class TrailingBytes(FrameError):
    """A single-frame decode was given bytes after the end of the frame."""


class UnknownMessageType(ProtocolError):
    """The frame's type byte is not in the message catalogue."""


class MalformedPayload(ProtocolError):
    """The payload does not match its message's declaration (short, long, or bad text)."""


class EncodeError(ProtocolError):
    """The fields given cannot be encoded as the message asked for."""
