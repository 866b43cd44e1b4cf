"""The message catalogue: one construct declaration per message type.

Each :class:`MessageSpec` holds the number, the direction, what answers it, a description and
the payload's ``Struct``.  Field docs (``"name" / Int8ub * "doc"``) carry the unit and meaning;
the specification's tables are generated from these declarations (``protocols.pos.spec``), and the
fast decoders are compiled from them (``protocols.pos.compiler``).  Every payload ends with
``Terminated``: a version-1 receiver refuses trailing bytes.
"""

from __future__ import annotations

import binascii
import functools
from dataclasses import dataclass
from typing import Any, NamedTuple

from construct import (
    Bytes,
    Construct,
    ConstructError,
    Container,
    Enum,
    Flag,
    FormatField,
    GreedyBytes,
    Int8sb,
    Int8ub,
    Int16sb,
    Int16ub,
    Int32sb,
    Int32ub,
    ListContainer,
    PascalString,
    Prefixed,
    PrefixedArray,
    SizeofError,
    StringEncoded,
    Struct,
    Switch,
    Terminated,
    this,
)

from protocols.pos.codes import (
    BatteryStatus,
    Bearer,
    ChipSlotState,
    CodeEnum,
    Component,
    EntryMode,
    EventKind,
    FaultCode,
    KeyCode,
    LifecycleOp,
    LifecycleState,
    LifecycleStatus,
    Measurement,
    NakReason,
    Outcome,
    PanelState,
    PowerSource,
    Prompt,
    ReaderState,
    SelfTestPlan,
    Severity,
    TamperState,
    TrackCode,
    TxKind,
    TxResult,
)
from protocols.pos.compiler import Decoder, compile_decoder, prefixed_array_parts, unwrap
from protocols.pos.errors import EncodeError, MalformedPayload, UnknownMessageType
from protocols.pos.framing import Frame, encode_frame

# -- field types ---------------------------------------------------------------------------

str8 = PascalString(Int8ub, "utf8")
bytes8 = Prefixed(Int8ub, GreedyBytes)


#: the code table of each enumerated field (construct's ``Enum`` keeps only the names)
_CODE_TABLES: dict[int, type[CodeEnum]] = {}


def _coded(field: Construct, e: type[CodeEnum]) -> Construct:
    _CODE_TABLES[id(field)] = e
    return field


def enum8(e: type[CodeEnum]) -> Construct:
    """A one-byte enumerated field."""
    return _coded(Enum(Int8ub, e), e)


def enum16(e: type[CodeEnum]) -> Construct:
    """A two-byte enumerated field."""
    return _coded(Enum(Int16ub, e), e)


def message(*fields: Construct) -> Struct:
    """A payload declaration: the fields, then nothing (trailing bytes are refused)."""
    return Struct(*fields, Terminated)


# -- shared structures ---------------------------------------------------------------------

COMPONENT = "component" / enum8(Component) * "the component (Component)"

TX_RECORD = Struct(
    "txn_id" / Int32ub * "terminal's transaction number",
    "time" / Int32ub * "when, Unix time in seconds (UTC)",
    "kind" / enum8(TxKind) * "TxKind",
    "result" / enum8(TxResult) * "TxResult",
    "entry" / enum8(EntryMode) * "EntryMode",
    "amount" / Int32ub * "amount in minor units (fen for CNY)",
    "currency" / Int16ub * "ISO 4217 numeric currency code (156 = CNY)",
    "pan_bin" / Int32ub * "first six digits of the card number (0 for QR)",
    "pan_last4" / Int16ub * "last four digits of the card number (0 for QR)",
    "auth_code" / Bytes(6) * "host authorisation code, 6 ASCII characters",
)

