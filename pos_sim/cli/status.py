"""``pos-sim status PORT``: a quick look at a terminal without running a self-test.

Says HELLO, reads INFO, then sends STATUS_REQUEST for every component the terminal says is
fitted and prints one table in the manner of ``smartctl -a``: an information section, then
every field of every status block (docs/protocol.md, "Status blocks") in words and with its
unit, in Chinese or English.  ``--json`` prints the same as one object (docs/status.md);
``--watch S`` takes a new snapshot every S seconds until Ctrl-C.

It reports what the terminal says and judges nothing: verdicts, advice and the health bits of
the exit status are ``pos-sim diag``'s.  Exit status: 0 every fitted component answered,
2 the port could not be opened, 4 the terminal did not answer properly or some component gave
no status (its row says why).

:func:`component_rows` turns one :class:`~drivers.terminal.ComponentStatus` into labelled
values, so that anything else that shows status (the TUI's tiles) shows the same words.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
import time
import unicodedata
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from drivers.device import KINDS, Device, open_device
from drivers.errors import EXIT_COMMUNICATION, DriverError
from drivers.escpos import ReceiptPrinter
from drivers.terminal import ComponentStatus, DeviceInfo, HelloInfo, Terminal
from pos_sim import __version__
from pos_sim.diagnostics.catalogue import (
    Catalogue,
    Language,
    default_language,
    load_catalogue,
    load_phrases,
    normalize_language,
)
from pos_sim.errors import UsageError
from pos_sim.ports import add_baud_option, register_url_schemes
from protocols.pos.codes import (
    BatteryStatus,
    Bearer,
    ChipSlotState,
    CodeEnum,
    Component,
    Measurement,
    PanelState,
    PowerSource,
    ReaderState,
    TamperState,
)
from protocols.pos.messages import StatusField, status_fields

SCHEMA_VERSION = 1
PROG = "pos-sim status"

# -- texts ------------------------------------------------------------------------------------
# The catalogue (pos_sim/diagnostics/catalogue.toml) gives the component names, the measurement
# names and units and the track codes; the words only this command uses, and its punctuation,
# are the phrase book pos_sim/cli/text.toml (groups ``status`` and ``marks``), in the same format.

_PHRASES = load_phrases(__package__ or "pos_sim.cli", "text.toml")
_T = _PHRASES.pairs("status")


def _marks(key: str) -> dict[Language, str]:
    return dict(_PHRASES.pairs("marks")[key])


_CELSIUS = _marks("celsius")
#: list separator, clause separator, the colon after a label (Chinese takes full-width marks)
_COMMA = _marks("comma")
_SEMI = _marks("semi")
_COLON = _marks("colon")
_SECONDS = {lang: tuple(_marks(unit)[lang] for unit in ("day", "hour", "minute", "second"))
            for lang in ("zh-CN", "en")}


def text(key: str, lang: Language, **values: object) -> str:
    """One of this command's texts in ``lang``, with ``{name}`` fields filled in."""
    return _PHRASES.text("status", key, lang, **values)


def _named(prefix: str, value: object, lang: Language) -> str:
    """The words for a code value (``reader.ready``); a value outside the table shows as its code."""
    key = f"{prefix}.{value}"
    if key in _T:
        return text(key, lang)
    return str(value) if isinstance(value, str) else text("code", lang, n=value)


def _measure(cat: Catalogue, name: str, value: int, lang: Language) -> str:
    unit = cat.unit(name, lang)
    return f"{value} {unit}" if unit else str(value)


def _celsius(value: int, lang: Language) -> str:
    return f"{value} {_CELSIUS[lang]}"


