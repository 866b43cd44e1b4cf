"""The terminal's side of a capture, played back to a live host (the engine of ``replay://``).

What is compared (docs/capture-format.md, "Replay"): the host's bytes are deframed and each
frame is matched against the recorded host-to-terminal frames in order:

* a request (no RESPONSE flag) matches a recorded frame with the same message type, the same
  flags (RETRANSMIT aside) and the same payload bytes; its sequence number is *not* compared
  (the link picks a random one per process), it is remembered instead: recorded seq -> live seq;
* a response the host sends (ACK/NAK of an event, PONG) also matches on its sequence number,
  which echoes the terminal's (replayed unchanged); a PONG's payload (the host's uptime) is not
  compared.

A frame may match any of the next :data:`WINDOW` recorded frames not yet matched, because the
link's thread and the caller's thread race (an event's ACK and the next request can leave in
either order).  Recorded keep-alive PINGs and retransmits the live host did not send are
skipped when a later frame matches.  A live PING that the recording does not have is answered
with a PONG made up here; a live retransmit it does not have is ignored.  Anything else is a
:class:`ReplayMismatch`.

The terminal's bytes are delivered exactly as recorded, chunk by chunk, except that every
intact RESPONSE frame whose recorded seq answers a matched request gets the live seq (and a new
CRC); corrupt frames and garbage are never touched, so resync happens as it did.  Delivery waits
for the host frame that preceded it in the recording, then keeps the recorded gaps, each cut
to ``max_gap`` seconds (the inter-byte timeout's 100 ms still passes, a response timeout does
not).  A ``disconnected`` note breaks the port at the same point.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from serial import SerialException

from drivers.capture import DISCONNECTED, HOST_TO_TERMINAL, CaptureError, Chunk, Note, read_capture
from drivers.masking import mask_fields
from protocols.pos import Frame, FrameDeframer, MessageType, ProtocolError, decode_message, encode_frame
from protocols.pos.codes import FrameFlag
from protocols.pos.framing import HEADER, HEADER_SIZE, MAX_PAYLOAD, SYNC, TRAILER_SIZE, crc16
from protocols.pos.messages import encode_payload

RESPONSE = int(FrameFlag.RESPONSE)
RETRANSMIT = int(FrameFlag.RETRANSMIT)
#: how many recorded host frames ahead a live frame may match
WINDOW = 64
#: the longest recorded gap kept when delivering (seconds)
DEFAULT_MAX_GAP = 0.25


class ReplayMismatch(SerialException):  # type: ignore[misc]  # pyserial ships no types
    """The live host sent a frame the recording does not have at this point."""


@dataclass
class _HostFrame:
    index: int
    time: float
    frame: Frame
    #: how many terminal bytes had been recorded when this frame was written
    stream_pos: int
    consumed: bool = False
    live_seq: int | None = None


@dataclass
class _TermChunk:
    time: float
    start: int
    end: int


@dataclass
class _Break:
    time: float
    text: str


@dataclass
class _TermFrame:
    """An intact frame in the terminal's stream, and the recorded request it answers."""

    start: int
    end: int
    answers: _HostFrame | None


def _key(frame: Frame) -> tuple[object, ...]:
    flags = frame.flags & ~RETRANSMIT
    if frame.flags & RESPONSE:
        return (frame.type, flags, frame.seq, b"" if frame.type == MessageType.PONG else frame.payload)
    return (frame.type, flags, frame.payload)


def _optional(frame: Frame) -> bool:
    """A recorded host frame the live host may leave out: a keep-alive PING or a retransmit."""
    return bool(frame.flags & RETRANSMIT) or (frame.type == MessageType.PING and not frame.flags & RESPONSE)


def describe(frame: Frame) -> str:
    """``SELFTEST_START seq 123 {component: printer, ...}`` in one line."""
    name = MessageType.describe(frame.type)
    try:
        fields = mask_fields(decode_message(frame).fields)
        detail = ", ".join(f"{k}={v}" for k, v in fields.items())
    except ProtocolError:
        detail = f"payload {frame.payload.hex()}"
    retx = " (retransmit)" if frame.flags & RETRANSMIT else ""
    return f"{name} seq {frame.seq}{retx} {{{detail}}}"


def intact_frames(stream: bytes | bytearray) -> list[tuple[int, int]]:
    """(start, end) of every intact frame the deframer would accept in ``stream``, in order."""
    out: list[tuple[int, int]] = []
    pos, n = 0, len(stream)
    while True:
        i = stream.find(SYNC, pos)
        if i < 0 or n - i < HEADER_SIZE:
            return out
        _version, _flags, _seq, _type, length = HEADER.unpack_from(stream, i + 2)
        end = i + HEADER_SIZE + length + TRAILER_SIZE
        if length > MAX_PAYLOAD or end > n:
            pos = i + 1
            continue
        crc = stream[end - 2] << 8 | stream[end - 1]
        if crc16(memoryview(stream)[i + 2: end - 2]) != crc:
            pos = i + 1
            continue
        out.append((i, end))
        pos = end


