"""The host's side of a session, as a state machine with no I/O (docs/protocol.md sections 5 and 6).

:class:`HostSession` is shaped like h11's ``Connection``: whoever owns the port feeds it what
arrived (:meth:`~HostSession.receive_data`) and the time (:meth:`~HostSession.advance`, waking
at :meth:`~HostSession.next_deadline`), hands it requests (:meth:`~HostSession.send_request`,
which returns a :class:`Handle`), writes out what it queues (:meth:`~HostSession.frames_to_send`)
and reads what happened (:meth:`~HostSession.next_event`).  Time is always a number the caller
passes in (``now``, seconds on a monotonic clock); the machine never reads a clock, sleeps,
locks or touches a port, so every rule below is tested on a fake clock.

It keeps: sequence numbers (16 bits, wrapping 65535 to 0) and stop-and-wait; retransmits with
the RETRANSMIT flag on the response timeout, at once on ``NAK bad_crc`` and after the back-off
on ``NAK busy``, other NAKs final; stale answers (another ``seq``) counted and dropped; the
deadline held while an answer is still arriving; the noisy-line repeat of harmless requests
(the catalogue's ``SAFE_TO_REPEAT``) as new requests; ACKs of the terminal's events and their
de-duplication (the last 32 sequence numbers); PONG to the terminal's PING; keep-alive PINGs on
an idle link, whose silence means the link is down; the deframer's inter-byte timeout; and
noticing a restart (boot id, uptime, ``not_permitted`` to a request any session may make);
and the self-tests: each one the terminal runs is watched from its ``SELFTEST_START`` answer to
its result, its progress resetting the lost-test timer ``T_lost``, a ``SELFTEST_START`` whose
sends all went unanswered asked once more, a ``NAK busy`` to it then taken for the first start
having gone through, and the late result of an aborted run kept from the next run of the same
component (section 5, "Long operations" and "A noisy line"; section 8).
What answers each request comes from the catalogue (:data:`protocols.pos.messages.ANSWERS`),
every timer from :class:`protocols.pos.timing.Timers`.

Card data is not this module's business: the events carry the messages as decoded, and the
driver masks them before anything above it sees them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, field
from itertools import count
from typing import Any

from protocols.pos.codes import FrameFlag
from protocols.pos.deframer import FrameDeframer
from protocols.pos.errors import ProtocolError
from protocols.pos.framing import Frame, encode_frame
from protocols.pos.messages import (
    ANSWERS,
    ANY_SESSION_MAY,
    NO_SESSION_NEEDED,
    SAFE_TO_REPEAT,
    Message,
    MessageType,
    decode_message,
    decode_payload,
    encode_payload,
)
from protocols.pos.timing import Timers

RESPONSE = int(FrameFlag.RESPONSE)
EVENT = int(FrameFlag.EVENT)
RETRANSMIT = int(FrameFlag.RETRANSMIT)
#: sequence numbers are u16 on the wire and wrap (docs/protocol.md section 2)
SEQ_MODULUS = 1 << 16
#: how many times a harmless request is asked again on a noisy line (section 5)
NOISY_REPEATS = 3
#: how many times a SELFTEST_START whose sends all went unanswered is asked again (section 5)
START_REPEATS = 1
#: SELFTEST_ABORT's component for every running test
ALL_COMPONENTS = 0xFF
#: how many of the terminal's event sequence numbers the host remembers (section 5)
EVENT_MEMORY = 32
#: how many of our own recent frames are remembered to recognise an echo
ECHO_MEMORY = 4
#: the uptime counters on the wire are u32 milliseconds: they wrap after 2^32 ms (49.7 days)
UPTIME_MODULUS = 1 << 32
#: how far a terminal's uptime may fall behind the host's clock before it counts as gone back
UPTIME_SLACK_MS = 500
#: and the clock-rate difference allowed on top of that (1000 ppm, ten times a cheap crystal's)
UPTIME_DRIFT = 0.001


class SessionUsageError(Exception):
    """The machine was driven against its rules (a bug in the code that drives it)."""


class RequestOutstanding(SessionUsageError):
    """A request was handed in while another caller's request is still outstanding."""