def _duration(seconds: int, lang: Language) -> str:
    d, rest = divmod(seconds, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    names = _SECONDS[lang]
    parts = [(d, names[0]), (h, names[1]), (m, names[2])]
    shown = [f"{n} {u}" for n, u in parts if n] + [f"{s} {names[3]}"]
    return " ".join(shown)


def _utc(unix: int) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _bits(value: int, names: dict[int, str], lang: Language) -> list[str]:
    return [text(key, lang) for bit, key in names.items() if value & bit]


# -- one component's rows ---------------------------------------------------------------------

Rows = list[tuple[str, str]]


def _system(s: dict[str, Any], cat: Catalogue, lang: Language) -> Rows:
    reset = s["last_reset"]
    if reset in ("none", 0):
        reset_text = text("power_on", lang)
    else:
        try:
            entry = cat.fault(reset)
            reset_text = f"{entry.key}: {entry.message(lang)}"
        except (KeyError, ValueError):
            reset_text = str(reset)
    return [
        (text("memory", lang), text("memory_value", lang, free=s["free_memory_kb"], total=s["total_memory_kb"])),
        (text("uptime", lang), _duration(s["uptime_s"], lang)),
        (text("board_temp", lang), _celsius(s["board_temp_c"], lang)),
        (text("fw_update", lang), _named("fw_state", s["firmware_update_state"], lang)),
        (text("fw_result", lang), _named("fw_result", s["firmware_update_result"], lang)),
        (text("last_reset", lang), reset_text),
    ]


def _track(cat: Catalogue, value: object, lang: Language) -> str:
    try:
        return cat.label("track_code", str(value), lang)
    except KeyError:
        return text("code", lang, n=value)


def _magstripe(s: dict[str, Any], cat: Catalogue, lang: Language) -> Rows:
    tracks = _SEMI[lang].join(text("track", lang, n=n, t=_track(cat, s[f"track{n}"], lang)) for n in (1, 2, 3))
    return [
        (text("head", lang), _named("reader", s["state"], lang)),
        (text("last_swipe", lang), tracks),
        (text("swipes", lang), text("swipes_value", lang, n=s["swipes"], f=s["failed_swipes"])),
    ]


# ESC/POS real-time status bits (docs/protocol.md, "status: printer")
_OFFLINE_BIT = 0x08                                   # DLE EOT 1
_OFFLINE_CAUSES = {0x04: "cover_open", 0x20: "paper_end_stop", 0x40: "error_occurred"}   # DLE EOT 2
_ERROR_CAUSES = {0x08: "cutter", 0x20: "unrecoverable", 0x40: "auto_recoverable"}       # DLE EOT 3
_PAPER_END, _NEAR_END = 0x60, 0x0C                    # DLE EOT 4


def _printer(s: dict[str, Any], cat: Catalogue, lang: Language) -> Rows:
    sensor = s["paper_sensor"]
    paper = "end" if sensor & _PAPER_END else "near_end" if sensor & _NEAR_END else "ok"
    if s["printer_status"] & _OFFLINE_BIT:
        causes = _bits(s["offline_cause"], _OFFLINE_CAUSES, lang)
        state = text("offline", lang) + (_COLON[lang] + _COMMA[lang].join(causes) if causes else "")
    else:
        state = text("online", lang)
    errors = _bits(s["error_cause"], _ERROR_CAUSES, lang)
    raw = " ".join(f"{s[k]:02X}" for k in ("printer_status", "offline_cause", "error_cause", "paper_sensor"))
    return [
        (text("paper", lang), text(f"paper.{paper}", lang)),
        (text("printer", lang), state),
        (text("printer_errors", lang), _COMMA[lang].join(errors) if errors else text("none", lang)),
        (cat.label("measurement", "head_temp_c", lang), _measure(cat, "head_temp_c", s["head_temp_c"], lang)),
        (text("lines", lang), str(s["lines_printed"])),
        (text("escpos", lang), f"DLE EOT 1-4: {raw}"),
    ]


def _screen(s: dict[str, Any], cat: Catalogue, lang: Language) -> Rows:
    size = f"{s['width']} × {s['height']} {text('px', lang)}"
    if s["touch"]:
        size += _COMMA[lang] + text("touch", lang)
    return [
        (text("panel", lang), _named("panel", s["panel"], lang)),
        (text("resolution", lang), size),
        (cat.label("measurement", "backlight_pct", lang), _measure(cat, "backlight_pct", s["backlight_pct"], lang)),
        (cat.label("measurement", "dead_pixels", lang), _measure(cat, "dead_pixels", s["dead_pixels"], lang)),
    ]


def _keypad(s: dict[str, Any], cat: Catalogue, lang: Language) -> Rows:
    stuck = [str(k["key"]) for k in s["stuck_keys"]]
    return [
        (cat.label("measurement", "keys_total", lang), _measure(cat, "keys_total", s["keys_total"], lang)),
        (text("presses", lang), str(s["presses"])),
        (text("stuck", lang), ", ".join(stuck) if stuck else text("none", lang)),
    ]


#: latency_ms when the terminal does not know it
_LATENCY_UNKNOWN = 0xFFFF


def _network(s: dict[str, Any], cat: Catalogue, lang: Language) -> Rows:
    bearer = s["bearer"]
    bearer_text = _named("bearer", bearer, lang)
    ip = str(ipaddress.IPv4Address(bytes(s["ipv4"])))
    if ip == "0.0.0.0":
        ip += text("no_ip", lang)
    if s["host_reachable"]:
        host = (text("host.up", lang, ms=s["latency_ms"]) if s["latency_ms"] != _LATENCY_UNKNOWN
                else text("host.up_unknown", lang))
    else:
        host = text("host.down", lang)
    return [
        (text("bearer", lang), bearer_text),
        (cat.label("measurement", "signal_dbm", lang), _measure(cat, "signal_dbm", s["signal_dbm"], lang)),
        (cat.label("measurement", "link_quality", lang), f"{s['link_quality']} / 255"),
        (cat.label("measurement", "ip_v4", lang), ip),
        (text("apn", lang), s["apn"] or text("none", lang)),
        (text("cell", lang), str(s["cell_id"]) if s["cell_id"] else text("none", lang)),
        (text("sim", lang), text("sim.yes" if s["sim_present"] else "sim.no", lang)),
        (text("host", lang), host),
    ]


def _power(s: dict[str, Any], cat: Catalogue, lang: Language) -> Rows:
    return [
        (text("source", lang), _named("source", s["source"], lang)),
        (cat.label("measurement", "battery_pct", lang), _measure(cat, "battery_pct", s["battery_pct"], lang)),
        (text("battery_status", lang), _named("battery", s["battery_status"], lang)),
        (cat.label("measurement", "voltage_mv", lang), _measure(cat, "voltage_mv", s["voltage_mv"], lang)),
        (cat.label("measurement", "current_ma", lang), _measure(cat, "current_ma", s["current_ma"], lang)),
        (text("battery_temp", lang), _celsius(s["battery_temp_c"], lang)),
    ]


def _security(s: dict[str, Any], cat: Catalogue, lang: Language) -> Rows:
    tamper = _named("tamper", s["tamper"], lang)
    sources = [text(f"tamper_src.{bit}", lang) for bit in range(4) if s["tamper_sources"] & (1 << bit)]
    if sources:
        tamper += (" (" if lang == "en" else "（") + _COMMA[lang].join(sources) + (")" if lang == "en" else "）")
    return [
        (text("tamper", lang), tamper),
        (text("tripped_at", lang), _utc(s["tripped_at"]) if s["tripped_at"] else text("never", lang)),
        (text("keys", lang), text("keys.yes" if s["keys_loaded"] else "keys.no", lang)),
    ]


def _escpos_printer(s: dict[str, Any], cat: Catalogue, lang: Language) -> Rows:
    """A receipt printer's own status bytes (DLE EOT 1-4, GS r 1), every bit in words."""
    f = s["flags"]
    eot1, eot2, eot3, eot4 = (f.get(k, {}) for k in ("printer", "offline_cause", "error_cause", "roll_paper"))
    gsr = f.get("paper_sensor")
    end = eot4.get("paper_end") or eot2.get("paper_end_stop") or (gsr or {}).get("paper_end")
    near = eot4.get("near_end") or (gsr or {}).get("near_end")
    paper = "end" if end else "near_end" if near else "ok"
    causes = [text(k, lang) for k, on in (("cover_open", eot2.get("cover_open")),
                                          ("paper_end_stop", eot2.get("paper_end_stop")),
                                          ("error_occurred", eot2.get("error_occurred")),
                                          ("paper_being_fed", eot2.get("paper_being_fed")),
                                          ("feed_button", eot1.get("feed_button_pressed")),
                                          ("waiting_recovery", eot1.get("waiting_online_recovery"))) if on]
    state = text("offline" if eot1.get("offline") else "online", lang)
    if causes:
        state += _COLON[lang] + _COMMA[lang].join(causes)
    errors = [text(k, lang) for k, on in (("cutter", eot3.get("autocutter_error")),
                                          ("unrecoverable", eot3.get("unrecoverable_error")),
                                          ("auto_recoverable", eot3.get("auto_recoverable_error")),
                                          ("recoverable", eot3.get("recoverable_error"))) if on]
    sensor = (text("not_asked", lang) if gsr is None else
              text("paper.end" if gsr["paper_end"] else "paper.near_end" if gsr["near_end"] else "paper.ok", lang))
    return [
        (text("paper", lang), text(f"paper.{paper}", lang)),
        (text("printer", lang), state),
        (text("printer_errors", lang), _COMMA[lang].join(errors) if errors else text("none", lang)),
        (text("paper_sensor", lang), sensor),
        (text("drawer", lang), text("high" if eot1.get("drawer_pin3_high") else "low", lang)),
        (text("escpos", lang), s["raw"]),
    ]


def escpos_block(status: Any) -> dict[str, Any]:
    """A :class:`protocols.escpos.PrinterStatus` as the status block this command shows."""
    block: dict[str, Any] = status.block()
    return block


#: the phrase-book prefix of a code table's value words (``reader.ready``)
_CODE_WORDS: dict[type[CodeEnum], str] = {
    ReaderState: "reader", ChipSlotState: "slot", PanelState: "panel", Bearer: "bearer", PowerSource: "source",
    BatteryStatus: "battery", TamperState: "tamper"}


def _field_label(component: str, name: str, cat: Catalogue, lang: Language) -> str:
    """A status field's label: this command's word for the component's field (``scanner.state``),
    the catalogue's measurement label, this command's word for the field, or its name."""
    if f"{component}.{name}" in _T:
        return text(f"{component}.{name}", lang)
    if name in Measurement.__members__:
        return cat.label("measurement", name, lang)
    return text(name, lang) if name in _T else name


def _field_value(f: StatusField, value: Any, cat: Catalogue, lang: Language) -> str:
    """A status field's value in words, by its declared kind."""
    if f.kind == "bool":
        return text("flag.yes" if value else "flag.no", lang)
    if f.kind == "code":
        return _named(_CODE_WORDS.get(f.codes, f.name) if f.codes is not None else f.name, value, lang)
    if f.kind == "int":
        return _measure(cat, f.name, value, lang) if f.name in Measurement.__members__ else str(value)
    if f.kind == "bytes":
        return bytes(value).hex(" ").upper() if value else text("none", lang)
    if f.kind == "list":
        items = [" ".join(str(v) for k, v in dict(item).items() if not k.startswith("_")) for item in value]
        return _COMMA[lang].join(items) if items else text("none", lang)
    return str(value) if value else text("none", lang)


def declared_rows(component: str, fields: Sequence[StatusField], s: dict[str, Any], cat: Catalogue,
                  lang: Language) -> Rows:
    """One row per field of a component's status block, from its declaration (``fields``, see
    :func:`protocols.pos.messages.status_fields`): what a component without rows of its own in
    ``_ROWS`` shows."""
    return [(_field_label(component, f.name, cat, lang), _field_value(f, s[f.name], cat, lang)) for f in fields]


#: components whose rows say more than one row per declared field (combined fields, bit names,
#: durations); any other component's rows are :func:`declared_rows`
_ROWS: dict[str, Callable[[dict[str, Any], Catalogue, Language], Rows]] = {
    "system": _system, "magstripe": _magstripe, "printer": _printer, "screen": _screen, "keypad": _keypad,
    "network": _network, "power": _power, "security": _security,
}


def component_rows(result: ComponentStatus, lang: str, catalogue: Catalogue | None = None) -> Rows:
    """``(label, value)`` pairs for one component's status, in ``lang``, units included; a
    component that gave no status is one row saying why (refused, no answer, bad answer)."""
    language = normalize_language(lang)
    cat = catalogue or load_catalogue()
    if result.status is None:
        key = result.problem if result.problem in ("refused", "timeout", "error") else "error"
        return [("", text(key, language, r=result.reason))]
    try:
        if result.status.get("protocol") == "escpos":
            return _escpos_printer(result.status, cat, language)
        rows = _ROWS.get(result.component)
        if rows is None:
            return declared_rows(result.component, status_fields(result.component), result.status, cat, language)
        return rows(result.status, cat, language)
    except (KeyError, TypeError, ValueError) as exc:
        # a block missing a field the spec gives it, or an unknown component: say so, in one row
        return [("", text("error", language, r=f"unexpected status block ({type(exc).__name__}: {exc})"))]


# -- the snapshot -----------------------------------------------------------------------------


def _jsonable(status: dict[str, Any] | None) -> dict[str, Any] | None:
    """A status block as JSON: byte strings as hex, except the IPv4 address (dotted)."""
    if status is None:
        return None
    out: dict[str, Any] = {}
    for key, value in status.items():
        if key == "ipv4" and isinstance(value, bytes | bytearray) and len(value) == 4:
            out[key] = str(ipaddress.IPv4Address(bytes(value)))
        elif isinstance(value, bytes | bytearray):
            out[key] = bytes(value).hex()
        elif isinstance(value, list):
            out[key] = [dict(v) if isinstance(v, dict) else v for v in value]
        else:
            out[key] = value
    return out


class Snapshot:
    """One reading of the terminal: identity, and every fitted component's status."""

    def __init__(self, port: str, hello: HelloInfo, info: DeviceInfo, results: dict[str, ComponentStatus],
                 taken_at: float, kind: str = "terminal") -> None:
        self.kind = kind
        self.port = port
        self.hello = hello
        self.info = info
        self.results = results
        self.taken_at = taken_at

    @property
    def not_fitted(self) -> list[str]:
        """Components of the protocol's table that HELLO did not list (a printer is one component)."""
        if self.kind == "escpos":
            return []
        return [c.name for c in Component if c.name not in self.hello.components]

    @property
    def missing(self) -> list[ComponentStatus]:
        """The fitted components that gave no status."""
        return [r for r in self.results.values() if not r.ok]

    @property
    def exit_status(self) -> int:
        """0, or the communication bit when some component gave no status."""
        return EXIT_COMMUNICATION if self.missing else 0

    def as_json(self, lang: Language) -> dict[str, Any]:
        """The object ``--json`` prints (docs/status.md)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "pos-sim", "version": __version__},
            "port": self.port,
            "lang": lang,
            "taken_at": round(self.taken_at, 3),
            "device": self.info.as_dict(),
            "protocol": ({"name": "ESC/POS", "components": list(self.hello.components)} if self.kind == "escpos" else
                         {"version": self.hello.protocol_version, "max_payload": self.hello.max_payload,
                          "components": list(self.hello.components), "boot_id": self.hello.boot_id}),
            "components": {
                name: {"state": "ok" if r.ok else r.problem, "reason": r.reason or None,
                       "status": _jsonable(r.status)}
                for name, r in self.results.items()},
            "not_fitted": self.not_fitted,
            "exit_status": self.exit_status,
        }


def take_snapshot(term: Device, port: str) -> Snapshot:
    """INFO, then STATUS_REQUEST for every fitted component (a printer: DLE EOT 1-4 and GS r 1)."""
    assert term.hello is not None
    if isinstance(term, ReceiptPrinter):
        info = term.info()
        block = escpos_block(term.status())
        return Snapshot(port, term.hello, info, {"printer": ComponentStatus("printer", block)}, time.time(), "escpos")
    assert isinstance(term, Terminal)
    info = term.info()
    results = term.status_all()
    return Snapshot(port, term.hello, info, results, time.time())


def _width(s: str) -> int:
    """Columns a string takes on a terminal (CJK characters take two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in s)


def _pad(s: str, width: int) -> str:
    return s + " " * max(0, width - _width(s))


def render(snap: Snapshot, lang: Language, cat: Catalogue, watch: float | None = None) -> list[str]:
    """The table, as lines (no blank line inside: a blank line separates snapshots)."""
    d = snap.info
    lifecycle = _named("lifecycle", d.lifecycle, lang) + (
        f"{_COMMA[lang]}{text('merchant', lang)} {d.merchant_id}" if d.merchant_id else "")
    info_rows = [
        (text("terminal", lang), f"{d.manufacturer} {d.model}"),
        (cat.label("ticket_field", "serial_number", lang), d.serial),
        (cat.label("ticket_field", "hardware_revision", lang), d.hardware_rev),
        (cat.label("ticket_field", "firmware_version", lang), d.firmware_version),
        (text("lifecycle", lang), lifecycle),
        (text("port", lang), snap.port),
        (text("protocol", lang), text("escpos_protocol", lang) if snap.kind == "escpos" else
         text("protocol_value", lang, v=snap.hello.protocol_version, p=snap.hello.max_payload)),
        (text("fitted", lang), text("fitted_value", lang, n=len(snap.hello.components),
                                                all=1 if snap.kind == "escpos" else len(Component))),
    ]
    if snap.not_fitted:
        info_rows.append((text("not_fitted", lang),
                          _COMMA[lang].join(cat.label("component", c, lang) for c in snap.not_fitted)))
    when = _utc(int(snap.taken_at))
    if watch is not None:
        when += f" ({text('watch', lang, s=f'{watch:g}')})"
    info_rows.append((text("snapshot", lang), when))
    lines = [f"pos-sim {__version__} status", text("info_section", lang)]
    colon = _COLON[lang].rstrip()
    kw = max(_width(k + colon) for k, _ in info_rows) + 1
    lines += [_pad(k + colon, kw) + v for k, v in info_rows]

    lines.append(text("status_section", lang))
    table: list[tuple[str, str, str]] = []
    for name, result in snap.results.items():
        label = cat.label("component", name, lang) if name in Component.__members__ else name
        for i, (item, value) in enumerate(component_rows(result, lang, cat)):
            table.append((label if i == 0 else "", item, value))
    heads = (cat.label("heading", "component", lang), text("item", lang), text("value", lang))
    w0 = max([_width(heads[0]), *(_width(r[0]) for r in table)]) + 2
    w1 = max([_width(heads[1]), *(_width(r[1]) for r in table)]) + 2
    lines.append((_pad(heads[0], w0) + _pad(heads[1], w1) + heads[2]).rstrip())
    lines += [(_pad(a, w0) + _pad(b, w1) + c).rstrip() for a, b, c in table]
    return lines


# -- the command ------------------------------------------------------------------------------


def add_parser(sub: Any) -> None:
    """Add ``status`` to the command line."""
    p = sub.add_parser(
        "status", help="read every component's status (battery, signal, paper, readers, tamper) without a test",
        description="Connect to the terminal on PORT (a device path, a socket:// or rfc2217:// URL, "
                    "or emu://SCENARIO for the built-in emulator), ask every fitted component for its "
                    "status (STATUS_REQUEST) and print one table: battery, power source, signal, "
                    "bearer, IP, paper, print head, card readers, tamper, memory, board temperature, "
                    "firmware update. Nothing is tested and nothing is judged: `pos-sim diag` does "
                    "that. Exit status 0: every fitted component answered; 2: the port could not be "
                    "opened; 4: the terminal did not answer properly, or a component gave no status "
                    "(its row says why).")
    p.add_argument("port", metavar="PORT", help="device path or URL (see `pos-sim ports`)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (with --watch: one object per line); see docs/status.md")
    p.add_argument("--watch", type=_interval, metavar="S",
                   help="take a new snapshot every S seconds until Ctrl-C (redrawn in place on a terminal; "
                        "otherwise snapshots follow each other, a blank line between)")
    p.add_argument("--lang", metavar="zh|en", help="language of the table (default: from the locale)")
    p.add_argument("--device", choices=KINDS, default="auto",
                   help="what is on PORT: a pos-sim terminal, an ESC/POS receipt printer (its DLE EOT and GS r "
                        "bits), or auto: DLE EOT 1 first, then HELLO (default auto)")
    add_baud_option(p)
    p.set_defaults(func=run)


def _interval(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if not 0.1 <= seconds <= 86400:
        raise argparse.ArgumentTypeError("must be between 0.1 and 86400 seconds")
    return seconds


#: on a terminal: cursor to the top left, clear to the end of the screen
_REDRAW = "\033[H\033[J"


def run(args: argparse.Namespace) -> int:
    """Carry out ``pos-sim status``."""
    try:
        lang = normalize_language(args.lang) if args.lang else default_language()
    except ValueError:
        raise UsageError(f"{PROG}: unknown language {args.lang!r} (use zh or en)") from None
    cat = load_catalogue()
    register_url_schemes()
    out = sys.stdout
    watch: float | None = args.watch
    try:
        with open_device(args.port, getattr(args, "device", "auto"), baud=args.baud) as term:
            if watch is None:
                snap = take_snapshot(term, args.port)
                _show(snap, lang, cat, out, json_out=args.json, watch=None, first=True)
                return _report_missing(snap)
            return _watch(term, args, lang, cat, out, watch)
    except DriverError as exc:
        if args.json:
            print(json.dumps({"schema_version": SCHEMA_VERSION, "port": args.port, "device": None,
                              "components": {}, "error": str(exc), "exit_status": exc.exit_code},
                             ensure_ascii=False), file=out, flush=True)
        print(f"{PROG}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        if watch is None:
            raise   # one look, interrupted: the command line's usual 130
        return 0


def _watch(term: Device, args: argparse.Namespace, lang: Language, cat: Catalogue, out: TextIO,
           every: float) -> int:
    """Snapshots every ``every`` seconds until Ctrl-C (exit 0) or the terminal goes away."""
    first = True
    next_at = time.monotonic()
    while True:
        snap = take_snapshot(term, args.port)
        _show(snap, lang, cat, out, json_out=args.json, watch=every, first=first)
        first = False
        next_at += every
        time.sleep(max(0.0, next_at - time.monotonic()))
        next_at = max(next_at, time.monotonic())   # a slow snapshot does not make the next ones rush


def _show(snap: Snapshot, lang: Language, cat: Catalogue, out: TextIO, *, json_out: bool,
          watch: float | None, first: bool) -> None:
    if json_out:
        doc = snap.as_json(lang)
        if watch is None:
            print(json.dumps(doc, ensure_ascii=False, indent=2), file=out, flush=True)
        else:
            print(json.dumps(doc, ensure_ascii=False), file=out, flush=True)
        return
    body = "\n".join(render(snap, lang, cat, watch))
    if watch is not None and out.isatty():
        out.write(_REDRAW + body + "\n")
    elif watch is not None and not first:
        out.write("\n" + body + "\n")
    else:
        out.write(body + "\n")
    out.flush()


def _report_missing(snap: Snapshot) -> int:
    """One line on stderr naming the components that gave no status."""
    if snap.missing:
        parts = [f"{r.component} {'refused (' + r.reason + ')' if r.problem == 'refused' else r.problem}"
                 for r in snap.missing]
        print(f"{PROG}: no status from {len(parts)} of {len(snap.results)} fitted components: "
              f"{', '.join(parts)} (see the table)", file=sys.stderr)
    return snap.exit_status
