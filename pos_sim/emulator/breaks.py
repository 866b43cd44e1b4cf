"""Non-conforming firmware on purpose: each break makes the emulator violate one clause of the
spec's conformance checklist (docs/protocol.md section 15), and only that one.

A firmware engineer's ``pos-sim conformance`` must say which clause a terminal breaks; these
breaks are how that is tested: ``emu://healthy?break=bad-page-crc`` (or ``pos-sim emulate
--break bad-page-crc``) serves a terminal that gets exactly clause P2 wrong, and the test
suite checks that exactly P2 fails.  Each break is a small override of the reference firmware
(:class:`~pos_sim.emulator.engine.TerminalEngine`), so the conforming code path stays untouched.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, NamedTuple

from pos_sim.emulator.engine import HOST_REQUESTS, TerminalEngine
from pos_sim.emulator.selftests import TestRun
from protocols.pos import MAX_PAYLOAD, Frame, MessageType, decode_message
from protocols.pos.codes import FaultCode, NakReason, Outcome
from protocols.pos.errors import ProtocolError


class Break(NamedTuple):
    """One way to be wrong: the clause it breaks and what the firmware does instead."""

    clause: str
    doc: str


#: every break, by name
BREAKS: dict[str, Break] = {
    "wrong-direction-malformed": Break("N2", "a terminal-to-host type sent as a request is NAKed malformed"),
    "malformed-before-too-large": Break("N5", "a payload too large and malformed is NAKed malformed"),
    "unknown-plan-accepted": Break("N6", "SELFTEST_START with an unknown plan runs the quick plan"),
    "no-duplicate-memory": Break("S1", "a repeated request is executed again"),
    "no-event-retransmit": Break("S3", "an unacknowledged event is never sent again"),
    "no-session-expiry": Break("S4", "the session never expires, however long the host is silent"),
    "hello-keeps-snapshot": Break("S5", "a new HELLO keeps the transaction-log snapshot"),
    "hello-accepts-version-0": Break("H1", "HELLO with protocol version 0 opens a session"),
    "ignore-negotiated-paging": Break("P1", "log pages are cut for 1024-byte payloads whatever was negotiated"),
    "bad-page-crc": Break("P2", "TXLOG_PAGE's page_crc is off by one bit"),
    "abort-reports-failed": Break("T4", "an aborted self-test reports outcome failed"),
    "no-counter-check": Break("L2", "LC_REQUEST's counter is not compared with the last accepted"),
    "reusable-challenge": Break("L3", "a challenge is not used up by an LC_REQUEST"),
}


def check_breaks(names: Iterable[str]) -> frozenset[str]:
    """The names, checked (``ValueError`` naming the known ones for an unknown name)."""
    out = frozenset(n.strip() for n in names if n.strip())
    unknown = sorted(out - set(BREAKS))
    if unknown:
        raise ValueError(f"unknown break {', '.join(unknown)} (known: {', '.join(BREAKS)})")
    return out


class BrokenEngine(TerminalEngine):
    """The reference firmware with the named breaks."""

    def __init__(self, *args: Any, breaks: Iterable[str] = (), **kwargs: Any) -> None:
        self.breaks = check_breaks(breaks)
        super().__init__(*args, **kwargs)

    @property
    def session_timeout(self) -> float:
        if "no-session-expiry" in self.breaks:
            return math.inf
        return super().session_timeout

    def next_deadline(self) -> float | None:
        deadline = super().next_deadline()
        return None if deadline is not None and math.isinf(deadline) else deadline

    def _on_request(self, frame: Frame, now: float) -> None:
        if "no-duplicate-memory" in self.breaks and frame.type != MessageType.HELLO:
            self._last_answer = None
        try:
            mtype = MessageType(frame.type)
        except ValueError:
            mtype = None
        if mtype is not None and mtype not in HOST_REQUESTS and "wrong-direction-malformed" in self.breaks:
            self.stats.requests += 1
            self._nak(frame.seq, NakReason.malformed, now)
            return
        if (mtype is not None and "malformed-before-too-large" in self.breaks
                and len(frame.payload) > self._max_payload and not _decodes(frame)):
            self.stats.requests += 1
            self._nak(frame.seq, NakReason.malformed, now)
            return
        super()._on_request(frame, now)

    def _req_hello(self, seq: int, f: dict[str, Any], now: float) -> None:
        if "hello-accepts-version-0" in self.breaks and int(f["protocol_version"]) == 0:
            f = {**f, "protocol_version": 1}
        if "hello-keeps-snapshot" in self.breaks:
            snapshot = self._txlog
            super()._req_hello(seq, f, now)
            self._txlog = snapshot
            return
        super()._req_hello(seq, f, now)

    def _req_selftest_start(self, seq: int, f: dict[str, Any], now: float) -> None:
        if "unknown-plan-accepted" in self.breaks and not isinstance(f["plan"], str):
            f = {**f, "plan": "quick"}
        super()._req_selftest_start(seq, f, now)

    def _retransmit_events(self, now: float) -> None:
        if "no-event-retransmit" in self.breaks:
            for ev in list(self._unacked.values()):
                ev.retransmits = max(ev.retransmits, 3)  # as if every retransmit had been spent
        super()._retransmit_events(now)

    def _paged(self, handler: Any, seq: int, f: dict[str, Any], now: float) -> None:
        if "ignore-negotiated-paging" not in self.breaks:
            handler(seq, f, now)
            return
        negotiated, self._max_payload = self._max_payload, MAX_PAYLOAD
        try:
            handler(seq, f, now)
        finally:
            self._max_payload = negotiated

    def _req_txlog_open(self, seq: int, f: dict[str, Any], now: float) -> None:
        self._paged(super()._req_txlog_open, seq, f, now)

    def _req_eventlog_read(self, seq: int, f: dict[str, Any], now: float) -> None:
        self._paged(super()._req_eventlog_read, seq, f, now)

    def _answer(self, seq: int, mtype: MessageType, fields: dict[str, Any], now: float) -> None:
        if "bad-page-crc" in self.breaks and mtype == MessageType.TXLOG_PAGE:
            fields = {**fields, "page_crc": int(fields["page_crc"]) ^ 1}
        super()._answer(seq, mtype, fields, now)

    def _result(self, run: TestRun, outcome: Outcome, code: FaultCode, duration_ms: int, note: str,
                now: float) -> None:
        if "abort-reports-failed" in self.breaks and outcome == Outcome.aborted:
            outcome = Outcome.failed
        super()._result(run, outcome, code, duration_ms, note, now)

    def _req_lc_request(self, seq: int, f: dict[str, Any], now: float) -> None:
        challenge = self._challenge
        if "no-counter-check" in self.breaks and int(f["counter"]) <= self.state.counter:
            f = {**f, "counter": self.state.counter + 1}
        super()._req_lc_request(seq, f, now)
        if "reusable-challenge" in self.breaks and challenge is not None:
            self._challenge = challenge


def _decodes(frame: Frame) -> bool:
    try:
        decode_message(frame)
    except ProtocolError:
        return False
    return True
