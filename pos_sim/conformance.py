"""The host-side conformance suite: one check per clause of docs/protocol.md section 15.

For a firmware engineer implementing the terminal side of the protocol: ``pos-sim conformance
PORT`` sends what each clause is about (including what a conforming host never sends: unknown
types, payloads too large, duplicates on purpose, silence) over a :class:`drivers.raw.RawLink`
and says, clause by clause, whether the terminal answered as the spec says.

The clauses are :data:`CLAUSES`, in the spec's order and with its identifiers; a test holds the
two together.  Clauses marked ``lifecycle`` send ``LC_REQUEST`` frames: they are run only when
the caller allows it (``--allow-lifecycle``).  Even then no check changes the terminal's
lifecycle state: every request is one the terminal must refuse (a replay, a stale challenge, a
bad MAC, bad arguments, an operation the state forbids); the last two spend a counter value,
as section 11 says they must, and need the terminal's key.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from drivers.errors import ProtocolViolation, ResponseTimeout
from drivers.raw import EVENT, RETRANSMIT, RawLink
from protocols.pos import timing
from protocols.pos.auth import lifecycle_args, lifecycle_mac
from protocols.pos.codes import Component, FaultCode, LifecycleOp
from protocols.pos.errors import ProtocolError
from protocols.pos.faults import outcome_for
from protocols.pos.framing import MAX_PAYLOAD, SYNC, Frame, encode_frame
from protocols.pos.messages import Message, MessageType, decode_message, page_capacity

T = MessageType
#: what each check does when it cannot tell (the terminal stopped answering)
PASS, FAIL, SKIPPED, ERROR = "pass", "fail", "skipped", "error"
#: a type number outside the catalogue (types are a u8; the catalogue leaves 0x7E free)
UNKNOWN_TYPE = 0x7E
#: a number outside the Component, SelfTestPlan and LifecycleOp tables
UNKNOWN_VALUE = 0x7E
EMPTY_PAGE_CRC = zlib.crc32(b"\x00")


@dataclass(frozen=True)
class Clause:
    """One line of the spec's conformance checklist."""

    id: str
    title: str
    section: str
    lifecycle: bool = False


#: section 15 of docs/protocol.md, one to one
CLAUSES: tuple[Clause, ...] = (
    Clause("F1", "framing", "2"),
    Clause("F2", "garbage", "3"),
    Clause("F3", "too large", "3, 4"),
    Clause("N1", "unknown type", "4"),
    Clause("N2", "wrong direction", "4"),
    Clause("N3", "malformed", "4"),
    Clause("N4", "no session", "4, 6"),
    Clause("N5", "precedence", "4"),
    Clause("N6", "unknown values", "4"),
    Clause("S1", "duplicate", "5"),
    Clause("S2", "sequence wrap", "5"),
    Clause("S3", "events", "5"),
    Clause("S4", "session expiry", "5, 6"),
    Clause("S5", "HELLO resets", "6"),
    Clause("H1", "negotiation", "6"),
    Clause("P1", "paging at 1024 and 128", "9, 10"),
    Clause("P2", "page CRCs and digest", "10"),
    Clause("T1", "self-test start", "8"),
    Clause("T2", "progress", "5, 8"),
    Clause("T3", "result", "8"),
    Clause("T4", "abort", "4, 8"),
    Clause("L1", "challenge", "11"),
    Clause("L2", "replay", "11", lifecycle=True),
    Clause("L3", "stale challenge", "11", lifecycle=True),
    Clause("L4", "wrong operation", "11", lifecycle=True),
    Clause("L5", "bad MAC", "11", lifecycle=True),
    Clause("L6", "arguments and state", "11", lifecycle=True),
)
BY_ID = {c.id: c for c in CLAUSES}


