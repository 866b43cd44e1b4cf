"""The streaming deframer: feed it bytes as they arrive, get back every intact frame.

Contract (pymodbus' framer, tightened):

* :meth:`FrameDeframer.feed` takes any chunk (one byte, half a frame, megabytes with garbage)
  and returns the frames completed by it, in order.  Nothing but a :class:`ProtocolError`
  can escape, and in practice nothing does: bad input is counted, not raised.
* A length above the maximum is refused as soon as the header is in, before a byte of the
  claimed payload is waited for; the buffer never holds more than one maximal frame plus the
  chunk being fed.
* After an oversize length, a bad CRC or a bad version the search resumes one byte after the
  rejected sync, so a real frame that starts inside the rejected bytes is still found.
* :meth:`FrameDeframer.drop_partial` is the inter-byte timeout: it gives up the partial frame
  at the front of the buffer and returns whatever intact frames the rest still holds.
"""

from __future__ import annotations

from binascii import crc_hqx
from dataclasses import dataclass, fields

from protocols.pos.framing import (
    CRC_INIT,
    HEADER,
    HEADER_SIZE,
    MAX_PAYLOAD,
    PROTOCOL_VERSION,
    SYNC,
    TRAILER_SIZE,
    Frame,
)


@dataclass
class DeframerStats:
    """What a deframer has seen: frames accepted and every kind of byte it dropped."""

    bytes_in: int = 0
    frames: int = 0
    frame_bytes: int = 0
    bad_crc: int = 0
    oversize: int = 0
    bad_version: int = 0
    partial_dropped: int = 0
    bytes_dropped: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict (for JSON and status bars)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


_new_frame = tuple.__new__


class FrameDeframer:
    """Turns a byte stream into :class:`Frame` objects; see the module docstring."""

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        if not 0 <= max_payload <= MAX_PAYLOAD:
            raise ValueError(f"max_payload must be 0..{MAX_PAYLOAD}")
        self.max_payload = max_payload
        self.stats = DeframerStats()
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held that may still become part of a frame."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Add bytes; return the frames they completed (possibly none)."""
        buf = self._buf
        buf += data
        stats = self.stats
        stats.bytes_in += len(data)
        frames: list[Frame] = []
        pos = self._scan(0, frames)
        if pos:
            del buf[:pos]
        stats.bytes_dropped = stats.bytes_in - stats.frame_bytes - len(buf)
        return frames

    def drop_partial(self) -> list[Frame]:
        """Give up the partial frame at the front (inter-byte timeout); return frames behind it."""
        buf = self._buf
        frames: list[Frame] = []
        if buf:
            if buf.startswith(SYNC):
                self.stats.partial_dropped += 1
            del buf[: self._scan(1, frames)]
            self.stats.bytes_dropped = self.stats.bytes_in - self.stats.frame_bytes - len(buf)
        return frames

    def reset(self) -> None:
        """Forget buffered bytes (counted as dropped), e.g. after the port was reopened."""
        if self._buf:
            self.stats.partial_dropped += 1
        self._buf.clear()
        self.stats.bytes_dropped = self.stats.bytes_in - self.stats.frame_bytes

    def _scan(self, pos: int, frames: list[Frame]) -> int:
        """Collect frames from ``pos`` on; return how many leading bytes are done with."""
        buf = self._buf
        n = len(buf)
        stats = self.stats
        find = buf.find
        unpack = HEADER.unpack_from
        max_payload = self.max_payload
        append = frames.append
        sync0 = SYNC[0]
        accepted = accepted_bytes = 0
        # a view lets the CRC run over the buffer without copying each frame; it is released
        # before the caller resizes the buffer
        with memoryview(buf) as view:
            while True:
                i = find(SYNC, pos)
                if i < 0:
                    # keep a trailing first sync byte: its partner may come in the next chunk
                    pos = n - 1 if n > pos and buf[n - 1] == sync0 else n
                    break
                if n - i < HEADER_SIZE:
                    pos = i
                    break
                version, flags, seq, msg_type, length = unpack(buf, i + 2)
                if length > max_payload:
                    stats.oversize += 1
                    pos = i + 1
                    continue
                end = i + HEADER_SIZE + length + TRAILER_SIZE
                if end > n:
                    pos = i
                    break
                if crc_hqx(view[i + 2: end - 2], CRC_INIT) != (buf[end - 2] << 8 | buf[end - 1]):
                    stats.bad_crc += 1
                    pos = i + 1
                    continue
                if version != PROTOCOL_VERSION:
                    # intact, but another protocol version: not ours to decode (the CRC is checked
                    # first so that line noise on the version byte counts as a bad CRC)
                    stats.bad_version += 1
                    pos = i + 1
                    continue
                append(_new_frame(Frame, (version, flags, seq, msg_type,
                                          bytes(view[i + HEADER_SIZE: end - TRAILER_SIZE]))))
                accepted += 1
                accepted_bytes += end - i
                pos = end
        stats.frames += accepted
        stats.frame_bytes += accepted_bytes
        return pos
