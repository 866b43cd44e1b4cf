"""Self-test scripts: the checks of each component, in order, as docs/protocol.md section 8 lists.

A script is a generator.  It yields what the firmware does next (:class:`Begin` a check,
:class:`Work` for a while, :class:`AwaitPerson` for the simulated technician, :class:`Emit` an
event, :class:`AwaitConfirm` an answer from the host) and records faults and measurements on
its :class:`TestRun`.  The engine drives it with the clock: it divides every duration by the
speed factor, reports progress, and turns the recorded faults into the SELFTEST_RESULT and
ERROR events.  Keeping the checks as straight-line code makes "what does the printer test do"
readable in one place.

The simulated person: when the run is interactive (plan full, ``interactive`` = 1) the
emulator itself swipes, inserts, taps, presses every key, shows the QR code and touches the
corners a little while after the prompt appears.  It does not answer confirm prompts: those
are the technician's, through SELFTEST_CONFIRM.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

from pos_sim.emulator.device import (
    BATTERY_LOW_PCT,
    HIGH_LATENCY_MS,
    MIN_FREE_MEMORY_KB,
    WEAK_SIGNAL_DBM,
    Device,
)
from pos_sim.emulator.scenario import ComponentConfig
from protocols.pos.codes import (
    Component,
    EventKind,
    FaultCode,
    KeyCode,
    Measurement,
    Prompt,
    SelfTestPlan,
    TrackCode,
)

#: how long the simulated person takes to react to a prompt (seconds at speed 1)
PERSON_DELAY = 1.5


@dataclass(frozen=True)
class Begin:
    """A new check starts; progress reaches ``to_percent`` when it ends."""

    step: int
    name: str
    to_percent: int
    prompt: Prompt = Prompt.none


@dataclass(frozen=True)
class Work:
    """The firmware works for ``seconds`` (divided by speed); progress moves toward ``to``."""

    seconds: float
    to: int | None = None


@dataclass(frozen=True)
class AwaitPerson:
    """Wait for the simulated person (``seconds`` divided by speed); progress holds."""

    seconds: float = PERSON_DELAY


@dataclass(frozen=True)
class Emit:
    """Send an EVENT frame (card swiped, key pressed, ...) for this component."""

    event: EventKind
    value: int = 0


@dataclass(frozen=True)
class AwaitConfirm:
    """Show a confirm prompt and wait for SELFTEST_CONFIRM; the script receives True, False or None."""

    prompt: Prompt


Op = Begin | Work | AwaitPerson | Emit | AwaitConfirm
Script = Generator[Op, bool | None, None]


@dataclass
class TestRun:
    """One running self-test: what was asked, and what the checks found so far."""

    component: Component
    plan: SelfTestPlan
    interactive: bool
    device: Device
    rng: random.Random
    #: the engine's clock when the script was last resumed (monotonic seconds)
    now: float = 0.0
    faults: list[FaultCode] = field(default_factory=list)
    details: dict[FaultCode, str] = field(default_factory=dict)
    measurements: list[tuple[Measurement, int]] = field(default_factory=list)
    checks_run: int = 0
    skipped: list[str] = field(default_factory=list)
    #: checks of the plan not run for want of a person (the checks_skipped measurement): a
    #: run with any cannot be "passed" (section 8)
    checks_skipped: int = 0

    @property
    def person(self) -> bool:
        """Whether checks with a person in the loop run (plan full and someone present)."""
        return self.interactive and self.plan == SelfTestPlan.full

    @property
    def config(self) -> ComponentConfig:
        """The scenario's configuration of this component."""
        return self.device.scenario.component(self.component)

    def has(self, code: FaultCode) -> bool:
        """Whether the scenario declares this fault for the component under test."""
        return self.config.has(code)

    def fault(self, code: FaultCode, detail: str) -> None:
        """Record a fault found by a check (first detail wins; never card data)."""
        if code not in self.details:
            self.faults.append(code)
            self.details[code] = detail

    def measure(self, measurement: Measurement, value: int) -> None:
        """Record a measurement."""
        self.measurements.append((measurement, max(-(2**31), min(2**31 - 1, int(value)))))

    def skip(self, check: str, why: str) -> None:
        """Record a check that could not run because of a fault found before it."""
        self.skipped.append(f"{check} ({why})")

    def skip_for_person(self, check: str) -> None:
        """A check that needs a person is not run.

        Under plan quick it is not part of the plan, so nothing is missing.  Under plan full
        with nobody present it is a gap: counted in checks_skipped, named in the note, and the
        run is "skipped" rather than "passed" unless a fault was found (section 8).
        """
        if self.plan != SelfTestPlan.quick:
            self.skipped.append(f"{check} (no person present)")
            self.checks_skipped += 1

    def unconfirmed(self, check: str) -> None:
        """A confirm prompt went unanswered (60 s, or the host went away): a gap like the above."""
        self.skipped.append(f"{check} (not confirmed)")
        self.checks_skipped += 1

    def note(self, primary: FaultCode) -> str:
        """The short note of the result: what failed, what did not run (at most 255 bytes).

        The other faults' details travel in their own ERROR events; the note only names them.
        """
        parts = [self.details[primary]] if primary in self.details else []
        others = [c.name for c in self.faults if c != primary]
        if others:
            parts.append("also " + ", ".join(others))
        if self.skipped:
            parts.append("not run: " + ", ".join(self.skipped))
        if not parts:
            parts.append("all checks passed")
        text = "; ".join(parts)
        data = text.encode("utf-8")
        return text if len(data) <= 255 else data[:252].decode("utf-8", "ignore") + "..."


