"""The TUI's state, kept apart from widgets: tiles, findings in either language, frame lines.

Nothing here touches a port or a widget, so it is tested and benchmarked without a screen.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from drivers.link import Link
from pos_sim.diagnostics.catalogue import Catalogue
from pos_sim.diagnostics.engine import Finding
from pos_sim.tui.text import ui_text
from protocols.pos import Frame, MessageType, encode_frame
from protocols.pos.messages import decode_message, jsonable

#: tile states besides the verdicts
IDLE, RUNNING = "idle", "running"
#: the measurements a tile shows, per component
KEY_MEASUREMENTS: dict[str, tuple[str, ...]] = {
    "power": ("battery_pct",),
    "network": ("signal_dbm",),
    "printer": ("paper_status",),
    "keypad": ("keys_seen",),
}
#: at most this many frame lines reach the log per tick (the rest are counted, not drawn)
MAX_LINES_PER_TICK = 40
#: the frame buffer between the link's thread and the UI keeps at most this many frames
BUFFER_FRAMES = 4000


@dataclass
class TileState:
    """One component's tile: what it is doing and what it found."""

    component: str
    state: str = IDLE                 # idle, running, pass, warn, fail, skipped, error
    percent: int = 0
    prompt: str = ""                  # a show-prompt's key (swipe_card ...) while running
    finding: Finding | None = None
    fitted: bool = True
    #: the component's last STATUS_REPLY block (None until one was read)
    status: dict[str, Any] | None = None


def localize(finding: Finding, lang: str, catalogue: Catalogue) -> Finding:
    """The same finding with its message and advice in ``lang`` (language switch re-renders)."""
    if finding.code:
        try:
            entry = catalogue.fault(finding.code)
        except KeyError:
            return finding
        return replace(finding, message=entry.message(lang), advice=entry.advice(lang))
    label = catalogue.label("verdict", finding.verdict, lang)
    skipped = finding.measurements.get("checks_skipped", 0)
    if finding.verdict == "skipped" and skipped:
        label = f"{label} ({catalogue.label('measurement', 'checks_skipped', lang)}: {skipped})"
    return replace(finding, message=label)


def component_label(component: str, lang: str, catalogue: Catalogue) -> str:
    """A component's name in ``lang`` (the key itself for a component the catalogue lacks)."""
    try:
        return catalogue.label("component", component, lang)
    except KeyError:
        return component


def measurement_text(name: str, value: int, lang: str, catalogue: Catalogue) -> str:
    """``battery 87 %``, ``paper ok`` ... for a tile."""
    if name == "paper_status":
        key = "paper_end" if value & 0x60 else "paper_near_end" if value & 0x0C else "paper_ok"
        return ui_text(key, lang)
    try:
        label = catalogue.label("measurement", name, lang)
    except KeyError:
        label = name
    unit = ""
    with contextlib.suppress(KeyError):
        unit = catalogue.unit(name, lang)
    return f"{label} {value}{' ' + unit if unit else ''}"


def _word(value: object, lang: str) -> str:
    """A status enum value (``ready``, ``tripped`` ...) in ``lang``; one the table lacks as it is."""
    key = f"st_{value}"
    try:
        return ui_text(key, lang)
    except KeyError:
        return str(value)


def _ipv4(raw: object) -> str:
    return ".".join(str(b) for b in raw) if isinstance(raw, bytes | bytearray) and len(raw) == 4 else ""