class PayloadTooLarge(SessionUsageError):
    """A request's payload exceeds the negotiated maximum; nothing was queued."""

    def __init__(self, message: str, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class NotARequest(SessionUsageError):
    """The message type is not a request: nothing would answer it."""


# -- what the machine reports ----------------------------------------------------------------


@dataclass(eq=False)
class Handle:
    """One request handed to the machine; events about it carry this object."""

    msg_type: MessageType
    #: the sequence number of its current send (a noisy-line repeat takes a new one)
    seq: int
    #: when it was handed in (the caller's clock)
    created: float
    #: True for the machine's own requests (keep-alive PING, session check): nobody waits
    internal: bool = False
    #: True once an event has completed it
    done: bool = False
    id: int = field(default_factory=count().__next__)
    #: the request's fields as the terminal reads them (decoded from the payload sent)
    fields: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Answered:
    """``handle`` got its answer."""

    handle: Handle
    frame: Frame
    message: Message


@dataclass(frozen=True)
class Refused:
    """``handle`` was refused with a final NAK; ``definite`` when no send went unanswered (so
    the terminal carried none of them out)."""

    handle: Handle
    reason: str | int
    definite: bool
    text: str


@dataclass(frozen=True)
class TimedOut:
    """``handle`` went unanswered (every send, or its caller's time limit); ``noisy`` when
    damaged frames arrived meanwhile."""

    handle: Handle
    text: str
    noisy: bool


@dataclass(frozen=True)
class Violation:
    """An answer the protocol does not allow here: ``handle`` fails with it."""

    handle: Handle
    text: str


@dataclass(frozen=True)
class TerminalEvent:
    """An event frame of the terminal, acknowledged already, delivered once."""

    frame: Frame
    message: Message


@dataclass(frozen=True)
class DuplicateEvent:
    """A retransmitted event already delivered: acknowledged again, not delivered."""

    seq: int


@dataclass(frozen=True)
class FrameReceived:
    """A whole frame arrived from the terminal, before the rules act on it (for a frame log or a
    tap): every frame the deframer yields gives one, first among the events it causes."""

    frame: Frame


@dataclass(frozen=True)
class StaleDropped:
    """An answer whose ``seq`` is not the outstanding request's: counted and dropped."""

    frame: Frame


@dataclass(frozen=True)
class KeepAliveSent:
    """The link was idle: the machine sent a PING of its own."""

    handle: Handle


@dataclass(frozen=True)
class SessionGone:
    """The terminal restarted and no longer has our session (once per lost session).

    ``cause``: ``boot_id``, ``uptime`` or ``not_permitted`` (docs/protocol.md section 6)."""

    text: str
    cause: str


@dataclass(frozen=True)
class LinkDown:
    """The terminal stopped answering keep-alives: the link is down."""

    text: str


@dataclass(frozen=True)
class SelfTestStarted:
    """The terminal runs ``component``'s self-test, and the machine now watches it for silence.

    ``handle`` is the ``SELFTEST_START`` that started it (None for a test followed with
    :meth:`HostSession.watch_selftest`), ``frame`` and ``message`` its answer.  ``adopted`` when
    that answer was ``NAK busy`` to a START asked again after one whose sends all went
    unanswered, with no other test of this session running: the first start went through, and
    this event then completes ``handle`` in place of :class:`Refused` (section 5, "A noisy line")."""

    component: str
    handle: Handle | None
    adopted: bool = False
    frame: Frame | None = None
    message: Message | None = None


@dataclass(frozen=True)
class SelfTestEnded:
    """``component``'s result arrived: the run the machine watched for it is over (or none was
    watched, and the result is of a test started elsewhere).  Its :class:`TerminalEvent` follows."""

    component: str
    message: Message


@dataclass(frozen=True)
class SelfTestLost:
    """``component``'s running self-test sent nothing for ``silent_for`` seconds, ``T_lost`` for
    the line: the terminal's whole retransmit schedule of a report is over.  ``noisy`` when
    damaged frames arrived meanwhile (its reports were most likely among them)."""

    component: str
    text: str
    noisy: bool
    silent_for: float


@dataclass(frozen=True)
class LateResult:
    """An ``aborted`` result that belongs to an earlier run of ``component`` which this host
    aborted, arriving after a new run of it started: it does not end the new run (section 8).
    Its :class:`TerminalEvent` follows."""

    component: str
    message: Message


SessionEvent = (Answered | Refused | TimedOut | Violation | TerminalEvent | DuplicateEvent | StaleDropped
                | KeepAliveSent | SessionGone | LinkDown | FrameReceived | SelfTestStarted | SelfTestEnded
                | SelfTestLost | LateResult)


@dataclass
class SessionStats:
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


# -- noticing a restart by the uptime (docs/protocol.md section 6) ----------------------------


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


# -- the machine -------------------------------------------------------------------------------


def _component(value: object) -> str:
    """A component as the events name it (its name; a number the catalogue does not know as
    its decimal text)."""
    return value if isinstance(value, str) else str(value)


class _Run:
    """A self-test the terminal is running: when it was last heard of, and the damage count then."""

    def __init__(self, component: str, now: float, damage: int) -> None:
        self.component = component
        self.heard = now
        self.damage = damage
        self.aborted_at: float | None = None   # when the terminal ACKed our SELFTEST_ABORT of it


class _Send:
    """The outstanding request: one sequence number, up to four sends."""

    def __init__(self, handle: Handle, payload: bytes, seq: int, now: float, damage: int) -> None:
        self.handle = handle
        self.payload = payload
        self.seq = seq
        self.answers = ANSWERS[handle.msg_type]
        self.sends = 0
        self.deadline = now          # when to retransmit (or give up)
        self.unanswered = 0          # sends whose answer time ran out with nothing matched
        self.damage = damage         # the damage count when this sequence number was taken
        self.refused = False         # the latest send was answered with NAK (busy, bad_crc)
        self.created = now           # no answer to it can have been made earlier


class HostSession:
    """The host's session rules over one line; see the module docstring.

    ``seq`` is the sequence number before the first request's (the first request carries
    ``seq + 1``); ``name`` prefixes the texts of the events (the port's name); with
    ``report_frames`` every frame from the terminal is also a :class:`FrameReceived` event."""

    def __init__(self, timers: Timers | None = None, *, seq: int = 0, now: float = 0.0,
                 name: str = "terminal", keepalive: bool = False, report_frames: bool = False) -> None:
        self.timers = timers or Timers()
        self.name = name
        self.report_frames = report_frames
        #: send keep-alive PINGs on an idle link (on once a session is open)
        self.keepalive = keepalive
        self.stats = SessionStats()
        self.deframer = FrameDeframer()
        self.seq = seq % SEQ_MODULUS
        #: how many restarts this machine has noticed
        self.restarts = 0
        self._now = now
        self._last_rx = self._last_activity = now
        self._pending: _Send | None = None
        self._give_up_at: dict[int, float] = {}
        self._repeats: dict[int, int] = {}
        self._first_failure: dict[int, TimedOut] = {}
        self._out: deque[bytes] = deque()
        self._events: deque[SessionEvent] = deque()
        self._recent_events: deque[int] = deque(maxlen=EVENT_MEMORY)
        self._sent_recently: deque[bytes] = deque(maxlen=ECHO_MEMORY)
        # the restart watch
        self._session_lost: SessionGone | None = None
        self._boot_id: int | None = None
        self._hello_at: float | None = None
        self._uptime_ref: UptimeReference | None = None
        self._uptime_doubt = ""      # why a PONG's uptime looked wrong, until the check says
        self._probe: Handle | None = None
        # the self-test watch
        #: seconds of silence after which a running self-test is lost (None: ``T_lost`` of the timers)
        self.lost_after: float | None = None
        self._runs: dict[str, _Run] = {}
        #: per component, until when the result of a run this host aborted may still arrive
        self._owed: dict[str, list[float]] = {}
        #: components whose SELFTEST_START went unanswered: the terminal may have started them
        self._unanswered_start: set[str] = set()
        self._request_damage: dict[int, int] = {}
        self._dropped_before_first = 0

    # -- what the owner of the port reads ---------------------------------------------------

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
        return shaped + (d.bytes_dropped - self._dropped_before_first if self.stats.frames_in else 0)

    @property
    def outstanding(self) -> Handle | None:
        """The request now waiting for its answer, if any."""
        return self._pending.handle if self._pending is not None else None

    @property
    def session_lost(self) -> SessionGone | None:
        """Why the terminal no longer has our session (it restarted), until the next HELLO."""
        return self._session_lost

    @property
    def boot_id(self) -> int | None:
        """The boot id of the last HELLO_REPLY (None before HELLO)."""
        return self._boot_id

    @property
    def uptime_reference(self) -> UptimeReference | None:
        """What the machine last learnt of the terminal's uptime (None before HELLO or PONG)."""
        return self._uptime_ref

    @property
    def selftest_lost_after(self) -> float:
        """``T_lost``: seconds of silence after which a running self-test is lost; follows the line
        rate and the negotiated payload (:attr:`Timers.selftest_lost_after`) unless
        :attr:`lost_after` is set."""
        return self.lost_after if self.lost_after is not None else self.timers.selftest_lost_after

    @property
    def running_selftests(self) -> tuple[str, ...]:
        """The components whose self-tests the machine watches now, in the order they started."""
        return tuple(self._runs)

    def frames_to_send(self) -> list[bytes]:
        """The frames queued for the line, in order (each taken once)."""
        frames = list(self._out)
        self._out.clear()
        for data in frames:
            self.stats.frames_out += 1
            self.stats.bytes_out += len(data)
        return frames

    def data_to_send(self) -> bytes:
        """The bytes queued for the line (each taken once)."""
        return b"".join(self.frames_to_send())

    def next_event(self) -> SessionEvent | None:
        """The oldest event not yet read, or None."""
        return self._events.popleft() if self._events else None

    def events(self) -> list[SessionEvent]:
        """Every event not yet read, oldest first."""
        out = list(self._events)
        self._events.clear()
        return out

    def next_deadline(self) -> float | None:
        """When :meth:`advance` next has something to do (None: only bytes or a request will)."""
        t = self.timers
        due: list[float] = []
        if self.deframer.pending:
            due.append(self._last_rx + t.inter_byte_timeout)
        p = self._pending
        if p is not None:
            give_up = self._give_up_at.get(p.handle.id)
            if give_up is not None:
                due.append(give_up)
            if self._now >= p.deadline and not p.refused and self._answer_arriving(p, self._now):
                due.append(min(self._last_rx + t.inter_byte_timeout, p.deadline + t.line_time(t.max_frame)))
            else:
                due.append(p.deadline)
        elif self._probe_due():
            due.append(self._now)
        elif self.keepalive:
            due.append(self._last_activity + t.keepalive_idle)
        if self._runs:
            lost_after = self.selftest_lost_after
            due.append(min(run.heard for run in self._runs.values()) + lost_after)
        return min(due) if due else None

    # -- what goes in --------------------------------------------------------------------------

    def send_request(self, msg_type: MessageType, fields: dict[str, Any] | None, now: float, *,
                     timeout: float | None = None, repeat: bool | None = None) -> Handle:
        """Queue a request; return its handle.  Exactly one of :class:`Answered`,
        :class:`Refused`, :class:`TimedOut` or :class:`Violation` follows for it (or, for a
        ``SELFTEST_START`` the terminal turns out to be running already, a
        :class:`SelfTestStarted` with ``adopted`` set).

        ``timeout`` limits the whole request, repeats included.  ``repeat`` asks it again as a
        new request when every send went unanswered while damaged frames arrived (default: the
        catalogue's ``SAFE_TO_REPEAT``); a ``SELFTEST_START`` is asked once more when every send
        went unanswered, damage or not, unless ``repeat`` is False, and its answer starts the
        self-test watch (:class:`SelfTestStarted`, instead of :class:`Answered` when the terminal
        turns out to be running it already).  A request of the machine's own still outstanding
        (keep-alive, session check) is given up for it; another caller's is an error."""
        if msg_type not in ANSWERS:
            raise NotARequest(f"{MessageType.describe(msg_type)} is not a request: nothing answers it")
        payload = encode_payload(msg_type, fields)   # EncodeError (a ProtocolError) on bad fields
        limit = self.timers.max_payload
        if len(payload) > limit:
            raise PayloadTooLarge(f"{msg_type.name} would be {len(payload)} bytes; {self.name} takes at most "
                                  f"{limit} (negotiated at HELLO): nothing was sent", len(payload), limit)
        if self._pending is not None and not self._pending.handle.internal:
            raise RequestOutstanding(f"{self._pending.handle.msg_type.name} is still outstanding")
        self._tick(now)
        if self._pending is not None:   # the machine's own: its answer, if any, will be stale
            self._forget(self._pending.handle)
        damage = self.damage
        handle = self._start(msg_type, payload, now, internal=False)
        handle.fields = decode_payload(msg_type, payload)
        self._request_damage[handle.id] = damage
        if timeout is not None:
            self._give_up_at[handle.id] = now + timeout
        if msg_type == MessageType.SELFTEST_START:
            if repeat is not False:
                self._repeats[handle.id] = START_REPEATS
        elif repeat if repeat is not None else msg_type in SAFE_TO_REPEAT:
            self._repeats[handle.id] = NOISY_REPEATS
        return handle

    def watch_selftest(self, component: str, now: float) -> None:
        """Watch ``component``'s self-test, which the terminal runs already, without starting it
        (a :class:`SelfTestStarted` with no handle follows); its timer starts at ``now``."""
        self._tick(now)
        self._unanswered_start.discard(component)
        self._run_started(component, now, self.damage)
        self._events.append(SelfTestStarted(component, None))

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes arrived from the line at ``now``."""
        self._tick(now)
        if data:
            self.stats.bytes_in += len(data)
            self._last_rx = now
            for frame in self.deframer.feed(data):
                self._on_frame(frame, now)
        self._timers(now)

    def advance(self, now: float) -> None:
        """Time has reached ``now``: drop a stale partial frame, retransmit, give up, ping."""
        self._tick(now)
        if self.deframer.pending and now >= self._last_rx + self.timers.inter_byte_timeout:
            for frame in self.deframer.drop_partial():
                self._on_frame(frame, now)
        self._timers(now)

    def abandon(self) -> Handle | None:
        """Forget the outstanding request (the owner failed it, e.g. the port broke); return it."""
        p, self._pending = self._pending, None
        if p is None:
            return None
        self._forget(p.handle)
        return p.handle

    # -- requests ----------------------------------------------------------------------------

    def _tick(self, now: float) -> None:
        self._now = max(self._now, now)

    def _start(self, msg_type: MessageType, payload: bytes, now: float, *, internal: bool) -> Handle:
        self.seq = (self.seq + 1) % SEQ_MODULUS
        handle = Handle(msg_type, self.seq, now, internal=internal)
        self._pending = _Send(handle, payload, self.seq, now, self.damage)
        if not internal:
            self.stats.requests += 1
        self._transmit(self._pending, now)
        return handle

    def _transmit(self, p: _Send, now: float) -> None:
        """Queue the pending request's next send."""
        flags = RETRANSMIT if p.sends else 0
        data = encode_frame(p.handle.msg_type, p.payload, p.seq, flags)
        if p.sends:
            self.stats.retransmits += 1
        p.sends += 1
        p.refused = False
        self._queue(data, now)
        self._sent_recently.append(data)
        t = self.timers
        p.deadline = now + t.line_time(len(data)) + t.response_timeout

    def _queue(self, data: bytes, now: float) -> None:
        self._out.append(data)
        self._last_activity = now

    def _reply(self, msg_type: MessageType, seq: int, now: float, fields: dict[str, Any] | None = None) -> None:
        self._queue(encode_frame(msg_type, encode_payload(msg_type, fields), seq, RESPONSE), now)

    def _forget(self, handle: Handle) -> None:
        handle.done = True
        self._request_damage.pop(handle.id, None)
        self._give_up_at.pop(handle.id, None)
        self._repeats.pop(handle.id, None)
        self._first_failure.pop(handle.id, None)

    def _finish(self, p: _Send, event: SessionEvent | None) -> None:
        """Complete the pending request with ``event`` (None: an internal one, quietly)."""
        if self._pending is p:
            self._pending = None
        self._forget(p.handle)
        if event is not None and not p.handle.internal:
            self._events.append(event)

    def _timers(self, now: float) -> None:
        p = self._pending
        t = self.timers
        if p is not None:
            give_up = self._give_up_at.get(p.handle.id)
            if give_up is not None and now >= give_up:
                self.stats.timeouts += 1
                self._fail_silent(p, self._first_failure.get(p.handle.id)
                                  or TimedOut(p.handle, self._silence_text(p), self.damage > p.damage))
            elif now >= p.deadline and (p.refused or not self._answer_arriving(p, now)):
                # (after a NAK its answer is in: nothing more is on its way to wait for)
                if p.sends > t.retransmits:
                    self.stats.timeouts += 1
                    self._out_of_sends(p, now)
                else:
                    if not p.refused:
                        p.unanswered += 1
                    self._transmit(p, now)
        elif self._probe_due():
            self._probe = self._start(MessageType.INFO_REQUEST, b"", now, internal=True)
        elif self.keepalive and now - self._last_activity >= t.keepalive_idle:
            ping = self._start(MessageType.PING, b"", now, internal=True)
            self._repeats[ping.id] = NOISY_REPEATS
            self._events.append(KeepAliveSent(ping))
        self._watch_selftests(now)

    def _out_of_sends(self, p: _Send, now: float) -> None:
        """Every send of this sequence number went unanswered."""
        h = p.handle
        noisy = self.damage > p.damage
        failure = TimedOut(h, self._silence_text(p), noisy)
        left = self._repeats.get(h.id, 0)
        start = h.msg_type == MessageType.SELFTEST_START
        if start:
            # its sends went out and nothing came back: the terminal may have started the test
            self._unanswered_start.add(_component(h.fields.get("component")))
        if left > 0 and (noisy or start):
            # spoilt answers, not silence: ask again as a new request (section 5, "A noisy line")
            self._first_failure.setdefault(h.id, failure)
            self._repeats[h.id] = left - 1
            self.seq = (self.seq + 1) % SEQ_MODULUS
            h.seq = self.seq
            p2 = _Send(h, p.payload, self.seq, now, self.damage)
            p2.unanswered = p.unanswered + 1   # a refusal now does not say the earlier sends did nothing
            self._pending = p2
            if not h.internal:
                self.stats.requests += 1
            self._transmit(p2, now)
            return
        self._fail_silent(p, self._first_failure.get(h.id) or failure)

    def _fail_silent(self, p: _Send, failure: TimedOut) -> None:
        if p.handle.msg_type == MessageType.SELFTEST_START and p.sends:
            self._unanswered_start.add(_component(p.handle.fields.get("component")))
        internal_ping = p.handle.internal and p.handle.msg_type == MessageType.PING
        self._finish(p, failure)
        if internal_ping:
            self._events.append(LinkDown(f"{self.name}: the terminal stopped answering keep-alives"))

    def _answer_arriving(self, p: _Send, now: float) -> bool:
        """True while bytes still stream in at the deadline (the answer may be on the line
        behind other frames): the host waits on, for at most one more maximal frame."""
        t = self.timers
        return now - self._last_rx < t.inter_byte_timeout and now < p.deadline + t.line_time(t.max_frame)

    def _silence_text(self, p: _Send) -> str:
        d = self.deframer.stats
        what = f"{self.name}: no answer to {p.handle.msg_type.name} after {p.sends} sends"
        if self.stats.echoes:
            return what + " (the port echoes what we send: a loopback or modem, not a terminal?)"
        if d.bytes_dropped and not self.stats.frames_in:
            return what + (f" (received {d.bytes_dropped} bytes that are not frames: wrong baud rate, "
                           "or not a pos-sim terminal?)")
        if not self.stats.bytes_in:
            return what + " (nothing received at all: is the terminal on, and is this its port?)"
        return what

    # -- frames in ---------------------------------------------------------------------------

    def _on_frame(self, frame: Frame, now: float) -> None:
        if not self.stats.frames_in:   # bytes thrown away before the first intact frame are not the line's
            self._dropped_before_first = self.deframer.stats.bytes_dropped
        self.stats.frames_in += 1
        if self.report_frames:
            self._events.append(FrameReceived(frame))
        self._last_activity = now
        flags = frame.flags
        if flags & EVENT:
            self._on_event_frame(frame, now)
        elif flags & RESPONSE:
            self._on_response(frame, now)
        elif frame.type == MessageType.PING:
            self._reply(MessageType.PONG, frame.seq, now, {"uptime_ms": int(now * 1000) % UPTIME_MODULUS})
        elif encode_frame(frame.type, frame.payload, frame.seq, frame.flags) in self._sent_recently:
            self.stats.echoes += 1   # our own frame came back: a loopback or an echoing modem
        else:
            self.stats.unexpected += 1

    def _on_event_frame(self, frame: Frame, now: float) -> None:
        try:
            msg = decode_message(frame)
        except ProtocolError:
            self.stats.malformed += 1
            self._reply(MessageType.NAK, frame.seq, now, {"reason": "malformed"})
            return
        self._reply(MessageType.ACK, frame.seq, now)
        if frame.seq in self._recent_events:
            self.stats.duplicate_events += 1   # its ACK was lost: acknowledged again, not delivered twice
            self._events.append(DuplicateEvent(frame.seq))
            return
        self._recent_events.append(frame.seq)
        self.stats.events += 1
        if msg.type == MessageType.SELFTEST_PROGRESS:
            run = self._runs.get(_component(msg.fields["component"]))
            if run is not None:   # (a report after its result, or of a test not ours: no run to reset)
                run.heard, run.damage = now, self.damage
        elif msg.type == MessageType.SELFTEST_RESULT:
            self._selftest_result(_component(msg.fields["component"]), msg, now)
        self._events.append(TerminalEvent(frame, msg))

    def _on_response(self, frame: Frame, now: float) -> None:
        p = self._pending
        if p is None or frame.seq != p.seq:
            self.stats.stale += 1     # an answer to a request that is no longer current
            self._events.append(StaleDropped(frame))
            return
        h = p.handle
        try:
            msg = decode_message(frame)
        except ProtocolError as exc:
            self.stats.malformed += 1
            self._finish(p, Violation(h, f"{h.msg_type.name}: malformed answer ({exc})"))
            return
        if msg.type == MessageType.NAK:
            self.stats.naks += 1
            reason = msg.fields["reason"]
            p.refused = True
            if reason == "busy" and self._adopts(h):
                self._unanswered_start.discard(_component(h.fields["component"]))
                self._run_started(_component(h.fields["component"]), now, self._request_damage.get(h.id, 0))
                self._events.append(SelfTestStarted(_component(h.fields["component"]), h, True, frame, msg))
                self._finish(p, None)
                return
            if reason in ("bad_crc", "busy") and p.sends <= self.timers.retransmits:
                # a retransmit fixes these; bad_crc at once, busy after the back-off
                p.deadline = now if reason == "bad_crc" else now + self.timers.busy_backoff
                return
            self._announce(self._refused_watch(p, reason))   # told before the caller wakes
            if h.msg_type == MessageType.SELFTEST_START and p.unanswered == 0:
                self._unanswered_start.discard(_component(h.fields["component"]))   # it did not start
            self._finish(p, Refused(h, reason, p.unanswered == 0,
                                    f"{h.msg_type.name} refused by the terminal: {reason}"))
            return
        if msg.type not in p.answers:
            self._finish(p, Violation(h, f"{h.msg_type.name} answered with {msg.type!r}"))
            return
        self._announce(self._answered_watch(p, msg, now))
        if h.msg_type == MessageType.SELFTEST_START:
            component = _component(h.fields["component"])
            self._unanswered_start.discard(component)
            self._run_started(component, now, self._request_damage.get(h.id, 0))
            self._events.append(SelfTestStarted(component, h, False, frame, msg))
        elif h.msg_type == MessageType.SELFTEST_ABORT:
            self._aborted(h.fields["component"], now)
        self._finish(p, Answered(h, frame, msg))

    # -- the self-test watch (docs/protocol.md section 5, "Long operations"; section 8) ---------

    def _run_started(self, component: str, now: float, damage: int) -> None:
        """A run of ``component`` begins at ``now``; an aborted one it replaces still owes its result."""
        old = self._runs.pop(component, None)
        if old is not None and old.aborted_at is not None:
            # that result was made at once on the abort; it may arrive until its schedule is over
            self._owed.setdefault(component, []).append(old.aborted_at + self.selftest_lost_after)
        self._runs[component] = _Run(component, now, damage)

    def _aborted(self, component: object, now: float) -> None:
        """The terminal ACKed SELFTEST_ABORT of ``component`` (or of every test): each such run
        now ends with an ``aborted`` result."""
        every = component == ALL_COMPONENTS
        for run in self._runs.values():
            if (every or run.component == _component(component)) and run.aborted_at is None:
                run.aborted_at = now

    def _selftest_result(self, component: str, msg: Message, now: float) -> None:
        """A result: the end of the watched run, unless it is an aborted run's late one."""
        owed = [until for until in self._owed.pop(component, []) if until >= now]
        run = self._runs.get(component)
        if owed and _component(msg.fields["outcome"]) == "aborted" and run is not None and run.aborted_at is None:
            # the run now going was not aborted, so this result is not its: it is the old run's
            owed.pop(0)
            if owed:
                self._owed[component] = owed
            self._events.append(LateResult(component, msg))
            return
        if owed:
            self._owed[component] = owed
        self._runs.pop(component, None)
        self._unanswered_start.discard(component)   # whatever an unanswered START began is over now
        self._events.append(SelfTestEnded(component, msg))

    def _adopts(self, h: Handle) -> bool:
        """``NAK busy`` to ``h``: whether it says that an earlier START of the same component,
        whose sends went unanswered, went through (no other test of ours is running)."""
        if h.msg_type != MessageType.SELFTEST_START:
            return False
        component = _component(h.fields.get("component"))
        return component in self._unanswered_start and not self._runs

    def _watch_selftests(self, now: float) -> None:
        """Every running test silent for ``T_lost`` is lost, once."""
        lost_after = self.selftest_lost_after
        for run in list(self._runs.values()):
            if now < run.heard + lost_after:   # (the very sum next_deadline() gave: no rounding gap)
                continue
            silent = now - run.heard
            del self._runs[run.component]
            if self.damage > run.damage:
                text = (f"{run.component} self-test: nothing intact heard for {lost_after:.1f} s while damaged "
                        "frames arrived (a noisy line)")
            else:
                text = (f"{run.component} self-test: no progress for {lost_after:.1f} s, the terminal stopped "
                        "answering mid-test")
            self._events.append(SelfTestLost(run.component, text, self.damage > run.damage, silent))

    # -- noticing a restart (docs/protocol.md section 6, "Noticing a restart") ------------------

    def _announce(self, lost: SessionGone | None) -> None:
        if lost is not None:
            # what ran on the terminal is lost to the restart, not for want of progress (section 6)
            self._runs.clear()
            self._owed.clear()
            self._unanswered_start.clear()
            self._events.append(lost)

    def _answered_watch(self, p: _Send, msg: Message, now: float) -> SessionGone | None:
        """What an answer that completed ``p`` says about a restart."""
        if msg.type == MessageType.HELLO_REPLY:
            return self._hello_seen(int(msg.fields["boot_id"]), now)
        if msg.type == MessageType.PONG:
            self._pong_seen(int(msg.fields["uptime_ms"]), p.created, now)
        elif p.handle.msg_type not in NO_SESSION_NEEDED:
            self._session_confirmed()   # only a terminal that has our session answers it
        return None

    def _refused_watch(self, p: _Send, reason: str | int) -> SessionGone | None:
        """A final refusal: ``not_permitted`` to a request any session may make (or to the
        session check) after a HELLO means the session is gone.  Other requests may be refused
        for reasons of their own: the driver asks then; before any HELLO there is none to lose."""
        h = p.handle
        if reason == "not_permitted" and (h.msg_type in ANY_SESSION_MAY or h is self._probe) \
                and self._hello_at is not None:
            return self._session_gone(h.msg_type)
        return None

    def _hello_seen(self, boot_id: int, now: float) -> SessionGone | None:
        """A new session; another boot id than before means the terminal restarted."""
        lost = None
        if self._boot_id is not None and boot_id != self._boot_id and self._session_lost is None:
            self.restarts += 1
            lost = SessionGone(f"{self.name}: the terminal restarted (boot id {self._boot_id:08x} is now "
                               f"{boot_id:08x}): what was running on it is lost; run it again", "boot_id")
        if boot_id != self._boot_id or self._uptime_ref is None:
            # the terminal was up when HELLO_REPLY arrived: its uptime is at least the time since
            self._uptime_ref = UptimeReference(0, now, exact=False)
        self._boot_id = boot_id
        self._hello_at = now
        self._session_lost = None
        self._uptime_doubt = ""
        self._probe = None
        return lost

    def _pong_seen(self, uptime_ms: int, sent_at: float, now: float) -> None:
        """Check a PONG's uptime against what the machine knew; a doubt is settled by asking."""
        ref = self._uptime_ref
        if ref is not None and self._session_lost is None and not uptime_consistent(ref, uptime_ms, sent_at, now):
            due = (ref.uptime_ms + int(max(0.0, sent_at - ref.at) * 1000)) % UPTIME_MODULUS
            self._uptime_doubt = f"its uptime read {uptime_ms / 1000:.1f} s where about {due / 1000:.1f} s was due"
        self._uptime_ref = UptimeReference(uptime_ms, now, exact=True, asked_at=sent_at)

    def _session_confirmed(self) -> None:
        self._uptime_doubt = ""
        self._probe = None

    def _session_gone(self, refused: MessageType) -> SessionGone | None:
        if self._session_lost is not None:
            return None
        self.restarts += 1
        doubt = self._uptime_doubt
        how = f"{doubt}, and it refused {refused.name}" if doubt \
            else f"it refused {refused.name}: not_permitted, which only a terminal without a session does"
        self._session_lost = SessionGone(
            f"{self.name}: the terminal restarted ({how}): what was running on it is lost; connect again "
            "(HELLO) and run it again", "uptime" if doubt else "not_permitted")
        self._uptime_doubt = ""
        self._probe = None
        return self._session_lost

    def _probe_due(self) -> bool:
        """A doubt about the session is settled by INFO_REQUEST once the line is free."""
        return bool(self._uptime_doubt) and self._session_lost is None and self._hello_at is not None


__all__ = [
    "ALL_COMPONENTS",
    "EVENT_MEMORY",
    "NOISY_REPEATS",
    "SEQ_MODULUS",
    "START_REPEATS",
    "UPTIME_DRIFT",
    "UPTIME_MODULUS",
    "UPTIME_SLACK_MS",
    "Answered",
    "DuplicateEvent",
    "FrameReceived",
    "Handle",
    "HostSession",
    "KeepAliveSent",
    "LateResult",
    "LinkDown",
    "NotARequest",
    "PayloadTooLarge",
    "Refused",
    "RequestOutstanding",
    "SelfTestEnded",
    "SelfTestLost",
    "SelfTestStarted",
    "SessionEvent",
    "SessionGone",
    "SessionStats",
    "SessionUsageError",
    "StaleDropped",
    "TerminalEvent",
    "TimedOut",
    "UptimeReference",
    "Violation",
    "uptime_consistent",
    "uptime_step",
]
