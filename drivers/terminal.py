"""The Terminal API: what a technician's tool asks of a POS terminal.

``Terminal`` wraps a :class:`drivers.link.Link` and speaks in domain terms: identity, component
status, self-tests with progress, events, the event log, the transaction-log backup and the
authenticated lifecycle operations.  It works the same over a device path, ``socket://`` or the
in-process emulator (``emu://``): only the port differs.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from drivers.errors import (
    DeadlinePassed,
    DeviceDisconnected,
    DriverError,
    LinkClosed,
    ProtocolViolation,
    RequestRefused,
    ResponseTimeout,
    SelfTestLost,
    SessionLost,
    TransferError,
)
from drivers.files import FileWriteError, write_atomically
from drivers.link import ANY_SESSION_MAY, NO_SESSION_NEEDED, Link, LinkTimings, SelfTestEvent
from drivers.masking import mask_fields
from drivers.transport import open_port
from protocols.pos import Component, Frame, Message, MessageType, decode_message, encode_payload, timing
from protocols.pos.auth import lifecycle_args, lifecycle_mac
from protocols.pos.codes import LifecycleOp
from protocols.pos.messages import jsonable, txlog_page_crc
from protocols.pos.session import LateResult, SelfTestEnded, SelfTestStarted
from protocols.pos.session import SelfTestLost as MachineSelfTestLost

#: HELLO names the host as this
HOST_NAME = "pos-sim"
TXLOG_FORMAT = "pos-sim-txlog"


@dataclass(frozen=True)
class HelloInfo:
    """What the terminal said in HELLO_REPLY."""

    protocol_version: int
    max_payload: int
    components: tuple[str, ...]
    serial: str
    boot_id: int


@dataclass(frozen=True)
class DeviceInfo:
    """Identity and lifecycle state (INFO_REPLY)."""

    manufacturer: str
    model: str
    serial: str
    hardware_rev: str
    firmware_version: str
    lifecycle: str
    merchant_id: str
    activated_at: int
    clock: int

    def as_dict(self) -> dict[str, Any]:
        """As plain data for JSON."""
        return asdict(self)


@dataclass(frozen=True)
class SelfTestProgress:
    """One SELFTEST_PROGRESS report."""

    component: str
    percent: int
    step: int
    prompt: str


@dataclass(frozen=True)
class SelfTestResult:
    """The outcome of one component's self-test."""

    component: str
    plan: str
    outcome: str
    code: str | int
    duration_ms: int
    measurements: dict[str, int]
    note: str

    def as_dict(self) -> dict[str, Any]:
        """As plain data for JSON."""
        return asdict(self)


@dataclass(frozen=True)
class LifecycleResult:
    """The terminal's answer to an authenticated lifecycle request."""

    operation: str
    status: str
    state: str
    counter: int
    message: str

    @property
    def ok(self) -> bool:
        """True when the operation was carried out."""
        return self.status == "ok"


@dataclass(frozen=True)
class LifecycleChallenge:
    """The terminal's LC_CHALLENGE: a one-time nonce and the last counter it accepted."""

    operation: str
    nonce: bytes
    counter: int
    #: as shown (masked by the driver like every text from the terminal)
    serial: str
    #: as the terminal sent it, which its MAC covers (kept out of repr: it may hold card data)
    signing_serial: str = field(default="", repr=False, compare=False)


@dataclass(frozen=True)
class LifecycleRequest:
    """A signed LC_REQUEST, ready to send (a value: tests alter one field to check refusal)."""

    operation: str
    counter: int
    nonce: bytes
    activation_code: str = ""
    merchant_id: str = ""
    reason: str = ""
    mac: bytes = field(default=b"", repr=False)

    @classmethod
    def sign(cls, key: bytes, challenge: LifecycleChallenge, *, activation_code: str = "",
             merchant_id: str = "", reason: str = "") -> LifecycleRequest:
        """Answer ``challenge`` with the next counter, signed with the terminal's ``key``."""
        counter = challenge.counter + 1
        args = lifecycle_args(activation_code, merchant_id, reason)
        mac = lifecycle_mac(key, challenge.signing_serial or challenge.serial, int(LifecycleOp[challenge.operation]),
                            args, challenge.nonce, counter)
        return cls(challenge.operation, counter, challenge.nonce, activation_code, merchant_id, reason, mac)