@dataclass
class CheckResult:
    """The verdict on one clause."""

    clause: Clause
    status: str
    detail: str
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (``pos-sim conformance --json``)."""
        return {"clause": self.clause.id, "title": self.clause.title, "section": self.clause.section,
                "lifecycle": self.clause.lifecycle, "status": self.status, "detail": self.detail,
                "seconds": round(self.seconds, 3)}


class Nonconforming(Exception):
    """The terminal's answer differs from the clause's."""


class NoAnswer(Exception):
    """The terminal did not answer at all: the check cannot tell."""


@dataclass
class Context:
    """What the checks share: the link, what HELLO and INFO said, the key if any."""

    link: RawLink
    key: bytes | None = None
    serial: str = ""
    lifecycle: str = ""
    fitted: list[Component] = field(default_factory=list)
    max_payload: int = 1024

    # -- exchanges ---------------------------------------------------------------------------------

    def ask(self, msg_type: T | int, body: bytes | dict[str, Any] | None = None, *, seq: int | None = None,
            flags: int = 0, what: str = "") -> Frame:
        """A request and its answer frame (NoAnswer when none came)."""
        frame = self.link.request(msg_type, body, seq=seq, flags=flags)
        if frame is None:
            try:
                name = T(msg_type).name
            except ValueError:
                name = f"type 0x{int(msg_type):02X}"
            raise NoAnswer(f"no answer to {what or name} within {self.link.answer_wait:.2f} s")
        return frame

    def message(self, frame: Frame) -> Message:
        """Decode an answer (Nonconforming when it does not decode)."""
        try:
            return decode_message(frame)
        except ProtocolError as exc:
            raise Nonconforming(f"answer type 0x{frame.type:02X} does not decode: {exc}") from None

    def expect(self, frame: Frame, msg_type: T, what: str) -> Message:
        """The answer decoded, which must be of ``msg_type``."""
        msg = self.message(frame)
        if msg.type != msg_type:
            got = f"NAK {msg.fields['reason']}" if msg.type == T.NAK else msg.type.name
            raise Nonconforming(f"{what}: answered {got}, expected {msg_type.name}")
        return msg

    def expect_nak(self, frame: Frame, reason: str, what: str) -> None:
        """The answer must be NAK ``reason``."""
        msg = self.message(frame)
        if msg.type != T.NAK:
            raise Nonconforming(f"{what}: answered {msg.type.name}, expected NAK {reason}")
        if msg.fields["reason"] != reason:
            raise Nonconforming(f"{what}: answered NAK {msg.fields['reason']}, expected NAK {reason}")

    def hello(self, max_payload: int = 1024) -> Message:
        """Open a session with ``max_payload``; the link pages by what the terminal answered."""
        self.link.max_payload = MAX_PAYLOAD
        msg = self.expect(self.ask(T.HELLO, {"protocol_version": 1, "max_payload": max_payload,
                                             "host": "pos-sim conformance"}), T.HELLO_REPLY, "HELLO")
        self.max_payload = int(msg.fields["max_payload"])
        self.link.max_payload = self.max_payload
        return msg

    def wait_result(self, component: Component, seconds: float) -> Message | None:
        """The next SELFTEST_RESULT event of ``component`` within ``seconds``."""
        def match(f: Frame) -> bool:
            if not f.flags & EVENT or f.flags & RETRANSMIT or f.type != T.SELFTEST_RESULT:
                return False
            return bool(self.message(f).fields["component"] == component.name)
        frame = self.link.wait_for(match, seconds)
        return self.message(frame) if frame is not None else None

    @property
    def test_wait(self) -> float:
        """How long a quick self-test may take before its result, generously (T_lost x 10)."""
        return 10 * timing.selftest_lost_after(self.link.baud, self.max_payload)


Check = Callable[[Context], str]
CHECKS: dict[str, Check] = {}


def check(clause_id: str) -> Callable[[Check], Check]:
    """Register the check of a clause."""
    def register(fn: Check) -> Check:
        CHECKS[clause_id] = fn
        return fn
    return register


# -- framing ---------------------------------------------------------------------------------------


#: the deframer counters that mean a damaged or foreign frame
_DAMAGE = ("bad_crc", "oversize", "bad_version", "partial_dropped", "bytes_dropped")


@check("F1")
def _framing(ctx: Context) -> str:
    before = ctx.link.deframer.stats.as_dict()
    count = len(ctx.link.received)
    ctx.hello()
    for component in ctx.fitted:
        ctx.expect(ctx.ask(T.STATUS_REQUEST, {"component": component.name}), T.STATUS_REPLY,
                   f"STATUS_REQUEST {component.name}")
    ctx.expect(ctx.ask(T.INFO_REQUEST), T.INFO_REPLY, "INFO_REQUEST")
    after = ctx.link.deframer.stats.as_dict()
    damaged = {k: after[k] - before[k] for k in _DAMAGE if after[k] != before[k]}
    if damaged:
        raise Nonconforming(f"the terminal's frames did not all deframe cleanly: {damaged}")
    frames = [r.frame for r in ctx.link.received[count:]]
    for f in frames:
        if f.version != 1:
            raise Nonconforming(f"a frame with version {f.version}")
        if len(f.payload) > ctx.max_payload:
            raise Nonconforming(f"a {len(f.payload)}-byte payload above the {ctx.max_payload} negotiated")
    return f"{len(frames)} frames, sync, version, CRC and length correct"


@check("F2")
def _garbage(ctx: Context) -> str:
    ctx.hello()
    link = ctx.link
    # noise, a false sync with an impossible length, a frame with a bad CRC, then a PING
    bad_crc = bytearray(encode_frame(int(T.PING), b"", link.next_seq()))
    bad_crc[-1] ^= 0xFF
    link.write(b"\x00\xff\x13garbage" + SYNC + b"\x01\x00\x00\x01\x10\xff\xff" + bytes(bad_crc))
    ctx.expect(ctx.ask(T.PING), T.PONG, "PING after garbage, a false sync and a bad CRC")
    # a frame cut short: the terminal must drop it after the inter-byte timeout
    link.write(encode_frame(int(T.INFO_REQUEST), b"", link.next_seq())[:6])
    link.listen(timing.inter_byte_timeout(link.baud) * 2 + 0.05)
    ctx.expect(ctx.ask(T.PING), T.PONG, "PING after a frame cut short")
    return "answered PING after noise, a false sync, a bad CRC and a frame cut short"


@check("F3")
def _too_large(ctx: Context) -> str:
    ctx.hello(max_payload=128)
    if ctx.max_payload >= MAX_PAYLOAD:
        raise Nonconforming("HELLO asked for 128 and the terminal kept 1024")
    # a well-formed request over the limit (a HELLO with a long host name), so that only its size is wrong
    host = "x" * (ctx.max_payload - 3)
    ctx.expect_nak(ctx.ask(T.HELLO, {"protocol_version": 1, "max_payload": 128, "host": host}), "too_large",
                   f"a {len(host) + 4}-byte HELLO")
    return f"a {len(host) + 4}-byte HELLO over the negotiated {ctx.max_payload} answered NAK too_large"


# -- refusals --------------------------------------------------------------------------------------


@check("N1")
def _unknown_type(ctx: Context) -> str:
    ctx.hello()
    ctx.expect_nak(ctx.ask(UNKNOWN_TYPE, b""), "unknown_type", f"type 0x{UNKNOWN_TYPE:02X}")
    return f"type 0x{UNKNOWN_TYPE:02X} answered NAK unknown_type"


@check("N2")
def _wrong_direction(ctx: Context) -> str:
    ctx.hello()
    for mtype in (T.PONG, T.INFO_REPLY):
        ctx.expect_nak(ctx.ask(mtype, b""), "not_permitted", f"{mtype.name} sent as a request")
    return "PONG and INFO_REPLY sent as requests answered NAK not_permitted"


@check("N3")
def _malformed(ctx: Context) -> str:
    ctx.hello()
    ctx.expect_nak(ctx.ask(T.STATUS_REQUEST, b""), "malformed", "an empty STATUS_REQUEST")
    ctx.expect_nak(ctx.ask(T.EVENTLOG_READ, b"\x00\x00\x00"), "malformed", "an EVENTLOG_READ one byte long")
    return "a short and a long payload answered NAK malformed"


@check("N4")
def _no_session(ctx: Context) -> str:
    # run after S4 has let the session expire: the terminal has no session now
    ctx.expect(ctx.ask(T.PING), T.PONG, "PING without a session")
    if ctx.message(ctx.ask(T.STATUS_REQUEST, {"component": ctx.fitted[0].name})).type != T.NAK:
        ctx.hello()
        raise _Skip("the session did not expire (S4), so there was no state without a session to check")
    for mtype, body in ((T.INFO_REQUEST, None), (T.EVENTLOG_READ, {"page": 0}), (T.TXLOG_OPEN, None)):
        ctx.expect_nak(ctx.ask(mtype, body), "not_permitted", f"{mtype.name} without a session")
    ctx.hello()
    return "without a session PING answered, INFO_REQUEST, EVENTLOG_READ and TXLOG_OPEN NAK not_permitted"


@check("N5")
def _precedence(ctx: Context) -> str:
    ctx.hello(max_payload=128)
    big = bytes(ctx.max_payload + 1)
    ctx.expect_nak(ctx.ask(UNKNOWN_TYPE, big), "unknown_type", "an unknown type with a payload too large")
    ctx.expect_nak(ctx.ask(T.STATUS_REQUEST, big), "too_large", "a STATUS_REQUEST too large and malformed")
    ctx.expect_nak(ctx.ask(T.SELFTEST_START, bytes([UNKNOWN_VALUE, UNKNOWN_VALUE, 0])), "not_permitted",
                   "SELFTEST_START of an unknown component with an unknown plan")
    return "unknown_type before too_large before malformed; not_permitted (component) before malformed (plan)"


@check("N6")
def _unknown_values(ctx: Context) -> str:
    ctx.hello()
    ctx.expect_nak(ctx.ask(T.STATUS_REQUEST, bytes([UNKNOWN_VALUE])), "not_permitted",
                   f"STATUS_REQUEST of component 0x{UNKNOWN_VALUE:02X}")
    component = ctx.fitted[0]
    ctx.expect_nak(ctx.ask(T.SELFTEST_START, bytes([int(component), UNKNOWN_VALUE, 0])), "malformed",
                   f"SELFTEST_START with plan 0x{UNKNOWN_VALUE:02X}")
    ctx.expect_nak(ctx.ask(T.LC_CHALLENGE_REQUEST, bytes([UNKNOWN_VALUE])), "malformed",
                   f"LC_CHALLENGE_REQUEST of operation 0x{UNKNOWN_VALUE:02X}")
    return "unknown component not_permitted, unknown plan and operation malformed"


# -- sequence numbers and events ---------------------------------------------------------------------


def _held_component(ctx: Context) -> tuple[Component, dict[str, Any]]:
    """A test that stays running until the host acts: the screen's, full plan, waiting at its
    confirm prompt (nothing is printed or spent); else the network's full test."""
    component = Component.screen if Component.screen in ctx.fitted else (
        Component.network if Component.network in ctx.fitted else ctx.fitted[0])
    return component, {"component": component.name, "plan": "full", "interactive": True}


