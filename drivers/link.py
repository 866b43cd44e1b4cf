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
    RequestTooLarge,
    ResponseTimeout,
    SessionLost,
)
from drivers.masking import mask_frame, mask_message
from protocols.pos import (
    MAX_PAYLOAD,
    Frame,
    FrameDeframer,
    Message,
    MessageType,
    ProtocolError,
    decode_frame,
    decode_message,
    encode_frame,
    encode_payload,
    messages,
    timing,
)
from protocols.pos.codes import FrameFlag

RESPONSE = int(FrameFlag.RESPONSE)
EVENT = int(FrameFlag.EVENT)
RETRANSMIT = int(FrameFlag.RETRANSMIT)

#: what answers each request, which requests are safe to ask again: read from the catalogue
#: (protocols.pos.messages), where every request's answer rule is declared beside its payload
ANSWERS = messages.ANSWERS
SAFE_TO_REPEAT = messages.SAFE_TO_REPEAT
NO_SESSION_NEEDED = messages.NO_SESSION_NEEDED
ANY_SESSION_MAY = messages.ANY_SESSION_MAY
#: how many times such a request is asked again on a noisy line
NOISY_REPEATS = 3

DISCONNECT_ERRORS: tuple[type[BaseException], ...] = (serial.SerialException, OSError, termios.error)


