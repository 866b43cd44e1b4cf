"""Scenarios: one emulated terminal and its faults, described in a TOML file.

The built-in scenarios are package data, ``pos_sim/emulator/scenarios/*.toml``, read through
:mod:`importlib.resources` so an installed wheel has them; any other TOML file with the same
layout can be given by path.  Each file starts with a comment block saying what device it
is, what is wrong with it and what a diagnosis should find; :attr:`Scenario.description` holds
that block.  docs/emulator.md documents every table and key; :data:`COMPONENT_SCHEMAS` is the
single source of truth for the per-component keys (parameters and the faults that can be
declared; the other faults of a component follow from its parameters).
"""

from __future__ import annotations

import math
import re
import struct
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Final

from construct import Construct, FormatField, Renamed

from pos_sim.emulator.errors import ScenarioError
from protocols.pos import timing
from protocols.pos.codes import (
    Bearer,
    CodeEnum,
    Component,
    FaultCode,
    KeyCode,
    LifecycleState,
    PowerSource,
    Severity,
    TrackCode,
)
from protocols.pos.faults import component_of
from protocols.pos.framing import MAX_PAYLOAD
from protocols.pos.messages import CATALOGUE, STATUS_BY_COMPONENT, TX_RECORD, MessageType

#: where the built-in scenarios live: the package's own data, pos_sim/emulator/scenarios/
SCENARIO_DIR: Final[Traversable] = resources.files("pos_sim.emulator").joinpath("scenarios")

#: the smallest max_payload a terminal may declare: INFO_REPLY and a transaction record must fit
MIN_PAYLOAD = timing.MIN_PAYLOAD

