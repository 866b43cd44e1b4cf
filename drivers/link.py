"""The link: sequence numbers, ACK/NAK, retransmits, timeouts, keep-alive and events.

One thread owns the port.  It alone reads and writes: callers hand it a request and wait; it
frames and sends, matches the answer by sequence number, retransmits on timeout or NAK, drops
stale answers, acknowledges and de-duplicates the terminal's event frames and hands them to a
subscriber, drops partial frames after the inter-byte timeout, and pings an idle link.  Keeping
every byte and every timer in one thread is what makes the rules of docs/protocol.md section 5
simple to keep: there is no moment where two threads disagree about which request is current.
A thread rather than asyncio because pyserial is blocking and Textual, the main user, runs
blocking I/O in thread workers; docs/drivers.md says more.

When the port breaks (pyserial's ``SerialException``, ``OSError``, ``termios.error``), the
thread records :class:`DeviceDisconnected`, fails whatever was waiting, tells the subscriber,
and ends.  Nothing else leaves this module but :class:`drivers.errors.DriverError`.
"""

from __future__ import annotations

import contextlib
import random
import termios
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import serial

from drivers.errors import (
    DeviceDisconnected,
    DriverError,
    LinkClosed,
    ProtocolViolation,
    RequestRefused,
    ResponseTimeout,
)
from protocols import (
    MAX_FRAME,
    Frame,
    FrameDeframer,
    Message,
    MessageType,
    ProtocolError,
    decode_frame,
    decode_message,
    encode_frame,
    encode_payload,
)
from protocols.codes import FrameFlag

RESPONSE = int(FrameFlag.RESPONSE)
EVENT = int(FrameFlag.EVENT)
RETRANSMIT = int(FrameFlag.RETRANSMIT)

#: what answers each request (docs/protocol.md section 4); NAK may answer any of them
ANSWERS: dict[MessageType, frozenset[MessageType]] = {
    MessageType.HELLO: frozenset({MessageType.HELLO_REPLY}),
    MessageType.PING: frozenset({MessageType.PONG}),
    MessageType.INFO_REQUEST: frozenset({MessageType.INFO_REPLY}),
    MessageType.STATUS_REQUEST: frozenset({MessageType.STATUS_REPLY}),
    MessageType.SELFTEST_START: frozenset({MessageType.ACK}),
    MessageType.SELFTEST_ABORT: frozenset({MessageType.ACK}),
    MessageType.SELFTEST_CONFIRM: frozenset({MessageType.ACK}),
    MessageType.EVENTLOG_READ: frozenset({MessageType.EVENTLOG_PAGE}),
    MessageType.TXLOG_OPEN: frozenset({MessageType.TXLOG_INFO}),
    MessageType.TXLOG_READ: frozenset({MessageType.TXLOG_PAGE}),
    MessageType.LC_CHALLENGE_REQUEST: frozenset({MessageType.LC_CHALLENGE}),
    MessageType.LC_REQUEST: frozenset({MessageType.LC_RESULT}),
}

DISCONNECT_ERRORS: tuple[type[BaseException], ...] = (serial.SerialException, OSError, termios.error)


@dataclass(frozen=True)
class LinkTimings:
    """The protocol's timers (docs/protocol.md section 5); tests may shorten them."""

    baud: int = 115200
    inter_byte: float = 0.100
    response_base: float = 0.500
    retransmits: int = 3
    busy_backoff: float = 0.200
    keepalive_idle: float = 2.0
    #: longest the I/O thread blocks in one read; it is woken at once when there is work
    read_slice: float = 0.02

    def line_time(self, nbytes: int) -> float:
        """Seconds ``nbytes`` take on the line at 10 bits a byte (8N1)."""
        return nbytes * 10 / self.baud

    @property
    def response_timeout(self) -> float:
        """T_resp: 500 ms plus a maximal frame's line time each way."""
        return self.response_base + 2 * self.line_time(MAX_FRAME)

    @property
    def worst_case(self) -> float:
        """How long a request can take before it fails: every send times out."""
        return (self.retransmits + 1) * (self.response_timeout + self.line_time(MAX_FRAME))


