"""The protocol engine: the terminal side of docs/protocol.md, without any I/O.

Feed it the bytes that arrived and the time (:meth:`TerminalEngine.receive`), let it run its
timers (:meth:`TerminalEngine.tick`), take the bytes it wants to send
(:meth:`TerminalEngine.take_output`) and ask when it next needs the clock
(:meth:`TerminalEngine.next_deadline`).  Time is whatever monotonic seconds the caller passes,
so tests drive it with a fake clock and the server with ``time.monotonic()``.

What it implements, by section of the spec: deframing with the 100 ms inter-byte timeout (3);
requests, NAK reasons and duplicate detection by sequence number (4, 5); event frames in the
terminal's own sequence space, retransmitted after T_resp at most three times (5); the
session, HELLO negotiation and the 10 s silence rule (5, 6); every request of the catalogue
(7); self-tests with progress, prompts, confirm, abort and concurrency (8); ERROR events and
the persistent event log (9); the transaction-log export (10); authenticated lifecycle
operations (11).  Persistence goes through a :class:`~pos_sim.emulator.state.StateStore`,
called synchronously where the spec says "stored before the answer is sent".
"""

from __future__ import annotations

import hashlib
import hmac
import math
import random
import secrets
import time
from collections import deque
from dataclasses import dataclass, field, fields
from typing import Any

from pos_sim.emulator.device import BATTERY_LOW_PCT, MIN_FREE_MEMORY_KB, Device
from pos_sim.emulator.scenario import MIN_PAYLOAD, Scenario
from pos_sim.emulator.selftests import (
    SCRIPTS,
    AwaitConfirm,
    AwaitPerson,
    Begin,
    Emit,
    Op,
    Script,
    TestRun,
    Work,
)
from pos_sim.emulator.state import DeviceState, LogEntry, StateStore
from protocols.pos import (
    MAX_PAYLOAD,
    Frame,
    FrameDeframer,
    MessageType,
    ProtocolError,
    decode_message,
    encode_frame,
    encode_payload,
    timing,
)
from protocols.pos.auth import lifecycle_args, verify_mac
from protocols.pos.codes import (
    Component,
    EventKind,
    FaultCode,
    FrameFlag,
    LifecycleOp,
    LifecycleState,
    LifecycleStatus,
    Measurement,
    NakReason,
    Outcome,
    SelfTestPlan,
    Severity,
)
from protocols.pos.faults import outcome_for, primary_fault, severity
from protocols.pos.messages import CATALOGUE, NO_SESSION, REQUESTS, TX_RECORD, page_capacity, txlog_page_crc

RESPONSE = int(FrameFlag.RESPONSE)
EVENT = int(FrameFlag.EVENT)
RETRANSMIT = int(FrameFlag.RETRANSMIT)

#: docs/protocol.md section 5's timers, as the terminal keeps them (formulas: protocols.pos.timing)
SESSION_TIMEOUT = timing.SESSION_TIMEOUT
CONFIRM_TIMEOUT = timing.CONFIRM_TIMEOUT
CHALLENGE_VALIDITY = timing.CHALLENGE_VALIDITY
EVENT_RETRANSMITS = timing.RETRANSMITS
#: progress is due at least once a second; half that leaves room for a lost frame
PROGRESS_INTERVAL = 0.5
#: events in flight without an ACK; more wait in order (bounded memory if the host never ACKs)
EVENT_WINDOW = 32
#: SELFTEST_ABORT's "every running test"
ALL_COMPONENTS = 0xFF

_T = MessageType
#: requests a host may send (the catalogue's); everything else arriving without RESPONSE is refused
HOST_REQUESTS = REQUESTS


@dataclass
class EngineStats:
    """What the engine did, for the server's stats and for tests."""

    frames_in: int = 0
    frames_out: int = 0
    requests: int = 0
    duplicates: int = 0
    naks_sent: int = 0
    events_sent: int = 0
    event_retransmits: int = 0
    events_acked: int = 0
    events_dropped: int = 0
    events_unsent: int = 0
    ignored: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class _Answer:
    """The last executed request's sequence number and the reply it got (for duplicates)."""

    seq: int
    type: int
    payload: bytes


@dataclass
class _PendingEvent:
    """An event frame sent and not yet acknowledged."""

    seq: int
    type: int
    payload: bytes
    retransmits: int = 0
    due: float = 0.0


@dataclass
class _Running:
    """A self-test in progress: its script and where the clock has it."""

    run: TestRun
    script: Script
    started: float
    op: Op | None = None
    op_time: float = 0.0
    wake_at: float = 0.0
    work_start: float = 0.0
    percent: float = 0.0
    pct_from: float = 0.0
    pct_to: float = 0.0
    check_end: int = 0
    step: int = 0
    prompt: int = 0
    next_progress: float = math.inf
    answered: bool = False
    answer: bool | None = None


@dataclass
class _Challenge:
    """An outstanding lifecycle challenge."""

    operation: LifecycleOp
    nonce: bytes
    expires: float


