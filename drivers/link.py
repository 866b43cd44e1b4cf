"""The link: one thread that owns the port and feeds the session rules.

The rules of docs/protocol.md sections 5 and 6 (sequence numbers, ACK/NAK, retransmits,
timeouts, stale answers, event ACKs and de-duplication, keep-alive, the inter-byte timeout,
noticing a restart, the self-test watch and its lost-test timer) live in
:class:`protocols.pos.session.HostSession`, a state machine with no I/O and no clock.  This
module is the I/O around it: :class:`PortWorker` is the one thread that reads the port (with
pyserial's read timeout), hands the machine the bytes and the time (``time.monotonic``), writes
what the machine queues and hands its events on; :class:`Link` puts a blocking request API and
subscriber callbacks on top.  Keeping every byte in one thread and every rule in the machine
means there is no moment where two threads disagree about which request is current.  A thread
rather than asyncio because pyserial is blocking and Textual, the main user, runs blocking I/O
in thread workers; docs/drivers.md says more.

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
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

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
    FrameDeframer,
    Message,
    MessageType,
    ProtocolError,
    decode_frame,
    messages,
    timing,
)
from protocols.pos.framing import Frame
from protocols.pos.session import (
    NOISY_REPEATS,
    UPTIME_MODULUS,
    Answered,
    FrameReceived,
    Handle,
    HostSession,
    LateResult,
    LinkDown,
    NotARequest,
    PayloadTooLarge,
    Refused,
    SelfTestEnded,
    SelfTestLost,
    SelfTestStarted,
    SessionEvent,
    SessionGone,
    SessionStats,
    TerminalEvent,
    TimedOut,
    UptimeReference,
    Violation,
    uptime_consistent,
    uptime_step,
)

#: what answers each request, which requests are safe to ask again: read from the catalogue
#: (protocols.pos.messages), where every request's answer rule is declared beside its payload
ANSWERS = messages.ANSWERS
SAFE_TO_REPEAT = messages.SAFE_TO_REPEAT
NO_SESSION_NEEDED = messages.NO_SESSION_NEEDED
ANY_SESSION_MAY = messages.ANY_SESSION_MAY

DISCONNECT_ERRORS: tuple[type[BaseException], ...] = (serial.SerialException, OSError, termios.error)

#: the counters of a link (the session machine keeps them)
LinkStats = SessionStats


@dataclass(frozen=True)
class LinkTimings(timing.Timers):
    """The protocol's timers for one line (docs/protocol.md section 5), and how the link's I/O
    thread waits.

    Every timer is a formula of ``baud`` and the negotiated ``max_payload``
    (:class:`protocols.pos.timing.Timers`); the connection sets both once it knows them.
    Tests may shorten the fixed parts.
    """

    #: longest the I/O thread blocks in one read; it is woken at once when there is work
    read_slice: float = 0.02


class Machine(Protocol):
    """What :class:`PortWorker` needs of a sans-I/O protocol machine."""

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes arrived at ``now``."""

    def advance(self, now: float) -> None:
        """Time reached ``now``."""

    def next_deadline(self) -> float | None:
        """When the machine next wants :meth:`advance`."""

    def frames_to_send(self) -> list[bytes]:
        """What to write, frame by frame."""

    def events(self) -> list[Any]:
        """What happened since last asked."""