def status_summary(component: str, status: dict[str, Any], lang: str) -> list[str]:
    """Short parts of a component's STATUS_REPLY block for its tile, most telling first (docs/protocol.md,
    "Status blocks"): battery level, status and source; bearer, signal and IP; paper and head
    temperature; reader, slot, panel and tamper states; memory and board temperature."""
    s = status

    def t(key: str, **values: object) -> str:
        return ui_text(key, lang, **values)

    parts: list[str] = []
    if component == "power":
        if "battery_pct" in s:
            parts.append(f"{s['battery_pct']} % {_word(s.get('battery_status', ''), lang)}".rstrip())
        if "source" in s:
            parts.append(_word(s["source"], lang))
    elif component == "network":
        if "signal_dbm" in s:
            parts.append(f"{s['signal_dbm']} dBm")
        if "bearer" in s:
            parts.append(str(s["bearer"]).upper().replace("_", "-"))
        ip = _ipv4(s.get("ipv4"))
        parts.append(ip if ip and ip != "0.0.0.0" else t("st_no_ip"))
    elif component == "printer" and s.get("protocol") == "escpos":
        # a receipt printer's own status (pos_sim.cli.status.escpos_block): decoded flags by byte
        flags = s.get("flags", {})
        roll, gsr, cause = flags.get("roll_paper", {}), flags.get("paper_sensor") or {}, flags.get("offline_cause", {})
        end = roll.get("paper_end") or gsr.get("paper_end") or cause.get("paper_end_stop")
        near = roll.get("near_end") or gsr.get("near_end")
        parts.append(t("paper_end" if end else "paper_near_end" if near else "paper_ok"))
        if cause.get("cover_open"):
            parts.append(t("st_cover_open"))
        parts.append(str(s.get("raw", "")))
    elif component == "printer":
        paper = int(s.get("paper_sensor", 0))
        parts.append(t("paper_end" if paper & 0x60 else "paper_near_end" if paper & 0x0C else "paper_ok"))
        if int(s.get("offline_cause", 0)) & 0x04:
            parts.append(t("st_cover_open"))
        if "head_temp_c" in s:
            parts.append(t("st_head", c=s["head_temp_c"]))
    elif component == "security":
        parts.append(t("st_tamper", state=_word(s.get("tamper", "?"), lang)))
        parts.append(t("st_keys_loaded" if s.get("keys_loaded") else "st_no_keys"))
    elif component == "system":
        if "free_memory_kb" in s and "total_memory_kb" in s:
            parts.append(t("st_memory", free=int(s["free_memory_kb"]) // 1024, total=int(s["total_memory_kb"]) // 1024))
        if "board_temp_c" in s:
            parts.append(f"{s['board_temp_c']} °C")
        if s.get("firmware_update_state", 0):
            parts.append(t("st_fw_update", state=_word(f"fw{s['firmware_update_state']}", lang)))
    elif component == "screen":
        parts.append(t("st_panel", state=_word(s.get("panel", "?"), lang)))
        if s.get("dead_pixels"):
            parts.append(t("st_dead_pixels", n=s["dead_pixels"]))
    elif component == "keypad":
        parts.append(t("st_keys", n=s.get("keys_total", "?")))
        if s.get("stuck_keys"):
            parts.append(t("st_stuck", n=len(s["stuck_keys"])))
    elif component in ("magstripe", "contactless", "scanner", "chip"):
        field_name = {"magstripe": "state", "contactless": "field", "scanner": "state", "chip": "slot"}[component]
        parts.append(t(f"st_{component}", state=_word(s.get(field_name, "?"), lang)))
    return [p for p in parts if p]


def tile_lines(tile: TileState, lang: str, catalogue: Catalogue) -> tuple[str, str, list[str]]:
    """A tile's (state key, state text, detail lines) in ``lang``."""
    if not tile.fitted:
        return "skipped", ui_text("not_fitted", lang), []
    lines: list[str] = []
    if tile.state == RUNNING:
        text = f"▶ {ui_text('running', lang)} {tile.percent}%"
        if tile.prompt:
            try:
                lines.append("» " + catalogue.label("prompt", tile.prompt, lang))
            except KeyError:
                lines.append("» " + tile.prompt)
    elif tile.state == IDLE:
        text = "· " + ui_text("idle", lang)
    else:
        text = catalogue.label("verdict", tile.state, lang)
    f = tile.finding
    if f is not None and tile.state != RUNNING:
        f = localize(f, lang, catalogue)
        shown = [measurement_text(m, f.measurements[m], lang, catalogue)
                 for m in KEY_MEASUREMENTS.get(tile.component, ()) if m in f.measurements]
        if shown:
            lines.append(" · ".join(shown))
        skipped = f.measurements.get("checks_skipped", 0)
        if f.verdict in ("skipped", "pass") and skipped:
            lines.append(ui_text("tile_needs_person", lang, n=skipped))
        elif f.verdict not in ("pass",) and f.message and f.message != text:
            lines.append(f.message)
        if f.advice:
            lines.append("→ " + f.advice[0])
    if tile.status and tile.state != RUNNING:   # one part a line: a small tile shows the first
        lines += status_summary(tile.component, tile.status, lang)
    return tile.state if tile.fitted else "skipped", text, lines


# -- the frame log ------------------------------------------------------------------------------


@dataclass
class LinkCounters:
    """What the status bar shows."""

    frames_in: int = 0
    frames_out: int = 0
    retransmits: int = 0
    crc_errors: int = 0
    bytes_dropped: int = 0

    @classmethod
    def of(cls, link: Link) -> LinkCounters:
        """Read a live link's counters (plain ints: safe from any thread)."""
        s, d = link.stats, link.deframer.stats
        return cls(s.frames_in, s.frames_out, s.retransmits, d.bad_crc, d.bytes_dropped)

    def as_dict(self) -> dict[str, int]:
        """As plain data."""
        return asdict(self)


def status_text(c: LinkCounters, lang: str, *, paused: bool = False, hex_mode: bool = False,
                log_filter: str = "") -> str:
    """The status bar's line."""
    parts = [f"{ui_text('frames', lang)} {c.frames_in}/{c.frames_out}",
             f"{ui_text('retransmits', lang)} {c.retransmits}",
             f"{ui_text('crc_errors', lang)} {c.crc_errors}",
             f"{ui_text('dropped', lang)} {c.bytes_dropped}"]
    if hex_mode:
        parts.append(f"[{ui_text('hex', lang)}]")
    if paused:
        parts.append(f"[{ui_text('paused', lang)}]")
    if log_filter:
        parts.append(f"{ui_text('filter', lang)}: {log_filter}")
    return " │ ".join(parts)


def wrap_fields(fields: list[str], width: int, sep: str = " │ ") -> list[str]:
    """Join ``fields`` with ``sep`` into lines of at most ``width`` cells, breaking only between
    fields (a CJK character takes two cells); a field wider than a line gets a line of its own."""
    from rich.cells import cell_len

    lines: list[str] = []
    for f in fields:
        if lines and cell_len(lines[-1]) + cell_len(sep) + cell_len(f) <= width:
            lines[-1] += sep + f
        else:
            lines.append(f)
    return lines


def _short(value: Any, limit: int = 40) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def type_name(frame: Frame) -> str:
    """The frame's message type name (``type 0x7F`` for one not in the catalogue)."""
    try:
        return MessageType(frame.type).name
    except ValueError:
        return f"type 0x{frame.type:02X}"


def format_frame(direction: str, frame: Frame, *, hex_mode: bool, when: float = 0.0) -> str:
    """One log line: arrow, sequence number, type, then fields (or the raw bytes in hex)."""
    arrow = "→" if direction == "out" else "←"
    stamp = time.strftime("%H:%M:%S", time.localtime(when)) if when else ""
    head = f"{stamp} {arrow} {frame.seq:5d} {type_name(frame):<18}".lstrip()
    if hex_mode:
        raw = encode_frame(frame.type, frame.payload, frame.seq, frame.flags, frame.version)
        return f"{head} {raw.hex(' ')}"
    try:
        fields = jsonable(decode_message(frame).fields)
    except Exception:  # a frame we cannot decode is still shown, by size
        return f"{head} ({len(frame.payload)} bytes, undecodable)"
    body = " ".join(f"{k}={_short(v)}" for k, v in fields.items()) if isinstance(fields, dict) else ""
    return f"{head} {body}".rstrip()


@dataclass
class FrameBuffer:
    """Frames from the link's thread to the UI's tick: append is cheap, memory bounded."""

    maxlen: int = BUFFER_FRAMES
    _frames: deque[tuple[float, str, Frame]] = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    pushed: int = 0
    taken: int = 0

    def __post_init__(self) -> None:
        self._frames = deque(maxlen=self.maxlen)

    def push(self, direction: str, frame: Frame) -> None:
        """Called on the link's thread (``on_frame``) for every frame: keep it short."""
        with self._lock:
            self._frames.append((time.time(), direction, frame))
            self.pushed += 1

    def drain(self) -> tuple[list[tuple[float, str, Frame]], int]:
        """Every frame buffered since the last drain, and how many fell out of the buffer."""
        with self._lock:
            items = list(self._frames)
            self._frames.clear()
            lost = self.pushed - self.taken - len(items)
            self.taken = self.pushed
        return items, lost


def frame_lines(items: list[tuple[float, str, Frame]], lost: int, *, hex_mode: bool, type_filter: tuple[str, ...],
                lang: str, limit: int = MAX_LINES_PER_TICK) -> list[str]:
    """The log lines for one tick: filtered, at most ``limit`` (the newest), a note for the rest."""
    if type_filter:
        items = [it for it in items if type_name(it[2]).startswith(type_filter)]
    hidden = lost + max(0, len(items) - limit)
    lines = [ui_text("not_shown", lang, n=hidden)] if hidden else []
    lines += [format_frame(d, f, hex_mode=hex_mode, when=t) for t, d, f in items[-limit:]]
    return lines


def parse_filter(text: str) -> tuple[str, ...]:
    """``selftest, event`` → ``("SELFTEST", "EVENT")``: message-type name prefixes."""
    return tuple(p.strip().upper() for p in text.replace(",", " ").split() if p.strip())


__all__ = ["FrameBuffer", "LinkCounters", "TileState", "format_frame", "frame_lines", "localize", "parse_filter",
           "status_summary", "status_text", "tile_lines", "wrap_fields"]