def _quick_component(ctx: Context) -> Component:
    """A fitted component whose quick test needs nobody and is short (security, system, power...)."""
    for c in (Component.security, Component.system, Component.power):
        if c in ctx.fitted:
            return c
    return ctx.fitted[0]


def _results_of(ctx: Context, component: Component, since: int) -> int:
    """SELFTEST_RESULT events (first sends only) of ``component`` among the frames after ``since``."""
    count = 0
    for r in ctx.link.received[since:]:
        f = r.frame
        if f.flags & EVENT and not f.flags & RETRANSMIT and f.type == T.SELFTEST_RESULT:
            count += ctx.message(f).fields["component"] == component.name
    return count


@check("S1")
def _duplicate(ctx: Context) -> str:
    ctx.hello()
    link = ctx.link
    # a query repeated: the same answer, flagged RETRANSMIT
    seq = link.next_seq()
    first = ctx.ask(T.INFO_REQUEST, seq=seq)
    ctx.expect(first, T.INFO_REPLY, "INFO_REQUEST")
    again = ctx.ask(T.INFO_REQUEST, seq=seq, flags=RETRANSMIT, what="the repeated INFO_REQUEST")
    if not again.flags & RETRANSMIT or again.type != first.type:
        raise Nonconforming("a repeated INFO_REQUEST was not answered from memory with the RETRANSMIT flag")
    # a command repeated: the remembered ACK, and the test runs once
    component = _quick_component(ctx)
    start = {"component": component.name, "plan": "quick", "interactive": False}
    mark = len(link.received)
    seq = link.next_seq()
    ctx.expect(ctx.ask(T.SELFTEST_START, start, seq=seq), T.ACK, "SELFTEST_START")
    dup = ctx.ask(T.SELFTEST_START, start, seq=seq, flags=RETRANSMIT, what="the repeated SELFTEST_START")
    msg = ctx.message(dup)
    if msg.type != T.ACK or not dup.flags & RETRANSMIT:
        got = f"NAK {msg.fields['reason']}" if msg.type == T.NAK else msg.type.name
        raise Nonconforming(f"a repeated SELFTEST_START was answered {got}, not the remembered ACK (RETRANSMIT)")
    runs = 1
    # a NAKed request is not remembered: busy while the test runs, executed when repeated later
    busy_seq = link.next_seq()
    busy = ctx.message(ctx.ask(T.SELFTEST_START, start, seq=busy_seq))
    if busy.type == T.ACK:
        runs += 1  # the test had already ended: this one is a new run
    elif busy.fields.get("reason") != "busy":
        raise Nonconforming(f"a second SELFTEST_START while testing got NAK {busy.fields['reason']}, expected busy")
    while _results_of(ctx, component, mark) < runs:
        if link.wait_for(lambda f: bool(f.flags & EVENT) and f.type == T.SELFTEST_RESULT, ctx.test_wait) is None:
            raise NoAnswer(f"no SELFTEST_RESULT for {component.name}")
    noted = "the busy part not tried (the test ended at once)"
    if busy.type == T.NAK:
        rerun = ctx.message(ctx.ask(T.SELFTEST_START, start, seq=busy_seq, flags=RETRANSMIT))
        if rerun.type != T.ACK:
            raise Nonconforming("a request NAKed busy was refused again from memory instead of being executed")
        runs += 1
        noted = "a NAKed request not remembered"
        while _results_of(ctx, component, mark) < runs:
            if link.wait_for(lambda f: bool(f.flags & EVENT) and f.type == T.SELFTEST_RESULT,
                             ctx.test_wait) is None:
                raise NoAnswer(f"no SELFTEST_RESULT for {component.name}")
    link.listen(link.answer_wait)
    if _results_of(ctx, component, mark) != runs:
        raise Nonconforming(f"{_results_of(ctx, component, mark)} {component.name} results for {runs} runs: "
                            "a repeated SELFTEST_START ran the test again")
    return f"repeats answered from memory (RETRANSMIT), a repeated start run once, {noted}"