STATUS_BY_COMPONENT: dict[str | int, Struct] = {
    "system": Struct(
        "free_memory_kb" / Int32ub * "free RAM, KiB",
        "total_memory_kb" / Int32ub * "RAM, KiB",
        "uptime_s" / Int32ub * "seconds since boot",
        "board_temp_c" / Int8sb * "board temperature, degrees Celsius",
        "firmware_update_state" / Int8ub * "LwM2M object 5 state: 0 idle, 1 downloading, 2 downloaded, 3 updating",
        "firmware_update_result" / Int8ub * "LwM2M object 5 result: 0 initial, 1 success, 5 integrity fail, 8 failed",
        "last_reset" / enum16(FaultCode) * "cause of the last restart (FaultCode; none for power-on)",
    ),
    "magstripe": Struct(
        "state" / enum8(ReaderState) * "magnetic head (ReaderState)",
        "track1" / enum8(TrackCode) * "last swipe, track 1 (TrackCode)",
        "track2" / enum8(TrackCode) * "last swipe, track 2 (TrackCode)",
        "track3" / enum8(TrackCode) * "last swipe, track 3 (TrackCode)",
        "swipes" / Int32ub * "swipes since manufacture",
        "failed_swipes" / Int32ub * "swipes with no track read",
    ),
    "chip": Struct(
        "slot" / enum8(ChipSlotState) * "ChipSlotState",
        "atr" / bytes8 * "answer-to-reset of the card in the slot (empty when none)",
        "insertions" / Int32ub * "insertions since manufacture",
    ),
    "contactless": Struct(
        "field" / enum8(ReaderState) * "RF field (ReaderState)",
        "cards_in_field" / Int8ub * "cards in the field now",
        "taps" / Int32ub * "taps since manufacture",
    ),
    "printer": Struct(
        "printer_status" / Int8ub * "ESC/POS DLE EOT 1 byte (bit 3 offline)",
        "offline_cause" / Int8ub * "ESC/POS DLE EOT 2 byte (bit 2 cover open, bit 5 paper end stop, bit 6 error)",
        "error_cause" / Int8ub * "ESC/POS DLE EOT 3 byte (bit 3 cutter, bit 5 unrecoverable, bit 6 auto-recoverable)",
        "paper_sensor" / Int8ub * "ESC/POS DLE EOT 4 byte (0x0C near end, 0x60 paper end)",
        "head_temp_c" / Int8sb * "print-head temperature, degrees Celsius",
        "lines_printed" / Int32ub * "dot lines printed since manufacture",
    ),
    "screen": Struct(
        "panel" / enum8(PanelState) * "PanelState",
        "width" / Int16ub * "pixels",
        "height" / Int16ub * "pixels",
        "touch" / Flag * "1 when the screen has a touch panel",
        "backlight_pct" / Int8ub * "backlight level, percent",
        "dead_pixels" / Int16ub * "pixels the panel reports dead",
    ),
    "keypad": Struct(
        "keys_total" / Int8ub * "keys on the keypad",
        "presses" / Int32ub * "key presses since manufacture",
        "stuck_keys" / PrefixedArray(Int8ub, Struct("key" / enum8(KeyCode) * "KeyCode"))
        * "keys reported pressed without being touched",
    ),
    "network": Struct(
        "bearer" / enum8(Bearer) * "Bearer (LwM2M object 4)",
        "signal_dbm" / Int16sb * "received signal strength, dBm",
        "link_quality" / Int8ub * "0-255 (LwM2M object 4)",
        "ipv4" / Bytes(4) * "IPv4 address, 0.0.0.0 when none",
        "apn" / str8 * "access point name (empty on Wi-Fi / Ethernet)",
        "cell_id" / Int32ub * "serving cell id (0 when not cellular)",
        "sim_present" / Flag * "1 when a SIM card is present",
        "host_reachable" / Flag * "1 when the last probe of the payment host answered",
        "latency_ms" / Int16ub * "last round trip to the payment host, ms (0xFFFF unknown)",
    ),
    "power": Struct(
        "source" / enum8(PowerSource) * "PowerSource (LwM2M object 3)",
        "voltage_mv" / Int16ub * "supply voltage, mV",
        "current_ma" / Int16sb * "current, mA (negative when discharging)",
        "battery_pct" / Int8ub * "battery level, percent",
        "battery_status" / enum8(BatteryStatus) * "BatteryStatus (LwM2M object 3)",
        "battery_temp_c" / Int8sb * "battery temperature, degrees Celsius",
    ),
    "scanner": Struct(
        "state" / enum8(ReaderState) * "scan engine (ReaderState)",
        "decodes" / Int32ub * "codes decoded since manufacture",
    ),
    "security": Struct(
        "tamper" / enum8(TamperState) * "TamperState",
        "tamper_sources" / Int8ub * "bits: 0 cover switch, 1 mesh, 2 shock (drop), 3 temperature",
        "keys_loaded" / Flag * "1 when payment keys are loaded",
        "tripped_at" / Int32ub * "Unix time of the last trip, 0 when never",
    ),
}