ParamValue = int | float | bool | str | tuple[str, ...] | tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a component: its TOML type, default (the healthy value) and meaning."""

    kind: str  # "int", "float", "bool", "str", "names" (list of strings), "swipes" (list of lists)
    default: ParamValue
    doc: str
    #: for "str" and "names": the code table the strings must name (None: free text)
    choices: type[CodeEnum] | None = None


@dataclass(frozen=True)
class ComponentSchema:
    """What a ``[components.NAME]`` table may hold."""

    params: Mapping[str, ParamSpec]
    #: faults that can be listed in ``faults = [...]``; the others follow from parameters
    declarable: frozenset[FaultCode]
    #: how the component's other faults arise (for error messages and docs/emulator.md)
    derived: str = ""


def _p(kind: str, default: ParamValue, doc: str, choices: type[CodeEnum] | None = None) -> ParamSpec:
    return ParamSpec(kind, default, doc, choices)


_F = FaultCode
_OK3 = ("ok", "ok", "ok")

COMPONENT_SCHEMAS: dict[Component, ComponentSchema] = {
    Component.system: ComponentSchema({
        "free_memory_kb": _p("int", 18432, "free RAM, KiB (below 2048 the memory check fails out_of_memory)"),
        "total_memory_kb": _p("int", 65536, "RAM, KiB"),
        "board_temp_c": _p("int", 41, "board temperature, degrees Celsius"),
        "firmware_update_state": _p("int", 0, "LwM2M object 5 state"),
        "firmware_update_result": _p("int", 1, "LwM2M object 5 result"),
    }, frozenset({_F.firmware_integrity, _F.firmware_incompatible, _F.firmware_update_failed,
                  _F.clock_invalid}),
        "out_of_memory when free_memory_kb < 2048; watchdog_reset after the firmware crashed"),
    Component.magstripe: ComponentSchema({
        "swipes": _p("int", 1523, "swipes since manufacture"),
        "failed_swipes": _p("int", 14, "swipes with no track read"),
        "test_swipes": _p("swipes", (_OK3, _OK3, _OK3),
                          "one [track1, track2, track3] TrackCode triple per swipe of the self-test"),
    }, frozenset({_F.msr_head_fault}),
        "track faults come from test_swipes: the same bad track on every swipe gives its msr_* code, "
        "bad swipes among good ones give msr_intermittent"),
    Component.chip: ComponentSchema({
        "insertions": _p("int", 812, "insertions since manufacture"),
        "atr": _p("str", "3B6E00000031C071D66438D00300", "answer-to-reset of the test card, hex"),
    }, frozenset({_F.icc_no_atr, _F.icc_bad_atr, _F.icc_contact_fault})),
    Component.contactless: ComponentSchema({
        "taps": _p("int", 950, "taps since manufacture"),
    }, frozenset({_F.nfc_field_fault, _F.nfc_collision, _F.nfc_no_card})),
    Component.printer: ComponentSchema({
        "lines_printed": _p("int", 482113, "dot lines printed since manufacture"),
        "head_temp_c": _p("int", 38, "print-head temperature at rest, degrees Celsius"),
        "paper": _p("str", "ok", "paper roll: ok, near_end or end (gives paper_near_end / paper_end)"),
    }, frozenset({_F.cover_open, _F.cutter_error, _F.head_overheat, _F.printer_unrecoverable}),
        "paper_near_end and paper_end come from paper"),
    Component.screen: ComponentSchema({
        "width": _p("int", 320, "pixels"),
        "height": _p("int", 480, "pixels"),
        "touch": _p("bool", True, "the screen has a touch panel"),
        "backlight_pct": _p("int", 80, "backlight level, percent"),
        "dead_pixels": _p("int", 0, "pixels the panel reports dead (above 0: panel_damaged)"),
        "touch_points": _p("int", 4, "corners that register a touch, 0-4 (below 4: touch_fault)"),
    }, frozenset({_F.backlight_fault, _F.panel_no_signal}),
        "panel_damaged when dead_pixels > 0, touch_fault when touch_points < 4"),
    Component.keypad: ComponentSchema({
        "presses": _p("int", 20431, "key presses since manufacture"),
        "stuck_keys": _p("names", (), "keys that report pressed without a touch (key_stuck)", KeyCode),
        "dead_keys": _p("names", (), "keys that do not register (key_not_registered)", KeyCode),
    }, frozenset(), "key_stuck from stuck_keys, key_not_registered from dead_keys"),
    Component.network: ComponentSchema({
        "bearer": _p("str", "lte_fdd", "bearer when the link is up (Bearer)", Bearer),
        "signal_dbm": _p("int", -71, "signal strength, dBm (-105 or weaker: weak_signal)"),
        "link_quality": _p("int", 182, "0-255"),
        "ipv4": _p("str", "10.64.12.7", "IPv4 address when the link is up"),
        "apn": _p("str", "cmnet", "access point name"),
        "cell_id": _p("int", 27441996, "serving cell id"),
        "dns_ms": _p("int", 38, "DNS lookup time, ms"),
        "latency_ms": _p("int", 126, "round trip to the payment host, ms (above 1000: high_latency)"),
    }, frozenset({_F.no_sim, _F.no_link, _F.no_ip, _F.dns_failure, _F.host_unreachable}),
        "weak_signal from signal_dbm, high_latency from latency_ms; no_link also leaves no IP and "
        "the host unreachable"),
    Component.power: ComponentSchema({
        "source": _p("str", "usb", "power source (PowerSource)", PowerSource),
        "battery_pct": _p("float", 92.0, "battery level at first boot, percent (below 15: battery_low)"),
        "charge_pct_per_hour": _p("float", math.nan,
                                  "battery change per hour of wall-clock time, negative when draining "
                                  "(default: +15 on external power, -10 on battery)"),
        "battery_temp_c": _p("int", 29, "battery temperature, degrees Celsius"),
    }, frozenset({_F.battery_damaged, _F.not_charging, _F.external_power_off, _F.voltage_unstable,
                  _F.battery_missing}),
        "battery_low when the level is below 15 %"),
    Component.scanner: ComponentSchema({
        "decodes": _p("int", 311, "codes decoded since manufacture"),
        "decode_ms": _p("int", 180, "time to decode the test code, ms"),
    }, frozenset({_F.scanner_no_decode, _F.scanner_fault})),
    Component.security: ComponentSchema({
        "tamper_sources": _p("int", 0, "bits: 0 cover switch, 1 mesh, 2 shock (drop), 3 temperature"),
        "tripped_at": _p("int", 0, "Unix time of the last trip, 0 when never"),
    }, frozenset({_F.tamper_tripped, _F.keys_erased, _F.keys_missing}),
        "tamper_tripped requires lifecycle state locked (and locked requires tamper_tripped)"),
}


#: what the emulator adds to ``components.printer.head_temp_c`` while printing, and when the
#: scenario declares head_overheat (the status block and the measurement carry the sum)
HEAD_WARMING_C: Final = 9
HEAD_OVERHEAT_C: Final = 30


@dataclass(frozen=True)
class WireField:
    """The protocol field a scenario number ends up in, found in its construct declaration.

    ``add`` and ``scale`` are what the emulator does to the number before it is encoded (a print
    head warms up; a lookup takes up to 1.2 times its nominal time), so the limits leave room
    for them: a scenario is refused at load rather than crashing the emulator's thread later.
    """

    #: where the field is, for people: ``STATUS_REPLY printer``
    message: str
    root: Construct
    #: field names from ``root`` down to the number
    path: tuple[str, ...]
    add: int = 0
    scale: float = 1.0
    #: a floor the meaning sets where the field's type allows less (a duration is never negative)
    at_least: int | None = None
    #: what ``add``, ``scale`` or ``at_least`` is, for the message
    note: str = ""

    @property
    def format(self) -> str:
        """The field's ``struct`` format (``>H``, ``>b``, ...), from the declaration."""
        node: Any = self.root
        for name in self.path:
            node = _find_field(node, name)
        while not isinstance(node, FormatField):
            node = node.subcon
        return str(node.fmtstr)

    @property
    def wire_range(self) -> tuple[int, int]:
        """The smallest and largest value the field itself holds."""
        fmt = self.format
        bits = 8 * struct.calcsize(fmt)
        if fmt[-1].islower():
            return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        return 0, (1 << bits) - 1

    @property
    def limits(self) -> tuple[int, int]:
        """The values a scenario may give, leaving room for what the emulator adds."""
        lo, hi = self.wire_range
        return max(lo, self.at_least if self.at_least is not None else lo), math.floor((hi - self.add) / self.scale)

    def describe(self) -> str:
        """``STATUS_REPLY printer.head_temp_c (s8)``."""
        kind = f"{'s' if self.format[-1].islower() else 'u'}{8 * struct.calcsize(self.format)}"
        return f"{self.message}.{'.'.join(self.path)} ({kind}{', ' + self.note if self.note else ''})"