@check("S2")
def _wrap(ctx: Context) -> str:
    ctx.hello()
    ctx.link.set_next_seq(0xFFFE)
    seqs = []
    for _ in range(4):
        seq = ctx.link.next_seq()
        ctx.expect(ctx.ask(T.STATUS_REQUEST, {"component": ctx.fitted[0].name}, seq=seq), T.STATUS_REPLY,
                   f"STATUS_REQUEST seq {seq}")
        seqs.append(seq)
    return "requests numbered " + ", ".join(str(s) for s in seqs) + " answered"


@check("S3")
def _events(ctx: Context) -> str:
    ctx.hello()
    link = ctx.link
    component = _quick_component(ctx)
    link.ack_events = False
    mark = len(link.received)
    try:
        ctx.expect(ctx.ask(T.SELFTEST_START, {"component": component.name, "plan": "quick", "interactive": False}),
                   T.ACK, "SELFTEST_START")
        first = link.wait_for(lambda f: bool(f.flags & EVENT), link.answer_wait)
        if first is None:
            raise NoAnswer("no event frame after SELFTEST_START")
        wait = timing.response_timeout(link.baud, ctx.max_payload) + 2 * link.answer_wait
        again = link.wait_for(lambda f: bool(f.flags & EVENT) and f.seq == first.seq, wait)
        if again is None:
            raise Nonconforming(f"event seq {first.seq} left unacknowledged was not sent again within {wait:.2f} s")
        if not again.flags & RETRANSMIT or again.payload != first.payload:
            raise Nonconforming(f"event seq {first.seq} was sent again without RETRANSMIT or with other contents")
        link.ack(first.seq)
        seen = {first.seq}
        # acknowledge everything from now on, and watch that the acknowledged event stays quiet
        link.ack_events = True
        got = link.listen(timing.response_timeout(link.baud, ctx.max_payload) + link.answer_wait)
        for r in got:
            seen.add(r.frame.seq)
        if any(r.frame.seq == first.seq and r.frame.flags & EVENT for r in got):
            raise Nonconforming(f"event seq {first.seq} was sent again after its ACK")
    finally:
        link.ack_events = True
    while _results_of(ctx, component, mark) < 1:
        if link.wait_for(lambda f: bool(f.flags & EVENT) and f.type == T.SELFTEST_RESULT, ctx.test_wait) is None:
            raise NoAnswer(f"no SELFTEST_RESULT for {component.name}")
    return f"an unacknowledged event came again with RETRANSMIT, and stopped after its ACK ({len(seen)} events)"


@check("S4")
def _expiry(ctx: Context) -> str:
    ctx.hello()
    link = ctx.link
    wait = timing.session_timeout(link.baud, ctx.max_payload)
    link.listen(wait + link.answer_wait)
    ctx.expect_nak(ctx.ask(T.INFO_REQUEST), "not_permitted", f"INFO_REQUEST after {wait:.0f} s of silence")
    return f"after {wait:.1f} s of silence INFO_REQUEST answered NAK not_permitted"


@check("S5")
def _hello_resets(ctx: Context) -> str:
    ctx.hello()
    ctx.expect(ctx.ask(T.TXLOG_OPEN), T.TXLOG_INFO, "TXLOG_OPEN")
    seq = ctx.link.next_seq()
    ctx.expect(ctx.ask(T.INFO_REQUEST, seq=seq), T.INFO_REPLY, "INFO_REQUEST")
    ctx.hello()
    ctx.expect_nak(ctx.ask(T.TXLOG_READ, {"page": 0}), "not_permitted", "TXLOG_READ after a new HELLO")
    again = ctx.ask(T.INFO_REQUEST, seq=seq, flags=RETRANSMIT, what="INFO_REQUEST repeated across HELLO")
    if again.flags & RETRANSMIT:
        raise Nonconforming("a request repeated after a new HELLO was answered from the old session's memory")
    ctx.expect(again, T.INFO_REPLY, "INFO_REQUEST repeated across HELLO")
    return "a new HELLO dropped the transaction-log snapshot and the duplicate memory"


