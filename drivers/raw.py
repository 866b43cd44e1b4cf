"""A bare frame channel: send any frame, see every frame that comes back.

:class:`~drivers.link.Link` is a conforming host: it numbers, retransmits, de-duplicates and
keeps the session alive, so it can never send what a conformance check must send (a duplicate
on purpose, an unknown type, a payload too large, silence).  :class:`RawLink` does nothing on
its own but deframe: it writes the bytes it is given, reads what the terminal sends, and
acknowledges event frames only when asked to.  It is for tools that test a terminal's side of
the protocol (``pos-sim conformance``); everything else uses :class:`~drivers.link.Link`.

Timers come from the line rate (:mod:`protocols.pos.timing`), as everywhere: a wait for an
answer is never shorter than the line can carry it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import serial

from drivers.errors import DeviceDisconnected
from drivers.transport import open_port
from protocols.pos import timing
from protocols.pos.codes import FrameFlag
from protocols.pos.deframer import FrameDeframer
from protocols.pos.framing import MAX_PAYLOAD, Frame, encode_frame
from protocols.pos.messages import MessageType, encode_payload

RESPONSE = int(FrameFlag.RESPONSE)
EVENT = int(FrameFlag.EVENT)
RETRANSMIT = int(FrameFlag.RETRANSMIT)
#: how long one read waits for bytes (short: the caller's deadline decides)
READ_SLICE = 0.02


@dataclass(frozen=True)
class Received:
    """A frame and when it was deframed (monotonic seconds)."""

    at: float
    frame: Frame


class RawLink:
    """One port, frames in and out, no protocol rules of its own.

    ``ack_events``: acknowledge every event frame as it arrives (the default); set it to False
    to let events go unacknowledged (to watch the terminal retransmit them).
    """

    def __init__(self, port: serial.SerialBase, *, baud: int, name: str = "") -> None:
        self.port = port
        self.baud = baud
        self.name = name or str(getattr(port, "port", "") or "")
        self.max_payload = MAX_PAYLOAD
        self.deframer = FrameDeframer()
        self.ack_events = True
        #: every frame received, in order
        self.received: list[Received] = []
        self._next_seq = 0x4000
        self._last_rx = time.monotonic()

    @classmethod
    def open(cls, url: str, *, baud: int | None = None) -> RawLink:
        """Open a device path or URL (``PortOpenError`` when it cannot be opened)."""
        port = open_port(url, baudrate=baud or timing.DEFAULT_BAUD, read_timeout=READ_SLICE)
        # an emu:// or replay:// URL's ?baud= wins, as for every other command
        return cls(port, baud=int(port.baudrate or baud or timing.DEFAULT_BAUD), name=url)

    def close(self) -> None:
        """Close the port."""
        self.port.close()

    def __enter__(self) -> RawLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- timers ----------------------------------------------------------------------------------

    @property
    def answer_wait(self) -> float:
        """How long an answer may take on a clean line: T_resp plus one maximal frame."""
        return timing.response_timeout(self.baud, self.max_payload) + timing.line_time(
            timing.max_frame(self.max_payload), self.baud)

    # -- sending -----------------------------------------------------------------------------------

    def next_seq(self) -> int:
        """A request sequence number not used before on this link (mod 65536)."""
        seq = self._next_seq
        self._next_seq = (seq + 1) & 0xFFFF
        return seq

    def set_next_seq(self, seq: int) -> None:
        """Number the next request ``seq`` (to cross the 65535 -> 0 wrap on purpose)."""
        self._next_seq = seq & 0xFFFF

    def write(self, data: bytes) -> None:
        """Put bytes on the line as they are."""
        try:
            self.port.write(data)
            self.port.flush()
        except (serial.SerialException, OSError) as exc:
            raise DeviceDisconnected(f"{self.name}: the port failed while writing: {exc}") from exc

    def send(self, msg_type: MessageType | int, body: bytes | dict[str, Any] | None = None, *,
             seq: int | None = None, flags: int = 0) -> tuple[int, bytes]:
        """Send one frame; ``body`` is a payload as bytes, or fields to encode. Return (seq, frame)."""
        seq = self.next_seq() if seq is None else seq
        payload = body if isinstance(body, bytes) else encode_payload(MessageType(msg_type), body or {})
        frame = encode_frame(int(msg_type), payload, seq, flags)
        self.write(frame)
        return seq, frame

    # -- receiving ---------------------------------------------------------------------------------

    def _read_once(self) -> list[Received]:
        try:
            data = self.port.read(max(1, self.port.in_waiting or 1))
        except (serial.SerialException, OSError) as exc:
            raise DeviceDisconnected(f"{self.name}: the port failed while reading: {exc}") from exc
        now = time.monotonic()
        frames: list[Frame] = []
        if data:
            self._last_rx = now
            frames = self.deframer.feed(data)
        elif self.deframer.pending and now - self._last_rx >= timing.inter_byte_timeout(self.baud):
            frames = self.deframer.drop_partial()
        got = [Received(now, f) for f in frames]
        for r in got:
            self.received.append(r)
            if self.ack_events and r.frame.flags & EVENT:
                self.ack(r.frame.seq)
        return got

    def ack(self, seq: int) -> None:
        """Acknowledge the event frame ``seq``."""
        self.write(encode_frame(int(MessageType.ACK), b"", seq, RESPONSE))

    def wait_for(self, match: Callable[[Frame], bool], timeout: float) -> Frame | None:
        """The first frame from now on for which ``match`` is true, or None after ``timeout`` s."""
        end = time.monotonic() + timeout
        while True:
            for r in self._read_once():
                if match(r.frame):
                    return r.frame
            if time.monotonic() >= end:
                return None

    def listen(self, seconds: float) -> list[Received]:
        """Read for ``seconds``, sending nothing but event ACKs (if on); return what came."""
        end = time.monotonic() + seconds
        got: list[Received] = []
        while time.monotonic() < end:
            got += self._read_once()
        return got

    def request(self, msg_type: MessageType | int, body: bytes | dict[str, Any] | None = None, *,
                seq: int | None = None, flags: int = 0, timeout: float | None = None) -> Frame | None:
        """Send a request once and wait for the RESPONSE frame with its ``seq`` (None: no answer)."""
        seq, _ = self.send(msg_type, body, seq=seq, flags=flags)
        return self.wait_for(lambda f: bool(f.flags & RESPONSE) and f.seq == seq,
                             self.answer_wait if timeout is None else timeout)