def _find_field(node: Any, name: str) -> Construct:
    """The field called ``name`` anywhere below ``node`` (through arrays and prefixes)."""
    todo = [node]
    while todo:
        here = todo.pop(0)
        for child in [*getattr(here, "subcons", ()), *([here.subcon] if hasattr(here, "subcon") else [])]:
            if isinstance(child, Renamed) and child.name == name:
                return child
            todo.append(child)
    raise KeyError(f"no field {name!r} in {node}")


def _status(component: str, field_name: str, **kw: Any) -> WireField:
    return WireField(f"STATUS_REPLY {component}", STATUS_BY_COMPONENT[component], (field_name,), **kw)


def _measured(**kw: Any) -> WireField:
    return WireField("SELFTEST_RESULT", CATALOGUE[MessageType.SELFTEST_RESULT].declaration,
                     ("measurements", "value"), **kw)


#: every number a scenario file gives, by its key, and the wire field it is sent in
WIRE_FIELDS: Final[dict[str, WireField]] = {
    **{f"components.{c}.{k}": _status(c, k) for c, keys in {
        "system": ("free_memory_kb", "total_memory_kb", "board_temp_c", "firmware_update_state",
                   "firmware_update_result"),
        "magstripe": ("swipes", "failed_swipes"),
        "chip": ("insertions",),
        "contactless": ("taps",),
        "printer": ("lines_printed",),
        "screen": ("width", "height", "backlight_pct", "dead_pixels"),
        "keypad": ("presses",),
        "network": ("signal_dbm", "link_quality", "cell_id", "latency_ms"),
        "power": ("battery_temp_c",),
        "scanner": ("decodes",),
        "security": ("tamper_sources", "tripped_at"),
    }.items() for k in keys},
    "components.printer.head_temp_c": _status(
        "printer", "head_temp_c", add=HEAD_WARMING_C + HEAD_OVERHEAT_C,
        note=f"less the {HEAD_WARMING_C + HEAD_OVERHEAT_C} C a printing, overheating head adds"),
    "components.screen.touch_points": _measured(),
    "components.network.dns_ms": _measured(scale=1.2, at_least=0,
                                           note="a duration, less the 20 % a slow lookup adds"),
    "components.scanner.decode_ms": _measured(at_least=0, note="a duration"),
    "lifecycle.counter": WireField("LC_CHALLENGE", CATALOGUE[MessageType.LC_CHALLENGE].declaration, ("counter",)),
    "lifecycle.activated_at": WireField("INFO_REPLY", CATALOGUE[MessageType.INFO_REPLY].declaration,
                                        ("activated_at",)),
    "event_log.time": WireField("EVENTLOG_PAGE", CATALOGUE[MessageType.EVENTLOG_PAGE].declaration,
                                ("entries", "time")),
    "txlog.until": WireField("TXLOG_PAGE record", TX_RECORD, ("time",)),
}