@dataclass
class _TxSnapshot:
    """The transaction log as TXLOG_OPEN froze it: pages already encoded."""

    records: int
    per_page: int
    pages: list[tuple[list[dict[str, Any]], bytes]] = field(default_factory=list)
    digest: bytes = b""


class TerminalEngine:
    """One emulated terminal's firmware, from the first byte in to the last byte out."""

    def __init__(self, scenario: Scenario, *, now: float, speed: float = 1.0, baud: int = 115200,
                 store: StateStore | None = None, state: DeviceState | None = None,
                 wall_offset: float | None = None, confirm_timeout: float = CONFIRM_TIMEOUT,
                 session_timeout: float | None = None) -> None:
        if not speed > 0:
            raise ValueError("speed must be a positive number (inf: every duration is zero)")
        if baud <= 0:
            raise ValueError("baud must be positive")
        self.scenario = scenario
        self.speed = speed
        self.baud = baud
        self.confirm_timeout = confirm_timeout
        #: a fixed session timeout (tests shorten it); None: T_session for the line and payload
        self._session_timeout = session_timeout
        self._store = store if store is not None else StateStore(None)
        self.state = state if state is not None else self._store.load(scenario)
        self._wall_offset = wall_offset if wall_offset is not None else time.time() - now
        self.device = Device(scenario, self.state, boot=now)
        self.boot_id = secrets.randbits(32)
        self._rng = random.Random(f"engine:{scenario.seed}:{scenario.device.serial}")
        self._deframer = FrameDeframer()
        self._out = bytearray()
        self._byte_time = timing.line_time(1, baud)
        self._inter_byte = timing.inter_byte_timeout(baud)
        self._line_free_at = now
        self._last_rx = now
        self._session = False
        self._max_payload = MAX_PAYLOAD
        self._last_heard = now
        self._last_answer: _Answer | None = None
        self._event_seq = secrets.randbits(16)
        self._unacked: dict[int, _PendingEvent] = {}
        self._queued: deque[tuple[int, bytes]] = deque()
        self._runs: dict[Component, _Running] = {}
        self._challenge: _Challenge | None = None
        self._txlog: _TxSnapshot | None = None
        self._boot_faults: list[tuple[Component, FaultCode, str]] = []
        self._boot_reported = False
        self._battery_low_reported = False
        self.crashed = False
        self.stats = EngineStats()
        self._boot(now)

    # -- the sans-I/O interface ----------------------------------------------------------------

    @property
    def session_open(self) -> bool:
        """Whether a host has said HELLO and not gone silent since."""
        return self._session

    @property
    def deframer(self) -> FrameDeframer:
        """The deframer (its stats count what the line delivered)."""
        return self._deframer

    @property
    def session_timeout(self) -> float:
        """Silence from the host after which the session closes (section 5's T_session)."""
        if self._session_timeout is not None:
            return self._session_timeout
        return timing.session_timeout(self.baud, self._max_payload)

    @property
    def t_resp(self) -> float:
        """T_resp (section 5) at this line rate and the payload limit in force."""
        return timing.response_timeout(self.baud, self._max_payload)

    @property
    def max_payload(self) -> int:
        """The payload limit in force (1024 before HELLO, the negotiated one after)."""
        return self._max_payload

    @property
    def running(self) -> list[Component]:
        """Components whose self-test is running."""
        return list(self._runs)

    def receive(self, data: bytes, now: float) -> None:
        """Bytes arrived from the host at ``now``."""
        if self.crashed:
            return
        if data:
            self._last_rx = now
            for frame in self._deframer.feed(data):
                self._on_frame(frame, now)
                if self._halted():
                    return
        self.tick(now)

    def tick(self, now: float) -> None:
        """Run every timer due by ``now``."""
        if self.crashed:
            return
        if self._deframer.pending and now - self._last_rx >= self._inter_byte:
            # inter-byte timeout: give up the partial frame; intact frames behind it still count
            for frame in self._deframer.drop_partial():
                self._on_frame(frame, now)
                if self._halted():
                    return
        if self._session and now - self._last_heard >= self.session_timeout:
            self._close_session(now)
        self._retransmit_events(now)
        for running in list(self._runs.values()):
            self._advance(running, now)
            if self._halted():
                return
        self._check_battery(now)

    def _halted(self) -> bool:
        # a method, not the attribute: handlers called in between may crash the firmware,
        # and mypy would otherwise keep the attribute narrowed to False
        return self.crashed

    def take_output(self) -> bytes:
        """The bytes the terminal wants on the line, in order (and forget them)."""
        if not self._out:
            return b""
        data = bytes(self._out)
        self._out.clear()
        return data

    def next_deadline(self) -> float | None:
        """The earliest time :meth:`tick` has something to do (None: only input can wake it)."""
        if self.crashed:
            return None
        times: list[float] = []
        if self._deframer.pending:
            times.append(self._last_rx + self._inter_byte)
        if self._session:
            times.append(self._last_heard + self.session_timeout)
        times.extend(ev.due for ev in self._unacked.values())
        for r in self._runs.values():
            times.append(self._run_deadline(r))
        if not self._battery_low_reported:
            low_at = self.device.battery_low_at(self._last_rx)
            if low_at is not None:
                times.append(low_at)
        return min(times) if times else None

    def reset_session(self, now: float) -> None:
        """The line was reconnected (a new TCP client): forget the session and half frames."""
        self._deframer.reset()
        self._out.clear()
        self._line_free_at = now
        self._last_rx = now
        self._close_session(now)

    def save(self, now: float) -> None:
        """Write the state (battery level included) to the state file, if there is one."""
        self.device.settle_battery(now)
        self._store.save(self.state)

    def wall(self, now: float) -> int:
        """Unix time (seconds) at monotonic ``now``."""
        return int(now + self._wall_offset)

    # -- boot ----------------------------------------------------------------------------------

    def _boot(self, now: float) -> None:
        """Power-on: note a watchdog restart, run the power-on checks, log what they find."""
        state = self.state
        if state.crashed:
            state.crashed = False
            state.last_reset = FaultCode.watchdog_reset
        else:
            state.last_reset = FaultCode.none
        self._boot_faults = self._standing_faults(now)
        for component, code, _ in self._boot_faults:
            state.log(LogEntry(self.wall(now), component, code, severity(code)))
            if code == FaultCode.battery_low:
                self._battery_low_reported = True
        self.save(now)

    def _standing_faults(self, now: float) -> list[tuple[Component, FaultCode, str]]:
        """Faults the firmware notices at power-on, without running any self-test."""
        dev = self.device
        out: list[tuple[Component, FaultCode, str]] = []

        def add(component: Component, code: FaultCode, detail: str) -> None:
            if self.scenario.fitted(component):
                out.append((component, code, detail))

        sc = self.scenario
        if self.state.last_reset == FaultCode.watchdog_reset:
            add(Component.system, FaultCode.watchdog_reset, "restarted by the watchdog")
        for code in (FaultCode.firmware_integrity, FaultCode.firmware_incompatible,
                     FaultCode.firmware_update_failed, FaultCode.clock_invalid):
            if dev.has(Component.system, code):
                add(Component.system, code, code.doc)
        if sc.component(Component.system).get_int("free_memory_kb") < MIN_FREE_MEMORY_KB:
            add(Component.system, FaultCode.out_of_memory, "free memory low")
        for component, code in ((Component.magstripe, FaultCode.msr_head_fault),
                                (Component.chip, FaultCode.icc_contact_fault),
                                (Component.contactless, FaultCode.nfc_field_fault),
                                (Component.scanner, FaultCode.scanner_fault),
                                (Component.printer, FaultCode.printer_unrecoverable),
                                (Component.printer, FaultCode.cover_open),
                                (Component.screen, FaultCode.panel_no_signal)):
            if dev.has(component, code):
                add(component, code, code.doc)
        if dev.paper == "end":
            add(Component.printer, FaultCode.paper_end, "paper end")
        elif dev.paper == "near_end":
            add(Component.printer, FaultCode.paper_near_end, "paper near end")
        dead = sc.component(Component.screen).get_int("dead_pixels")
        if dead and not dev.has(Component.screen, FaultCode.panel_no_signal):
            add(Component.screen, FaultCode.panel_damaged, f"panel reports {dead} dead pixels")
        if sc.component(Component.keypad).get_names("stuck_keys"):
            add(Component.keypad, FaultCode.key_stuck, "a key reports pressed at power-on")
        if dev.no_sim:
            add(Component.network, FaultCode.no_sim, "no SIM card")
        elif not dev.link_up:
            add(Component.network, FaultCode.no_link, "no network link")
        for code in (FaultCode.battery_missing, FaultCode.battery_damaged, FaultCode.external_power_off,
                     FaultCode.voltage_unstable):
            if dev.has(Component.power, code):
                add(Component.power, code, code.doc)
        level = dev.battery_pct(now)
        if not dev.has(Component.power, FaultCode.battery_missing) and level < BATTERY_LOW_PCT:
            add(Component.power, FaultCode.battery_low, f"battery at {int(level)} %")
        for code in (FaultCode.tamper_tripped, FaultCode.keys_erased, FaultCode.keys_missing):
            if dev.has(Component.security, code):
                add(Component.security, code, code.doc)
        return out

    # -- frames in -----------------------------------------------------------------------------

    def _on_frame(self, frame: Frame, now: float) -> None:
        self.stats.frames_in += 1
        self._last_heard = now
        if frame.flags & RESPONSE:
            if frame.type == _T.ACK:
                self._on_event_ack(frame.seq, now)
            elif frame.type == _T.NAK:
                self._on_event_nak(frame, now)
            else:
                self.stats.ignored += 1  # a PONG to a PING we never sent, or a stray reply
            return
        if frame.flags & EVENT:
            self.stats.ignored += 1  # hosts send no events
            return
        self._on_request(frame, now)

    def _on_request(self, frame: Frame, now: float) -> None:
        self.stats.requests += 1
        last = self._last_answer
        if last is not None and frame.seq == last.seq and frame.type != _T.HELLO:
            # its answer was lost: answer again, do not execute again (section 5)
            self.stats.duplicates += 1
            self._send(encode_frame(last.type, last.payload, last.seq, RESPONSE | RETRANSMIT), now)
            return
        try:
            mtype = MessageType(frame.type)
        except ValueError:
            self._nak(frame.seq, NakReason.unknown_type, now)
            return
        if mtype not in HOST_REQUESTS:
            self._nak(frame.seq, NakReason.not_permitted, now)
            return
        if len(frame.payload) > self._max_payload:
            self._nak(frame.seq, NakReason.too_large, now)
            return
        try:
            msg = decode_message(frame)
        except ProtocolError:
            self._nak(frame.seq, NakReason.malformed, now)
            return
        if not self._session and CATALOGUE[mtype].rule.session != NO_SESSION:
            self._nak(frame.seq, NakReason.not_permitted, now)
            return
        handler = getattr(self, f"_req_{mtype.name.lower()}")
        handler(frame.seq, msg.fields, now)

    # -- frames out ----------------------------------------------------------------------------

    def _send(self, data: bytes, now: float) -> float:
        """Queue a frame; return when its last byte will have left (line time at ``baud``)."""
        self._out += data
        self.stats.frames_out += 1
        self._line_free_at = max(self._line_free_at, now) + len(data) * self._byte_time
        return self._line_free_at

    def _answer(self, seq: int, mtype: MessageType, fields: dict[str, Any], now: float) -> None:
        payload = encode_payload(mtype, fields)
        self._last_answer = _Answer(seq, int(mtype), payload)
        self._send(encode_frame(int(mtype), payload, seq, RESPONSE), now)

    def _ack(self, seq: int, now: float) -> None:
        self._answer(seq, _T.ACK, {}, now)

    def _nak(self, seq: int, reason: NakReason, now: float) -> None:
        # a refusal executes nothing, so it is not remembered: a retransmission after
        # NAK busy must be tried again, not refused again from memory
        self.stats.naks_sent += 1
        self._send(encode_frame(int(_T.NAK), bytes([int(reason)]), seq, RESPONSE), now)

    # -- events --------------------------------------------------------------------------------

    def _emit(self, mtype: MessageType, fields: dict[str, Any], now: float) -> None:
        """Send an event frame (or drop it when no host session is open to receive it)."""
        if self.crashed or not self._session:
            self.stats.events_unsent += 1
            return
        payload = encode_payload(mtype, fields)
        if len(self._unacked) < EVENT_WINDOW:
            self._send_event(_PendingEvent(self._next_event_seq(), int(mtype), payload), now)
        else:
            self._queued.append((int(mtype), payload))

    def _event(self, kind: EventKind, component: Component, value: int, now: float) -> None:
        self._emit(_T.EVENT, {"event": int(kind), "component": int(component),
                              "uptime_ms": self.device.uptime_ms(now), "value": value & 0xFFFFFFFF}, now)

    def _firmware_text(self, text: str, limit: int) -> str:
        """``text`` with the scenario's ``device.firmware_text`` after it (kept whole: ``text`` is
        cut instead), at most ``limit`` UTF-8 bytes."""
        extra = self.scenario.device.firmware_text.encode("utf-8")[:limit]
        room = limit - len(extra) - 1 if extra else limit
        head = text.encode("utf-8")[: max(0, room)] if text else b""
        joined = head + b" " + extra if head and extra else head or extra
        return joined.decode("utf-8", "ignore")

    def _error(self, component: Component, code: FaultCode, detail: str, now: float) -> None:
        self._emit(_T.ERROR, {"component": int(component), "code": int(code), "severity": int(severity(code)),
                              "detail": self._firmware_text(detail, 120)}, now)

    def _next_event_seq(self) -> int:
        seq = self._event_seq
        self._event_seq = (seq + 1) & 0xFFFF
        return seq

    def _send_event(self, ev: _PendingEvent, now: float, *, retransmit: bool = False) -> None:
        flags = EVENT | (RETRANSMIT if retransmit else 0)
        end = self._send(encode_frame(ev.type, ev.payload, ev.seq, flags), now)
        ev.due = end + self.t_resp
        self._unacked[ev.seq] = ev
        if retransmit:
            self.stats.event_retransmits += 1
        else:
            self.stats.events_sent += 1

    def _fill_window(self, now: float) -> None:
        while self._queued and len(self._unacked) < EVENT_WINDOW:
            mtype, payload = self._queued.popleft()
            self._send_event(_PendingEvent(self._next_event_seq(), mtype, payload), now)

    def _on_event_ack(self, seq: int, now: float) -> None:
        if self._unacked.pop(seq, None) is not None:
            self.stats.events_acked += 1
            self._fill_window(now)
        else:
            self.stats.ignored += 1  # late ACK of an event already given up, or of nothing

    def _on_event_nak(self, frame: Frame, now: float) -> None:
        ev = self._unacked.get(frame.seq)
        if ev is None:
            self.stats.ignored += 1
            return
        if frame.payload in (bytes([NakReason.bad_crc]), bytes([NakReason.busy])):
            ev.due = now  # send it again at once (still at most three times)
        else:
            del self._unacked[frame.seq]
            self.stats.events_dropped += 1
            self._fill_window(now)

    def _retransmit_events(self, now: float) -> None:
        for ev in list(self._unacked.values()):
            if now < ev.due:
                continue
            if ev.retransmits < EVENT_RETRANSMITS:
                ev.retransmits += 1
                self._send_event(ev, now, retransmit=True)
            else:
                # given up; ERROR contents stay in the event log (section 5)
                del self._unacked[ev.seq]
                self.stats.events_dropped += 1
        self._fill_window(now)

    # -- session -------------------------------------------------------------------------------

    def _forget_session(self) -> None:
        """Drop what belongs to one host session: duplicate memory, events, export, challenge."""
        self._max_payload = MAX_PAYLOAD
        self._last_answer = None
        self._unacked.clear()
        self._queued.clear()
        self._txlog = None
        self._challenge = None

    def _close_session(self, now: float) -> None:
        """No host any more: stop events, unanswered prompts, forget duplicates (section 5)."""
        self._session = False
        self._forget_session()
        for running in list(self._runs.values()):
            self._advance(running, now)  # a waiting confirm prompt now counts as unanswered

    def _req_hello(self, seq: int, f: dict[str, Any], now: float) -> None:
        version = int(f["protocol_version"])
        if version == 0:
            self._nak(seq, NakReason.unsupported_version, now)
            return
        if int(f["max_payload"]) < MIN_PAYLOAD:
            # too small for INFO_REPLY or one transaction record: not a usable session
            self._nak(seq, NakReason.malformed, now)
            return
        # a new session: duplicate memory, pending events, exports and challenges start afresh;
        # running self-tests go on and report to this session (section 6)
        self._forget_session()
        self._session = True
        self._last_heard = now
        self._max_payload = min(int(f["max_payload"]), self.scenario.device.max_payload, MAX_PAYLOAD)
        bitmap = sum(1 << int(c) for c in self.scenario.device.components)
        self._answer(seq, _T.HELLO_REPLY, {
            "protocol_version": min(version, 1), "max_payload": self._max_payload, "components": bitmap,
            "serial": self.scenario.device.serial, "boot_id": self.boot_id}, now)
        if not self._boot_reported:
            self._boot_reported = True
            if self.state.last_reset != FaultCode.none:
                self._event(EventKind.rebooted, Component.system, int(self.state.last_reset), now)
            for component, code, detail in self._boot_faults:
                self._error(component, code, detail, now)
                if code == FaultCode.battery_low:
                    self._event(EventKind.battery_low, Component.power, int(self.device.battery_pct(now)), now)

    def _req_ping(self, seq: int, f: dict[str, Any], now: float) -> None:
        self._answer(seq, _T.PONG, {"uptime_ms": self.device.uptime_ms(now)}, now)

    # -- identity and status -------------------------------------------------------------------

    def _req_info_request(self, seq: int, f: dict[str, Any], now: float) -> None:
        d = self.scenario.device
        s = self.state
        self._answer(seq, _T.INFO_REPLY, {
            "manufacturer": d.manufacturer, "model": d.model, "serial": d.serial,
            "hardware_rev": d.hardware_rev, "firmware_version": d.firmware_version,
            "lifecycle": int(s.lifecycle), "merchant_id": s.merchant_id, "activated_at": s.activated_at,
            "clock": self.wall(now) & 0xFFFFFFFF}, now)

    def _fitted(self, value: str | int) -> Component | None:
        """The component a request names (a name, or a number outside the table), if fitted."""
        try:
            component = Component[value] if isinstance(value, str) else Component(value)
        except (KeyError, ValueError):
            return None
        return component if self.scenario.fitted(component) else None

    def _req_status_request(self, seq: int, f: dict[str, Any], now: float) -> None:
        component = self._fitted(f["component"])
        if component is None:
            self._nak(seq, NakReason.not_permitted, now)
            return
        self._answer(seq, _T.STATUS_REPLY, {"component": int(component),
                                            "status": self.device.status(component, now)}, now)

    # -- self-tests ----------------------------------------------------------------------------

    def _req_selftest_start(self, seq: int, f: dict[str, Any], now: float) -> None:
        component = self._fitted(f["component"])
        locked = self.state.lifecycle == LifecycleState.locked
        if component is None or (locked and not self.scenario.device.diagnostics_when_locked):
            self._nak(seq, NakReason.not_permitted, now)
            return
        if component in self._runs:
            self._nak(seq, NakReason.busy, now)
            return
        plan_value = f["plan"]
        if not isinstance(plan_value, str):
            self._nak(seq, NakReason.malformed, now)  # a plan this firmware does not know
            return
        self._ack(seq, now)
        run = TestRun(component, SelfTestPlan[plan_value], bool(f["interactive"]), self.device,
                      random.Random(self._rng.random()), now=now)
        running = _Running(run, SCRIPTS[component](run), started=now, op_time=now)
        self._runs[component] = running
        self._advance(running, now)

    def _req_selftest_abort(self, seq: int, f: dict[str, Any], now: float) -> None:
        value = f["component"]
        if value == ALL_COMPONENTS:
            self._ack(seq, now)
            for running in list(self._runs.values()):
                self._abort(running, now)
            return
        component = self._fitted(value)
        if component is None or component not in self._runs:
            self._nak(seq, NakReason.not_permitted, now)
            return
        self._ack(seq, now)
        self._abort(self._runs[component], now)

    def _req_selftest_confirm(self, seq: int, f: dict[str, Any], now: float) -> None:
        component = self._fitted(f["component"])
        running = self._runs.get(component) if component is not None else None
        if running is None or not isinstance(running.op, AwaitConfirm) or running.answered:
            self._nak(seq, NakReason.not_permitted, now)
            return
        self._ack(seq, now)
        running.answered = True
        running.answer = bool(f["accepted"])
        self._advance(running, now)

    def _scaled(self, seconds: float) -> float:
        return 0.0 if math.isinf(self.speed) else seconds / self.speed

    def _crash_point(self, r: _Running) -> float | None:
        crash = self.scenario.crash
        if crash is None or crash.component != r.run.component:
            return None
        return float(crash.at_percent)

    def _run_deadline(self, r: _Running) -> float:
        op = r.op
        if isinstance(op, Work):
            deadline = min(r.wake_at, r.next_progress)
            at = self._crash_point(r)
            if at is not None and r.pct_from < at <= r.pct_to and r.wake_at > r.work_start:
                frac = (at - r.pct_from) / (r.pct_to - r.pct_from)
                # a microsecond late, so that float rounding cannot leave the percent just short
                deadline = min(deadline, r.work_start + frac * (r.wake_at - r.work_start) + 1e-6)
            return deadline
        if isinstance(op, AwaitPerson | AwaitConfirm):
            return min(r.wake_at, r.next_progress)
        return r.op_time

    def _crash_check(self, r: _Running, now: float) -> bool:
        at = self._crash_point(r)
        if at is None or r.percent < at:
            return False
        self._crash(now)
        return True

    def _crash(self, now: float) -> None:
        """The firmware stops dead: no byte out, none read, until the emulator restarts."""
        self.crashed = True
        self.state.crashed = True  # the watchdog's reset cause, seen at the next boot
        self.save(now)

    def _progress(self, r: _Running, now: float) -> None:
        r.next_progress = now + PROGRESS_INTERVAL
        self._emit(_T.SELFTEST_PROGRESS, {"component": int(r.run.component), "percent": min(100, int(r.percent)),
                                          "step": r.step, "prompt": r.prompt}, now)

    def _advance(self, r: _Running, now: float) -> None:
        """Run a self-test's script as far as the clock allows."""
        component = r.run.component
        while self._runs.get(component) is r and not self.crashed:
            op = r.op
            value: bool | None = None
            if isinstance(op, Work | AwaitPerson):
                if now < r.wake_at:
                    if isinstance(op, Work) and r.wake_at > r.work_start:
                        frac = (now - r.work_start) / (r.wake_at - r.work_start)
                        r.percent = r.pct_from + (r.pct_to - r.pct_from) * max(0.0, min(1.0, frac))
                        if self._crash_check(r, now):
                            return
                    if now >= r.next_progress:
                        self._progress(r, now)
                    return
                t = r.wake_at
                if isinstance(op, Work):
                    r.percent = r.pct_to
                    if self._crash_check(r, t):
                        return
            elif isinstance(op, AwaitConfirm):
                if r.answered:
                    value, t = r.answer, max(now, r.op_time)
                elif now >= r.wake_at or not self._session:
                    value, t = None, min(now, r.wake_at)  # unanswered: the check is skipped
                else:
                    if now >= r.next_progress:
                        self._progress(r, now)
                    return
            else:
                t = r.op_time
            r.run.now = t
            try:
                nxt = r.script.send(value)
            except StopIteration:
                self._finish(r, t, now)
                return
            r.op, r.op_time = nxt, t
            if isinstance(nxt, Begin):
                r.percent = max(r.percent, float(r.check_end))
                r.check_end, r.step, r.prompt = nxt.to_percent, nxt.step, int(nxt.prompt)
                r.run.checks_run += 1
                if self._crash_check(r, t):
                    return
                self._progress(r, now)
            elif isinstance(nxt, Work):
                r.pct_from = r.percent
                r.pct_to = float(nxt.to if nxt.to is not None else r.check_end)
                r.work_start, r.wake_at = t, t + self._scaled(nxt.seconds)
            elif isinstance(nxt, AwaitPerson):
                r.wake_at = t + self._scaled(nxt.seconds)
            elif isinstance(nxt, Emit):
                self._event(nxt.event, component, nxt.value, now)
            else:
                r.prompt, r.answered, r.answer = int(nxt.prompt), False, None
                r.wake_at = t + self.confirm_timeout
                self._progress(r, now)

    def _release(self, component: Component) -> None:
        """Put the hardware back at rest after a test ends or is aborted."""
        dev = self.device
        dev.reading.discard(component)
        if component == Component.printer:
            dev.printing = False
        elif component == Component.chip:
            dev.card_in_slot = False
        elif component == Component.contactless:
            dev.cards_in_field = 0

    def _finish(self, r: _Running, t: float, now: float) -> None:
        run = r.run
        del self._runs[run.component]
        self._release(run.component)
        primary = primary_fault(run.faults)
        if run.checks_skipped:
            run.measure(Measurement.checks_skipped, run.checks_skipped)
        if primary != FaultCode.none:
            outcome = outcome_for(primary)
        elif run.checks_skipped or not run.checks_run:
            # a check of the plan did not run for want of a person: never "passed" (section 8)
            outcome = Outcome.skipped
        else:
            outcome = Outcome.passed
        # the most serious fault is the result's code; the others go out as ERROR events (section 8)
        for code in run.faults:
            if code != primary:
                self._error(run.component, code, run.details[code], now)
        for code in run.faults:
            self.state.log(LogEntry(self.wall(t), run.component, code, severity(code)))
        if run.faults:
            self.save(now)
        self._result(run, outcome, primary, int((t - r.started) * 1000), run.note(primary), now)

    def _abort(self, r: _Running, now: float) -> None:
        run = r.run
        r.script.close()
        del self._runs[run.component]
        self._release(run.component)
        self._result(run, Outcome.aborted, FaultCode.none, int((now - r.started) * 1000),
                     "aborted by the host", now)

    def _result(self, run: TestRun, outcome: Outcome, code: FaultCode, duration_ms: int, note: str,
                now: float) -> None:
        self._emit(_T.SELFTEST_RESULT, {
            "component": int(run.component), "plan": int(run.plan), "outcome": int(outcome), "code": int(code),
            "duration_ms": max(0, duration_ms) & 0xFFFFFFFF,
            "measurements": [{"id": int(m), "value": v} for m, v in run.measurements],
            "note": self._firmware_text(note, 255)}, now)

    def _check_battery(self, now: float) -> None:
        """Report the battery falling below its low threshold, once per boot."""
        if self._battery_low_reported or self.device.has(Component.power, FaultCode.battery_missing):
            return
        if self.device.battery_pct(now) >= BATTERY_LOW_PCT:
            return
        self._battery_low_reported = True
        pct = int(self.device.battery_pct(now))
        self.state.log(LogEntry(self.wall(now), Component.power, FaultCode.battery_low, Severity.warning))
        self.save(now)
        self._event(EventKind.battery_low, Component.power, pct, now)
        self._error(Component.power, FaultCode.battery_low, f"battery at {pct} %", now)

    # -- event log and transaction log ---------------------------------------------------------

    def _req_eventlog_read(self, seq: int, f: dict[str, Any], now: float) -> None:
        per_page = page_capacity(_T.EVENTLOG_PAGE, self._max_payload)
        log = self.state.event_log
        pages = -(-len(log) // per_page)
        page = int(f["page"])
        entries = log[page * per_page: (page + 1) * per_page] if page < pages else []
        self._answer(seq, _T.EVENTLOG_PAGE, {"page": page, "pages": pages,
                                             "entries": [e.wire() for e in entries]}, now)

    def _req_txlog_open(self, seq: int, f: dict[str, Any], now: float) -> None:
        per_page = page_capacity(_T.TXLOG_PAGE, self._max_payload)
        records = [r.wire() for r in self.state.txlog]
        snap = _TxSnapshot(records=len(records), per_page=per_page)
        digest = hashlib.sha256()
        for start in range(0, len(records), per_page):
            chunk = records[start: start + per_page]
            field_bytes = bytes([len(chunk)]) + b"".join(TX_RECORD.build(r) for r in chunk)
            snap.pages.append((chunk, field_bytes))
            digest.update(field_bytes)
        snap.digest = digest.digest()
        self._txlog = snap
        self._answer(seq, _T.TXLOG_INFO, {"records": snap.records, "pages": len(snap.pages),
                                          "records_per_page": per_page, "sha256": snap.digest}, now)

    def _req_txlog_read(self, seq: int, f: dict[str, Any], now: float) -> None:
        snap = self._txlog
        if snap is None:
            self._nak(seq, NakReason.not_permitted, now)  # no TXLOG_OPEN in this session
            return
        page = int(f["page"])
        chunk, field_bytes = snap.pages[page] if page < len(snap.pages) else ([], b"\x00")
        self._answer(seq, _T.TXLOG_PAGE, {"page": page, "records": chunk,
                                          "page_crc": txlog_page_crc(field_bytes)}, now)

    # -- lifecycle -----------------------------------------------------------------------------

    def _req_lc_challenge_request(self, seq: int, f: dict[str, Any], now: float) -> None:
        op = f["operation"]
        if not isinstance(op, str):
            self._nak(seq, NakReason.malformed, now)  # an operation this firmware does not know
            return
        operation = LifecycleOp[op]
        nonce = secrets.token_bytes(16)
        self._challenge = _Challenge(operation, nonce, now + CHALLENGE_VALIDITY)
        self._answer(seq, _T.LC_CHALLENGE, {"operation": int(operation), "nonce": nonce,
                                            "counter": self.state.counter,
                                            "serial": self.scenario.device.serial}, now)

    def _lc_result(self, seq: int, op: int, status: LifecycleStatus, message: str, now: float) -> None:
        self._answer(seq, _T.LC_RESULT, {"operation": op, "status": int(status),
                                         "state": int(self.state.lifecycle), "counter": self.state.counter,
                                         "message": self._firmware_text(message, 255)}, now)

    def _req_lc_request(self, seq: int, f: dict[str, Any], now: float) -> None:
        op_value = f["operation"]
        op_number = int(LifecycleOp[op_value]) if isinstance(op_value, str) else int(op_value)
        challenge, self._challenge = self._challenge, None  # used up by any request (section 11)
        if challenge is None or now > challenge.expires or int(challenge.operation) != op_number:
            self._lc_result(seq, op_number, LifecycleStatus.no_challenge,
                            "no challenge outstanding for this operation", now)
            return
        if not hmac.compare_digest(bytes(f["nonce"]), challenge.nonce):
            self._lc_result(seq, op_number, LifecycleStatus.replay, "nonce is not the one issued", now)
            return
        counter = int(f["counter"])
        if counter <= self.state.counter:
            self._lc_result(seq, op_number, LifecycleStatus.replay,
                            f"counter {counter} not above the last accepted {self.state.counter}", now)
            return
        args = lifecycle_args(f["activation_code"], f["merchant_id"], f["reason"])
        if not verify_mac(self.scenario.lifecycle.key, bytes(f["mac"]), self.scenario.device.serial,
                          op_number, args, challenge.nonce, counter):
            self._lc_result(seq, op_number, LifecycleStatus.bad_auth, "MAC does not verify", now)
            return
        # authenticated: the counter is spent whatever follows, and stored before answering
        self.state.counter = counter
        op = challenge.operation
        problem = _argument_problem(op, f["activation_code"], f["merchant_id"], f["reason"])
        if problem:
            self.save(now)
            self._lc_result(seq, op_number, LifecycleStatus.bad_arguments, problem, now)
            return
        refusal = _state_refusal(op, self.state.lifecycle)
        if refusal:
            self.save(now)
            self._lc_result(seq, op_number, LifecycleStatus.refused_state, refusal, now)
            return
        s = self.state
        if op == LifecycleOp.activate:
            s.lifecycle, s.merchant_id, s.activated_at = LifecycleState.activated, f["merchant_id"], self.wall(now)
        elif op == LifecycleOp.bind:
            s.lifecycle, s.merchant_id = LifecycleState.bound, f["merchant_id"]
        elif op == LifecycleOp.revoke:
            s.lifecycle, s.merchant_id, s.activated_at = LifecycleState.revoked, "", 0
        else:  # unbind, factory_reset
            s.lifecycle, s.merchant_id, s.activated_at = LifecycleState.unactivated, "", 0
        self.save(now)
        self._lc_result(seq, op_number, LifecycleStatus.ok, "", now)


_ARGS_USED = {
    LifecycleOp.activate: ("activation_code", "merchant_id"),
    LifecycleOp.bind: ("merchant_id",),
    LifecycleOp.unbind: ("reason",),
    LifecycleOp.revoke: ("reason",),
    LifecycleOp.factory_reset: ("reason",),
}


def _argument_problem(op: LifecycleOp, activation_code: str, merchant_id: str, reason: str) -> str:
    """Why the arguments are not valid for ``op`` ("" when they are)."""
    given = {"activation_code": activation_code, "merchant_id": merchant_id, "reason": reason}
    used = _ARGS_USED[op]
    for name, value in given.items():
        if name in used and not value.strip():
            return f"{op.name} needs {name}"
        if name not in used and value:
            return f"{op.name} takes no {name}"
    if "merchant_id" in used and not (merchant_id.isascii() and merchant_id.isalnum() and len(merchant_id) <= 32):
        return "merchant_id must be 1-32 letters or digits"
    if "activation_code" in used and not (activation_code.isascii() and activation_code.isprintable()):
        return "activation_code must be printable ASCII"
    return ""


def _state_refusal(op: LifecycleOp, state: LifecycleState) -> str:
    """Why ``op`` is not allowed in ``state`` ("" when it is): the table of section 11."""
    if state == LifecycleState.locked:
        return "terminal locked by its tamper switch: only an authorised repair centre can unlock it"
    allowed = {
        LifecycleOp.activate: (LifecycleState.unactivated, LifecycleState.revoked),
        LifecycleOp.bind: (LifecycleState.activated,),
        LifecycleOp.unbind: (LifecycleState.activated, LifecycleState.bound),
        LifecycleOp.revoke: (LifecycleState.unactivated,),
        LifecycleOp.factory_reset: (LifecycleState.unactivated, LifecycleState.activated, LifecycleState.bound,
                                    LifecycleState.revoked),
    }[op]
    if state in allowed:
        return ""
    if op == LifecycleOp.revoke:
        return "unbind first"
    if op == LifecycleOp.activate:
        return f"already {state.name}; unbind first"
    return f"not allowed when {state.name}"