# -- the scripts ------------------------------------------------------------------------------

def system(run: TestRun) -> Script:
    """Memory, firmware integrity, clock."""
    cfg = run.config
    yield Begin(1, "memory", 30)
    yield Work(0.4)
    free = cfg.get_int("free_memory_kb")
    run.measure(Measurement.free_memory_kb, free)
    if free < MIN_FREE_MEMORY_KB:
        run.fault(FaultCode.out_of_memory, f"{free} KiB free")
    yield Begin(2, "firmware integrity", 85)
    yield Work(1.6)  # hashing the firmware image
    for code, text in ((FaultCode.firmware_integrity, "firmware image hash mismatch"),
                       (FaultCode.firmware_incompatible, "firmware does not match hardware revision"),
                       (FaultCode.firmware_update_failed, "last firmware update failed")):
        if run.has(code):
            run.fault(code, text)
    yield Begin(3, "clock", 100)
    yield Work(0.2)
    if run.has(FaultCode.clock_invalid):
        run.fault(FaultCode.clock_invalid, "real-time clock lost its time")
    if run.device.state.last_reset == FaultCode.watchdog_reset:
        run.fault(FaultCode.watchdog_reset, "last restart by the watchdog")


_TRACK_FAULT = {
    TrackCode.no_data: FaultCode.msr_no_data,
    TrackCode.no_start_sentinel: FaultCode.msr_no_start_sentinel,
    TrackCode.no_end_sentinel: FaultCode.msr_no_end_sentinel,
    TrackCode.bad_lrc: FaultCode.msr_bad_lrc,
    TrackCode.parity_error: FaultCode.msr_parity,
}
_TRACK_TEXT = {
    TrackCode.no_data: "no data", TrackCode.no_start_sentinel: "no start sentinel",
    TrackCode.no_end_sentinel: "no end sentinel", TrackCode.bad_lrc: "LRC", TrackCode.parity_error: "parity",
}