def _fits(where: str, key: str, value: int) -> int:
    """``value`` if it fits the wire field of ``key`` (a :data:`WIRE_FIELDS` key); else one line
    naming the key, the value and the limits."""
    wf = WIRE_FIELDS[key]
    lo, hi = wf.limits
    if not lo <= value <= hi:
        raise _Invalid(f"{where} = {value} does not fit on the wire: it is sent as {wf.describe()}, "
                       f"which takes {lo}..{hi}")
    return value


@dataclass(frozen=True)
class ComponentConfig:
    """One component of a scenario: the faults declared for it and its parameters."""

    faults: tuple[FaultCode, ...] = ()
    params: Mapping[str, ParamValue] = field(default_factory=dict)

    def get_int(self, name: str) -> int:
        """An integer parameter."""
        value = self.params[name]
        assert isinstance(value, int) and not isinstance(value, bool), name
        return value

    def get_float(self, name: str) -> float:
        """A number parameter."""
        value = self.params[name]
        assert isinstance(value, int | float) and not isinstance(value, bool), name
        return float(value)

    def get_bool(self, name: str) -> bool:
        """A true / false parameter."""
        value = self.params[name]
        assert isinstance(value, bool), name
        return value

    def get_str(self, name: str) -> str:
        """A text parameter."""
        value = self.params[name]
        assert isinstance(value, str), name
        return value

    def get_names(self, name: str) -> tuple[str, ...]:
        """A list-of-names parameter."""
        value = self.params[name]
        assert isinstance(value, tuple), name
        return tuple(str(v) for v in value)

    def get_swipes(self, name: str) -> tuple[tuple[str, ...], ...]:
        """A list of track triples."""
        value = self.params[name]
        assert isinstance(value, tuple), name
        return tuple(tuple(str(t) for t in v) for v in value if isinstance(v, tuple))

    def has(self, code: FaultCode) -> bool:
        """Whether ``code`` is declared for this component."""
        return code in self.faults


@dataclass(frozen=True)
class DeviceConfig:
    """The terminal's identity and what it is built with."""

    manufacturer: str = "SimPOS"
    model: str = "SP-M7"
    serial: str = "SP0000000"
    hardware_rev: str = "B2"
    firmware_version: str = "3.2.1"
    #: largest payload the terminal accepts (HELLO_REPLY negotiates the lower of both sides)
    max_payload: int = MAX_PAYLOAD
    components: frozenset[Component] = frozenset(Component)
    #: run self-tests on a tamper-locked terminal (docs/protocol.md section 8 says NAK
    #: not_permitted; some firmware keeps service diagnostics available; see docs/emulator.md)
    diagnostics_when_locked: bool = False
    #: text a faulty firmware puts before every self-test note, ERROR detail and LC_RESULT
    #: message (empty: none); the hostile-texts scenario uses it to test masking
    firmware_text: str = ""