@check("H1")
def _negotiation(ctx: Context) -> str:
    ctx.expect_nak(ctx.ask(T.HELLO, {"protocol_version": 0, "max_payload": 1024, "host": "conformance"}),
                   "unsupported_version", "HELLO version 0")
    ctx.expect_nak(ctx.ask(T.HELLO, {"protocol_version": 1, "max_payload": 100, "host": "conformance"}),
                   "malformed", "HELLO with max_payload 100")
    reply = ctx.expect(ctx.ask(T.HELLO, {"protocol_version": 9, "max_payload": 200, "host": "conformance"}),
                       T.HELLO_REPLY, "HELLO version 9, max_payload 200")
    if reply.fields["protocol_version"] != 1 or not 128 <= reply.fields["max_payload"] <= 200:
        raise Nonconforming(f"HELLO_REPLY said version {reply.fields['protocol_version']}, max_payload "
                            f"{reply.fields['max_payload']} to a host asking 9 and 200")
    ctx.max_payload = ctx.link.max_payload = int(reply.fields["max_payload"])
    bitmap = int(reply.fields["components"])
    for c in Component:
        frame = ctx.ask(T.STATUS_REQUEST, {"component": c.name})
        msg = ctx.message(frame)
        fitted = bool(bitmap >> int(c) & 1)
        if fitted and msg.type != T.STATUS_REPLY:
            raise Nonconforming(f"{c.name} is in HELLO_REPLY's components but STATUS_REQUEST got {msg.type.name}")
        if not fitted and not (msg.type == T.NAK and msg.fields["reason"] == "not_permitted"):
            raise Nonconforming(f"{c.name} is not in HELLO_REPLY's components but STATUS_REQUEST got {msg.type.name}")
    ctx.hello()
    return f"version and payload negotiated down, 0 and 100 refused, {bin(bitmap).count('1')} components as fitted"


# -- logs --------------------------------------------------------------------------------------------


@dataclass
class _Export:
    records: int
    pages: int
    per_page: int
    digest: bytes
    fields: list[bytes]
    crcs: list[int]
    empty_crc: int


def _read_txlog(ctx: Context) -> _Export:
    info = ctx.expect(ctx.ask(T.TXLOG_OPEN), T.TXLOG_INFO, "TXLOG_OPEN").fields
    fields, crcs = [], []
    for page in range(int(info["pages"])):
        frame = ctx.ask(T.TXLOG_READ, {"page": page})
        msg = ctx.expect(frame, T.TXLOG_PAGE, f"TXLOG_READ {page}")
        fields.append(frame.payload[2:-4])  # page u16 ... page_crc u32: the records field
        crcs.append(int(msg.fields["page_crc"]))
    past = ctx.ask(T.TXLOG_READ, {"page": int(info["pages"])})
    empty = ctx.expect(past, T.TXLOG_PAGE, "TXLOG_READ past the end")
    if empty.fields["records"]:
        raise Nonconforming("a page past the end was not empty")
    return _Export(int(info["records"]), int(info["pages"]), int(info["records_per_page"]), bytes(info["sha256"]),
                   fields, crcs, int(empty.fields["page_crc"]))


def _read_eventlog(ctx: Context) -> list[int]:
    counts = []
    first = ctx.expect(ctx.ask(T.EVENTLOG_READ, {"page": 0}), T.EVENTLOG_PAGE, "EVENTLOG_READ 0")
    pages = int(first.fields["pages"])
    counts.append(len(first.fields["entries"]))
    for page in range(1, pages):
        msg = ctx.expect(ctx.ask(T.EVENTLOG_READ, {"page": page}), T.EVENTLOG_PAGE, f"EVENTLOG_READ {page}")
        counts.append(len(msg.fields["entries"]))
    past = ctx.expect(ctx.ask(T.EVENTLOG_READ, {"page": pages}), T.EVENTLOG_PAGE, "EVENTLOG_READ past the end")
    if past.fields["entries"]:
        raise Nonconforming("an event-log page past the end was not empty")
    return counts


