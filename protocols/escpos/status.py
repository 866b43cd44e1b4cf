"""ESC/POS status requests and the meaning of every bit of their replies.

The layouts are those of the Epson ESC/POS command reference for TM printers, as the TM-T88III
specification (STANDARD, rev. B, "DLE EOT n", "GS r n") and the TM-U220 reference print them;
docs/escpos.md has the table with each bit.  A reply to ``DLE EOT n`` is one byte with the fixed
pattern ``0xx1xx10`` (bits 1 and 4 set, bits 0 and 7 clear); a reply to ``GS r 1`` is one byte
``0xx0xxxx`` (bits 4 and 7 clear); the identity replies to ``GS I 65``..``68`` are a block
``5F`` text ``00``.  Epson's "transmission status identification" tells them apart, and from
an Automatic Status Back (first byte ``0xx1xx00``), by those fixed bits; so does
:class:`StatusParser`.

``DLE EOT`` is a real-time command: the printer answers it at once, even offline or with a full
receive buffer.  ``GS r`` and ``GS I`` are processed in order with the print data, so an offline
printer (paper end, cover open) does not answer them until it is back online.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from construct import Bit, BitsInteger, BitStruct, Const, Flag

DLE, EOT, GS = 0x10, 0x04, 0x1D
#: the fixed bits of a DLE EOT reply: mask and value (bits 0, 1, 4, 7)
EOT_MASK, EOT_FIXED = 0x93, 0x12
#: the fixed bits of a GS r reply (bits 4 and 7 clear)
GS_R_MASK, GS_R_FIXED = 0x90, 0x00
#: the header and the end of a GS I "printer information B" reply
BLOCK_HEADER, BLOCK_END = 0x5F, 0x00
#: the longest text a GS I block reply may carry before the parser gives up on it (Epson: 80)
BLOCK_MAX = 80


@dataclass(frozen=True)
class Request:
    """One status or identity request: its bytes and the shape of its reply."""

    #: as the reference writes it: ``DLE EOT 1``
    name: str
    #: the :class:`PrinterStatus` field (or identity item) its reply fills
    key: str
    command: bytes
    #: answered at once, even offline (DLE EOT); else processed after the buffered data
    realtime: bool
    #: the reply is a block ``5F`` text ``00`` rather than one byte
    block: bool = False

    def recognises(self, byte: int) -> bool:
        """Whether ``byte`` can be this request's (first) reply byte, by its fixed bits."""
        if self.block:
            return byte == BLOCK_HEADER
        if self.realtime:
            return byte & EOT_MASK == EOT_FIXED
        return byte & GS_R_MASK == GS_R_FIXED

    @property
    def reply_bytes(self) -> int:
        """Bytes of the reply at least (a block: header and end)."""
        return 2 if self.block else 1


def _dle_eot(n: int, key: str) -> Request:
    return Request(f"DLE EOT {n}", key, bytes([DLE, EOT, n]), realtime=True)


#: DLE EOT 1..4: printer status, offline cause, error cause, roll paper sensor
DLE_EOT: dict[int, Request] = {
    1: _dle_eot(1, "printer"),
    2: _dle_eot(2, "offline_cause"),
    3: _dle_eot(3, "error_cause"),
    4: _dle_eot(4, "roll_paper"),
}
#: GS r 1: paper sensor status (not real-time)
GS_R_PAPER = Request("GS r 1", "paper_sensor", bytes([GS, 0x72, 0x01]), realtime=False)
#: every status request, in the order a diagnosis sends them
STATUS_REQUESTS: tuple[Request, ...] = (*DLE_EOT.values(), GS_R_PAPER)
#: GS I n "printer information B": firmware version, maker, model, serial number
IDENTITY_REQUESTS: dict[str, Request] = {
    key: Request(f"GS I {n}", key, bytes([GS, 0x49, n]), realtime=False, block=True)
    for key, n in (("firmware", 65), ("maker", 66), ("model", 67), ("serial", 68))
}