@dataclass(frozen=True)
class LifecycleConfig:
    """Where the terminal is in its life at first boot, and its lifecycle key."""

    state: LifecycleState = LifecycleState.unactivated
    merchant_id: str = ""
    activated_at: int = 0
    counter: int = 0
    #: the per-device 32-byte HMAC-SHA256 key (never printed: repr=False)
    key: bytes = field(default=bytes(32), repr=False)


@dataclass(frozen=True)
class LinkFaults:
    """What the line does to bytes, both directions, from a seeded random generator."""

    corrupt_rate: float = 0.0
    drop_rate: float = 0.0
    delay_rate: float = 0.0
    delay_ms: tuple[int, int] = (20, 80)
    seed: int = 0

    @property
    def active(self) -> bool:
        """Whether the line misbehaves at all."""
        return self.corrupt_rate > 0 or self.drop_rate > 0 or self.delay_rate > 0


@dataclass(frozen=True)
class CrashConfig:
    """The firmware stops dead when a component's self-test reaches a percentage."""

    component: Component
    at_percent: int = 50


@dataclass(frozen=True)
class TxLogConfig:
    """How the transaction log is generated at first boot (seeded: the same log every time)."""

    records: int = 120
    #: Unix time of the newest record; records spread over ``days`` before it
    until: int = 1795000000
    days: int = 30


@dataclass(frozen=True)
class LogEntryConfig:
    """An entry already in the event log at first boot (the terminal's history)."""

    time: int
    component: Component
    code: FaultCode
    severity: Severity


@dataclass(frozen=True)
class Scenario:
    """One emulated terminal: identity, lifecycle, faults, line behaviour and history."""

    name: str
    #: the file it was read from: a path, or a built-in scenario's package resource
    path: Path | Traversable
    description: str
    seed: int
    device: DeviceConfig
    lifecycle: LifecycleConfig
    link: LinkFaults
    crash: CrashConfig | None
    txlog: TxLogConfig
    event_log: tuple[LogEntryConfig, ...]
    components: Mapping[Component, ComponentConfig]

    def component(self, component: Component) -> ComponentConfig:
        """The configuration of a component (defaults when the file has no table for it)."""
        return self.components[component]

    def fitted(self, component: Component) -> bool:
        """Whether the terminal has this component."""
        return component in self.device.components


# -- loading ----------------------------------------------------------------------------------

def scenario_names() -> list[str]:
    """The names of the built-in scenarios, sorted."""
    try:
        entries = list(SCENARIO_DIR.iterdir())
    except OSError:        # a broken install without its data: no built-in scenarios
        return []
    return sorted(e.name.removesuffix(".toml") for e in entries if e.name.endswith(".toml") and e.is_file())


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a built-in scenario by name, or any scenario file by path.

    Raises :class:`ScenarioError` with a message naming the file and the problem (unknown
    name with the list of known ones, unreadable file, invalid TOML, bad value).
    """
    text = str(name_or_path)
    path: Path | Traversable
    if isinstance(name_or_path, Path) or "/" in text or text.endswith(".toml"):
        path = Path(name_or_path).expanduser()
    else:
        path = SCENARIO_DIR / f"{text}.toml"
        if not path.is_file():
            known = ", ".join(scenario_names()) or "(none found)"
            raise ScenarioError(f"unknown scenario {text!r}; known scenarios: {known} "
                                "(or give the path of a .toml file)")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read scenario file: {exc.strerror or exc}") from exc
    try:
        source = raw.decode("utf-8")
        data = tomllib.loads(source)
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path}: not UTF-8 text: {exc.reason}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: invalid TOML: {exc}") from exc
    try:
        return _build(path, source, data)
    except _Invalid as exc:
        raise ScenarioError(f"{path}: {exc}") from None


class _Invalid(Exception):
    """A value in the file is wrong (turned into ScenarioError with the file name)."""


_TOP = {"scenario", "device", "lifecycle", "link", "crash", "txlog", "event_log", "components"}


def _description(source: str) -> str:
    """The comment block at the top of the file, without the ``#`` markers."""
    lines: list[str] = []
    for line in source.splitlines():
        stripped = line.strip()
        if not stripped.startswith("#"):
            break
        lines.append(stripped[1:].removeprefix(" "))
    return "\n".join(lines).strip()