@dataclass(frozen=True)
class StatusField:
    """One field of a component's status block, as its declaration gives it.

    ``kind`` is ``int`` (a whole number; ``signed`` says whether it may be negative), ``bool``,
    ``str`` (UTF-8 text), ``bytes``, ``code`` (a name from ``codes``, a :class:`CodeEnum`) or
    ``list`` (an array of records).
    """

    name: str
    kind: str
    doc: str
    codes: type[CodeEnum] | None = None
    signed: bool = False


def _status_field(field: Construct) -> StatusField:
    inner = unwrap(field)
    doc = str(field.docs or "")
    codes = _CODE_TABLES.get(id(inner))
    if codes is not None:
        return StatusField(field.name, "code", doc, codes)
    if isinstance(inner, Flag.__class__):
        return StatusField(field.name, "bool", doc)
    if isinstance(inner, StringEncoded):
        return StatusField(field.name, "str", doc)
    if isinstance(inner, FormatField):
        return StatusField(field.name, "int", doc, signed=inner.fmtstr[-1].islower())
    if prefixed_array_parts(inner) is not None:
        return StatusField(field.name, "list", doc)
    return StatusField(field.name, "bytes", doc)


def block_fields(block: Struct) -> tuple[StatusField, ...]:
    """The fields of a status-block declaration, in wire order."""
    return tuple(_status_field(f) for f in block.subcons if f.name)


@functools.cache
def status_fields(component: str | int) -> tuple[StatusField, ...]:
    """The fields of ``component``'s status block (by name or number), in wire order."""
    return block_fields(STATUS_CASES[component if isinstance(component, str) else int(component)])


#: the Switch's cases: by name (what parsing yields) and by number, so that building with
#: ``component=5`` or ``Component.printer`` picks the block as ``"printer"`` does
STATUS_CASES: dict[str | int, Struct] = {
    **STATUS_BY_COMPONENT, **{int(Component[str(name)]): st for name, st in STATUS_BY_COMPONENT.items()}}


# -- the catalogue -------------------------------------------------------------------------

class MessageType(CodeEnum):
    """Message type numbers (the frame header's type byte)."""

    HELLO = 0x01, "open a session and negotiate"
    HELLO_REPLY = 0x02, "the terminal's side of the negotiation"
    PING = 0x03, "keep-alive"
    PONG = 0x04, "answer to PING"
    ACK = 0x06, "frame received and accepted"
    NAK = 0x15, "frame refused, with a reason"
    INFO_REQUEST = 0x10, "ask for the device identity"
    INFO_REPLY = 0x11, "device identity and lifecycle state"
    STATUS_REQUEST = 0x12, "ask for one component's status"
    STATUS_REPLY = 0x13, "one component's status snapshot"
    SELFTEST_START = 0x20, "start a component's self-test"
    SELFTEST_PROGRESS = 0x21, "self-test progress and prompts"
    SELFTEST_RESULT = 0x22, "self-test outcome with measurements"
    SELFTEST_ABORT = 0x23, "stop a running self-test"
    SELFTEST_CONFIRM = 0x24, "a person's answer to a confirm prompt"
    ERROR = 0x30, "a fault the terminal detected"
    EVENT = 0x31, "something happened at the terminal"
    EVENTLOG_READ = 0x40, "read one page of the event log"
    EVENTLOG_PAGE = 0x41, "one page of the event log"
    TXLOG_OPEN = 0x50, "start a transaction-log export"
    TXLOG_INFO = 0x51, "size and digest of the transaction log"
    TXLOG_READ = 0x52, "read one page of the transaction log"
    TXLOG_PAGE = 0x53, "one page of the transaction log"
    LC_CHALLENGE_REQUEST = 0x60, "ask for a lifecycle challenge"
    LC_CHALLENGE = 0x61, "nonce and counter for one lifecycle operation"
    LC_REQUEST = 0x62, "an authenticated lifecycle operation"
    LC_RESULT = 0x63, "outcome of a lifecycle operation"


HOST, TERMINAL, EITHER = "host → terminal", "terminal → host", "either way"

#: what a request needs of the terminal's session (docs/protocol.md section 6): ``NO_SESSION``
#: requests are answered before HELLO; ``ANY_SESSION`` ones in any session, so that
#: ``NAK not_permitted`` to them after a HELLO means the session is gone; the rest need one
NO_SESSION, ANY_SESSION, OWN_SESSION = "none", "any", "needed"
#: most entries of an event-log page, and most records of a transaction-log page
EVENTLOG_PAGE_MAX = 64
TXLOG_PAGE_MAX = 32