@dataclass(frozen=True)
class TxLogExport:
    """A verified transaction-log backup on disk."""

    path: Path
    serial: str
    records: int
    pages: int
    sha256: str


@dataclass(frozen=True)
class ComponentStatus:
    """One component's answer to STATUS_REQUEST: its status block, or why there is none.

    ``problem`` is ``""`` when the status came, ``"refused"`` when the terminal answered NAK
    (``reason`` is the NakReason), ``"timeout"`` when every send of the request went unanswered
    while the terminal still answered PING, and ``"error"`` for an answer the protocol does not
    allow there (``reason`` says what came).
    """

    component: str
    status: dict[str, Any] | None = None
    problem: str = ""
    reason: str = ""

    @property
    def ok(self) -> bool:
        """True when the terminal sent the component's status block."""
        return self.status is not None


def _name(value: object) -> str:
    return value if isinstance(value, str) else str(value)


class SelfTestRun:
    """A self-test in flight: progress as it comes, then the result.

    Whether it is lost is the session machine's call (:class:`protocols.pos.session.HostSession`
    watches every running test against ``T_lost`` on the line's clock); the run only turns what
    the machine says into a result or an exception."""

    def __init__(self, terminal: Terminal, component: str) -> None:
        self.terminal = terminal
        self.component = component
        self.progress: list[SelfTestProgress] = []
        self.result: SelfTestResult | None = None
        #: True when the terminal was found running it already (an earlier START went through)
        self.adopted = False
        self._cond = threading.Condition()
        self._listeners: list[Callable[[SelfTestProgress], None]] = []
        #: set when the machine declared it lost, or the terminal restarted under it
        self._failure: SelfTestLost | SessionLost | None = None

    def _on_progress(self, p: SelfTestProgress) -> None:
        with self._cond:
            self.progress.append(p)
            listeners = list(self._listeners)
            self._cond.notify_all()
        for cb in listeners:
            cb(p)

    def _on_result(self, r: SelfTestResult) -> None:
        with self._cond:
            self.result = r
            self._cond.notify_all()

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _fail(self, err: SelfTestLost | SessionLost) -> None:
        with self._cond:
            if self.result is None and self._failure is None:
                self._failure = err
            self._cond.notify_all()

    # the terminal restarted under the test: it is gone, and poll() / wait() say so
    _lose = _fail

    @property
    def lost_after(self) -> float:
        """Seconds of silence after which this test is lost (the terminal's, for its line)."""
        return self.terminal.lost_after

    def on_progress(self, callback: Callable[[SelfTestProgress], None]) -> None:
        """Call ``callback`` (on the link's thread: keep it short) for each progress report."""
        with self._cond:
            self._listeners.append(callback)

    def _check(self) -> SelfTestResult | None:
        """The result, None while it runs; raises what ended it otherwise (hold ``_cond``)."""
        if self.result is not None:
            return self.result
        err = self.terminal.link.error or self._failure
        if err is not None:
            raise err
        if self.terminal.link.closed:   # nothing more can come: the machine no longer hears the line
            raise LinkClosed(f"{self.component} self-test: the link was closed before its result came")
        return None

    def poll(self) -> SelfTestResult | None:
        """The result if it is in, None while the test runs; raises like :meth:`wait` when the
        link broke or the terminal went silent mid-test."""
        with self._cond:
            return self._check()

    def wait(self, timeout: float | None = None) -> SelfTestResult:
        """Block until the result; raise if the terminal goes silent or the link breaks.

        ``timeout`` is the caller's own limit (None: none; the machine's ``T_lost`` still ends
        a test that went silent)."""
        give_up = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while (result := self._check()) is None:
                if give_up is not None and time.monotonic() >= give_up:
                    raise SelfTestLost(f"{self.component} self-test did not finish within {timeout:.1f} s")
                self._cond.wait(0.1)
            return result