def _table(data: Mapping[str, Any], key: str, allowed: set[str]) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise _Invalid(f"[{key}] must be a table")
    unknown = set(value) - allowed
    if unknown:
        raise _Invalid(f"[{key}] has unknown key(s) {', '.join(sorted(unknown))}; "
                       f"allowed: {', '.join(sorted(allowed))}")
    return value


def _get(table: Mapping[str, Any], where: str, key: str, kind: type, default: Any) -> Any:
    value = table.get(key, default)
    ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise _Invalid(f"{where}.{key} must be {kind.__name__}, not {type(value).__name__} ({value!r})")
    return value


def _code(enum: type[CodeEnum], value: object, where: str) -> Any:
    if not isinstance(value, str) or value not in enum.__members__:
        raise _Invalid(f"{where}: {value!r} is not a {enum.__name__} (one of "
                       f"{', '.join(enum.__members__)})")
    return enum[value]


def _build(path: Path | Traversable, source: str, data: dict[str, Any]) -> Scenario:
    unknown = set(data) - _TOP
    if unknown:
        raise _Invalid(f"unknown table(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(_TOP))}")
    meta = _table(data, "scenario", {"name", "seed"})
    name = _get(meta, "scenario", "name", str, Path(path.name).stem)
    seed = _get(meta, "scenario", "seed", int, 0)
    device = _device(_table(data, "device", {
        "manufacturer", "model", "serial", "hardware_rev", "firmware_version", "max_payload",
        "components", "diagnostics_when_locked", "firmware_text"}))
    lifecycle = _lifecycle(_table(data, "lifecycle", {"state", "merchant_id", "activated_at", "counter", "key"}))
    link = _link(_table(data, "link", {"corrupt_rate", "drop_rate", "delay_rate", "delay_ms", "seed"}), seed)
    crash_t = _table(data, "crash", {"component", "at_percent"})
    crash = None
    if crash_t:
        crash = CrashConfig(_code(Component, crash_t.get("component"), "crash.component"),
                            _get(crash_t, "crash", "at_percent", int, 50))
        if not 0 <= crash.at_percent <= 100:
            raise _Invalid("crash.at_percent must be 0..100")
    tx_t = _table(data, "txlog", {"records", "until", "days"})
    txlog = TxLogConfig(_get(tx_t, "txlog", "records", int, 120),
                        _fits("txlog.until", "txlog.until", _get(tx_t, "txlog", "until", int, 1795000000)),
                        _get(tx_t, "txlog", "days", int, 30))
    if not 0 <= txlog.records <= 100_000 or txlog.days < 1 or txlog.until <= txlog.days * 86400:
        raise _Invalid("txlog: records must be 0..100000, days at least 1, until a Unix time")
    event_log = _event_log(data.get("event_log", []))
    components = _components(_table(data, "components", {c.name for c in Component}))
    security = components[Component.security]
    tripped = security.has(FaultCode.tamper_tripped)
    if tripped != (lifecycle.state == LifecycleState.locked):
        raise _Invalid("security fault tamper_tripped and lifecycle state locked go together "
                       "(a terminal is locked by its tamper switch and by nothing else)")
    return Scenario(name=name, path=path, description=_description(source), seed=seed, device=device,
                    lifecycle=lifecycle, link=link, crash=crash, txlog=txlog, event_log=event_log,
                    components=components)


def _text(table: Mapping[str, Any], where: str, key: str, default: str) -> str:
    value: str = _get(table, where, key, str, default)
    if len(value.encode("utf-8")) > 255:
        raise _Invalid(f"{where}.{key} is longer than 255 bytes")
    return value


