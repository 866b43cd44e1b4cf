"""A terminal played by the test itself, on the master side of a real pseudo-terminal.

The code under test opens the slave path through pyserial exactly as it would open
/dev/ttyACM0; the test reads the frames it sends and answers (or misbehaves) by hand.
"""

from __future__ import annotations

import contextlib
import os
import select
import time
import tty
from typing import Any

from protocols.pos import Frame, FrameDeframer, MessageType, decode_message, encode_message
from protocols.pos.codes import FrameFlag


class PtyPeer:
    """The master end of a pty, speaking frames."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.deframer = FrameDeframer()
        self.frames: list[Frame] = []
        self.raw = bytearray()

    def close(self) -> None:
        """Pull the cable: close both ends."""
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.master = self.slave = -1

    def unplug(self) -> None:
        """Close the master only: the host's reads fail as on a pulled USB cable."""
        os.close(self.master)
        self.master = -1

    def write(self, data: bytes) -> None:
        """Put raw bytes on the line."""
        os.write(self.master, data)

    def send(self, msg_type: MessageType, fields: dict[str, Any] | None = None, *, seq: int,
             flags: int = FrameFlag.RESPONSE) -> bytes:
        """Frame and send a message; return the bytes sent."""
        data = encode_message(msg_type, fields, seq=seq, flags=int(flags))
        self.write(data)
        return data

    def read_raw(self, timeout: float) -> bytes:
        """Whatever arrives within ``timeout``."""
        end = time.monotonic() + timeout
        out = bytearray()
        while (left := end - time.monotonic()) > 0:
            r, _, _ = select.select([self.master], [], [], left)
            if not r:
                break
            out += os.read(self.master, 4096)
        return bytes(out)

    def expect(self, timeout: float = 3.0) -> Frame:
        """The next frame the host sends (fails the test after ``timeout``)."""
        end = time.monotonic() + timeout
        while not self.frames:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"host sent no frame within {timeout} s")
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                data = os.read(self.master, 4096)
                self.raw += data
                self.frames.extend(self.deframer.feed(data))
        return self.frames.pop(0)

    def expect_message(self, msg_type: MessageType, timeout: float = 3.0) -> Frame:
        """The next frame, asserting its type."""
        frame = self.expect(timeout)
        assert frame.type == msg_type, (MessageType.describe(frame.type), decode_message(frame))
        return frame

    def quiet(self, timeout: float) -> list[Frame]:
        """Frames the host sends within ``timeout`` (for asserting silence)."""
        end = time.monotonic() + timeout
        got: list[Frame] = []
        while (left := end - time.monotonic()) > 0:
            try:
                got.append(self.expect(left))
            except AssertionError:
                break
        return got