class PortWorker:
    """One thread that owns ``port`` and drives ``machine``.

    Each round it writes what the machine queued (each frame then goes to ``on_written``),
    reads what the port has (blocking for at most its read timeout, and woken early through
    ``cancel_read`` when a caller queued work), gives the machine the bytes and the time and
    writes what it queued in answer (an ACK goes out before the subscribers run); the machine's
    events go to ``on_events`` outside ``lock``, which guards every call into
    the machine (callers take it too).  An exception ends the thread through ``on_error``,
    told whether :meth:`stop` had been called before it.
    """

    def __init__(self, port: serial.SerialBase, machine: Machine, *, name: str, lock: threading.Lock,
                 on_events: Callable[[list[Any]], None], on_written: Callable[[bytes], None],
                 on_error: Callable[[BaseException, bool], None], clock: Callable[[], float] = time.monotonic) -> None:
        self.port = port
        self.machine = machine
        self.lock = lock
        self.clock = clock
        self._on_events = on_events
        self._on_written = on_written
        self._on_error = on_error
        self._stop = threading.Event()
        self._can_wake = hasattr(port, "cancel_read")
        self.thread = threading.Thread(target=self._run, name=f"pos-sim link {name}", daemon=True)

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called (or the thread ended on an error)."""
        return self._stop.is_set()

    def start(self) -> None:
        """Start the thread (once)."""
        self.thread.start()

    def stop(self) -> None:
        """Ask the thread to end and wake it."""
        self._stop.set()
        self.wake()

    def wake(self) -> None:
        """Cut the thread's current read short: there is something to write."""
        if self._can_wake:
            # a port that is gone cannot be woken; the thread finds out on its next read
            with contextlib.suppress(*DISCONNECT_ERRORS):
                self.port.cancel_read()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                with self.lock:
                    out = self.machine.frames_to_send()
                for data in out:
                    self.port.write(data)
                    self._on_written(data)
                data = self._read()
                with self.lock:
                    now = self.clock()
                    if data:
                        self.machine.receive_data(data, now)
                    else:
                        self.machine.advance(now)
                    events = self.machine.events()
                    out = self.machine.frames_to_send()
                for data in out:  # the ACKs of what just came go out before its events are handed on
                    self.port.write(data)
                    self._on_written(data)
                if events:
                    self._on_events(events)
        except BaseException as exc:   # handed on: the owner decides what it means
            closing = self._stop.is_set()
            self._stop.set()
            self._on_error(exc, closing)

    def _read(self) -> bytes:
        port = self.port
        if not port.is_open:
            raise serial.SerialException("port closed underneath the link")
        # an empty read is normal: the read timeout ran out, or cancel_read() woke us to send;
        # a dead device makes pyserial raise (it checks select's readiness against the bytes)
        waiting = port.in_waiting
        data: bytes = port.read(waiting if waiting else 1)
        if data and not waiting and port.in_waiting:
            data += port.read(port.in_waiting)  # the rest of what woke us, in the same round
        return data