@check("P1")
def _paging(ctx: Context) -> str:
    said = []
    for asked in (1024, 128):
        ctx.hello(max_payload=asked)
        n_tx = page_capacity(T.TXLOG_PAGE, ctx.max_payload)
        n_ev = page_capacity(T.EVENTLOG_PAGE, ctx.max_payload)
        export = _read_txlog(ctx)
        if export.per_page != n_tx:
            raise Nonconforming(f"records_per_page {export.per_page} at {ctx.max_payload}-byte payloads, "
                                f"the formula gives {n_tx}")
        sizes = [f[0] for f in export.fields]
        want = [n_tx] * (export.records // n_tx) + ([export.records % n_tx] if export.records % n_tx else [])
        if sizes != want or export.pages != len(want):
            raise Nonconforming(f"transaction pages of {sizes} records for {export.records} at {n_tx} a page")
        counts = _read_eventlog(ctx)
        if any(c != n_ev for c in counts[:-1]) or (counts and counts[-1] > n_ev):
            raise Nonconforming(f"event-log pages of {counts} entries at {n_ev} a page")
        said.append(f"{ctx.max_payload}: {export.pages} tx pages of {n_tx}, {len(counts)} event pages of {n_ev}")
    ctx.hello()
    return "; ".join(said)


@check("P2")
def _crcs(ctx: Context) -> str:
    ctx.hello()
    export = _read_txlog(ctx)
    for page, (data, crc) in enumerate(zip(export.fields, export.crcs, strict=True)):
        if zlib.crc32(data) != crc:
            raise Nonconforming(f"page {page}'s page_crc 0x{crc:08X} is not the CRC-32 of its records "
                                f"(0x{zlib.crc32(data):08X})")
    digest = hashlib.sha256(b"".join(export.fields)).digest()
    if digest != export.digest:
        raise Nonconforming("the SHA-256 of the pages' records fields is not TXLOG_INFO's")
    if export.empty_crc != EMPTY_PAGE_CRC:
        raise Nonconforming(f"an empty page's CRC is 0x{export.empty_crc:08X}, not 0x{EMPTY_PAGE_CRC:08X}")
    return f"{export.pages} page CRCs and the digest of {export.records} records verified"


# -- self-tests -------------------------------------------------------------------------------------


@check("T1")
def _start(ctx: Context) -> str:
    ctx.hello()
    component, start = _held_component(ctx)
    ctx.expect(ctx.ask(T.SELFTEST_START, start), T.ACK, "SELFTEST_START")
    ctx.expect_nak(ctx.ask(T.SELFTEST_START, start), "busy", "a second SELFTEST_START of the same component")
    ctx.expect(ctx.ask(T.SELFTEST_ABORT, {"component": component.name}), T.ACK, "SELFTEST_ABORT")
    absent = [c for c in Component if c not in ctx.fitted]
    if absent:
        ctx.expect_nak(ctx.ask(T.SELFTEST_START, {"component": absent[0].name, "plan": "quick",
                                                  "interactive": False}), "not_permitted",
                       f"SELFTEST_START of {absent[0].name}, not fitted")
    if ctx.wait_result(component, ctx.test_wait) is None:
        raise NoAnswer(f"no SELFTEST_RESULT for {component.name}")
    return f"{component.name} ACKed, a second start busy" + (f", {absent[0].name} not_permitted" if absent else "")


def _run(ctx: Context, component: Component) -> tuple[list[float], list[int], Message]:
    """A quick self-test: when its ACK and each progress report came, the steps, the result."""
    ctx.expect(ctx.ask(T.SELFTEST_START, {"component": component.name, "plan": "quick", "interactive": False}),
               T.ACK, f"SELFTEST_START {component.name}")
    times, steps = [time.monotonic()], []
    end = times[0] + ctx.test_wait
    while time.monotonic() < end:
        for r in ctx.link.listen(0.05):
            if not r.frame.flags & EVENT or r.frame.flags & RETRANSMIT:
                continue
            msg = ctx.message(r.frame)
            if msg.fields.get("component") != component.name:
                continue
            times.append(r.at)
            if msg.type == T.SELFTEST_PROGRESS:
                steps.append(int(msg.fields["step"]))
            elif msg.type == T.SELFTEST_RESULT:
                return times, steps, msg
    raise NoAnswer(f"no SELFTEST_RESULT for {component.name} within {ctx.test_wait:.0f} s")


@check("T2")
def _progress(ctx: Context) -> str:
    ctx.hello()
    component = Component.network if Component.network in ctx.fitted else _quick_component(ctx)
    times, steps, _ = _run(ctx, component)
    limit = timing.PROGRESS_INTERVAL + ctx.link.answer_wait
    gaps = [b - a for a, b in itertools.pairwise(times)]
    if gaps and max(gaps) > limit:
        raise Nonconforming(f"{max(gaps):.2f} s without progress from {component.name} (at most "
                            f"{timing.PROGRESS_INTERVAL:g} s, {limit:.2f} s with the line)")
    if not steps:
        raise Nonconforming(f"{component.name}'s test sent no SELFTEST_PROGRESS")
    if steps != sorted(steps) or steps[0] < 1:
        raise Nonconforming(f"progress steps {steps} do not go up from 1")
    return f"{len(steps)} progress reports from {component.name}, steps {sorted(set(steps))}"


@check("T3")
def _result(ctx: Context) -> str:
    ctx.hello()
    said = []
    for component in ctx.fitted:
        _, _, result = _run(ctx, component)
        f = result.fields
        outcome, code = f["outcome"], f["code"]
        if f["plan"] != "quick":
            raise Nonconforming(f"{component.name}'s result says plan {f['plan']} for a quick test")
        if outcome in ("passed", "warning", "failed") and isinstance(code, str):
            if outcome_for(FaultCode[code]).name != outcome:
                raise Nonconforming(f"{component.name}: code {code} with outcome {outcome}; the table gives "
                                    f"{outcome_for(FaultCode[code]).name}")
        elif outcome == "skipped":
            raise Nonconforming(f"{component.name}: a quick test needs nobody, but it was skipped")
        said.append(f"{component.name} {outcome}")
    return ", ".join(said)


@check("T4")
def _abort(ctx: Context) -> str:
    ctx.hello()
    component, start = _held_component(ctx)
    ctx.expect(ctx.ask(T.SELFTEST_START, start), T.ACK, f"SELFTEST_START {component.name}")
    ctx.expect(ctx.ask(T.SELFTEST_ABORT, {"component": component.name}), T.ACK, "SELFTEST_ABORT")
    result = ctx.wait_result(component, ctx.test_wait)
    if result is None:
        raise NoAnswer(f"no SELFTEST_RESULT after aborting {component.name}")
    if result.fields["outcome"] != "aborted":
        raise Nonconforming(f"an aborted test ended {result.fields['outcome']}")
    ctx.expect_nak(ctx.ask(T.SELFTEST_ABORT, {"component": component.name}), "not_permitted",
                   "SELFTEST_ABORT of a test not running")
    ctx.expect(ctx.ask(T.SELFTEST_ABORT, bytes([0xFF])), T.ACK, "SELFTEST_ABORT of 0xFF")
    return f"{component.name} aborted, a second abort not_permitted, 0xFF ACKed"


# -- lifecycle ---------------------------------------------------------------------------------------


def _challenge(ctx: Context, op: str) -> Message:
    return ctx.expect(ctx.ask(T.LC_CHALLENGE_REQUEST, {"operation": op}), T.LC_CHALLENGE,
                      f"LC_CHALLENGE_REQUEST {op}")


def _lc(ctx: Context, op: str, *, nonce: bytes, counter: int, mac: bytes | None = None, merchant_id: str = "",
        reason: str = "") -> str:
    """Send an LC_REQUEST; return its LC_RESULT status. ``mac`` None: signed with the key."""
    if mac is None:
        assert ctx.key is not None
        args = lifecycle_args(merchant_id=merchant_id, reason=reason)
        mac = lifecycle_mac(ctx.key, ctx.serial, int(LifecycleOp[op]), args, nonce, counter)
    msg = ctx.expect(ctx.ask(T.LC_REQUEST, {"operation": op, "counter": counter, "nonce": nonce,
                                            "activation_code": "", "merchant_id": merchant_id,
                                            "reason": reason, "mac": mac}), T.LC_RESULT, f"LC_REQUEST {op}")
    if msg.fields["state"] != ctx.lifecycle:
        raise Nonconforming(f"a refused {op} left the terminal {msg.fields['state']} (was {ctx.lifecycle})")
    return str(msg.fields["status"])


def _refused_op(ctx: Context) -> str:
    """An operation the terminal's state forbids (section 11's table), so nothing can change."""
    return "revoke" if ctx.lifecycle in ("activated", "bound") else "bind"


@check("L1")
def _challenges(ctx: Context) -> str:
    ctx.hello()
    a, b = _challenge(ctx, "unbind"), _challenge(ctx, "unbind")
    if a.fields["nonce"] == b.fields["nonce"]:
        raise Nonconforming("two challenges carried the same nonce")
    if a.fields["counter"] != b.fields["counter"]:
        raise Nonconforming("the last accepted counter changed between two challenges")
    if a.fields["serial"] != ctx.serial:
        raise Nonconforming(f"the challenge names serial {a.fields['serial']!r}, INFO_REPLY {ctx.serial!r}")
    return "fresh nonces, the same counter and the terminal's serial"


@check("L2")
def _replay(ctx: Context) -> str:
    ctx.hello()
    op = _refused_op(ctx)
    ch = _challenge(ctx, op)
    status = _lc(ctx, op, nonce=bytes(ch.fields["nonce"]), counter=int(ch.fields["counter"]), mac=bytes(32))
    if status != "replay":
        raise Nonconforming(f"a counter not above the last accepted got {status}, expected replay")
    ch = _challenge(ctx, op)
    other = bytes(b ^ 0xFF for b in bytes(ch.fields["nonce"]))
    status = _lc(ctx, op, nonce=other, counter=int(ch.fields["counter"]) + 1, mac=bytes(32))
    if status != "replay":
        raise Nonconforming(f"another nonce than the challenge's got {status}, expected replay")
    return "an old counter and a wrong nonce answered replay"


@check("L3")
def _stale(ctx: Context) -> str:
    ctx.hello()
    op = _refused_op(ctx)
    ch = _challenge(ctx, op)
    nonce, counter = bytes(ch.fields["nonce"]), int(ch.fields["counter"]) + 1
    _lc(ctx, op, nonce=nonce, counter=counter, mac=bytes(32))  # uses the challenge up (bad MAC)
    status = _lc(ctx, op, nonce=nonce, counter=counter, mac=bytes(32))
    if status != "no_challenge":
        raise Nonconforming(f"a request with a used-up challenge got {status}, expected no_challenge")
    return "a used-up challenge answered no_challenge"


@check("L4")
def _wrong_op(ctx: Context) -> str:
    ctx.hello()
    ch = _challenge(ctx, "unbind")
    status = _lc(ctx, _refused_op(ctx), nonce=bytes(ch.fields["nonce"]), counter=int(ch.fields["counter"]) + 1,
                 mac=bytes(32))
    if status != "no_challenge":
        raise Nonconforming(f"a request for another operation than the challenge's got {status}")
    return "a request for another operation answered no_challenge"


@check("L5")
def _bad_mac(ctx: Context) -> str:
    ctx.hello()
    op = _refused_op(ctx)
    ch = _challenge(ctx, op)
    status = _lc(ctx, op, nonce=bytes(ch.fields["nonce"]), counter=int(ch.fields["counter"]) + 1, mac=bytes(32))
    if status != "bad_auth":
        raise Nonconforming(f"a wrong MAC got {status}, expected bad_auth")
    after = _challenge(ctx, op)
    if after.fields["counter"] != ch.fields["counter"]:
        raise Nonconforming("a request with a wrong MAC spent the counter")
    return "a wrong MAC answered bad_auth and the counter was not spent"


@check("L6")
def _arguments(ctx: Context) -> str:
    if ctx.key is None:
        raise _Skip("needs the terminal's key (--keys FILE) to sign requests the terminal must refuse")
    ctx.hello()
    op = _refused_op(ctx)
    # revoke takes a reason only, bind a merchant id only: with both, one is an extra argument
    ch = _challenge(ctx, op)
    counter = int(ch.fields["counter"]) + 1
    status = _lc(ctx, op, nonce=bytes(ch.fields["nonce"]), counter=counter, merchant_id="M1", reason="extra")
    if status != "bad_arguments":
        raise Nonconforming(f"{op} with an argument it does not take got {status}, expected bad_arguments")
    ch = _challenge(ctx, op)
    if int(ch.fields["counter"]) != counter:
        raise Nonconforming("bad_arguments did not spend the counter")
    counter += 1
    status = _lc(ctx, op, nonce=bytes(ch.fields["nonce"]), counter=counter,
                 reason="conformance" if op == "revoke" else "", merchant_id="" if op == "revoke" else "M1")
    if status != "refused_state":
        raise Nonconforming(f"{op} when {ctx.lifecycle} got {status}, expected refused_state")
    if int(_challenge(ctx, op).fields["counter"]) != counter:
        raise Nonconforming("refused_state did not spend the counter")
    return f"an extra argument bad_arguments, {op} when {ctx.lifecycle} refused_state, both spent the counter"


class _Skip(Exception):
    """The check cannot run here (and says why)."""


# -- the run ------------------------------------------------------------------------------------------

#: the order checks run in: N4 needs the session S4 let expire, and re-opens one
ORDER = ("F1", "F2", "F3", "N1", "N2", "N3", "N5", "N6", "S1", "S2", "S3", "S5", "S4", "N4", "H1", "P1", "P2",
         "T1", "T2", "T3", "T4", "L1", "L2", "L3", "L4", "L5", "L6")


#: clauses that need another to run first (N4 needs the session S4 let expire)
NEEDS = {"N4": "S4"}


def run_suite(link: RawLink, *, allow_lifecycle: bool = False, keys: Callable[[str], bytes | None] | None = None,
              only: set[str] | None = None) -> Iterator[CheckResult]:
    """Run the checks in :data:`ORDER`, yielding each verdict as it is known.

    ``keys(serial)`` gives the terminal's key (None: none known). ``only``: run just these clauses.
    The first HELLO and INFO_REQUEST happen before any check: when they fail nothing can be
    checked, and :class:`~drivers.errors.ResponseTimeout` (no answer) or
    :class:`~drivers.errors.ProtocolViolation` (a wrong one) says why.
    """
    ctx = Context(link)
    try:
        hello = ctx.hello()
        info = ctx.expect(ctx.ask(T.INFO_REQUEST), T.INFO_REPLY, "INFO_REQUEST").fields
    except NoAnswer as exc:
        raise ResponseTimeout(f"{link.name}: {exc}: is the terminal on, and is this its port and line rate?") \
            from None
    except Nonconforming as exc:
        raise ProtocolViolation(f"{link.name}: could not open a session to check: {exc}") from None
    ctx.serial = str(info["serial"])
    ctx.lifecycle = str(info["lifecycle"])
    ctx.fitted = [c for c in Component if int(hello.fields["components"]) >> int(c) & 1]
    ctx.key = keys(ctx.serial) if keys is not None else None
    if only is not None:
        only = only | {NEEDS[c] for c in only if c in NEEDS}
    for cid in ORDER:
        clause = BY_ID[cid]
        if only is not None and cid not in only:
            continue
        if clause.lifecycle and not allow_lifecycle:
            yield CheckResult(clause, SKIPPED, "left out: sends lifecycle requests (--allow-lifecycle runs it)")
            continue
        started = time.monotonic()
        try:
            detail = CHECKS[cid](ctx)
            status = PASS
        except Nonconforming as exc:
            status, detail = FAIL, str(exc)
        except NoAnswer as exc:
            status, detail = ERROR, str(exc)
        except _Skip as exc:
            status, detail = SKIPPED, str(exc)
        yield CheckResult(clause, status, detail, time.monotonic() - started)
        if status in (FAIL, ERROR):
            _recover(ctx)


def _recover(ctx: Context) -> None:
    """After a failed check: let the line settle and open a fresh session for the next one."""
    ctx.link.listen(ctx.link.answer_wait)
    # if this fails too, the next check's HELLO says whether the terminal is still there
    with contextlib.suppress(Nonconforming, NoAnswer):
        ctx.expect(ctx.ask(T.SELFTEST_ABORT, bytes([0xFF])), T.ACK, "SELFTEST_ABORT 0xFF")
    ctx.link.listen(ctx.link.answer_wait)


def junit_xml(results: list[CheckResult], *, name: str) -> bytes:
    """The results as a JUnit XML report (one testcase per clause)."""
    import xml.etree.ElementTree as ET

    suite = ET.Element("testsuite", name="possim-conformance", tests=str(len(results)),
                       failures=str(sum(r.status == FAIL for r in results)),
                       errors=str(sum(r.status == ERROR for r in results)),
                       skipped=str(sum(r.status == SKIPPED for r in results)),
                       time=f"{sum(r.seconds for r in results):.3f}")
    ET.SubElement(ET.SubElement(suite, "properties"), "property", name="port", value=name)
    for r in results:
        case = ET.SubElement(suite, "testcase", classname=f"section {r.clause.section}",
                             name=f"{r.clause.id} {r.clause.title}", time=f"{r.seconds:.3f}")
        if r.status == FAIL:
            ET.SubElement(case, "failure", message=r.detail).text = r.detail
        elif r.status == ERROR:
            ET.SubElement(case, "error", message=r.detail).text = r.detail
        elif r.status == SKIPPED:
            ET.SubElement(case, "skipped", message=r.detail)
        else:
            ET.SubElement(case, "system-out").text = r.detail
    data: bytes = ET.tostring(suite, encoding="utf-8", xml_declaration=True)
    return data + b"\n"


__all__ = ["BY_ID", "CLAUSES", "CheckResult", "Clause", "RawLink", "junit_xml", "run_suite"]