class CatalogueError(Exception):
    """A catalogue breaks the rules every declaration must keep (see :func:`validate_catalogue`)."""


@dataclass(frozen=True)
class AnswerRule:
    """What answers a message on the wire (docs/protocol.md section 4).

    ``kind`` is ``request`` (the receiver answers with one of ``replies``, flag RESPONSE and
    the same seq, or with NAK), ``event`` (a terminal event frame, flag EVENT: the host
    answers ACK, or NAK malformed) or ``reply`` (an answer itself: nothing answers it).
    ``then`` names what follows a command's ACK.  ``harmless`` requests change nothing on
    the terminal: on a noisy line they are asked again as new requests.  ``session`` says
    what the request needs of the session (``NO_SESSION``, ``ANY_SESSION``, ``OWN_SESSION``).
    """

    kind: str
    replies: tuple[MessageType, ...] = ()
    then: str = ""
    harmless: bool = False
    session: str = OWN_SESSION


def request(*replies: MessageType, then: str = "", harmless: bool = False,
            session: str = OWN_SESSION) -> AnswerRule:
    """The rule of a request answered by one of ``replies`` (or NAK)."""
    return AnswerRule("request", tuple(replies), then, harmless, session)


#: the rule of an answer: nothing answers it
REPLY = AnswerRule("reply")
#: the rule of a terminal event frame: the host answers ACK
EVENT_FRAME = AnswerRule("event")


@dataclass(frozen=True)
class Paging:
    """How a paged answer fills its pages: the array field ``items`` holds at most ``at_most``
    items, and never more than fit the negotiated maximum payload beside the other fields."""

    items: str
    at_most: int