# -- the reply layouts, most significant bit first (construct's BitStruct order) --------------------

_FIXED0, _FIXED1 = Const(0, Bit), Const(1, Bit)

#: DLE EOT 1, printer status
PRINTER_LAYOUT = BitStruct(
    "_bit7" / _FIXED0,
    "feed_button_pressed" / Flag,          # bit 6: the paper feed button is being pressed
    "waiting_online_recovery" / Flag,      # bit 5: waiting for online recovery
    "_bit4" / _FIXED1,
    "offline" / Flag,                      # bit 3
    "drawer_pin3_high" / Flag,             # bit 2: drawer kick-out connector pin 3 is HIGH
    "_bit1" / _FIXED1,
    "_bit0" / _FIXED0,
)
#: DLE EOT 2, offline cause
OFFLINE_CAUSE_LAYOUT = BitStruct(
    "_bit7" / _FIXED0,
    "error_occurred" / Flag,               # bit 6
    "paper_end_stop" / Flag,               # bit 5: printing stopped because of paper end
    "_bit4" / _FIXED1,
    "paper_being_fed" / Flag,              # bit 3: paper is being fed by the paper feed button
    "cover_open" / Flag,                   # bit 2
    "_bit1" / _FIXED1,
    "_bit0" / _FIXED0,
)
#: DLE EOT 3, error cause
ERROR_CAUSE_LAYOUT = BitStruct(
    "_bit7" / _FIXED0,
    "auto_recoverable_error" / Flag,       # bit 6: head too hot, or cover opened while printing
    "unrecoverable_error" / Flag,          # bit 5
    "_bit4" / _FIXED1,
    "autocutter_error" / Flag,             # bit 3
    "recoverable_error" / Flag,            # bit 2: a recoverable (mechanical) error; undefined on some models
    "_bit1" / _FIXED1,
    "_bit0" / _FIXED0,
)
#: DLE EOT 4, roll paper sensor
ROLL_PAPER_LAYOUT = BitStruct(
    "_bit7" / _FIXED0,
    "paper_end" / BitsInteger(2),          # bits 5-6: roll paper end sensor: no paper
    "_bit4" / _FIXED1,
    "near_end" / BitsInteger(2),           # bits 2-3: roll paper near-end sensor: near end
    "_bit1" / _FIXED1,
    "_bit0" / _FIXED0,
)
#: GS r 1, paper sensor
PAPER_SENSOR_LAYOUT = BitStruct(
    "_bit7" / _FIXED0,
    "_reserved" / BitsInteger(2),          # bits 5-6
    "_bit4" / _FIXED0,
    "paper_end" / BitsInteger(2),          # bits 2-3: roll paper end sensor: no paper
    "near_end" / BitsInteger(2),           # bits 0-1: roll paper near-end sensor: near end
)
LAYOUTS: dict[str, Any] = {
    "printer": PRINTER_LAYOUT,
    "offline_cause": OFFLINE_CAUSE_LAYOUT,
    "error_cause": ERROR_CAUSE_LAYOUT,
    "roll_paper": ROLL_PAPER_LAYOUT,
    "paper_sensor": PAPER_SENSOR_LAYOUT,
}
#: the flags each status byte carries, in bit order (for tables and JSON)
FLAGS: dict[str, tuple[str, ...]] = {
    "printer": ("drawer_pin3_high", "offline", "waiting_online_recovery", "feed_button_pressed"),
    "offline_cause": ("cover_open", "paper_being_fed", "paper_end_stop", "error_occurred"),
    "error_cause": ("recoverable_error", "autocutter_error", "unrecoverable_error", "auto_recoverable_error"),
    "roll_paper": ("near_end", "paper_end"),
    "paper_sensor": ("near_end", "paper_end"),
}