def _device(t: dict[str, Any]) -> DeviceConfig:
    d = DeviceConfig()
    comps = t.get("components")
    fitted = d.components
    if comps is not None:
        if not isinstance(comps, list):
            raise _Invalid("device.components must be a list of component names")
        fitted = frozenset(_code(Component, c, "device.components") for c in comps)
    max_payload = _get(t, "device", "max_payload", int, d.max_payload)
    if not MIN_PAYLOAD <= max_payload <= MAX_PAYLOAD:
        raise _Invalid(f"device.max_payload must be {MIN_PAYLOAD}..{MAX_PAYLOAD}")
    serial = _text(t, "device", "serial", d.serial)
    if not serial:
        raise _Invalid("device.serial must not be empty")
    return DeviceConfig(
        manufacturer=_text(t, "device", "manufacturer", d.manufacturer),
        model=_text(t, "device", "model", d.model),
        serial=serial,
        hardware_rev=_text(t, "device", "hardware_rev", d.hardware_rev),
        firmware_version=_text(t, "device", "firmware_version", d.firmware_version),
        max_payload=max_payload,
        components=fitted,
        diagnostics_when_locked=_get(t, "device", "diagnostics_when_locked", bool, False),
        firmware_text=_text(t, "device", "firmware_text", ""),
    )


def _lifecycle(t: dict[str, Any]) -> LifecycleConfig:
    key_hex = _get(t, "lifecycle", "key", str, "")
    if not re.fullmatch(r"[0-9a-fA-F]{64}", key_hex):
        raise _Invalid("lifecycle.key must be the terminal's 32-byte key as 64 hex digits")
    counter = _fits("lifecycle.counter", "lifecycle.counter", _get(t, "lifecycle", "counter", int, 0))
    activated_at = _fits("lifecycle.activated_at", "lifecycle.activated_at",
                         _get(t, "lifecycle", "activated_at", int, 0))
    state = _code(LifecycleState, t.get("state", "unactivated"), "lifecycle.state")
    merchant = _text(t, "lifecycle", "merchant_id", "")
    if state in (LifecycleState.activated, LifecycleState.bound) and not merchant:
        raise _Invalid(f"lifecycle.state {state.name} needs a merchant_id")
    if state in (LifecycleState.unactivated, LifecycleState.revoked) and merchant:
        raise _Invalid(f"lifecycle.state {state.name} has no merchant; remove merchant_id")
    return LifecycleConfig(state=state, merchant_id=merchant, activated_at=activated_at, counter=counter,
                           key=bytes.fromhex(key_hex))


def _link(t: dict[str, Any], seed: int) -> LinkFaults:
    rates = {k: _get(t, "link", k, float, 0.0) for k in ("corrupt_rate", "drop_rate", "delay_rate")}
    for k, v in rates.items():
        if not 0.0 <= v <= 0.5:
            raise _Invalid(f"link.{k} must be between 0 and 0.5")
    delay = t.get("delay_ms", [20, 80])
    if (not isinstance(delay, list) or len(delay) != 2 or not all(isinstance(x, int) for x in delay)
            or not 0 <= delay[0] <= delay[1] <= 10_000):
        raise _Invalid("link.delay_ms must be [min, max] in milliseconds")
    return LinkFaults(rates["corrupt_rate"], rates["drop_rate"], rates["delay_rate"],
                      (delay[0], delay[1]), _get(t, "link", "seed", int, seed))


def _event_log(items: object) -> tuple[LogEntryConfig, ...]:
    if not isinstance(items, list):
        raise _Invalid("event_log must be an array of tables ([[event_log]])")
    out = []
    for i, item in enumerate(items):
        where = f"event_log[{i}]"
        if not isinstance(item, dict) or set(item) - {"time", "component", "code", "severity"}:
            raise _Invalid(f"{where} must be a table with time, component, code and severity")
        out.append(LogEntryConfig(
            time=_fits(f"{where}.time", "event_log.time", _get(item, where, "time", int, 0)),
            component=_code(Component, item.get("component"), f"{where}.component"),
            code=_code(FaultCode, item.get("code"), f"{where}.code"),
            severity=_code(Severity, item.get("severity", "error"), f"{where}.severity"),
        ))
    return tuple(out)


