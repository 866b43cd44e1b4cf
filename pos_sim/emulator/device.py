"""The emulated hardware: what each component reports, from the scenario, the state and time.

:class:`Device` answers "what would this terminal's status block say right now": the printer's
ESC/POS status bytes, LwM2M power and connectivity values, the magnetic head's last track
codes, and so on.  Everything is derived from the scenario's faults and parameters, the
persistent :class:`~pos_sim.emulator.state.DeviceState` (lifecycle, usage counters, battery)
and a few transient flags the self-tests set while they run (a card in the slot, a page being
printed).  It does no I/O and keeps no clock of its own: callers pass ``now`` (monotonic
seconds).
"""

from __future__ import annotations

import ipaddress
import math
from typing import Any

from pos_sim.emulator.scenario import (
    COMPONENT_SCHEMAS,
    HEAD_OVERHEAT_C,
    HEAD_WARMING_C,
    ComponentConfig,
    Scenario,
)
from pos_sim.emulator.state import DeviceState
from protocols.pos.codes import (
    BatteryStatus,
    Bearer,
    ChipSlotState,
    Component,
    FaultCode,
    KeyCode,
    PanelState,
    PowerSource,
    ReaderState,
    TamperState,
    TrackCode,
)
from protocols.pos.messages import status_fields

#: below this battery level the terminal reports battery_low (LwM2M battery status 4)
BATTERY_LOW_PCT = 15.0
#: the emulated terminal does not die at 0 %: it stays at this level so a session can finish
BATTERY_FLOOR_PCT = 1.0
#: signal at or below this is weak (LwM2M error 4)
WEAK_SIGNAL_DBM = -105
#: a round trip above this to the payment host is too slow
HIGH_LATENCY_MS = 1000
#: free memory below this fails the memory check
MIN_FREE_MEMORY_KB = 2048

# ESC/POS real-time status bytes (DLE EOT n): bits 1 and 4 are always 1, bits 0 and 7 always 0
_ESCPOS_BASE = 0x12
_OFFLINE = 0x08          # DLE EOT 1 bit 3
_COVER_OPEN = 0x04       # DLE EOT 2 bit 2
_PAPER_END_STOP = 0x20   # DLE EOT 2 bit 5
_ERROR_OCCURRED = 0x40   # DLE EOT 2 bit 6
_CUTTER_ERROR = 0x08     # DLE EOT 3 bit 3
_UNRECOVERABLE = 0x20    # DLE EOT 3 bit 5
_AUTO_RECOVERABLE = 0x40  # DLE EOT 3 bit 6
_NEAR_END = 0x0C         # DLE EOT 4 bits 2-3
_PAPER_END = 0x60        # DLE EOT 4 bits 5-6

#: the usage counters (swipes, lines printed, ...), each a counter parameter of its component's scenario table
_USAGE_PARAMS: dict[str, tuple[Component, str]] = {
    name: (c, name) for c, schema in COMPONENT_SCHEMAS.items() for name, spec in schema.params.items() if spec.counter}