@dataclass(frozen=True)
class LinkTimings:
    """The protocol's timers for one line (docs/protocol.md section 5).

    Every timer is a formula of ``baud`` and the negotiated ``max_payload`` (protocols.pos.timing);
    the connection sets both once it knows them.  Tests may shorten the fixed parts.
    """

    baud: int = timing.DEFAULT_BAUD
    #: the negotiated maximum payload (the protocol's maximum until HELLO has answered)
    max_payload: int = MAX_PAYLOAD
    #: the floor of the inter-byte timeout (at slow rates it is longer: a few byte times)
    inter_byte: float = timing.INTER_BYTE_FLOOR
    response_base: float = timing.RESPONSE_BASE
    retransmits: int = timing.RETRANSMITS
    busy_backoff: float = timing.BUSY_BACKOFF
    keepalive_idle: float = timing.KEEPALIVE_IDLE
    progress_interval: float = timing.PROGRESS_INTERVAL
    #: longest the I/O thread blocks in one read; it is woken at once when there is work
    read_slice: float = 0.02

    def line_time(self, nbytes: int) -> float:
        """Seconds ``nbytes`` take on the line at 10 bits a byte (8N1)."""
        return timing.line_time(nbytes, self.baud)

    @property
    def max_frame(self) -> int:
        """Bytes of the largest frame either side may send now."""
        return timing.max_frame(self.max_payload)

    @property
    def inter_byte_timeout(self) -> float:
        """T_ib: silence inside a frame after which its partial bytes are dropped."""
        return timing.inter_byte_timeout(self.baud, floor=self.inter_byte)

    @property
    def response_timeout(self) -> float:
        """T_resp: the fixed base plus a maximal frame's line time each way."""
        return timing.response_timeout(self.baud, self.max_payload, base=self.response_base)

    @property
    def worst_case(self) -> float:
        """T_sched: how long a request can take before it fails, every send timing out."""
        return timing.send_schedule(self.baud, self.max_payload, base=self.response_base,
                                    retransmits=self.retransmits)

    @property
    def request_budget(self) -> float:
        """The least overall time to give one request: T_sched and the waits for answers still
        arriving at each deadline (a caller's --timeout is never set below it)."""
        return timing.request_budget(self.baud, self.max_payload, base=self.response_base,
                                     retransmits=self.retransmits)

    @property
    def selftest_lost_after(self) -> float:
        """T_lost: silence from a running self-test after which it is lost (progress interval,
        a maximal frame ahead of the report, and the terminal's whole retransmit schedule)."""
        return timing.selftest_lost_after(self.baud, self.max_payload, base=self.response_base,
                                          retransmits=self.retransmits, progress=self.progress_interval)


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
        self.answers = ANSWERS[msg_type]
        self.sends = 0
        self.deadline = 0.0          # when to retransmit (or give up)
        self.give_up_at = None if timeout is None else time.monotonic() + timeout
        self.unanswered = 0          # sends whose answer time ran out with nothing matched
        self.damage = 0              # the link's damage count when the request was made
        self.refused = False         # the latest send was answered with NAK (busy, bad_crc)
        self.done = threading.Event()
        self.reply: tuple[Frame, Message] | None = None
        self.error: DriverError | None = None
        self.internal = False        # a keep-alive PING nobody waits for
        self.created = time.monotonic()   # no answer to it can have been made earlier


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
        self._noisy_pings = 0   # keep-alives in a row whose answers the line spoilt (asked again)
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
        self._init_restart_watch()

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
    def damage(self) -> int:
        """A count that rises when the line spoils the terminal's frames (never falls).

        Frames thrown away after their sync and header (a failed CRC, cut short, a bad length or
        version) always count.  Once the terminal has sent one intact frame, so that this is its
        port at its rate, every byte thrown away counts too: a flipped sync byte makes garbage of
        a whole frame.  Before that, bytes with no sync in them are a wrong baud rate or another
        device, not a noisy line, and do not count."""
        d = self.deframer.stats
        shaped = d.bad_crc + d.partial_dropped + d.oversize + d.bad_version
        return shaped + (d.bytes_dropped if self.stats.frames_in else 0)

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
        if msg_type not in ANSWERS:
            raise ProtocolViolation(f"{MessageType.describe(msg_type)} is not a request: nothing answers it")
        try:
            payload = encode_payload(msg_type, fields)
        except ProtocolError as exc:
            raise ProtocolViolation(f"cannot encode {msg_type.name}: {exc}") from exc
        limit = self.timings.max_payload
        if len(payload) > limit:
            raise RequestTooLarge(f"{msg_type.name} would be {len(payload)} bytes; {self.name} takes at most "
                                  f"{limit} (negotiated at HELLO): nothing was sent", len(payload), limit)
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
            pending.damage = self.damage
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
        p.refused = False
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
                elif self.deframer.pending and now - self._last_rx >= self.timings.inter_byte_timeout:
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
                self.on_frame("out", mask_frame(decode_frame(data)))

    def _send(self, msg_type: MessageType, seq: int, flags: int, fields: dict[str, Any] | None = None) -> None:
        with self._lock:
            self._outbox.append(encode_frame(msg_type, encode_payload(msg_type, fields), seq, flags))

    def _on_frame(self, frame: Frame, now: float) -> None:
        self.stats.frames_in += 1
        self._last_activity = now
        if self.on_frame is not None:
            self.on_frame("in", mask_frame(frame))
        flags = frame.flags
        if flags & EVENT:
            self._on_event_frame(frame)
        elif flags & RESPONSE:
            current = self._pending
            self._on_response(frame, now)
            self._watch_response(current, frame, now)
        elif frame.type == MessageType.PING:
            self._send(MessageType.PONG, frame.seq, RESPONSE, {"uptime_ms": int(now * 1000) & 0xFFFFFFFF})
        elif encode_frame(frame.type, frame.payload, frame.seq, frame.flags) in self._sent_recently:
            self.stats.echoes += 1   # our own frame came back: a loopback or an echoing modem
        else:
            self.stats.unexpected += 1

    def _on_event_frame(self, frame: Frame) -> None:
        try:
            msg = mask_message(decode_message(frame))   # nothing above the driver sees card data
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
                msg = mask_message(decode_message(frame))   # nothing above the driver sees card data
            except ProtocolError as exc:
                self.stats.malformed += 1
                self._finish(p, error=ProtocolViolation(f"{p.msg_type.name}: malformed answer ({exc})"))
                return
            if msg.type == MessageType.NAK:
                self.stats.naks += 1
                reason = msg.fields["reason"]
                p.refused = True
                if reason in ("bad_crc", "busy") and p.sends <= self.timings.retransmits:
                    # a retransmit fixes these; bad_crc at once, busy after the back-off
                    p.deadline = now if reason == "bad_crc" else now + self.timings.busy_backoff
                    return
                self._finish(p, error=RequestRefused(
                    f"{p.msg_type.name} refused by the terminal: {reason}", reason, definite=p.unanswered == 0))
                return
            if msg.type not in p.answers:
                self._finish(p, error=ProtocolViolation(f"{p.msg_type.name} answered with {msg.type!r}"))
                return
            if p.internal:
                self._noisy_pings = 0
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
                    self._finish(p, error=ResponseTimeout(self._silence_text(p), noisy=self.damage > p.damage))
                elif now >= p.deadline and not self._answer_arriving(p, now):
                    if p.sends > self.timings.retransmits:
                        self.stats.timeouts += 1
                        err = ResponseTimeout(self._silence_text(p), noisy=self.damage > p.damage)
                        self._finish(p, error=err)
                        if p.internal and err.noisy and self._noisy_pings < NOISY_REPEATS:
                            # spoilt answers, not silence: ask again at once (a doubt is probed again)
                            self._noisy_pings += 1
                            self._last_activity = now - self.timings.keepalive_idle
                        elif p.internal:
                            down = ResponseTimeout(f"{self.name}: the terminal stopped answering keep-alives")
                    else:
                        if not p.refused:
                            p.unanswered += 1
                        self._send_pending(p, now)
            elif self._session_probe_due():
                self._send_session_probe(now)
            elif self.keepalive and now - self._last_activity >= self.timings.keepalive_idle:
                self._seq = (self._seq + 1) & 0xFFFF
                ping = _Pending(MessageType.PING, b"", self._seq, None)
                ping.internal = True
                self._pending = ping
                self._send_pending(ping, now)
                self._last_activity = now
        if down is not None:
            self._go_down(down)

    def _answer_arriving(self, p: _Pending, now: float) -> bool:
        """True while bytes still stream in at the deadline (the answer may be on the line
        behind other frames): the host waits on, for at most one more maximal frame."""
        t = self.timings
        return now - self._last_rx < t.inter_byte_timeout and now < p.deadline + t.line_time(t.max_frame)

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

    # -- noticing a restart (docs/protocol.md section 6, "Noticing a restart") -------------

    def _init_restart_watch(self) -> None:
        #: called on the I/O thread, once per lost session, when the terminal restarted
        self.on_restart: Callable[[SessionLost], None] | None = None
        #: how many restarts this link has noticed
        self.restarts = 0
        self._session_lost: SessionLost | None = None
        self._boot_id: int | None = None
        self._hello_at: float | None = None
        self._uptime_ref: UptimeReference | None = None
        #: why a PONG's uptime looked wrong, while the session check it asked for is pending
        self._uptime_doubt = ""
        self._probe: _Pending | None = None

    @property
    def session_lost(self) -> SessionLost | None:
        """Why the terminal no longer has our session (it restarted), until the next HELLO."""
        return self._session_lost

    @property
    def boot_id(self) -> int | None:
        """The boot id of the last HELLO_REPLY (None before HELLO)."""
        return self._boot_id

    @property
    def uptime_reference(self) -> UptimeReference | None:
        """What the link last learnt of the terminal's uptime (None before HELLO or PONG)."""
        return self._uptime_ref

    def check_session(self, timeout: float | None = None) -> SessionLost | None:
        """Ask the terminal whether it still has our session (INFO_REQUEST, which any session
        may make); return why it is gone, or None.  Timeouts and a broken port raise."""
        with contextlib.suppress(RequestRefused):
            self.request(MessageType.INFO_REQUEST, timeout=timeout)
        return self._session_lost

    def _watch_response(self, p: _Pending | None, frame: Frame, now: float) -> None:
        """After an answer completed request ``p``: what it says about a restart (I/O thread)."""
        if p is None or frame.seq != p.seq or not p.done.is_set():
            return
        lost: SessionLost | None = None
        with self._lock:
            err = p.error
            if p.reply is not None:
                msg = p.reply[1]
                if msg.type == MessageType.HELLO_REPLY:
                    lost = self._hello_seen(int(msg.fields["boot_id"]), now)
                elif msg.type == MessageType.PONG:
                    self._pong_seen(int(msg.fields["uptime_ms"]), p.created, now)
                elif p.msg_type not in NO_SESSION_NEEDED:
                    self._session_confirmed()   # only a terminal that has our session answers it
            elif isinstance(err, RequestRefused) and err.reason == "not_permitted" and (
                    p.msg_type in ANY_SESSION_MAY or p is self._probe) and self._hello_at is not None:
                # other requests may be refused for reasons of their own: Terminal asks then;
                # before any HELLO there is no session to lose
                lost = self._session_gone(p.msg_type)
        if lost is not None and self.on_restart is not None:
            self.on_restart(lost)

    def _hello_seen(self, boot_id: int, now: float) -> SessionLost | None:
        """A new session; another boot id than before means the terminal restarted."""
        lost = None
        if self._boot_id is not None and boot_id != self._boot_id and self._session_lost is None:
            self.restarts += 1
            lost = SessionLost(f"{self.name}: the terminal restarted (boot id {self._boot_id:08x} is now "
                               f"{boot_id:08x}): what was running on it is lost; run it again", "boot_id")
        ref = self._uptime_ref
        if boot_id != self._boot_id or ref is None:
            # the terminal was up when HELLO_REPLY arrived: its uptime is at least the time since
            self._uptime_ref = UptimeReference(0, now, exact=False)
        self._boot_id = boot_id
        self._hello_at = now
        self._session_lost = None
        self._uptime_doubt = ""
        self._probe = None
        return lost

    def _pong_seen(self, uptime_ms: int, sent_at: float, now: float) -> None:
        """Check a PONG's uptime against what the link knew; a doubt is settled by asking."""
        ref = self._uptime_ref
        if ref is not None and self._session_lost is None and not uptime_consistent(ref, uptime_ms, sent_at, now):
            due = (ref.uptime_ms + int(max(0.0, sent_at - ref.at) * 1000)) % UPTIME_MODULUS
            self._uptime_doubt = f"its uptime read {uptime_ms / 1000:.1f} s where about {due / 1000:.1f} s was due"
        self._uptime_ref = UptimeReference(uptime_ms, now, exact=True, asked_at=sent_at)

    def _session_confirmed(self) -> None:
        self._uptime_doubt = ""
        self._probe = None

    def _session_gone(self, refused: MessageType) -> SessionLost | None:
        if self._session_lost is not None:
            return None
        self.restarts += 1
        doubt = self._uptime_doubt
        how = f"{doubt}, and it refused {refused.name}" if doubt \
            else f"it refused {refused.name}: not_permitted, which only a terminal without a session does"
        self._session_lost = SessionLost(
            f"{self.name}: the terminal restarted ({how}): what was running on it is lost; connect again "
            "(HELLO) and run it again", "uptime" if doubt else "not_permitted")
        self._uptime_doubt = ""
        self._probe = None
        return self._session_lost

    def _session_probe_due(self) -> bool:
        """A doubt about the session waits for the line to be free (caller holds ``_lock``)."""
        return bool(self._uptime_doubt) and self._session_lost is None and self._hello_at is not None

    def _send_session_probe(self, now: float) -> None:
        """Ask INFO_REQUEST, which any session may: NAK not_permitted means the session is gone.
        A request of a caller that takes the line first leaves it stale; it is asked again."""
        self._seq = (self._seq + 1) & 0xFFFF
        probe = _Pending(MessageType.INFO_REQUEST, b"", self._seq, None)
        probe.internal = True
        self._probe = self._pending = probe
        self._send_pending(probe, now)
        self._last_activity = now