#: uptime of the recorded terminal when a replay begins, for PONGs the recording does not have
_MADE_UP_BOOT_MS = 3_600_000


class CapturePlayer:
    """Plays the terminal's side of one capture; not thread-safe except :meth:`cancel`."""

    def __init__(self, path: str | Path, *, max_gap: float = DEFAULT_MAX_GAP) -> None:
        self.path = Path(path)
        self.max_gap = max_gap
        self.steps: list[_TermChunk | _Break] = []
        self.host_frames: list[_HostFrame] = []
        self._stream = bytearray()
        host = FrameDeframer()
        try:
            with read_capture(self.path) as reader:
                self.header = reader.header
                for record in reader:
                    if isinstance(record, Chunk):
                        if record.direction == HOST_TO_TERMINAL:
                            for frame in host.feed(record.data):
                                self.host_frames.append(
                                    _HostFrame(len(self.host_frames), record.time, frame, len(self._stream)))
                        else:
                            start = len(self._stream)
                            self._stream += record.data
                            self.steps.append(_TermChunk(record.time, start, len(self._stream)))
                    elif isinstance(record, Note) and record.key == DISCONNECTED:
                        self.steps.append(_Break(record.time, str(record.value)))
                self.torn = reader.torn
        except CaptureError as exc:
            raise SerialException(str(exc)) from exc
        self._frames = deque(self._terminal_frames())
        self._step = 0                   # next step not yet (fully) delivered
        self._pos = 0                    # next byte of the terminal's stream to deliver
        self._ref = (time.monotonic(), 0.0)   # (real time, recorded time) the next gap counts from
        self._started = self._ref[0]          # the made-up PONGs' uptime counts from here
        self._buffer = bytearray()
        self._live = FrameDeframer()
        self._live_index = 0
        self._cancel = threading.Event()
        self._broken: str | None = None
        #: the mismatch that stopped the replay, if any (also raised from :meth:`write`)
        self.mismatch: ReplayMismatch | None = None
        self.made_up_pongs = 0
        self.ignored_retransmits = 0
        self.skipped = 0

    def _terminal_frames(self) -> list[_TermFrame]:
        """Every intact terminal frame, with the recorded request each response answers."""
        requests: dict[int, list[_HostFrame]] = {}
        for hf in self.host_frames:
            if not hf.frame.flags & RESPONSE:
                requests.setdefault(hf.frame.seq, []).append(hf)
        out = []
        for start, end in intact_frames(self._stream):
            flags = self._stream[start + 3]
            answers = None
            if flags & RESPONSE:
                seq = self._stream[start + 4] << 8 | self._stream[start + 5]
                # the first send of the latest request with this seq recorded before the answer
                # began (a retransmit shares the seq; the answer needs the request sent at all)
                for hf in reversed(requests.get(seq, [])):
                    if hf.stream_pos <= start:
                        answers = hf
                        if not hf.frame.flags & RETRANSMIT:
                            break
            out.append(_TermFrame(start, end, answers))
        return out

    # -- the port's side -------------------------------------------------------------------

    @property
    def in_waiting(self) -> int:
        """Bytes due now and not yet read."""
        self._advance(time.monotonic())
        return len(self._buffer)

    def read(self, size: int, timeout: float | None) -> bytes:
        """Up to ``size`` bytes, waiting at most ``timeout`` s for the first (None: forever)."""
        give_up = None if timeout is None else time.monotonic() + timeout
        while True:
            now = time.monotonic()
            self._advance(now)
            if self._buffer:
                data = bytes(self._buffer[:size])
                del self._buffer[:size]
                return data
            if self._broken is not None:
                raise SerialException(f"{self._broken} (as recorded)")
            candidates = [x for x in (give_up, self._next_due()) if x is not None]
            until = min(candidates) if candidates else None
            if until is not None and until <= now:
                if give_up is not None and now >= give_up:
                    return b""
                continue
            if self._cancel.wait(None if until is None else until - now):
                self._cancel.clear()
                return b""

    def write(self, data: bytes) -> None:
        """Compare what the host sent with the recording; raises :class:`ReplayMismatch`."""
        if self.mismatch is not None:
            raise self.mismatch
        for frame in self._live.feed(data):
            self._live_index += 1
            self._on_live_frame(frame)
        self._advance(time.monotonic())

    def cancel(self) -> None:
        """Wake a blocked :meth:`read` (from any thread)."""
        self._cancel.set()

    @property
    def finished(self) -> bool:
        """True when every recorded terminal byte was delivered."""
        return self._step >= len(self.steps)

    @property
    def unplayed_host_frames(self) -> int:
        """Recorded host frames the live host never sent (nor were skipped as optional)."""
        return sum(1 for f in self.host_frames if not f.consumed)

    # -- matching --------------------------------------------------------------------------

    def _on_live_frame(self, frame: Frame) -> None:
        key = _key(frame)
        live_optional = _optional(frame)
        skippable: list[_HostFrame] = []
        seen = 0
        for step in self.host_frames:
            if step.consumed:
                continue
            seen += 1
            if seen > WINDOW:
                break
            if _key(step.frame) == key:
                for s in skippable:
                    s.consumed = True
                    self.skipped += 1
                step.consumed = True
                if not frame.flags & RESPONSE:
                    step.live_seq = frame.seq
                    # a retransmit the live host left out answers to the live seq too
                    for other in self.host_frames[step.index + 1: step.index + 8]:
                        if other.frame.seq == step.frame.seq and other.live_seq is None:
                            other.live_seq = frame.seq
                return
            if _optional(step.frame):
                skippable.append(step)
            elif live_optional:
                break   # a PING or retransmit never jumps over a frame the host must send
        if frame.type == MessageType.PING and not frame.flags & RESPONSE:
            self.made_up_pongs += 1
            # a plausible uptime: up an hour before the replay began, running at the host's clock,
            # so the host's restart rule (docs/protocol.md section 6) sees the same terminal
            uptime = (_MADE_UP_BOOT_MS + int((time.monotonic() - self._started) * 1000)) & 0xFFFFFFFF
            self._buffer += encode_frame(MessageType.PONG, encode_payload(MessageType.PONG, {"uptime_ms": uptime}),
                                         frame.seq, RESPONSE)
            return
        if frame.flags & RETRANSMIT:
            self.ignored_retransmits += 1
            return
        self.mismatch = ReplayMismatch(self._mismatch_text(frame))
        raise self.mismatch

    def _mismatch_text(self, frame: Frame) -> str:
        expected = next((s for s in self.host_frames if not s.consumed), None)
        where = f"replay mismatch at host frame #{self._live_index}: sent {describe(frame)}"
        if expected is None:
            return f"{where}, after the end of the recording ({len(self.host_frames)} host frames)"
        return (f"{where}; the recording has {describe(expected.frame)} "
                f"(recorded host frame #{expected.index + 1} at {expected.time:.3f} s)")

    # -- delivery --------------------------------------------------------------------------

    def _waiting_for_host(self) -> bool:
        """True when the next byte starts an answer to a request the live host has not sent."""
        frames = self._frames
        if not frames or frames[0].start != self._pos:
            return False
        answers = frames[0].answers
        return answers is not None and not answers.consumed and not _optional(answers.frame)

    def _next_due(self) -> float | None:
        if self._step >= len(self.steps) or self._waiting_for_host():
            return None
        real, rec = self._ref
        return real + min(max(self.steps[self._step].time - rec, 0.0), self.max_gap)

    def _advance(self, now: float) -> None:
        """Deliver every byte that is due and not waiting for the host."""
        while self._step < len(self.steps) and self._broken is None:
            step = self.steps[self._step]
            if self._waiting_for_host():
                # the answer goes out as soon as its request is in: count gaps from now
                self._ref = (now, step.time)
                return
            due = self._next_due()
            if due is not None and due > now:
                return
            if isinstance(step, _Break):
                self._broken = step.text
                self._step += 1
                self._ref = (max(due or now, self._ref[0]), step.time)
                return
            self._pos = max(self._pos, step.start)
            upto = step.end
            frames = self._frames
            while frames and frames[0].start < upto:
                f = frames[0]
                if f.start >= self._pos and f.answers is not None and not f.answers.consumed \
                        and not _optional(f.answers.frame):
                    upto = f.start    # deliver up to the answer; it waits for its request
                    break
                frames.popleft()
                self._rewrite(f)
            self._buffer += self._stream[self._pos: upto]
            self._pos = upto
            self._ref = (max(due or now, self._ref[0]), step.time)
            if upto == step.end:
                self._step += 1

    def _rewrite(self, f: _TermFrame) -> None:
        """Give a response frame its request's live seq (and a new CRC)."""
        if f.answers is None or f.answers.live_seq is None or f.start < self._pos:
            return
        stream = self._stream
        stream[f.start + 4: f.start + 6] = f.answers.live_seq.to_bytes(2, "big")
        crc = crc16(memoryview(stream)[f.start + 2: f.end - 2])
        stream[f.end - 2: f.end] = crc.to_bytes(2, "big")


__all__ = ["DEFAULT_MAX_GAP", "CapturePlayer", "ReplayMismatch", "describe", "intact_frames"]