class _Waiter:
    """A caller blocked on one request."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.reply: tuple[Frame, Message] | None = None
        self.error: DriverError | None = None

    def finish(self, *, reply: tuple[Frame, Message] | None = None, error: DriverError | None = None) -> None:
        if not self.done.is_set():
            self.reply, self.error = reply, error
            self.done.set()


EventHandler = Callable[[Message], None]
TrafficHandler = Callable[[str, Frame], None]
#: what the machine says of self-tests (started, ended, lost, a late result), messages masked
SelfTestEvent = SelfTestStarted | SelfTestEnded | SelfTestLost | LateResult
SelfTestHandler = Callable[[SelfTestEvent], None]


class Link:
    """A session with one terminal over one open port; see the module docstring."""

    def __init__(self, port: serial.SerialBase, *, timings: LinkTimings | None = None,
                 on_event: EventHandler | None = None, on_frame: TrafficHandler | None = None,
                 on_down: Callable[[DriverError], None] | None = None, name: str | None = None) -> None:
        self.port = port
        self.on_event = on_event
        self.on_frame = on_frame
        self.on_down = on_down
        #: called on the I/O thread, once per lost session, when the terminal restarted
        self.on_restart: Callable[[SessionLost], None] | None = None
        #: called on the I/O thread with the machine's self-test watch (started, ended, lost)
        self.on_selftest: SelfTestHandler | None = None
        self.name = name or getattr(port, "portstr", None) or str(getattr(port, "port", "port"))
        self._timings = timings or LinkTimings()
        self.session = HostSession(self._timings, seq=random.randrange(0x10000), now=time.monotonic(),
                                   name=self.name, report_frames=True)
        self._lock = threading.Lock()            # guards the machine, _waiters and _error
        self._request_lock = threading.Lock()    # one caller's request outstanding (stop-and-wait)
        self._waiters: dict[int, _Waiter] = {}
        self._error: DriverError | None = None
        self._lost: tuple[SessionGone, SessionLost] | None = None
        self._worker = PortWorker(port, self.session, name=self.name, lock=self._lock, on_events=self._dispatch,
                                  on_written=self._written, on_error=self._port_failed)
        self._thread = self._worker.thread

    # -- what the session machine keeps ------------------------------------------------------

    @property
    def timings(self) -> LinkTimings:
        """The line's timers; setting them (a rate or payload negotiated) sets the machine's."""
        return self._timings

    @timings.setter
    def timings(self, value: LinkTimings) -> None:
        with self._lock:
            self._timings = value
            self.session.timers = value

    @property
    def stats(self) -> SessionStats:
        """Counters for status bars and reports (:class:`protocols.pos.session.SessionStats`)."""
        return self.session.stats

    @property
    def deframer(self) -> FrameDeframer:
        """The machine's deframer (its ``stats``; ``max_payload`` is set after HELLO)."""
        return self.session.deframer

    @property
    def keepalive(self) -> bool:
        """Whether an idle link sends PINGs of its own (on once a session is open)."""
        return self.session.keepalive

    @keepalive.setter
    def keepalive(self, on: bool) -> None:
        with self._lock:
            self.session.keepalive = on
        self._worker.wake()

    @property
    def damage(self) -> int:
        """A count that rises when the line spoils the terminal's frames (never falls); see
        :attr:`protocols.pos.session.HostSession.damage`."""
        return self.session.damage

    @property
    def restarts(self) -> int:
        """How many restarts this link has noticed."""
        return self.session.restarts

    @property
    def session_lost(self) -> SessionLost | None:
        """Why the terminal no longer has our session (it restarted), until the next HELLO."""
        gone = self.session.session_lost
        return None if gone is None else self._session_lost_error(gone)

    @property
    def boot_id(self) -> int | None:
        """The boot id of the last HELLO_REPLY (None before HELLO)."""
        return self.session.boot_id

    @property
    def uptime_reference(self) -> UptimeReference | None:
        """What the link last learnt of the terminal's uptime (None before HELLO or PONG)."""
        return self.session.uptime_reference

    @property
    def selftest_lost_after(self) -> float:
        """T_lost: seconds of silence after which a running self-test is lost (the machine's)."""
        return self.session.selftest_lost_after

    @property
    def lost_after(self) -> float | None:
        """A fixed T_lost instead of the line's (None: follow the line rate and payload)."""
        return self.session.lost_after

    @lost_after.setter
    def lost_after(self, seconds: float | None) -> None:
        with self._lock:
            self.session.lost_after = seconds
        self._worker.wake()

    def watch_selftest(self, component: str) -> None:
        """Have the machine watch ``component``'s self-test, running already, from now."""
        with self._lock:
            self.session.watch_selftest(component, time.monotonic())
        self._worker.wake()

    @property
    def _seq(self) -> int:
        """The sequence number of the latest request."""
        return self.session.seq

    # -- life ------------------------------------------------------------------------------

    def start(self) -> Link:
        """Start the I/O thread (once)."""
        self._worker.start()
        return self

    def close(self) -> None:
        """Stop the I/O thread, fail anything still waiting and close the port."""
        self._worker.stop()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=max(1.0, 5 * self._timings.read_slice))
        self._fail_all(LinkClosed("the link was closed"))
        self.stats.deframer = self.deframer.stats.as_dict()
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
    def closed(self) -> bool:
        """True once :meth:`close` was called (or the I/O thread ended on an error)."""
        return self._worker.stopping

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
        """Send a request, wait for its answer and return it raw and decoded (the message masked).

        A harmless request (``SAFE_TO_REPEAT``) whose sends all went unanswered while damaged
        frames arrived is asked again as a new request, up to three times.  Raises
        :class:`RequestRefused` on a final NAK, :class:`ResponseTimeout` when every retransmit
        went unanswered (or ``timeout`` seconds passed), :class:`DeviceDisconnected` when the
        port broke, :class:`ProtocolViolation` on an answer of the wrong type.
        """
        with self._request_lock:
            waiter = _Waiter()
            with self._lock:
                if self._error is not None:
                    raise self._error
                if self._worker.stopping:
                    raise LinkClosed("the link was closed")
                try:
                    handle = self.session.send_request(msg_type, fields, time.monotonic(), timeout=timeout)
                except PayloadTooLarge as exc:
                    raise RequestTooLarge(str(exc), exc.size, exc.limit) from None
                except NotARequest as exc:
                    raise ProtocolViolation(str(exc)) from None
                except ProtocolError as exc:
                    raise ProtocolViolation(f"cannot encode {msg_type.name}: {exc}") from exc
                self._waiters[handle.id] = waiter
            self._worker.wake()
            while not waiter.done.wait(0.25):
                if not self._thread.is_alive():   # never wait on a thread that is gone
                    self._fail_all(self._error or LinkClosed("the link's I/O thread ended"))
        if waiter.error is not None:
            raise waiter.error
        assert waiter.reply is not None
        return waiter.reply

    def check_session(self, timeout: float | None = None) -> SessionLost | None:
        """Ask the terminal whether it still has our session (INFO_REQUEST, which any session
        may make); return why it is gone, or None.  Timeouts and a broken port raise."""
        with contextlib.suppress(RequestRefused):
            self.request(MessageType.INFO_REQUEST, timeout=timeout)
        return self.session_lost

    # -- the machine's events, on the I/O thread ---------------------------------------------

    def _dispatch(self, events: list[SessionEvent]) -> None:
        for ev in events:
            if isinstance(ev, FrameReceived):
                if self.on_frame is not None:
                    self.on_frame("in", mask_frame(ev.frame))
            elif isinstance(ev, Answered):
                # nothing above the driver sees card data; the raw frame is kept for page CRCs
                self._complete(ev.handle, reply=(ev.frame, mask_message(ev.message)))
            elif isinstance(ev, Refused):
                self._complete(ev.handle, error=RequestRefused(ev.text, ev.reason, definite=ev.definite))
            elif isinstance(ev, TimedOut):
                self._complete(ev.handle, error=ResponseTimeout(ev.text, noisy=ev.noisy))
            elif isinstance(ev, Violation):
                self._complete(ev.handle, error=ProtocolViolation(ev.text))
            elif isinstance(ev, TerminalEvent):
                if self.on_event is not None:
                    self.on_event(mask_message(ev.message))
            elif isinstance(ev, SessionGone):
                if self.on_restart is not None:
                    self.on_restart(self._session_lost_error(ev))
            elif isinstance(ev, LinkDown):
                self._go_down(ResponseTimeout(ev.text))
            elif isinstance(ev, SelfTestStarted | SelfTestEnded | SelfTestLost | LateResult):
                self._selftest(ev)
            # DuplicateEvent, StaleDropped, KeepAliveSent: counted in the stats already

    def _selftest(self, ev: SelfTestEvent) -> None:
        """Hand the self-test watch on (masked); an adopted start completes its caller's request."""
        if isinstance(ev, SelfTestStarted | SelfTestEnded | LateResult) and ev.message is not None:
            ev = replace(ev, message=mask_message(ev.message))
        if self.on_selftest is not None:
            self.on_selftest(ev)
        if isinstance(ev, SelfTestStarted) and ev.adopted and ev.handle is not None:
            assert ev.frame is not None and ev.message is not None
            self._complete(ev.handle, reply=(ev.frame, ev.message))

    def _complete(self, handle: Handle, *, reply: tuple[Frame, Message] | None = None,
                  error: DriverError | None = None) -> None:
        with self._lock:
            waiter = self._waiters.pop(handle.id, None)
        if waiter is not None:
            waiter.finish(reply=reply, error=error)

    def _session_lost_error(self, gone: SessionGone) -> SessionLost:
        """The one :class:`SessionLost` for a lost session (the same object every time)."""
        cached = self._lost
        if cached is None or cached[0] is not gone:
            cached = self._lost = (gone, SessionLost(gone.text, gone.cause))
        return cached[1]

    def _written(self, data: bytes) -> None:
        if self.on_frame is not None:
            self.on_frame("out", mask_frame(decode_frame(data)))

    def _port_failed(self, exc: BaseException, closing: bool) -> None:
        """The I/O thread ended on an exception: say why, fail the callers (a port that fails
        while the link is being closed is no news)."""
        if isinstance(exc, DISCONNECT_ERRORS):
            err: DriverError | None = None if closing else \
                DeviceDisconnected(f"{self.name}: device disconnected ({_os_words(exc)})")
        elif isinstance(exc, DriverError):
            err = exc
        elif isinstance(exc, ProtocolError):   # only our own encoding can raise it here: a bug, said plainly
            err = ProtocolViolation(f"{self.name}: internal protocol error: {exc}")
        else:
            err = ProtocolViolation(f"{self.name}: internal error: {type(exc).__name__}: {exc}")
        self.stats.deframer = self.deframer.stats.as_dict()
        if err is not None:
            self._go_down(err)

    def _go_down(self, err: DriverError) -> None:
        with self._lock:
            if self._error is None:
                self._error = err
        self._worker.stop()
        try:
            if self.on_down is not None:   # the subscriber hears it before a caller wakes
                self.on_down(err)
        finally:
            self._fail_all(err)

    def _fail_all(self, err: DriverError) -> None:
        with self._lock:
            self.session.abandon()
            waiters = list(self._waiters.values())
            self._waiters.clear()
        for w in waiters:
            w.finish(error=err)


def _os_words(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


__all__ = [
    "ANSWERS",
    "ANY_SESSION_MAY",
    "NOISY_REPEATS",
    "NO_SESSION_NEEDED",
    "SAFE_TO_REPEAT",
    "UPTIME_MODULUS",
    "Link",
    "LinkStats",
    "LinkTimings",
    "Machine",
    "PortWorker",
    "SelfTestEvent",
    "SelfTestHandler",
    "UptimeReference",
    "uptime_consistent",
    "uptime_step",
]