def open_line(port: str, *, baud: int | None = None, timings: LinkTimings | None = None
              ) -> tuple[Any, LinkTimings]:
    """Open ``port`` at ``baud`` and return it with the timers for the rate it really runs at.

    A device path or ``rfc2217://`` port runs at the rate asked for; an ``emu://`` or
    ``replay://`` URL with ``?baud=`` reports its own, and the timers follow the port.
    """
    t = timings or LinkTimings()
    if baud is not None:
        if baud <= 0:
            raise ValueError("baud must be positive")
        t = replace(t, baud=baud)
    ser = open_port(port, baudrate=t.baud, read_timeout=t.read_slice)
    actual = getattr(ser, "baudrate", None)
    if isinstance(actual, int) and actual > 0 and actual != t.baud:
        t = replace(t, baud=actual)
    return ser, t


class Terminal:
    """A connected POS terminal; see the module docstring.  Use as a context manager."""

    def __init__(self, link: Link, *, lost_after: float | None = None) -> None:
        self.link = link
        #: time.monotonic() after which every request fails at once (None: no overall limit)
        self.deadline: float | None = None
        self.hello: HelloInfo | None = None
        #: every self-test result received in this session, by component (kept after a disconnect)
        self.results: dict[str, SelfTestResult] = {}
        if lost_after is not None:
            link.lost_after = lost_after
        self._runs: dict[str, SelfTestRun] = {}
        #: runs replaced by a newer run of their component before their result came (aborted ones)
        self._replaced: dict[str, list[SelfTestRun]] = {}
        self._runs_lock = threading.Lock()
        self._subscribers: list[Callable[[Message], None]] = []
        link.on_event = self._on_event
        previous_down = link.on_down

        def on_down(err: DriverError) -> None:
            with self._runs_lock:
                runs = list(self._runs.values())
            for run in runs:
                run._wake()
            if previous_down is not None:
                previous_down(err)

        link.on_down = on_down
        #: called (on the link's thread: keep it short) when the terminal restarted mid-session
        self.on_restart: Callable[[SessionLost], None] | None = None
        link.on_restart = self._on_restart
        link.on_selftest = self._on_selftest

    @property
    def lost_after(self) -> float:
        """T_lost: silence from a running self-test after which it is lost; follows the line
        rate and the negotiated payload (docs/protocol.md section 5) unless set when opened."""
        return self.link.selftest_lost_after

    @classmethod
    def open(cls, port: str, *, baud: int | None = None, timings: LinkTimings | None = None,
             connect: bool = True, lost_after: float | None = None, on_frame: Any = None,
             timeout: float | None = None, wrap: Callable[[Any], Any] | None = None) -> Terminal:
        """Open ``port`` (device path or URL), start the link and say HELLO.

        ``baud`` is the line rate (default: ``timings.baud``, 115200); an ``emu://`` or
        ``replay://`` URL that names its own rate (``?baud=``) wins, and every timer follows
        the rate the port reports.  ``timeout`` bounds the whole session's requests: after it,
        each fails at once (but never before one request has had all its sends at this rate).
        ``wrap`` gets the open port and returns what the link should use instead (a capture
        tap, for instance); it owns the port from then on.
        """
        ser, t = open_line(port, baud=baud, timings=timings)
        linked = False
        try:
            link = Link(wrap(ser) if wrap is not None else ser, timings=t, name=port, on_frame=on_frame)
            linked = True
        finally:
            if not linked:   # a wrap that failed (a capture that cannot be written) leaves no port open
                ser.close()
        term = cls(link, lost_after=lost_after)
        term.set_deadline(timeout)
        link.start()
        if connect:
            connected = False
            try:
                term.connect()
                connected = True
            finally:
                if not connected:   # whatever went wrong, the port and the thread go with it
                    term.close()
        return term

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End the session and close the port (a self-test still waited on raises :class:`LinkClosed`)."""
        self.link.close()
        with self._runs_lock:
            runs = list(self._runs.values()) + [r for rs in self._replaced.values() for r in rs]
        for run in runs:
            run._wake()

    # -- events ----------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[Message], None]) -> Callable[[], None]:
        """Receive every event message (on the link's thread); returns an unsubscribe function."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def events(self, timeout: float = 1.0) -> Iterator[Message]:
        """Iterate over event messages as they come; stops after ``timeout`` s of quiet."""
        q: queue.Queue[Message] = queue.Queue()
        unsubscribe = self.subscribe(q.put)
        try:
            while True:
                try:
                    yield q.get(timeout=timeout)
                except queue.Empty:
                    return
        finally:
            unsubscribe()

    def _on_event(self, msg: Message) -> None:
        f = msg.fields
        if msg.type == MessageType.SELFTEST_PROGRESS:
            run = self._runs.get(_name(f["component"]))
            if run is not None:
                run._on_progress(SelfTestProgress(_name(f["component"]), f["percent"], f["step"],
                                                  _name(f["prompt"])))
        # (a SELFTEST_RESULT ends its run through the machine's self-test watch, just before this)
        for cb in list(self._subscribers):
            cb(msg)

    def _on_selftest(self, ev: SelfTestEvent) -> None:
        """What the session machine says of a self-test (the link's thread): a run started, ended
        with its result, or was lost; an aborted run's late result ends nothing."""
        if isinstance(ev, SelfTestStarted):
            run = self._runs.get(ev.component)
            if run is not None:
                run.adopted = ev.adopted
        elif isinstance(ev, SelfTestEnded):
            result = self._result(ev.message)
            self.results[result.component] = result
            with self._runs_lock:
                run = self._runs.pop(ev.component, None)
            if run is not None:
                run._on_result(result)
        elif isinstance(ev, LateResult):
            # the result of the run this host aborted, which a newer run replaced: it is that run's
            with self._runs_lock:
                older = self._replaced.get(ev.component, [])
                run = older.pop(0) if older else None
            if run is not None:
                run._on_result(self._result(ev.message))
        elif isinstance(ev, MachineSelfTestLost):
            with self._runs_lock:
                run = self._runs.pop(ev.component, None)
            if run is not None:
                run._fail(SelfTestLost(ev.text, noisy=ev.noisy))

    @staticmethod
    def _result(msg: Message) -> SelfTestResult:
        f = msg.fields
        return SelfTestResult(
            component=_name(f["component"]), plan=_name(f["plan"]), outcome=_name(f["outcome"]),
            code=f["code"], duration_ms=f["duration_ms"],
            measurements={_name(m["id"]): m["value"] for m in f["measurements"]}, note=f["note"])

    # -- queries ---------------------------------------------------------------------------

    def _timeout(self) -> float | None:
        if self.deadline is None:
            return None
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise DeadlinePassed(f"{self.link.name}: time is up (the overall timeout has passed)")
        return left

    def set_deadline(self, seconds: float | None) -> None:
        """Let every request from now on fail at once after ``seconds`` (None: no limit), but
        never sooner than one request needs at this line rate (docs/protocol.md section 5)."""
        if seconds is None:
            self.deadline = None
            return
        self.deadline = time.monotonic() + max(seconds, self.link.timings.request_budget)

    def _request(self, msg_type: MessageType, fields: dict[str, Any] | None = None) -> Message:
        return self._request_frame(msg_type, fields)[1]

    def _request_frame(self, msg_type: MessageType, fields: dict[str, Any] | None = None) -> tuple[Frame, Message]:
        self._check_not_lost(msg_type)
        try:
            # a harmless request whose answers the line spoilt is asked again by the link
            # (the session rules, protocols.pos.session); silence is not asked again
            return self.link.request_frame(msg_type, fields, timeout=self._timeout())
        except RequestRefused as exc:
            lost = self._lost_by(msg_type, exc)
            if lost is None:
                raise
            raise lost from exc

    # -- noticing a restart (docs/protocol.md section 6, "Noticing a restart") -----------------

    @property
    def restarted(self) -> bool:
        """True from the moment the terminal is known to have restarted until the next
        :meth:`connect`: its session is gone, and every request but HELLO raises
        :class:`SessionLost`."""
        return self.link.session_lost is not None

    @property
    def session_lost(self) -> SessionLost | None:
        """Why the session is gone (see :attr:`restarted`), or None."""
        return self.link.session_lost

    def check_session(self) -> SessionLost | None:
        """Ask the terminal whether it still has this session; return why it is gone, or None."""
        lost = self.link.session_lost
        if lost is None:
            lost = self.link.check_session(timeout=self._timeout())
        return lost

    def _check_not_lost(self, msg_type: MessageType) -> None:
        lost = self.link.session_lost
        if lost is not None and msg_type not in NO_SESSION_NEEDED:
            raise SessionLost(str(lost), lost.cause)

    def _lost_by(self, msg_type: MessageType, refusal: RequestRefused) -> SessionLost | None:
        """Whether ``not_permitted`` means the session is gone: certain for a request any
        session may make (the link has noticed already); for any other, the terminal is asked."""
        if refusal.reason != "not_permitted" or msg_type in NO_SESSION_NEEDED:
            return None
        if self.link.session_lost is None and msg_type not in ANY_SESSION_MAY:
            with contextlib.suppress(DriverError):
                self.link.check_session(timeout=self._timeout())
        lost = self.link.session_lost
        return None if lost is None else SessionLost(str(lost), lost.cause)

    def _on_restart(self, err: SessionLost) -> None:
        """The link noticed a restart (its thread): the running self-tests are gone."""
        with self._runs_lock:
            runs = list(self._runs.values()) + [r for rs in self._replaced.values() for r in rs]
            self._runs.clear()
            self._replaced.clear()
        for run in runs:
            run._lose(err)
        if self.on_restart is not None:
            self.on_restart(err)

    def connect(self) -> HelloInfo:
        """HELLO: negotiate version and payload size, learn components and serial."""
        m = self._request(MessageType.HELLO, {"protocol_version": 1, "max_payload": 1024,
                                                  "host": HOST_NAME})
        f = m.fields
        comps = tuple(c.name for c in Component if f["components"] & (1 << int(c)))
        self.hello = HelloInfo(f["protocol_version"], f["max_payload"], comps, f["serial"], f["boot_id"])
        if f["max_payload"] < timing.MIN_PAYLOAD:
            raise ProtocolViolation(f"{self.link.name}: the terminal offered {f['max_payload']}-byte payloads at "
                                    f"HELLO, below the protocol's minimum of {timing.MIN_PAYLOAD}: its firmware "
                                    f"does not follow the spec")
        negotiated = min(self.link.deframer.max_payload, f["max_payload"])
        self.link.deframer.max_payload = negotiated
        # every timer shrinks with the frames the session may now carry (docs/protocol.md section 5)
        self.link.timings = replace(self.link.timings, max_payload=negotiated)
        self.link.keepalive = True
        return self.hello

    def ping(self) -> int:
        """PING: whether the terminal answers at all; returns its uptime in ms (PONG)."""
        return int(self._request(MessageType.PING).fields["uptime_ms"])

    def info(self) -> DeviceInfo:
        """Identity and lifecycle state."""
        f = self._request(MessageType.INFO_REQUEST).fields
        return DeviceInfo(f["manufacturer"], f["model"], f["serial"], f["hardware_rev"], f["firmware_version"],
                          _name(f["lifecycle"]), f["merchant_id"], f["activated_at"], f["clock"])

    def status(self, component: str) -> dict[str, Any]:
        """One component's status block (STATUS_REPLY), as plain data."""
        f = self._request(MessageType.STATUS_REQUEST, {"component": component}).fields
        status: dict[str, Any] = f["status"] or {}
        return status

    def status_all(self, components: list[str] | tuple[str, ...] | None = None) -> dict[str, ComponentStatus]:
        """STATUS_REQUEST for each of ``components`` (default: every one HELLO said is fitted), in
        that order; one :class:`ComponentStatus` each, by name.

        A refusal, a timeout or a malformed answer is that component's result and the others are
        still asked. What ends the whole snapshot is raised: the port broke, the session is lost
        (the terminal restarted), or a component went unanswered and so did the PING sent to
        tell a silent component from a silent terminal.
        """
        if components is None:
            components = self.hello.components if self.hello is not None else ()
        out: dict[str, ComponentStatus] = {}
        for component in components:
            try:
                out[component] = ComponentStatus(component, self.status(component))
            except RequestRefused as exc:
                out[component] = ComponentStatus(component, None, "refused", _name(exc.reason))
            except ResponseTimeout as exc:
                if self.link.error is not None:
                    raise
                self.ping()   # raises when the terminal itself has gone silent
                out[component] = ComponentStatus(component, None, "timeout", str(exc))
            except ProtocolViolation as exc:
                out[component] = ComponentStatus(component, None, "error", str(exc))
        return out

    def start_self_test(self, component: str, plan: str = "full", interactive: bool = False) -> SelfTestRun:
        """Start a component's self-test; the run collects progress and the result."""
        run = SelfTestRun(self, component)
        with self._runs_lock:
            older = self._runs.get(component)
            if older is not None and older.result is None and older._failure is None:
                self._replaced.setdefault(component, []).append(older)
            self._runs[component] = run
        try:
            self._request(MessageType.SELFTEST_START,
                              {"component": component, "plan": plan, "interactive": interactive})
        except DriverError:
            with self._runs_lock:
                if self._runs.get(component) is run:
                    self._runs.pop(component)
                    if older is not None and self._replaced.get(component, [])[-1:] == [older]:
                        self._runs[component] = self._replaced[component].pop()   # it was not replaced
            raise
        return run

    def watch_self_test(self, component: str) -> SelfTestRun:
        """Follow a self-test the terminal is already running without starting it (a START whose
        answers were lost went through: a second one was refused busy)."""
        run = SelfTestRun(self, component)
        run.adopted = True
        with self._runs_lock:
            self._runs[component] = run
        self.link.watch_selftest(component)
        return run

    def run_self_test(self, component: str, plan: str = "full", interactive: bool = False, *,
                      on_progress: Callable[[SelfTestProgress], None] | None = None,
                      timeout: float | None = None) -> SelfTestResult:
        """Run one self-test to its end and return the result."""
        run = self.start_self_test(component, plan, interactive)
        if on_progress is not None:
            for p in list(run.progress):
                on_progress(p)
            run.on_progress(on_progress)
        return run.wait(timeout)

    def abort(self, component: str | int = 0xFF) -> None:
        """Abort a running self-test (0xFF: every one)."""
        self._request(MessageType.SELFTEST_ABORT, {"component": component})

    def confirm(self, component: str, accepted: bool) -> None:
        """Answer a confirm prompt (test pattern, test page) for a person."""
        self._request(MessageType.SELFTEST_CONFIRM, {"component": component, "accepted": accepted})

    def read_event_log(self) -> list[dict[str, Any]]:
        """Every entry of the terminal's event log, oldest first."""
        entries: list[dict[str, Any]] = []
        page, pages = 0, 1
        while page < pages:
            f = self._request(MessageType.EVENTLOG_READ, {"page": page}).fields
            if f["page"] != page:
                raise ProtocolViolation(f"asked for event-log page {page}, got {f['page']}")
            pages = f["pages"]
            entries.extend(f["entries"])
            page += 1
        return entries

    # -- transaction log -------------------------------------------------------------------

    def transaction_log_info(self) -> tuple[int, str]:
        """The transaction log as it is now: (records, SHA-256 hex over its pages), without
        reading it (to tell whether a backup is of the current log)."""
        f = self._request(MessageType.TXLOG_OPEN).fields
        return int(f["records"]), bytes(f["sha256"]).hex()

    def export_transaction_log(self, path: str | Path, *,
                               on_progress: Callable[[int, int], None] | None = None,
                               page_retries: int = 3) -> TxLogExport:
        """Back up the transaction log to ``path``: every page checked, the digest verified,
        the file written atomically (a failure leaves no file, or the previous one)."""
        path = Path(path)
        info = self._request(MessageType.TXLOG_OPEN).fields
        serial = self.hello.serial if self.hello else self.info().serial
        digest = hashlib.sha256()
        pages_raw: list[bytes] = []
        records: list[dict[str, Any]] = []
        for page in range(info["pages"]):
            for attempt in range(page_retries + 1):
                frame, msg = self._request_frame(MessageType.TXLOG_READ, {"page": page})
                field_bytes = frame.payload[2:-4]
                if msg.fields["page"] == page and txlog_page_crc(field_bytes) == msg.fields["page_crc"]:
                    break
                if attempt == page_retries:
                    raise TransferError(f"transaction-log page {page} failed its CRC {page_retries + 1} times")
            digest.update(field_bytes)
            pages_raw.append(field_bytes)
            records.extend(_masked(r) for r in msg.fields["records"])
            if on_progress is not None:
                on_progress(page + 1, info["pages"])
        if digest.digest() != info["sha256"]:
            raise TransferError("transaction-log digest does not match the terminal's: backup discarded")
        if len(records) != info["records"]:
            raise TransferError(f"terminal announced {info['records']} records, sent {len(records)}")
        # pages kept as the terminal sent them (base64: hex would make long digit runs that
        # card-number scanners mistake for PANs), so the digest can be re-verified from the file
        doc = {"format": TXLOG_FORMAT, "version": 1, "serial": serial, "records": len(records),
               "pages": len(pages_raw), "sha256": digest.hexdigest(), "exported_at": int(time.time()),
               "page_data": [base64.b64encode(p).decode("ascii") for p in pages_raw],
               "transactions": records}
        _write_atomically(path, json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
        return TxLogExport(path, serial, len(records), len(pages_raw), digest.hexdigest())

    # -- lifecycle -------------------------------------------------------------------------

    def challenge(self, operation: str) -> LifecycleChallenge:
        """Ask for a lifecycle challenge (step 1 of docs/protocol.md section 11)."""
        op = LifecycleOp[operation]
        frame, msg = self._request_frame(MessageType.LC_CHALLENGE_REQUEST, {"operation": op.name})
        f = msg.fields
        if _name(f["operation"]) != op.name:
            raise ProtocolViolation(f"asked for a {op.name} challenge, got one for {_name(f['operation'])}")
        # the MAC covers the serial as sent, and the nonce as sent (the driver masks what it shows)
        raw = decode_message(frame).fields
        return LifecycleChallenge(op.name, bytes(raw["nonce"]), int(f["counter"]), str(f["serial"]),
                                  signing_serial=str(raw["serial"]))

    @property
    def max_payload(self) -> int:
        """The largest payload a request may have in this session (negotiated at HELLO)."""
        return self.link.timings.max_payload

    def lifecycle_request_size(self, operation: str, *, activation_code: str = "", merchant_id: str = "",
                               reason: str = "") -> int:
        """Bytes of the LC_REQUEST payload these arguments make, before any challenge is asked
        for (nonce and MAC have fixed sizes), to refuse what would not fit :attr:`max_payload`."""
        probe = LifecycleRequest(LifecycleOp[operation].name, 0, bytes(16), activation_code, merchant_id, reason,
                                 bytes(32))
        return len(encode_payload(MessageType.LC_REQUEST, _lifecycle_fields(probe)))

    def send_lifecycle(self, request: LifecycleRequest) -> LifecycleResult:
        """Send a signed request (step 2) and return the terminal's LC_RESULT (step 3)."""
        f = self._request(MessageType.LC_REQUEST, _lifecycle_fields(request)).fields
        return LifecycleResult(_name(f["operation"]), _name(f["status"]), _name(f["state"]), f["counter"],
                               f["message"])

    def lifecycle(self, operation: str, key: bytes, *, activation_code: str = "", merchant_id: str = "",
                  reason: str = "") -> LifecycleResult:
        """Challenge, sign and send one lifecycle operation; return the terminal's answer."""
        ch = self.challenge(operation)
        return self.send_lifecycle(LifecycleRequest.sign(key, ch, activation_code=activation_code,
                                                         merchant_id=merchant_id, reason=reason))

    def activate(self, key: bytes, activation_code: str, merchant_id: str) -> LifecycleResult:
        """Activate with an activation code for a merchant."""
        return self.lifecycle("activate", key, activation_code=activation_code, merchant_id=merchant_id)

    def bind(self, key: bytes, merchant_id: str) -> LifecycleResult:
        """Bind to a merchant account."""
        return self.lifecycle("bind", key, merchant_id=merchant_id)

    def unbind(self, key: bytes, reason: str) -> LifecycleResult:
        """Unbind from the merchant (back the transaction log up first)."""
        return self.lifecycle("unbind", key, reason=reason)

    def revoke(self, key: bytes, reason: str) -> LifecycleResult:
        """Revoke an un-activated terminal's activation."""
        return self.lifecycle("revoke", key, reason=reason)

    def factory_reset(self, key: bytes, reason: str) -> LifecycleResult:
        """Return the terminal to unactivated."""
        return self.lifecycle("factory_reset", key, reason=reason)


def _lifecycle_fields(request: LifecycleRequest) -> dict[str, Any]:
    return {"operation": request.operation, "counter": request.counter, "nonce": request.nonce,
            "activation_code": request.activation_code, "merchant_id": request.merchant_id,
            "reason": request.reason, "mac": request.mac}


def verify_txlog_backup(path: str | Path) -> TxLogExport:
    """Re-check a backup file written by :meth:`Terminal.export_transaction_log`: the pages it
    keeps must hash to its recorded SHA-256.  :class:`TransferError` says what is wrong."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TransferError(f"backup {path} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TransferError(f"backup {path} cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        if doc["format"] != TXLOG_FORMAT or doc["version"] != 1:
            raise TransferError(f"{path} is not a pos-sim transaction-log backup (version 1)")
        digest = hashlib.sha256()
        for page in doc["page_data"]:
            digest.update(base64.b64decode(page, validate=True))
        if digest.hexdigest() != doc["sha256"]:
            raise TransferError(f"backup {path} is damaged: its pages do not hash to its SHA-256")
        if len(doc["transactions"]) != doc["records"]:
            raise TransferError(f"backup {path} is damaged: it says {doc['records']} records and holds "
                                f"{len(doc['transactions'])}")
        return TxLogExport(path, str(doc["serial"]), int(doc["records"]), len(doc["page_data"]), doc["sha256"])
    except (KeyError, TypeError, ValueError) as exc:
        raise TransferError(f"backup {path} is damaged or not a backup ({type(exc).__name__})") from None


def _masked(record: dict[str, Any]) -> dict[str, Any]:
    """A transaction record for the backup file: the card shown as BIN…last4 at most."""
    out: dict[str, Any] = jsonable(dict(record))
    bin6, last4 = out.pop("pan_bin"), out.pop("pan_last4")
    out["card"] = f"{bin6:06d}******{last4:04d}" if bin6 or last4 else ""
    out["auth_code"] = bytes.fromhex(out["auth_code"]).decode("ascii", "replace")
    masked: dict[str, Any] = mask_fields(out)
    return masked


def _write_atomically(path: Path, text: str) -> None:
    """The backup file, whole or not at all (mode 600: it is a merchant's transactions)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TransferError(f"cannot write in {path.parent}: {exc.strerror or exc}") from exc
    try:
        write_atomically(path, text, mode=0o600)
    except FileWriteError as exc:
        raise TransferError(f"cannot save the backup to {path}: {exc.strerror or exc}") from exc


__all__ = ["DeviceDisconnected", "DeviceInfo", "HelloInfo", "LifecycleChallenge", "LifecycleRequest",
           "LifecycleResult", "SelfTestProgress", "SelfTestResult", "SelfTestRun", "Terminal", "TxLogExport", "field",
           "open_line", "verify_txlog_backup"]