class StatusError(ValueError):
    """A byte that is not a reply to the request it was given for (its fixed bits are wrong)."""


def decode(key: str, byte: int) -> dict[str, bool]:
    """The flags of one status byte (``key`` as in :data:`FLAGS`): every named bit, True when set.

    Raises :class:`StatusError` when the byte's fixed bits are not the reply's."""
    if key not in LAYOUTS:
        raise KeyError(f"no status byte {key!r}; known: {', '.join(LAYOUTS)}")
    if not 0 <= byte <= 0xFF:
        raise StatusError(f"{byte} is not a byte")
    try:
        parsed = LAYOUTS[key].parse(bytes([byte]))
    except Exception as exc:   # construct's ConstError: a fixed bit has the wrong value
        raise StatusError(f"0x{byte:02X} is not a {key} status byte (its fixed bits are wrong)") from exc
    return {name: bool(parsed[name]) for name in FLAGS[key]}


@dataclass(frozen=True)
class PrinterStatus:
    """What a printer said to the status requests; a byte is None when it was not asked or not
    answered.  The flag properties are False for a byte that is missing."""

    printer: int | None = None          # DLE EOT 1
    offline_cause: int | None = None    # DLE EOT 2
    error_cause: int | None = None      # DLE EOT 3
    roll_paper: int | None = None       # DLE EOT 4
    paper_sensor: int | None = None     # GS r 1

    def byte(self, key: str) -> int | None:
        """One status byte by its key."""
        value: int | None = getattr(self, key)
        return value

    @property
    def answered(self) -> tuple[str, ...]:
        """The keys of the bytes that came."""
        return tuple(k for k in LAYOUTS if self.byte(k) is not None)

    def flags(self) -> dict[str, dict[str, bool]]:
        """Every decoded flag, by status byte (only the bytes that came)."""
        out: dict[str, dict[str, bool]] = {}
        for key in self.answered:
            value = self.byte(key)
            assert value is not None
            out[key] = decode(key, value)
        return out

    def _flag(self, key: str, name: str) -> bool:
        value = self.byte(key)
        return value is not None and decode(key, value)[name]

    @property
    def offline(self) -> bool:
        """DLE EOT 1 bit 3."""
        return self._flag("printer", "offline")

    @property
    def drawer_pin3_high(self) -> bool:
        """DLE EOT 1 bit 2."""
        return self._flag("printer", "drawer_pin3_high")

    @property
    def waiting_online_recovery(self) -> bool:
        """DLE EOT 1 bit 5."""
        return self._flag("printer", "waiting_online_recovery")

    @property
    def feed_button_pressed(self) -> bool:
        """DLE EOT 1 bit 6."""
        return self._flag("printer", "feed_button_pressed")

    @property
    def cover_open(self) -> bool:
        """DLE EOT 2 bit 2."""
        return self._flag("offline_cause", "cover_open")

    @property
    def paper_being_fed(self) -> bool:
        """DLE EOT 2 bit 3: paper is being fed by the paper feed button."""
        return self._flag("offline_cause", "paper_being_fed")

    @property
    def paper_end_stop(self) -> bool:
        """DLE EOT 2 bit 5: printing stopped at paper end."""
        return self._flag("offline_cause", "paper_end_stop")

    @property
    def error_occurred(self) -> bool:
        """DLE EOT 2 bit 6."""
        return self._flag("offline_cause", "error_occurred")

    @property
    def recoverable_error(self) -> bool:
        """DLE EOT 3 bit 2 (model-dependent: undefined on some)."""
        return self._flag("error_cause", "recoverable_error")

    @property
    def autocutter_error(self) -> bool:
        """DLE EOT 3 bit 3."""
        return self._flag("error_cause", "autocutter_error")

    @property
    def unrecoverable_error(self) -> bool:
        """DLE EOT 3 bit 5."""
        return self._flag("error_cause", "unrecoverable_error")

    @property
    def auto_recoverable_error(self) -> bool:
        """DLE EOT 3 bit 6."""
        return self._flag("error_cause", "auto_recoverable_error")

    @property
    def paper_end(self) -> bool:
        """No paper at the roll paper end sensor: DLE EOT 4 bits 5-6, GS r 1 bits 2-3."""
        return self._flag("roll_paper", "paper_end") or self._flag("paper_sensor", "paper_end")

    @property
    def paper_near_end(self) -> bool:
        """The near-end sensor sees the roll's end coming: DLE EOT 4 bits 2-3, GS r 1 bits 0-1."""
        return self._flag("roll_paper", "near_end") or self._flag("paper_sensor", "near_end")

    def block(self) -> dict[str, Any]:
        """As the status block ``pos-sim status`` and the TUI's tile show: each byte, the hex line
        (:meth:`raw`) and every decoded flag (:meth:`flags`)."""
        return {"protocol": "escpos", "printer_status": self.printer, "offline_cause": self.offline_cause,
                "error_cause": self.error_cause, "roll_paper": self.roll_paper,
                "paper_sensor": self.paper_sensor, "raw": self.raw(), "flags": self.flags()}

    def raw(self) -> str:
        """The bytes as hex, ``--`` for a missing one: ``DLE EOT 1-4 16 12 12 12, GS r 1 00``."""
        def h(v: int | None) -> str:
            return "--" if v is None else f"{v:02X}"
        eot = " ".join(h(self.byte(k)) for k in ("printer", "offline_cause", "error_cause", "roll_paper"))
        return f"DLE EOT 1-4 {eot}, GS r 1 {h(self.paper_sensor)}"