#: the uptime counters on the wire are u32 milliseconds: they wrap after 2^32 ms (49.7 days)
UPTIME_MODULUS = 1 << 32
#: how far a terminal's uptime may fall behind the host's clock before it counts as gone back
UPTIME_SLACK_MS = 500
#: and the clock-rate difference allowed on top of that (1000 ppm, ten times a cheap crystal's)
UPTIME_DRIFT = 0.001


@dataclass(frozen=True)
class UptimeReference:
    """What the host knows of the terminal's uptime: ``uptime_ms`` at host time ``at``.

    ``exact`` when read from a PONG: it was made between ``asked_at`` (its PING went out) and
    ``at`` (it arrived).  Otherwise a lower bound: HELLO_REPLY proves the terminal was up when
    it arrived at ``at``, so its uptime then was at least ``uptime_ms`` (0)."""

    uptime_ms: int
    at: float
    exact: bool = True
    asked_at: float | None = None


def uptime_step(earlier_ms: int, later_ms: int) -> int:
    """How far a u32 millisecond counter moved from ``earlier_ms`` to ``later_ms``, a wrap
    included: the difference modulo 2^32 (0 ... 2^32 - 1)."""
    return (later_ms - earlier_ms) % UPTIME_MODULUS


def uptime_consistent(ref: UptimeReference, uptime_ms: int, sent_at: float, received_at: float) -> bool:
    """Whether a PONG carrying ``uptime_ms``, answering a PING sent at host time ``sent_at``
    and arriving at ``received_at``, fits a terminal that has kept running since ``ref``.

    Its counter must have stepped (modulo 2^32, so a wrap is an ordinary step) by the host's
    time between the two PONGs being made: at least ``sent_at - ref.at``, at most
    ``received_at - ref.asked_at``, give or take 500 ms and 0.1 % of that time.  Against HELLO's
    lower bound only the first half holds, and a value that falls short may be a restart or a
    counter that wrapped since HELLO: the session check tells (docs/protocol.md section 6)."""
    low_ms = max(0.0, sent_at - ref.at) * 1000.0
    step = uptime_step(ref.uptime_ms, uptime_ms)
    if not ref.exact or ref.asked_at is None:
        return step >= low_ms - UPTIME_SLACK_MS - UPTIME_DRIFT * low_ms
    high_ms = max(0.0, received_at - ref.asked_at) * 1000.0
    allowance = UPTIME_SLACK_MS + UPTIME_DRIFT * high_ms
    return low_ms - allowance <= step <= high_ms + allowance


def _os_words(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