@dataclass
class LinkStats:
    """Counters for status bars and reports."""

    frames_out: int = 0
    frames_in: int = 0
    bytes_out: int = 0
    bytes_in: int = 0
    requests: int = 0
    retransmits: int = 0
    naks: int = 0
    stale: int = 0
    events: int = 0
    duplicate_events: int = 0
    malformed: int = 0
    unexpected: int = 0
    echoes: int = 0
    timeouts: int = 0
    deframer: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The counters as plain data."""
        return asdict(self)


class _Pending:
    """The one outstanding request."""

    def __init__(self, msg_type: MessageType, payload: bytes, seq: int, timeout: float | None) -> None:
        self.msg_type = msg_type
        self.payload = payload
        self.seq = seq
        self.answers = ANSWERS.get(msg_type, frozenset({MessageType.ACK}))
        self.sends = 0
        self.deadline = 0.0          # when to retransmit (or give up)
        self.give_up_at = None if timeout is None else time.monotonic() + timeout
        self.done = threading.Event()
        self.reply: tuple[Frame, Message] | None = None
        self.error: DriverError | None = None
        self.internal = False        # a keep-alive PING nobody waits for


EventHandler = Callable[[Message], None]
TrafficHandler = Callable[[str, Frame], None]


class Link:
    """A session with one terminal over one open port; see the module docstring."""

    def __init__(self, port: serial.SerialBase, *, timings: LinkTimings | None = None,
                 on_event: EventHandler | None = None, on_frame: TrafficHandler | None = None,
                 on_down: Callable[[DriverError], None] | None = None, name: str | None = None) -> None:
        self.port = port
        self.timings = timings or LinkTimings()
        self.on_event = on_event
        self.on_frame = on_frame
        self.on_down = on_down
        self.name = name or getattr(port, "portstr", None) or str(getattr(port, "port", "port"))
        self.stats = LinkStats()
        self.deframer = FrameDeframer()
        self.keepalive = False
        self._seq = random.randrange(0x10000)
        self._lock = threading.Lock()            # guards _outbox, _pending, _error
        self._request_lock = threading.Lock()    # one request outstanding (stop-and-wait)
        self._outbox: deque[bytes] = deque()
        self._pending: _Pending | None = None
        self._error: DriverError | None = None
        self._recent_events: deque[int] = deque(maxlen=32)
        self._sent_recently: deque[bytes] = deque(maxlen=4)
        self._stop = threading.Event()
        self._last_rx = self._last_activity = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"pos-sim link {self.name}", daemon=True)
        self._can_wake = hasattr(port, "cancel_read")

    # -- life ------------------------------------------------------------------------------

    def start(self) -> Link:
        """Start the I/O thread (once)."""
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop the I/O thread, fail anything still waiting and close the port."""
        self._stop.set()
        self._wake()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=max(1.0, 5 * self.timings.read_slice))
        self._fail_all(LinkClosed("the link was closed"))
        # a dead port may fail to close: there is nothing left to do with it then
        with contextlib.suppress(*DISCONNECT_ERRORS):
            self.port.close()

    def __enter__(self) -> Link:
        return self.start() if not self._thread.is_alive() else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def error(self) -> DriverError | None:
        """Why the link is down, or None while it is up."""
        return self._error

    @property
    def alive(self) -> bool:
        """True while the I/O thread runs and the port works."""
        return self._thread.is_alive() and self._error is None

    # -- requests --------------------------------------------------------------------------

    def request(self, msg_type: MessageType, fields: dict[str, Any] | None = None, *,
                timeout: float | None = None) -> Message:
        """Send a request and return its answer (blocking); see :meth:`request_frame`."""
        return self.request_frame(msg_type, fields, timeout=timeout)[1]

    def request_frame(self, msg_type: MessageType, fields: dict[str, Any] | None = None, *,
                      timeout: float | None = None) -> tuple[Frame, Message]:
        """Send a request, wait for its answer and return it raw and decoded.

        Raises :class:`RequestRefused` on a final NAK, :class:`ResponseTimeout` when every
        retransmit went unanswered (or ``timeout`` seconds passed), :class:`DeviceDisconnected`
        when the port broke, :class:`ProtocolViolation` on an answer of the wrong type.
        """
        try:
            payload = encode_payload(msg_type, fields)
        except ProtocolError as exc:
            raise ProtocolViolation(f"cannot encode {msg_type.name}: {exc}") from exc
        with self._request_lock:
            pending = self._submit(msg_type, payload, timeout)
            while not pending.done.wait(0.25):
                if not self._thread.is_alive():   # never wait on a thread that is gone
                    self._fail_all(self._error or LinkClosed("the link's I/O thread ended"))
        if pending.error is not None:
            raise pending.error
        assert pending.reply is not None
        return pending.reply

    def _submit(self, msg_type: MessageType, payload: bytes, timeout: float | None) -> _Pending:
        with self._lock:
            if self._error is not None:
                raise self._error
            if self._stop.is_set():
                raise LinkClosed("the link was closed")
            self._seq = (self._seq + 1) & 0xFFFF
            pending = _Pending(msg_type, payload, self._seq, timeout)
            self._pending = pending
            self.stats.requests += 1
            self._send_pending(pending, time.monotonic())
        self._wake()
        return pending

    def _send_pending(self, p: _Pending, now: float) -> None:
        """Queue (re)transmission of the pending request; caller holds ``_lock``."""
        flags = RETRANSMIT if p.sends else 0
        data = encode_frame(p.msg_type, p.payload, p.seq, flags)
        if p.sends:
            self.stats.retransmits += 1
        p.sends += 1
        self._outbox.append(data)
        self._sent_recently.append(data)
        t = self.timings
        p.deadline = now + t.line_time(len(data)) + t.response_timeout

    def _wake(self) -> None:
        if self._can_wake:
            # a port that is gone cannot be woken; the I/O thread finds out on its next read
            with contextlib.suppress(*DISCONNECT_ERRORS):
                self.port.cancel_read()

    # -- the I/O thread --------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._flush()
                data = self._read()
                now = time.monotonic()
                if data:
                    self.stats.bytes_in += len(data)
                    self._last_rx = now
                    for frame in self.deframer.feed(data):
                        self._on_frame(frame, now)
                elif self.deframer.pending and now - self._last_rx >= self.timings.inter_byte:
                    for frame in self.deframer.drop_partial():
                        self._on_frame(frame, now)
                self._timers(now)
        except DISCONNECT_ERRORS as exc:
            if not self._stop.is_set():
                self._go_down(DeviceDisconnected(f"{self.name}: device disconnected ({_os_words(exc)})"))
        except DriverError as exc:
            self._go_down(exc)
        except ProtocolError as exc:  # only our own encoding can raise it here: a bug, said plainly
            self._go_down(ProtocolViolation(f"{self.name}: internal protocol error: {exc}"))
        finally:
            self.stats.deframer = self.deframer.stats.as_dict()

    def _read(self) -> bytes:
        port = self.port
        if not port.is_open:
            raise serial.SerialException("port closed underneath the link")
        # an empty read is normal: the slice ran out, or cancel_read() woke us to send; a dead
        # device makes pyserial raise (it checks select's readiness against the bytes it got)
        waiting = port.in_waiting
        data: bytes = port.read(waiting if waiting else 1)
        return data

    def _flush(self) -> None:
        while True:
            with self._lock:
                if not self._outbox:
                    return
                data = self._outbox.popleft()
            self.port.write(data)
            self.stats.frames_out += 1
            self.stats.bytes_out += len(data)
            self._last_activity = time.monotonic()
            if self.on_frame is not None:
                self.on_frame("out", decode_frame(data))

    def _send(self, msg_type: MessageType, seq: int, flags: int, fields: dict[str, Any] | None = None) -> None:
        with self._lock:
            self._outbox.append(encode_frame(msg_type, encode_payload(msg_type, fields), seq, flags))

    def _on_frame(self, frame: Frame, now: float) -> None:
        self.stats.frames_in += 1
        self._last_activity = now
        if self.on_frame is not None:
            self.on_frame("in", frame)
        flags = frame.flags
        if flags & EVENT:
            self._on_event_frame(frame)
        elif flags & RESPONSE:
            self._on_response(frame, now)
        elif frame.type == MessageType.PING:
            self._send(MessageType.PONG, frame.seq, RESPONSE, {"uptime_ms": int(now * 1000) & 0xFFFFFFFF})
        elif encode_frame(frame.type, frame.payload, frame.seq, frame.flags) in self._sent_recently:
            self.stats.echoes += 1   # our own frame came back: a loopback or an echoing modem
        else:
            self.stats.unexpected += 1

    def _on_event_frame(self, frame: Frame) -> None:
        try:
            msg = decode_message(frame)
        except ProtocolError:
            self.stats.malformed += 1
            self._send(MessageType.NAK, frame.seq, RESPONSE, {"reason": "malformed"})
            return
        self._send(MessageType.ACK, frame.seq, RESPONSE)
        if frame.seq in self._recent_events:
            self.stats.duplicate_events += 1   # its ACK was lost: acknowledged again, not delivered twice
            return
        self._recent_events.append(frame.seq)
        self.stats.events += 1
        if self.on_event is not None:
            self.on_event(msg)

    def _on_response(self, frame: Frame, now: float) -> None:
        with self._lock:
            p = self._pending
            if p is None or frame.seq != p.seq:
                self.stats.stale += 1     # an answer to a request that is no longer current
                return
            try:
                msg = decode_message(frame)
            except ProtocolError as exc:
                self.stats.malformed += 1
                self._finish(p, error=ProtocolViolation(f"{p.msg_type.name}: malformed answer ({exc})"))
                return
            if msg.type == MessageType.NAK:
                self.stats.naks += 1
                reason = msg.fields["reason"]
                if reason in ("bad_crc", "busy") and p.sends <= self.timings.retransmits:
                    # a retransmit fixes these; bad_crc at once, busy after the back-off
                    p.deadline = now if reason == "bad_crc" else now + self.timings.busy_backoff
                    return
                self._finish(p, error=RequestRefused(
                    f"{p.msg_type.name} refused by the terminal: {reason}", reason))
                return
            if msg.type not in p.answers:
                self._finish(p, error=ProtocolViolation(f"{p.msg_type.name} answered with {msg.type!r}"))
                return
            self._finish(p, reply=(frame, msg))

    def _finish(self, p: _Pending, *, reply: tuple[Frame, Message] | None = None,
                error: DriverError | None = None) -> None:
        """Complete the pending request; caller holds ``_lock``."""
        p.reply, p.error = reply, error
        if self._pending is p:
            self._pending = None
        p.done.set()

    def _timers(self, now: float) -> None:
        down: DriverError | None = None
        with self._lock:
            p = self._pending
            if p is not None:
                if p.give_up_at is not None and now >= p.give_up_at:
                    self.stats.timeouts += 1
                    self._finish(p, error=ResponseTimeout(self._silence_text(p)))
                elif now >= p.deadline:
                    if p.sends > self.timings.retransmits:
                        self.stats.timeouts += 1
                        err = ResponseTimeout(self._silence_text(p))
                        self._finish(p, error=err)
                        if p.internal:
                            down = ResponseTimeout(f"{self.name}: the terminal stopped answering keep-alives")
                    else:
                        self._send_pending(p, now)
            elif self.keepalive and now - self._last_activity >= self.timings.keepalive_idle:
                self._seq = (self._seq + 1) & 0xFFFF
                ping = _Pending(MessageType.PING, b"", self._seq, None)
                ping.internal = True
                self._pending = ping
                self._send_pending(ping, now)
                self._last_activity = now
        if down is not None:
            self._go_down(down)

    def _silence_text(self, p: _Pending) -> str:
        d = self.deframer.stats
        what = f"{self.name}: no answer to {p.msg_type.name} after {p.sends} sends"
        if self.stats.echoes:
            return what + " (the port echoes what we send: a loopback or modem, not a terminal?)"
        if d.bytes_dropped and not self.stats.frames_in:
            return what + (f" (received {d.bytes_dropped} bytes that are not frames: wrong baud rate, "
                           "or not a pos-sim terminal?)")
        if not self.stats.bytes_in:
            return what + " (nothing received at all: is the terminal on, and is this its port?)"
        return what

    def _go_down(self, err: DriverError) -> None:
        with self._lock:
            if self._error is None:
                self._error = err
        self._fail_all(err)
        self._stop.set()
        if self.on_down is not None:
            self.on_down(err)

    def _fail_all(self, err: DriverError) -> None:
        with self._lock:
            p = self._pending
            if p is not None:
                self._finish(p, error=err)


def _os_words(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