class Device:
    """One emulated terminal's hardware, as its firmware sees it."""

    def __init__(self, scenario: Scenario, state: DeviceState, boot: float) -> None:
        self.scenario = scenario
        self.state = state
        self.boot = boot
        # the battery level is state.battery_pct at monotonic time _battery_ref
        self._battery_ref = boot
        # transient hardware conditions while self-tests run
        self.printing = False
        self.card_in_slot = False
        self.cards_in_field = 0
        self.reading: set[Component] = set()
        self.last_tracks: tuple[TrackCode, TrackCode, TrackCode] = (TrackCode.ok,) * 3
        for name, (component, param) in _USAGE_PARAMS.items():
            state.usage.setdefault(name, scenario.component(component).get_int(param))

    def has(self, component: Component, code: FaultCode) -> bool:
        """Whether the scenario declares ``code`` for ``component``."""
        return self.scenario.component(component).has(code)

    def bump(self, counter: str, by: int = 1) -> None:
        """Add to a usage counter (swipes, lines printed, ...), kept in the state file."""
        self.state.usage[counter] = (self.state.usage.get(counter, 0) + by) & 0xFFFFFFFF

    def uptime_ms(self, now: float) -> int:
        """Milliseconds since boot, wrapping at 32 bits as on the wire."""
        return int((now - self.boot) * 1000) & 0xFFFFFFFF

    # -- power ---------------------------------------------------------------------------------

    @property
    def power_source(self) -> PowerSource:
        """Where the power comes from now (external power off means the battery)."""
        cfg = self.scenario.component(Component.power)
        if cfg.has(FaultCode.external_power_off):
            return PowerSource.battery
        return PowerSource[cfg.get_str("source")]

    @property
    def on_external_power(self) -> bool:
        """Whether an adapter or USB powers the terminal."""
        return self.power_source not in (PowerSource.battery, PowerSource.external_battery)

    @property
    def charge_rate(self) -> float:
        """Battery change in percent per hour of wall-clock time (negative: draining)."""
        cfg = self.scenario.component(Component.power)
        rate = cfg.get_float("charge_pct_per_hour")
        if math.isnan(rate):
            rate = 15.0 if self.on_external_power else -10.0
        if cfg.has(FaultCode.not_charging) and rate > 0:
            rate = -2.0
        if self.power_source == PowerSource.battery and rate > 0 and cfg.has(FaultCode.external_power_off):
            rate = -10.0
        return rate

    def battery_pct(self, now: float) -> float:
        """The battery level at ``now``: it drains (or charges) with wall-clock time."""
        if self.has(Component.power, FaultCode.battery_missing):
            return 0.0
        level = self.state.battery_pct + self.charge_rate * (now - self._battery_ref) / 3600.0
        return min(100.0, max(min(BATTERY_FLOOR_PCT, self.state.battery_pct), level))

    def battery_low_at(self, now: float) -> float | None:
        """When the level will fall below the low threshold (None: it will not, or already has)."""
        level = self.battery_pct(now)
        rate = self.charge_rate
        if level < BATTERY_LOW_PCT or rate >= 0 or self.has(Component.power, FaultCode.battery_missing):
            return None
        return now + (level - BATTERY_LOW_PCT) / -rate * 3600.0 + 1e-3

    def settle_battery(self, now: float) -> None:
        """Fold the drain so far into the state (before it is saved)."""
        self.state.battery_pct = self.battery_pct(now)
        self._battery_ref = now

    def battery_status(self, now: float) -> BatteryStatus:
        """LwM2M battery status (object 3, resource 20)."""
        if self.has(Component.power, FaultCode.battery_missing):
            return BatteryStatus.not_installed
        if self.has(Component.power, FaultCode.battery_damaged):
            return BatteryStatus.damaged
        level = self.battery_pct(now)
        if self.on_external_power and self.charge_rate > 0:
            return BatteryStatus.charge_complete if level >= 100.0 else BatteryStatus.charging
        return BatteryStatus.low if level < BATTERY_LOW_PCT else BatteryStatus.normal

    def voltage_mv(self, now: float) -> int:
        """Supply voltage: the adapter's on external power, else the cell's (3.3-4.2 V)."""
        source = self.power_source
        if source == PowerSource.usb:
            volts = 5020
        elif self.on_external_power:
            volts = 9050
        else:
            volts = 3300 + int(self.battery_pct(now) * 9)
        if self.has(Component.power, FaultCode.voltage_unstable):
            volts -= 700  # the supply sags out of range under load
        return volts

    def current_ma(self, now: float) -> int:
        """Battery current: positive while charging, negative while discharging."""
        status = self.battery_status(now)
        if status == BatteryStatus.charging:
            return 480
        if status in (BatteryStatus.charge_complete, BatteryStatus.not_installed):
            return 0
        draw = 180 + (900 if self.printing else 0)
        return -draw if not self.on_external_power else -20

    # -- printer -------------------------------------------------------------------------------

    @property
    def paper(self) -> str:
        """The paper roll: ok, near_end or end."""
        return self.scenario.component(Component.printer).get_str("paper")

    def escpos_status(self) -> tuple[int, int, int, int]:
        """The four ESC/POS real-time status bytes (DLE EOT 1, 2, 3 and 4)."""
        printer = self.scenario.component(Component.printer)
        cover = printer.has(FaultCode.cover_open)
        unrecoverable = printer.has(FaultCode.printer_unrecoverable)
        cutter = printer.has(FaultCode.cutter_error)
        overheat = printer.has(FaultCode.head_overheat)
        paper_end = self.paper == "end"
        error = unrecoverable or cutter or overheat
        offline_cause = _ESCPOS_BASE
        offline_cause |= _COVER_OPEN if cover else 0
        offline_cause |= _PAPER_END_STOP if paper_end else 0
        offline_cause |= _ERROR_OCCURRED if error else 0
        offline = offline_cause != _ESCPOS_BASE
        error_cause = _ESCPOS_BASE
        error_cause |= _CUTTER_ERROR if cutter else 0
        error_cause |= _UNRECOVERABLE if unrecoverable else 0
        error_cause |= _AUTO_RECOVERABLE if overheat else 0
        sensor = _ESCPOS_BASE
        if paper_end:
            sensor |= _PAPER_END | _NEAR_END  # the near-end sensor is uncovered too once the roll is out
        elif self.paper == "near_end":
            sensor |= _NEAR_END
        return (_ESCPOS_BASE | (_OFFLINE if offline else 0), offline_cause, error_cause, sensor)

    def head_temp_c(self) -> int:
        """Print-head temperature: warmer while printing, hot when overheating."""
        printer = self.scenario.component(Component.printer)
        temp = printer.get_int("head_temp_c") + (HEAD_WARMING_C if self.printing else 0)
        return temp + HEAD_OVERHEAT_C if printer.has(FaultCode.head_overheat) else temp

    # -- network -------------------------------------------------------------------------------

    @property
    def link_up(self) -> bool:
        """Whether the bearer is up."""
        net = self.scenario.component(Component.network)
        return not (net.has(FaultCode.no_link) or self.no_sim)

    @property
    def no_sim(self) -> bool:
        """No SIM on a cellular bearer (a Wi-Fi or Ethernet terminal needs none)."""
        net = self.scenario.component(Component.network)
        return net.has(FaultCode.no_sim) and Bearer[net.get_str("bearer")] not in (
            Bearer.wlan, Bearer.ethernet, Bearer.bluetooth)

    @property
    def ipv4(self) -> bytes:
        """The terminal's address, 0.0.0.0 when it has none."""
        net = self.scenario.component(Component.network)
        if not self.link_up or net.has(FaultCode.no_ip):
            return bytes(4)
        return ipaddress.IPv4Address(net.get_str("ipv4")).packed

    @property
    def host_reachable(self) -> bool:
        """Whether the last probe of the payment host answered."""
        net = self.scenario.component(Component.network)
        return (self.ipv4 != bytes(4) and not net.has(FaultCode.dns_failure)
                and not net.has(FaultCode.host_unreachable))

    # -- status blocks (STATUS_REPLY) ----------------------------------------------------------

    def status(self, component: Component, now: float) -> dict[str, Any]:
        """The component's status block, as STATUS_REPLY encodes it, in its declaration's order.

        A field the declaration shares with the scenario (a status-block parameter) or with the
        usage counters is their value as it is; :meth:`_computed` gives the fields that follow from
        faults, state and time.  A declared field neither gives is a ``KeyError`` naming it.
        """
        cfg = self.scenario.component(component)
        schema = COMPONENT_SCHEMAS[component]
        block: dict[str, Any] = {}
        for f in status_fields(component.name):
            if _USAGE_PARAMS.get(f.name, (None, ""))[0] == component:
                block[f.name] = self.state.usage[f.name]
            elif f.name in schema.params and schema.params[f.name].status_field:
                value = cfg.params[f.name]
                block[f.name] = int(f.codes[str(value)]) if f.codes is not None else value
        block.update(self._computed(component, cfg, now))
        return {f.name: block[f.name] for f in status_fields(component.name)}

    def _computed(self, component: Component, cfg: ComponentConfig, now: float) -> dict[str, Any]:
        """The status fields that are not a scenario parameter or usage counter as it is: what
        ``_status_<name>`` gives (a component whose block needs none has no such method)."""
        compute = getattr(self, f"_status_{component.name}", None)
        return {} if compute is None else dict(compute(cfg, now))

    def _status_system(self, cfg: ComponentConfig, now: float) -> dict[str, Any]:
        return {"uptime_s": int(now - self.boot) & 0xFFFFFFFF, "last_reset": int(self.state.last_reset)}

    def _status_magstripe(self, cfg: ComponentConfig, now: float) -> dict[str, Any]:
        state = (ReaderState.fault if cfg.has(FaultCode.msr_head_fault)
                 else ReaderState.busy if Component.magstripe in self.reading else ReaderState.ready)
        t1, t2, t3 = self.last_tracks
        return {"state": int(state), "track1": int(t1), "track2": int(t2), "track3": int(t3)}

    def _status_chip(self, cfg: ComponentConfig, now: float) -> dict[str, Any]:
        slot = (ChipSlotState.fault if cfg.has(FaultCode.icc_contact_fault)
                else ChipSlotState.card_present if self.card_in_slot else ChipSlotState.empty)
        atr = bytes.fromhex(cfg.get_str("atr")) if self.card_in_slot and not cfg.has(FaultCode.icc_no_atr) else b""
        return {"slot": int(slot), "atr": atr}

    def _status_contactless(self, cfg: ComponentConfig, now: float) -> dict[str, Any]:
        field_state = (ReaderState.fault if cfg.has(FaultCode.nfc_field_fault)
                       else ReaderState.busy if Component.contactless in self.reading else ReaderState.ready)
        return {"field": int(field_state), "cards_in_field": self.cards_in_field}

    def _status_printer(self, cfg: ComponentConfig, now: float) -> dict[str, Any]:
        s1, s2, s3, s4 = self.escpos_status()
        return {"printer_status": s1, "offline_cause": s2, "error_cause": s3, "paper_sensor": s4,
                "head_temp_c": self.head_temp_c()}

    def _status_screen(self, cfg: ComponentConfig, now: float) -> dict[str, Any]:
        panel = (PanelState.no_signal if cfg.has(FaultCode.panel_no_signal)
                 else PanelState.damaged if cfg.get_int("dead_pixels") > 0 else PanelState.ok)
        backlight = 0 if cfg.has(FaultCode.backlight_fault) else cfg.get_int("backlight_pct")
        return {"panel": int(panel), "backlight_pct": backlight,
                "dead_pixels": min(cfg.get_int("dead_pixels"), 0xFFFF)}

    def _status_keypad(self, cfg: ComponentConfig, now: float) -> dict[str, Any]:
        return {"keys_total": len(KeyCode),
                "stuck_keys": [{"key": int(KeyCode[k])} for k in cfg.get_names("stuck_keys")]}

    def _status_network(self, cfg: ComponentConfig, now: float) -> dict[str, Any]:
        up = self.link_up
        bearer = Bearer[cfg.get_str("bearer")] if up else Bearer.none
        cellular = bearer not in (Bearer.wlan, Bearer.ethernet, Bearer.bluetooth, Bearer.none)
        return {"bearer": int(bearer), "signal_dbm": cfg.get_int("signal_dbm") if up else -113,
                "link_quality": cfg.get_int("link_quality") if up else 0, "ipv4": self.ipv4,
                "apn": cfg.get_str("apn") if cellular else "",
                "cell_id": cfg.get_int("cell_id") if cellular else 0,
                "sim_present": not self.no_sim, "host_reachable": self.host_reachable,
                "latency_ms": min(cfg.get_int("latency_ms"), 0xFFFE) if self.host_reachable else 0xFFFF}

    def _status_power(self, cfg: ComponentConfig, now: float) -> dict[str, Any]:
        return {"source": int(self.power_source), "voltage_mv": self.voltage_mv(now),
                "current_ma": self.current_ma(now), "battery_pct": int(self.battery_pct(now)),
                "battery_status": int(self.battery_status(now))}

    def _status_scanner(self, cfg: ComponentConfig, now: float) -> dict[str, Any]:
        state = (ReaderState.fault if cfg.has(FaultCode.scanner_fault)
                 else ReaderState.busy if Component.scanner in self.reading else ReaderState.ready)
        return {"state": int(state)}

    def _status_security(self, cfg: ComponentConfig, now: float) -> dict[str, Any]:
        tripped = cfg.has(FaultCode.tamper_tripped)
        return {"tamper": int(TamperState.tripped if tripped else TamperState.armed),
                "tamper_sources": cfg.get_int("tamper_sources") if tripped else 0,
                "keys_loaded": self.state.keys_loaded}