def magstripe(run: TestRun) -> Script:
    """Head answers; swipe the test card (several times), per-track read result."""
    dev = run.device
    yield Begin(1, "head", 20)
    yield Work(0.3)
    if run.has(FaultCode.msr_head_fault):
        run.fault(FaultCode.msr_head_fault, "magnetic head does not answer")
        run.skip("swipe", "head fault")
        return
    if not run.person:
        run.skip_for_person("swipe")
        return
    swipes = [tuple(TrackCode[t] for t in s) for s in run.config.get_swipes("test_swipes")]
    yield Begin(2, "swipe", 100, Prompt.swipe_card)
    worst = [TrackCode.ok] * 3
    bad_swipes = 0
    for i, tracks in enumerate(swipes):
        yield AwaitPerson()
        dev.reading.add(Component.magstripe)
        read_bits = sum(1 << n for n, t in enumerate(tracks) if t == TrackCode.ok)
        yield Emit(EventKind.card_swiped, read_bits)
        yield Work(0.25, to=20 + 80 * (i + 1) // len(swipes))
        dev.reading.discard(Component.magstripe)
        dev.last_tracks = (tracks[0], tracks[1], tracks[2])
        dev.bump("swipes")
        if read_bits == 0:
            dev.bump("failed_swipes")
        if any(t != TrackCode.ok for t in tracks):
            bad_swipes += 1
        for n, t in enumerate(tracks):
            if worst[n] == TrackCode.ok:
                worst[n] = t
    for n, m in enumerate((Measurement.track1, Measurement.track2, Measurement.track3)):
        run.measure(m, int(worst[n]))
    bad_tracks = ", ".join(f"track {n + 1} {_TRACK_TEXT[t]}" for n, t in enumerate(worst) if t != TrackCode.ok)
    if bad_swipes and bad_swipes < len(swipes):
        run.fault(FaultCode.msr_intermittent, f"{bad_swipes} of {len(swipes)} swipes failed: {bad_tracks}")
    for n, t in enumerate(worst):
        if t != TrackCode.ok:
            run.fault(_TRACK_FAULT[t], f"track {n + 1} {_TRACK_TEXT[t]}")


def chip(run: TestRun) -> Script:
    """Slot contacts; insert the test card, answer-to-reset."""
    dev = run.device
    yield Begin(1, "contacts", 25)
    yield Work(0.3)
    if run.has(FaultCode.icc_contact_fault):
        run.fault(FaultCode.icc_contact_fault, "slot contacts do not respond")
        run.skip("insert card", "contact fault")
        return
    if not run.person:
        run.skip_for_person("insert card")
        return
    yield Begin(2, "insert card", 100, Prompt.insert_card)
    yield AwaitPerson()
    dev.card_in_slot = True
    dev.bump("insertions")
    yield Emit(EventKind.card_inserted)
    yield Work(0.4, to=80)  # power the card, read the answer-to-reset
    if run.has(FaultCode.icc_no_atr):
        atr_len = 0
        run.fault(FaultCode.icc_no_atr, "no answer-to-reset")
    elif run.has(FaultCode.icc_bad_atr):
        atr_len = 3
        run.fault(FaultCode.icc_bad_atr, "answer-to-reset truncated")
    else:
        atr_len = len(bytes.fromhex(run.config.get_str("atr")))
    run.measure(Measurement.atr_length, atr_len)
    yield AwaitPerson(0.8)
    dev.card_in_slot = False
    yield Emit(EventKind.card_removed)


def contactless(run: TestRun) -> Script:
    """RF field on; tap two cards, anti-collision."""
    dev = run.device
    yield Begin(1, "field", 25)
    yield Work(0.3)
    if run.has(FaultCode.nfc_field_fault):
        run.fault(FaultCode.nfc_field_fault, "RF field does not switch on")
        run.skip("tap", "field fault")
        return
    if not run.person:
        run.skip_for_person("tap")
        return
    yield Begin(2, "tap two cards", 100, Prompt.tap_card)
    yield AwaitPerson()
    if run.has(FaultCode.nfc_no_card):
        yield Work(3.0)  # polls the field until it gives up
        run.measure(Measurement.cards_detected, 0)
        run.fault(FaultCode.nfc_no_card, "no card detected in the field")
        return
    dev.cards_in_field = 2
    dev.reading.add(Component.contactless)
    dev.bump("taps")
    yield Emit(EventKind.card_tapped, 2)
    yield Work(0.5)  # anti-collision
    dev.reading.discard(Component.contactless)
    dev.cards_in_field = 0
    run.measure(Measurement.cards_detected, 2)
    if run.has(FaultCode.nfc_collision):
        run.fault(FaultCode.nfc_collision, "anti-collision did not separate 2 cards")


def printer(run: TestRun) -> Script:
    """ESC/POS status bytes; test page (confirm_print); cutter."""
    dev = run.device
    yield Begin(1, "ESC/POS status", 15)
    yield Work(0.4)
    _, s2, s3, s4 = dev.escpos_status()
    run.measure(Measurement.paper_status, s4)
    run.measure(Measurement.head_temp_c, dev.head_temp_c())
    if run.has(FaultCode.printer_unrecoverable):
        run.fault(FaultCode.printer_unrecoverable, f"unrecoverable error (DLE EOT 3 = 0x{s3:02X})")
    if run.has(FaultCode.cover_open):
        run.fault(FaultCode.cover_open, f"cover open (DLE EOT 2 = 0x{s2:02X})")
    if dev.paper == "end":
        run.fault(FaultCode.paper_end, f"paper end (DLE EOT 4 = 0x{s4:02X})")
    elif dev.paper == "near_end":
        run.fault(FaultCode.paper_near_end, f"paper near end (DLE EOT 4 = 0x{s4:02X})")
    if run.has(FaultCode.head_overheat):
        run.fault(FaultCode.head_overheat, f"print head at {dev.head_temp_c()} C")
    # paper end, an open cover or an unrecoverable error stop printing; an overheated head
    # recovers by itself and a cutter error still lets the page out
    offline = dev.paper == "end" or run.has(FaultCode.cover_open) or run.has(FaultCode.printer_unrecoverable)
    pages = 0
    if offline:
        run.skip("test page", "printer offline")
    elif not run.person:
        run.skip_for_person("test page")
    else:
        yield Begin(2, "test page", 80)
        dev.printing = True
        yield Work(2.6)  # about 400 dot lines at 150 lines per second
        dev.printing = False
        dev.bump("lines_printed", 400)
        pages = 1
        answer = yield AwaitConfirm(Prompt.confirm_print)
        if answer is None:
            run.unconfirmed("test page")
        elif not answer:
            run.fault(FaultCode.print_rejected, "technician rejected the test page")
    if offline:
        run.skip("cutter", "printer offline")
    else:
        yield Begin(3, "cutter", 100)
        yield Work(0.6)
        if run.has(FaultCode.cutter_error):
            run.fault(FaultCode.cutter_error, f"autocutter error (DLE EOT 3 = 0x{s3:02X})")
    run.measure(Measurement.pages_printed, pages)


def screen(run: TestRun) -> Script:
    """Panel answers; test pattern (confirm_pattern); backlight; touch (touch_corners)."""
    cfg = run.config
    yield Begin(1, "panel", 20)
    yield Work(0.3)
    if run.has(FaultCode.panel_no_signal):
        run.fault(FaultCode.panel_no_signal, "display controller does not answer")
        run.skip("pattern, backlight, touch", "no panel")
        return
    dead = cfg.get_int("dead_pixels")
    run.measure(Measurement.dead_pixels, dead)
    if dead > 0:
        run.fault(FaultCode.panel_damaged, f"{dead} dead pixels")
    if run.person:
        yield Begin(2, "test pattern", 50)
        yield Work(1.0)
        answer = yield AwaitConfirm(Prompt.confirm_pattern)
        if answer is None:
            run.unconfirmed("test pattern")
        elif not answer:
            run.fault(FaultCode.pattern_rejected, "technician rejected the test pattern")
    else:
        run.skip_for_person("test pattern")
    yield Begin(3, "backlight", 70)
    yield Work(0.8)  # sweep the backlight and read the photo sensor
    backlight = 0 if run.has(FaultCode.backlight_fault) else cfg.get_int("backlight_pct")
    run.measure(Measurement.backlight_pct, backlight)
    if run.has(FaultCode.backlight_fault):
        run.fault(FaultCode.backlight_fault, "backlight does not light")
    if not cfg.get_bool("touch"):
        return
    if not run.person:
        run.skip_for_person("touch")
        return
    yield Begin(4, "touch corners", 100, Prompt.touch_corners)
    yield AwaitPerson(2.0)
    yield Work(0.2)
    points = cfg.get_int("touch_points")
    run.measure(Measurement.touch_points, points)
    if points < 4:
        run.fault(FaultCode.touch_fault, f"{4 - points} of 4 corners do not register")


def keypad(run: TestRun) -> Script:
    """Stuck keys; press every key (one key_pressed event per key)."""
    cfg = run.config
    dev = run.device
    stuck = cfg.get_names("stuck_keys")
    dead = set(cfg.get_names("dead_keys"))
    yield Begin(1, "stuck keys", 15)
    yield Work(0.3)
    if stuck:
        run.fault(FaultCode.key_stuck, f"stuck: {', '.join(stuck)}")
    if not run.person:
        run.skip_for_person("press every key")
        return
    keys = list(KeyCode)
    yield Begin(2, "press every key", 100, Prompt.press_all_keys)
    yield AwaitPerson()
    seen = 0
    for i, key in enumerate(keys):
        if i:
            yield AwaitPerson(0.25)
        # a stuck key is already down and a dead one never closes: neither sends an event
        if key.name not in dead and key.name not in stuck:
            seen += 1
            dev.bump("presses")
            yield Emit(EventKind.key_pressed, int(key))
        yield Work(0.0, to=15 + 85 * (i + 1) // len(keys))
    if dead:
        yield Work(2.0)  # waits for the missing keys before giving up
        run.fault(FaultCode.key_not_registered, f"not registered: {', '.join(sorted(dead))}")
    run.measure(Measurement.keys_seen, seen)
    run.measure(Measurement.keys_total, len(keys))


def network(run: TestRun) -> Script:
    """SIM, bearer and signal, IP, DNS, payment host, latency."""
    cfg = run.config
    dev = run.device
    yield Begin(1, "SIM", 10)
    yield Work(0.3)
    if dev.no_sim:
        run.fault(FaultCode.no_sim, "no SIM card")
        run.measure(Measurement.signal_dbm, -113)
        run.skip("bearer, IP, DNS, host", "no SIM")
        return
    yield Begin(2, "bearer and signal", 35)
    if not dev.link_up:
        yield Work(6.0)  # the modem tries to attach until it gives up
        run.fault(FaultCode.no_link, "modem did not attach to any network")
        run.measure(Measurement.signal_dbm, -113)
        run.measure(Measurement.link_quality, 0)
        yield Begin(3, "IP address", 50)
        yield Work(0.2)
        run.fault(FaultCode.no_ip, "no IP address: link down")
        run.measure(Measurement.ip_v4, 0)
        run.skip("DNS", "no IP")
        yield Begin(5, "payment host", 100)
        yield Work(0.2)
        run.fault(FaultCode.host_unreachable, "payment host unreachable: no route")
        return
    yield Work(0.8)
    signal = cfg.get_int("signal_dbm")
    run.measure(Measurement.signal_dbm, signal)
    run.measure(Measurement.link_quality, cfg.get_int("link_quality"))
    if signal <= WEAK_SIGNAL_DBM:
        run.fault(FaultCode.weak_signal, f"signal {signal} dBm")
    yield Begin(3, "IP address", 50)
    if run.has(FaultCode.no_ip):
        yield Work(4.0)  # DHCP / PDP context times out
        run.measure(Measurement.ip_v4, 0)
        run.fault(FaultCode.no_ip, "no IP address assigned")
        run.skip("DNS, host", "no IP")
        return
    yield Work(0.3)
    run.measure(Measurement.ip_v4, int.from_bytes(dev.ipv4, "big"))
    yield Begin(4, "DNS", 65)
    if run.has(FaultCode.dns_failure):
        yield Work(5.0)  # resolver timeout
        run.fault(FaultCode.dns_failure, "payment host name did not resolve")
        run.skip("host", "DNS failed")
        return
    dns_ms = int(cfg.get_int("dns_ms") * run.rng.uniform(0.9, 1.2))
    yield Work(dns_ms / 1000)
    run.measure(Measurement.dns_ms, dns_ms)
    yield Begin(5, "payment host", 90)
    if run.has(FaultCode.host_unreachable):
        yield Work(3.0)  # three probes time out
        run.fault(FaultCode.host_unreachable, "payment host did not answer 3 probes")
        return
    latency = int(cfg.get_int("latency_ms") * run.rng.uniform(0.9, 1.15))
    yield Work(3 * latency / 1000)
    yield Begin(6, "latency", 100)
    yield Work(0.05)
    run.measure(Measurement.latency_ms, latency)
    if latency > HIGH_LATENCY_MS:
        run.fault(FaultCode.high_latency, f"round trip {latency} ms")


def power(run: TestRun) -> Script:
    """Source, voltage, battery level and status."""
    dev = run.device
    yield Begin(1, "power source", 20)
    yield Work(0.2)
    if run.has(FaultCode.external_power_off):
        run.fault(FaultCode.external_power_off, "adapter connected but no external power")
    yield Begin(2, "voltage", 50)
    yield Work(0.6)
    run.measure(Measurement.voltage_mv, dev.voltage_mv(run.now))
    run.measure(Measurement.current_ma, dev.current_ma(run.now))
    if run.has(FaultCode.voltage_unstable):
        run.fault(FaultCode.voltage_unstable, f"supply at {dev.voltage_mv(run.now)} mV under load")
    yield Begin(3, "battery", 100)
    yield Work(0.8)
    if run.has(FaultCode.battery_missing):
        run.measure(Measurement.battery_pct, 0)
        run.fault(FaultCode.battery_missing, "no battery installed")
        return
    pct = int(dev.battery_pct(run.now))
    run.measure(Measurement.battery_pct, pct)
    if run.has(FaultCode.battery_damaged):
        run.fault(FaultCode.battery_damaged, "battery reports damaged")
    if pct < BATTERY_LOW_PCT:
        run.fault(FaultCode.battery_low, f"battery at {pct} %")
    if run.has(FaultCode.not_charging):
        run.fault(FaultCode.not_charging, "external power present but the battery does not charge")


def scanner(run: TestRun) -> Script:
    """Scan engine answers; decode the test code (scan_code)."""
    dev = run.device
    yield Begin(1, "scan engine", 30)
    yield Work(0.4)
    if run.has(FaultCode.scanner_fault):
        run.fault(FaultCode.scanner_fault, "scan engine does not answer")
        run.skip("decode", "engine fault")
        return
    if not run.person:
        run.skip_for_person("decode")
        return
    yield Begin(2, "decode test code", 100, Prompt.scan_code)
    yield AwaitPerson()
    dev.reading.add(Component.scanner)
    if run.has(FaultCode.scanner_no_decode):
        yield Work(3.0)  # keeps trying until it gives up
        dev.reading.discard(Component.scanner)
        run.fault(FaultCode.scanner_no_decode, "test code not decoded")
        return
    decode_ms = run.config.get_int("decode_ms")
    yield Work(decode_ms / 1000)
    dev.reading.discard(Component.scanner)
    dev.bump("decodes")
    yield Emit(EventKind.code_scanned, 24)
    run.measure(Measurement.decode_ms, decode_ms)


def security(run: TestRun) -> Script:
    """Tamper state, payment keys loaded."""
    cfg = run.config
    yield Begin(1, "tamper", 50)
    yield Work(0.2)
    if run.has(FaultCode.tamper_tripped):
        sources = cfg.get_int("tamper_sources")
        names = [n for bit, n in enumerate(("cover", "mesh", "shock", "temperature")) if sources >> bit & 1]
        run.fault(FaultCode.tamper_tripped, f"tamper tripped: {', '.join(names) or 'unknown source'}")
    yield Begin(2, "payment keys", 100)
    yield Work(0.2)
    if not run.device.state.keys_loaded:
        if run.has(FaultCode.tamper_tripped) or run.has(FaultCode.keys_erased):
            run.fault(FaultCode.keys_erased, "payment keys erased")
        else:
            run.fault(FaultCode.keys_missing, "no payment keys loaded")


SCRIPTS: dict[Component, Callable[[TestRun], Script]] = {
    Component.system: system,
    Component.magstripe: magstripe,
    Component.chip: chip,
    Component.contactless: contactless,
    Component.printer: printer,
    Component.screen: screen,
    Component.keypad: keypad,
    Component.network: network,
    Component.power: power,
    Component.scanner: scanner,
    Component.security: security,
}