@dataclass(frozen=True)
class MessageSpec:
    """One entry of the catalogue: number, direction, answer rule, payload declaration and,
    for a paged answer, its paging rule."""

    type: MessageType
    direction: str
    rule: AnswerRule
    declaration: Struct
    paging: Paging | None = None

    @property
    def name(self) -> str:
        """The message's name, e.g. ``INFO_REPLY``."""
        return self.type.name

    @property
    def is_request(self) -> bool:
        """True for a message that is answered by a reply (or NAK)."""
        return self.rule.kind == "request"

    @property
    def answer(self) -> str:
        """What answers the message, as the specification's tables say it."""
        rule = self.rule
        if rule.kind == "event":
            return "ACK from the host (sent with flag EVENT)"
        if rule.kind == "reply":
            return "—"
        names = " or ".join(t.name for t in rule.replies)
        return f"{names}, then {rule.then}" if rule.then else names

    def page_capacity(self, max_payload: int) -> int:
        """Items a page of this answer holds with ``max_payload``-byte payloads."""
        if self.paging is None:
            raise CatalogueError(f"{self.name} is not paged")
        others, item = _paging_sizes(self)
        return max(0, min(self.paging.at_most, (max_payload - others) // item))


def _paging_sizes(spec: MessageSpec) -> tuple[int, int]:
    """(bytes of every field but the items, plus the items' count; bytes of one item)."""
    assert spec.paging is not None
    if spec.paging.items not in {sub.name for sub in spec.declaration.subcons}:
        raise CatalogueError(f"{spec.name} has no field {spec.paging.items!r} to page")
    others, item = 0, 0
    for sub in spec.declaration.subcons:
        if sub.name is None:
            continue
        if sub.name == spec.paging.items:
            parts = prefixed_array_parts(unwrap(sub))
            if parts is None:
                raise CatalogueError(f"{spec.name}.{sub.name}: a paged field must be a prefixed array")
            count, element = parts
            try:
                others += int(count.sizeof())
                item = int(element.sizeof())
            except SizeofError as exc:
                raise CatalogueError(f"{spec.name}.{sub.name}: items of a page need a fixed size") from exc
        else:
            try:
                others += int(sub.sizeof())
            except SizeofError as exc:
                raise CatalogueError(f"{spec.name}.{sub.name}: a paged answer's other fields need a "
                                     "fixed size") from exc
    return others, item


def validate_catalogue(catalogue: dict[MessageType, MessageSpec]) -> None:
    """Check the rules every catalogue keeps; raise :class:`CatalogueError` on the first broken.

    Every message type is declared, under its own number.  A request names at least one reply,
    and every reply it names is declared as an answer (rule ``REPLY``); only requests name
    replies, a follow-up, a session need or harmlessness.  A host-to-terminal message is a
    request; a terminal-to-host one never is.  A paging rule sits on an answer, over a prefixed
    array of fixed-size items beside fixed-size fields.
    """
    missing = set(MessageType) - set(catalogue)
    if missing:
        raise CatalogueError("no declaration for " + ", ".join(sorted(t.name for t in missing)))
    for t, spec in catalogue.items():
        rule, where = spec.rule, spec.name
        if spec.type != t:
            raise CatalogueError(f"{t.name} is declared as {where}")
        if rule.kind not in ("request", "reply", "event"):
            raise CatalogueError(f"{where}: unknown answer rule {rule.kind!r}")
        if rule.session not in (NO_SESSION, ANY_SESSION, OWN_SESSION):
            raise CatalogueError(f"{where}: unknown session need {rule.session!r}")
        if rule.kind == "request":
            if spec.direction == TERMINAL:
                raise CatalogueError(f"{where}: a terminal-to-host message cannot be a request")
            if not rule.replies:
                raise CatalogueError(f"{where} is a request without an answer rule: name what answers it")
        else:
            if spec.direction == HOST:
                raise CatalogueError(f"{where}: a host-to-terminal message must be a request with an answer rule")
            if rule.replies or rule.then or rule.harmless or rule.session != OWN_SESSION:
                raise CatalogueError(f"{where}: only a request names replies, a follow-up or a session need")
            if rule.kind == "event" and spec.direction != TERMINAL:
                raise CatalogueError(f"{where}: only the terminal sends event frames")
        if spec.paging is not None:
            if rule.kind != "reply":
                raise CatalogueError(f"{where}: only an answer is paged")
            _paging_sizes(spec)
    for spec in catalogue.values():
        for r in spec.rule.replies:
            if catalogue[r].rule.kind != "reply":
                raise CatalogueError(f"{spec.name} is answered by {r.name}, which is not declared as an answer")


_T = MessageType
CATALOGUE: dict[MessageType, MessageSpec] = {s.type: s for s in (
    MessageSpec(_T.HELLO, HOST, request(_T.HELLO_REPLY, harmless=True, session=NO_SESSION), message(
        "protocol_version" / Int8ub * "highest protocol version the host speaks",
        "max_payload" / Int16ub * "largest payload the host accepts, bytes (≤ 1024)",
        "host" / str8 * "host software name and version",
    )),
    MessageSpec(_T.HELLO_REPLY, TERMINAL, REPLY, message(
        "protocol_version" / Int8ub * "version both sides will speak (≤ the host's)",
        "max_payload" / Int16ub * "largest payload the terminal accepts, bytes",
        "components" / Int16ub * "bit n set when Component n is fitted",
        "serial" / str8 * "terminal serial number",
        "boot_id" / Int32ub * "random per boot: a change means the terminal restarted",
    )),
    MessageSpec(_T.PING, EITHER, request(_T.PONG, harmless=True, session=NO_SESSION), message()),
    MessageSpec(_T.PONG, EITHER, REPLY, message(
        "uptime_ms" / Int32ub * "sender's time since boot, ms (wraps)",
    )),
    MessageSpec(_T.ACK, EITHER, REPLY, message()),
    MessageSpec(_T.NAK, EITHER, REPLY, message(
        "reason" / enum8(NakReason) * "NakReason",
    )),
    MessageSpec(_T.INFO_REQUEST, HOST, request(_T.INFO_REPLY, harmless=True, session=ANY_SESSION), message()),
    MessageSpec(_T.INFO_REPLY, TERMINAL, REPLY, message(
        "manufacturer" / str8 * "maker (LwM2M 3/0)",
        "model" / str8 * "model (LwM2M 3/1)",
        "serial" / str8 * "serial number (LwM2M 3/2)",
        "hardware_rev" / str8 * "hardware revision",
        "firmware_version" / str8 * "firmware version (LwM2M 3/3)",
        "lifecycle" / enum8(LifecycleState) * "LifecycleState",
        "merchant_id" / str8 * "bound merchant number, empty when none",
        "activated_at" / Int32ub * "Unix time of activation, 0 when never",
        "clock" / Int32ub * "terminal's clock, Unix time in seconds",
    )),
    MessageSpec(_T.STATUS_REQUEST, HOST, request(_T.STATUS_REPLY, harmless=True), message(COMPONENT)),
    MessageSpec(_T.STATUS_REPLY, TERMINAL, REPLY, message(
        COMPONENT,
        "status" / Switch(this.component, STATUS_CASES)
        * "the component's status block (per-component tables below)",
    )),
    MessageSpec(_T.SELFTEST_START, HOST, request(_T.ACK, then="SELFTEST_PROGRESS… and SELFTEST_RESULT events"),
                message(
        COMPONENT,
        "plan" / enum8(SelfTestPlan) * "SelfTestPlan",
        "interactive" / Flag * "1 when a person is present to answer prompts",
    )),
    MessageSpec(_T.SELFTEST_PROGRESS, TERMINAL, EVENT_FRAME, message(
        COMPONENT,
        "percent" / Int8ub * "0-100",
        "step" / Int8ub * "number of the check running, from 1",
        "prompt" / enum8(Prompt) * "what a person should do now (Prompt)",
    )),
    MessageSpec(_T.SELFTEST_RESULT, TERMINAL, EVENT_FRAME, message(
        COMPONENT,
        "plan" / enum8(SelfTestPlan) * "SelfTestPlan that ran",
        "outcome" / enum8(Outcome) * "Outcome",
        "code" / enum16(FaultCode) * "the most serious fault found (FaultCode), none on pass",
        "duration_ms" / Int32ub * "time the test took, ms",
        "measurements" / PrefixedArray(Int8ub, Struct(
            "id" / enum8(Measurement) * "Measurement",
            "value" / Int32sb * "value in the measurement's unit",
        )) * "what the test measured",
        "note" / str8 * "short firmware note for the technician (never card data)",
    )),
    MessageSpec(_T.SELFTEST_ABORT, HOST, request(_T.ACK, then="SELFTEST_RESULT (aborted)"), message(
        "component" / enum8(Component) * "the component, or 0xFF for every running test",
    )),
    MessageSpec(_T.SELFTEST_CONFIRM, HOST, request(_T.ACK), message(
        COMPONENT,
        "accepted" / Flag * "1 when the person confirmed what they saw, 0 when rejected",
    )),
    MessageSpec(_T.ERROR, TERMINAL, EVENT_FRAME, message(
        COMPONENT,
        "code" / enum16(FaultCode) * "FaultCode",
        "severity" / enum8(Severity) * "Severity",
        "detail" / str8 * "short firmware text (never card data)",
    )),
    MessageSpec(_T.EVENT, TERMINAL, EVENT_FRAME, message(
        "event" / enum8(EventKind) * "EventKind",
        COMPONENT,
        "uptime_ms" / Int32ub * "when, ms since boot",
        "value" / Int32ub * "event-specific value (EventKind table)",
    )),
    MessageSpec(_T.EVENTLOG_READ, HOST, request(_T.EVENTLOG_PAGE, harmless=True, session=ANY_SESSION),
                message(
        "page" / Int16ub * "page number, from 0",
    )),
    MessageSpec(_T.EVENTLOG_PAGE, TERMINAL, REPLY, message(
        "page" / Int16ub * "page number",
        "pages" / Int16ub * "pages in the log (0 when empty)",
        "entries" / PrefixedArray(Int8ub, Struct(
            "time" / Int32ub * "Unix time in seconds",
            COMPONENT,
            "code" / enum16(FaultCode) * "FaultCode",
            "severity" / enum8(Severity) * "Severity",
        )) * f"entries, oldest first (at most {EVENTLOG_PAGE_MAX})",
    ), paging=Paging("entries", EVENTLOG_PAGE_MAX)),
    MessageSpec(_T.TXLOG_OPEN, HOST, request(_T.TXLOG_INFO), message()),
    MessageSpec(_T.TXLOG_INFO, TERMINAL, REPLY, message(
        "records" / Int32ub * "records in the log",
        "pages" / Int16ub * "pages to read",
        "records_per_page" / Int8ub * "records on every page but the last",
        "sha256" / Bytes(32) * "SHA-256 of every page's `records` field, as encoded, in page order",
    )),
    MessageSpec(_T.TXLOG_READ, HOST, request(_T.TXLOG_PAGE, harmless=True), message(
        "page" / Int16ub * "page number, from 0",
    )),
    MessageSpec(_T.TXLOG_PAGE, TERMINAL, REPLY, message(
        "page" / Int16ub * "page number",
        "records" / PrefixedArray(Int8ub, TX_RECORD) * "transaction records (table below)",
        "page_crc" / Int32ub * "CRC-32 (ISO-HDLC, as zlib) of the `records` field as encoded",
    ), paging=Paging("records", TXLOG_PAGE_MAX)),
    MessageSpec(_T.LC_CHALLENGE_REQUEST, HOST, request(_T.LC_CHALLENGE), message(
        "operation" / enum8(LifecycleOp) * "LifecycleOp",
    )),
    MessageSpec(_T.LC_CHALLENGE, TERMINAL, REPLY, message(
        "operation" / enum8(LifecycleOp) * "LifecycleOp the challenge is for",
        "nonce" / Bytes(16) * "fresh random nonce, valid for one LC_REQUEST",
        "counter" / Int32ub * "last accepted counter; the request must carry a larger one",
        "serial" / str8 * "terminal serial number",
    )),
    MessageSpec(_T.LC_REQUEST, HOST, request(_T.LC_RESULT), message(
        "operation" / enum8(LifecycleOp) * "LifecycleOp",
        "counter" / Int32ub * "strictly greater than the challenge's counter",
        "nonce" / Bytes(16) * "the challenge's nonce",
        "activation_code" / str8 * "activate only, else empty",
        "merchant_id" / str8 * "activate and bind, else empty",
        "reason" / str8 * "unbind, revoke, factory_reset: why (audited)",
        "mac" / Bytes(32) * "HMAC-SHA256, see 'Lifecycle authentication'",
    )),
    MessageSpec(_T.LC_RESULT, TERMINAL, REPLY, message(
        "operation" / enum8(LifecycleOp) * "LifecycleOp",
        "status" / enum8(LifecycleStatus) * "LifecycleStatus",
        "state" / enum8(LifecycleState) * "state after the request",
        "counter" / Int32ub * "last accepted counter (saved before this answer was sent)",
        "message" / str8 * "why, when refused (English)",
    )),
)}

validate_catalogue(CATALOGUE)

#: the requests, and what answers each (NAK may answer any of them)
REQUESTS: frozenset[MessageType] = frozenset(t for t, s in CATALOGUE.items() if s.is_request)
ANSWERS: dict[MessageType, frozenset[MessageType]] = {
    t: frozenset(CATALOGUE[t].rule.replies) for t in CATALOGUE if t in REQUESTS}
#: requests that change nothing on the terminal: on a noisy line they are asked again as new
#: requests (docs/protocol.md section 5, "A noisy line")
SAFE_TO_REPEAT: frozenset[MessageType] = frozenset(t for t in REQUESTS if CATALOGUE[t].rule.harmless)
#: requests a terminal answers without a session (docs/protocol.md section 6)
NO_SESSION_NEEDED: frozenset[MessageType] = frozenset(
    t for t in REQUESTS if CATALOGUE[t].rule.session == NO_SESSION)
#: requests a terminal never refuses with not_permitted while it has a session
ANY_SESSION_MAY: frozenset[MessageType] = frozenset(t for t in REQUESTS if CATALOGUE[t].rule.session == ANY_SESSION)


def page_capacity(page_type: MessageType, max_payload: int) -> int:
    """Items one page of the paged answer ``page_type`` holds with ``max_payload``-byte payloads
    (EVENTLOG_PAGE: at most 64 entries of 8 bytes; TXLOG_PAGE: at most 32 records of 29)."""
    return CATALOGUE[page_type].page_capacity(max_payload)



#: payload decoders generated from the declarations (see protocols.pos.compiler)
DECODERS: dict[int, Decoder] = {
    int(t): compile_decoder(s.declaration, s.name) for t, s in CATALOGUE.items()
}


class Message(NamedTuple):
    """A decoded frame: header fields plus the payload as plain data."""

    type: MessageType
    seq: int
    flags: int
    fields: dict[str, Any]


def decode_payload(msg_type: int, payload: bytes) -> dict[str, Any]:
    """Decode a payload of the given type into plain data (fast path)."""
    try:
        decoder = DECODERS[msg_type]
    except KeyError:
        raise UnknownMessageType(f"message type 0x{msg_type:02x} is not in the catalogue") from None
    return decoder(payload)


_BY_NUMBER: dict[int, tuple[MessageType, Decoder]] = {int(t): (t, DECODERS[int(t)]) for t in CATALOGUE}
_new_message = tuple.__new__


def decode_message(frame: Frame) -> Message:
    """Decode a frame's payload by its type (the hot path: one dict lookup, one decoder call)."""
    try:
        msg_type, decoder = _BY_NUMBER[frame[3]]
    except KeyError:
        raise UnknownMessageType(f"message type 0x{frame[3]:02x} is not in the catalogue") from None
    return _new_message(Message, (msg_type, frame[2], frame[1], decoder(frame[4])))


def _plain(obj: Any) -> Any:
    if isinstance(obj, Container):
        return {k: _plain(v) for k, v in obj.items() if not k.startswith("_")}
    if isinstance(obj, ListContainer | list):
        return [_plain(v) for v in obj]
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, bool):
        return obj
    if isinstance(obj, int):
        return int(obj)
    return obj


def decode_payload_construct(msg_type: int, payload: bytes) -> dict[str, Any]:
    """Decode through construct's interpreted parser (slow; the reference for tests)."""
    spec = CATALOGUE.get(msg_type)  # type: ignore[call-overload]
    if spec is None:
        raise UnknownMessageType(f"message type 0x{msg_type:02x} is not in the catalogue")
    try:
        return _plain(spec.declaration.parse(payload))  # type: ignore[no-any-return]
    except (ConstructError, UnicodeDecodeError) as exc:
        raise MalformedPayload(str(exc).splitlines()[-1]) from exc


def encode_payload(msg_type: int, fields: dict[str, Any] | None = None) -> bytes:
    """Encode fields as the payload of ``msg_type`` (through construct's build)."""
    spec = CATALOGUE.get(msg_type)  # type: ignore[call-overload]
    if spec is None:
        raise UnknownMessageType(f"message type 0x{msg_type:02x} is not in the catalogue")
    try:
        return spec.declaration.build(fields or {})  # type: ignore[no-any-return]
    except (ConstructError, UnicodeError, TypeError, ValueError, KeyError) as exc:
        raise EncodeError(f"{spec.name}: {str(exc).splitlines()[-1] if str(exc) else exc!r}") from exc


def encode_message(msg_type: int, fields: dict[str, Any] | None = None, seq: int = 0,
                   flags: int = 0) -> bytes:
    """Encode fields and frame them: the bytes to put on the wire."""
    return encode_frame(msg_type, encode_payload(msg_type, fields), seq, flags)


def txlog_page_crc(records_field: bytes) -> int:
    """CRC-32 of a TXLOG_PAGE's encoded ``records`` field (count byte included)."""
    return binascii.crc32(records_field) & 0xFFFFFFFF


def jsonable(obj: Any) -> Any:
    """Decoded fields as JSON-ready data: bytes become lowercase hex strings."""
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [jsonable(v) for v in obj]
    if isinstance(obj, bytes | bytearray):
        return bytes(obj).hex()
    return obj


__all__ = [
    "ANSWERS",
    "ANY_SESSION",
    "ANY_SESSION_MAY",
    "CATALOGUE",
    "DECODERS",
    "EITHER",
    "EVENTLOG_PAGE_MAX",
    "EVENT_FRAME",
    "HOST",
    "NO_SESSION",
    "NO_SESSION_NEEDED",
    "OWN_SESSION",
    "REPLY",
    "REQUESTS",
    "SAFE_TO_REPEAT",
    "STATUS_BY_COMPONENT",
    "STATUS_CASES",
    "TERMINAL",
    "TXLOG_PAGE_MAX",
    "TX_RECORD",
    "AnswerRule",
    "CatalogueError",
    "Message",
    "MessageSpec",
    "MessageType",
    "Paging",
    "StatusField",
    "block_fields",
    "decode_message",
    "decode_payload",
    "decode_payload_construct",
    "describe_frame",
    "encode_message",
    "encode_payload",
    "flag_names",
    "jsonable",
    "page_capacity",
    "request",
    "status_fields",
    "txlog_page_crc",
    "validate_catalogue",
]


def flag_names(flags: int) -> list[str]:
    """Names of the FrameFlag bits set in ``flags`` (unknown bits as ``bit<n>``)."""
    from protocols.pos.codes import FrameFlag

    names = [f.name for f in FrameFlag if flags & f]
    names += [f"bit{b}" for b in range(8) if flags & (1 << b) and not any(f == 1 << b for f in FrameFlag)]
    return names


def describe_frame(frame: Frame) -> dict[str, Any]:
    """A frame and its decoded payload as JSON-ready data (the spec's example format)."""
    msg = decode_message(frame)
    return {
        "version": frame.version,
        "flags": flag_names(frame.flags),
        "seq": frame.seq,
        "type": MessageType.describe(frame.type),
        "fields": jsonable(msg.fields),
    }