@dataclass
class ParserStats:
    """What the parser saw that was no reply."""

    garbage: int = 0
    #: block replies given up (longer than :data:`BLOCK_MAX`)
    overlong: int = 0


@dataclass
class _Block:
    request: Request
    data: bytearray = field(default_factory=bytearray)


class StatusParser:
    """Finds the replies to the requests sent, in order, in whatever bytes come back.

    Call :meth:`expect` for each request as it is sent, then :meth:`feed` every chunk read (a
    reply may come split, late, or among bytes that are no reply).  A byte that cannot be the
    reply awaited (its fixed bits say so) is counted as garbage and skipped; a block reply is
    collected from its header to its end.  :meth:`feed` returns ``(request, reply)`` pairs:
    ``reply`` is the byte as an int, or the block's text as bytes.
    """

    def __init__(self) -> None:
        self._pending: deque[Request] = deque()
        self._block: _Block | None = None
        self.stats = ParserStats()

    @property
    def pending(self) -> tuple[Request, ...]:
        """Requests still awaiting their reply, oldest first."""
        return tuple(self._pending)

    def expect(self, request: Request) -> None:
        """A request went out: its reply is awaited after those before it."""
        self._pending.append(request)

    def forget(self) -> list[Request]:
        """Give up on every awaited reply (no answer came); return the requests."""
        dropped = list(self._pending)
        self._pending.clear()
        self._block = None
        return dropped

    def feed(self, data: bytes) -> list[tuple[Request, int | bytes]]:
        """The replies completed by ``data``."""
        out: list[tuple[Request, int | bytes]] = []
        for byte in data:
            if self._block is not None:
                if byte == BLOCK_END:
                    out.append((self._block.request, bytes(self._block.data)))
                    self._pending.popleft()
                    self._block = None
                elif len(self._block.data) >= BLOCK_MAX:
                    self.stats.overlong += 1
                    self._block = None   # not a reply after all: wait for a new header
                else:
                    self._block.data.append(byte)
                continue
            if not self._pending or not self._pending[0].recognises(byte):
                self.stats.garbage += 1
                continue
            head = self._pending[0]
            if head.block:
                self._block = _Block(head)
            else:
                self._pending.popleft()
                out.append((head, byte))
        return out