def _param(component: Component, key: str, spec: ParamSpec, value: object) -> ParamValue:
    where = f"components.{component.name}.{key}"
    if spec.kind in ("int", "float", "bool", "str"):
        kind: type = {"int": int, "float": float, "bool": bool, "str": str}[spec.kind]
        got: ParamValue = _get({key: value}, f"components.{component.name}", key, kind, None)
        if spec.kind == "int" and isinstance(got, int):
            _fits(where, where, got)
        if isinstance(got, str):
            if spec.choices is not None:
                _code(spec.choices, got, where)
            if len(got.encode("utf-8")) > 255:
                raise _Invalid(f"{where} is longer than 255 bytes")
        return got
    if spec.kind == "names":
        if not isinstance(value, list):
            raise _Invalid(f"{where} must be a list of names")
        if spec.choices is not None:
            for v in value:
                _code(spec.choices, v, where)
        return tuple(str(v) for v in value)
    # "swipes": a list of [track1, track2, track3] TrackCode names
    if not isinstance(value, list) or not value or not all(isinstance(s, list) and len(s) == 3 for s in value):
        raise _Invalid(f"{where} must be a non-empty list of [track1, track2, track3] triples")
    for swipe in value:
        for t in swipe:
            _code(TrackCode, t, where)
    return tuple(tuple(str(t) for t in s) for s in value)


def _components(t: dict[str, Any]) -> dict[Component, ComponentConfig]:
    out: dict[Component, ComponentConfig] = {}
    for component in Component:
        schema = COMPONENT_SCHEMAS[component]
        table = t.get(component.name, {})
        if not isinstance(table, dict):
            raise _Invalid(f"[components.{component.name}] must be a table")
        allowed = {"faults", *schema.params}
        unknown = set(table) - allowed
        if unknown:
            raise _Invalid(f"[components.{component.name}] has unknown key(s) {', '.join(sorted(unknown))}; "
                           f"allowed: {', '.join(sorted(allowed))}")
        faults_raw = table.get("faults", [])
        if not isinstance(faults_raw, list):
            raise _Invalid(f"components.{component.name}.faults must be a list of fault names")
        faults = []
        for f in faults_raw:
            code = _code(FaultCode, f, f"components.{component.name}.faults")
            if component_of(code) != component:
                raise _Invalid(f"components.{component.name}.faults: {code.name} is not a fault of "
                               f"{component.name}")
            if code not in schema.declarable:
                hint = f" ({schema.derived})" if schema.derived else ""
                declarable = ", ".join(sorted(c.name for c in schema.declarable)) or "none"
                raise _Invalid(f"components.{component.name}.faults: {code.name} cannot be declared"
                               f"{hint}; declarable: {declarable}")
            faults.append(code)
        params: dict[str, ParamValue] = {}
        for key, spec in schema.params.items():
            params[key] = _param(component, key, spec, table[key]) if key in table else spec.default
        out[component] = ComponentConfig(tuple(dict.fromkeys(faults)), params)
    printer = out[Component.printer].get_str("paper")
    if printer not in ("ok", "near_end", "end"):
        raise _Invalid("components.printer.paper must be ok, near_end or end")
    power = out[Component.power]
    if not 0 <= power.get_float("battery_pct") <= 100:
        raise _Invalid("components.power.battery_pct must be 0..100")
    screen = out[Component.screen]
    if not 0 <= screen.get_int("touch_points") <= 4 or not 0 <= screen.get_int("backlight_pct") <= 100:
        raise _Invalid("components.screen.touch_points must be 0..4 and backlight_pct 0..100")
    ipv4 = out[Component.network].get_str("ipv4")
    if not re.fullmatch(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})", ipv4) or any(
            int(x) > 255 for x in ipv4.split(".")):
        raise _Invalid("components.network.ipv4 must be a dotted IPv4 address")
    atr = out[Component.chip].get_str("atr")
    if not re.fullmatch(r"([0-9a-fA-F]{2}){2,33}", atr):
        raise _Invalid("components.chip.atr must be 2-33 bytes of hex")
    return out
