"""Every enumerated value on the wire: components, states, reasons, codes and units.

Each enum member carries a short English description (``.doc``) that the specification's
tables are generated from.  Texts for people (zh-CN and en, advice, categories) live in the
application's fault catalogue, not here: this module only says what the numbers mean.
"""

from __future__ import annotations

import enum
from typing import Any


class CodeEnum(enum.IntEnum):
    """An ``IntEnum`` whose members also carry a one-line description for the spec."""

    doc: str

    def __new__(cls, value: int, doc: str = "") -> CodeEnum:
        obj = int.__new__(cls, value)
        obj._value_ = value
        obj.doc = doc
        return obj

    @classmethod
    def describe(cls, value: Any) -> str:
        """The member's name for a known value, else ``unknown(N)``."""
        try:
            return cls(value).name
        except ValueError:
            return f"unknown({value})"


class FrameFlag(CodeEnum):
    """Bits of the frame header's flags byte."""

    RESPONSE = 0x01, "the frame answers the request that carried the same sequence number"
    EVENT = 0x02, "unsolicited frame from the terminal; the host acknowledges it with ACK"
    RETRANSMIT = 0x04, "a repeat of an earlier frame with the same sequence number"


class ComponentCode(CodeEnum):
    """A component's number and description, and its places in the two orders a diagnosis runs in.

    A member is declared ``number, description, plan, drop``: ``plan`` ranks it in the natural
    order (full and quick diagnoses: the board, tamper, power and the link first, then what a
    person handles), ``drop`` in the order after a fall (tamper first, then what the repair
    guides tell a merchant to check, the board last).  Lower runs first; the ranks leave gaps so
    that a new component slots in without renumbering the others.
    """

    plan: int
    drop: int

    def __new__(cls, value: int, doc: str = "", plan: int = 0, drop: int = 0) -> ComponentCode:
        obj = int.__new__(cls, value)
        obj._value_ = value
        obj.doc = doc
        obj.plan = plan
        obj.drop = drop
        return obj


class Component(ComponentCode):
    """Parts of a terminal that have a status and a self-test."""

    system = 0x01, "main board: memory, firmware, clock", 10, 110
    magstripe = 0x02, "magnetic-stripe reader (tracks 1-3)", 70, 30
    chip = 0x03, "IC-chip (contact) card reader", 80, 40
    contactless = 0x04, "contactless (NFC) card reader", 90, 50
    printer = 0x05, "thermal receipt printer and cutter", 100, 70
    screen = 0x06, "display, backlight and touch panel", 50, 20
    keypad = 0x07, "PIN pad and function keys", 60, 60
    network = 0x08, "cellular / Wi-Fi / Ethernet link to the payment host", 40, 100
    power = 0x09, "power source, battery and charger", 30, 90
    scanner = 0x0A, "QR / barcode scanner", 110, 80
    security = 0x0B, "tamper switches and payment-key store", 20, 10


class LifecycleState(CodeEnum):
    """Where a terminal is in its life (docs/lifecycle.md)."""

    unactivated = 0, "as shipped, or after unbind, revoke or factory reset"
    activated = 1, "activated with an activation code and merchant id"
    bound = 2, "bound to a merchant account and ready to take payments"
    revoked = 3, "activation revoked by the owner; can be activated again"
    locked = 4, "tamper tripped: payment keys erased, only an authorised repair unlocks it"


class NakReason(CodeEnum):
    """Why a receiver refused a frame."""

    bad_crc = 1, "the frame's CRC did not match (sequence number taken from the damaged header)"
    unknown_type = 2, "the message type is not in the catalogue"
    busy = 3, "the terminal is busy; retry after the retransmit interval"
    not_permitted = 4, "the request is not allowed in the terminal's current state"
    bad_auth = 5, "the authenticated request failed verification"
    malformed = 6, "the payload does not match the message's declaration"
    unsupported_version = 7, "the protocol version is not supported"
    too_large = 8, "the payload exceeds the negotiated maximum"


class Severity(CodeEnum):
    """How serious an error or event-log entry is."""

    info = 0, "for the record only"
    warning = 1, "degraded; the terminal still works"
    error = 2, "a function does not work"
    critical = 3, "the terminal cannot take payments"


class Outcome(CodeEnum):
    """How a self-test ended."""

    passed = 0, "every check passed"
    warning = 1, "works, but something needs attention (for example paper near end)"
    failed = 2, "a check failed"
    skipped = 3, "not run: needs a person and none confirmed, or not applicable"
    aborted = 4, "stopped by SELFTEST_ABORT"
    error = 5, "the test itself could not run"


class SelfTestPlan(CodeEnum):
    """Which checks of a component a SELFTEST_START asks for."""

    full = 0, "every check of the component, interactive ones included"
    quick = 1, "non-interactive checks only"


class PromptCode(CodeEnum):
    """A prompt's number and description, and the component whose self-test shows it.

    A member is declared ``number, description, component`` (``None`` for no prompt): a
    component with a prompt may ask a person for something, so its test runs alone.
    """

    component: ComponentCode | None

    def __new__(cls, value: int, doc: str = "", component: ComponentCode | None = None) -> PromptCode:
        obj = int.__new__(cls, value)
        obj._value_ = value
        obj.doc = doc
        obj.component = component
        return obj


class Prompt(PromptCode):
    """What a self-test in progress asks a person to do."""

    none = 0, "nothing: the test runs on its own", None
    swipe_card = 1, "swipe a magnetic-stripe test card", Component.magstripe
    insert_card = 2, "insert a chip test card", Component.chip
    tap_card = 3, "tap a contactless test card (two at once for anti-collision)", Component.contactless
    press_all_keys = 4, "press every key once", Component.keypad
    confirm_pattern = 5, "look at the test pattern and confirm it (SELFTEST_CONFIRM)", Component.screen
    scan_code = 6, "show the test QR code to the scanner", Component.scanner
    confirm_print = 7, "look at the test page and confirm it (SELFTEST_CONFIRM)", Component.printer
    touch_corners = 8, "touch the four corners of the screen", Component.screen


class TrackCode(CodeEnum):
    """Magnetic-stripe read result per track (Verifone service-mode codes)."""

    ok = 0, "track read"
    no_data = 1, "no data on the track"
    no_start_sentinel = 2, "start sentinel missing"
    no_end_sentinel = 3, "end sentinel missing"
    bad_lrc = 4, "longitudinal redundancy check failed"
    parity_error = 5, "character parity error"


class PowerSource(CodeEnum):
    """Power source (OMA LwM2M object 3, resource 6)."""

    dc = 0, "DC power"
    battery = 1, "internal battery"
    external_battery = 2, "external battery"
    poe = 4, "power over Ethernet"
    usb = 5, "USB"
    ac = 6, "AC (mains) power"
    solar = 7, "solar"


class BatteryStatus(CodeEnum):
    """Battery status (OMA LwM2M object 3, resource 20)."""

    normal = 0, "normal, not charging"
    charging = 1, "charging"
    charge_complete = 2, "charge complete"
    damaged = 3, "damaged"
    low = 4, "low battery"
    not_installed = 5, "not installed"
    unknown = 6, "unknown"


class Bearer(CodeEnum):
    """Network bearer (OMA LwM2M object 4, resource 0)."""

    gsm = 0, "GSM cellular"
    td_scdma = 1, "TD-SCDMA cellular"
    wcdma = 2, "WCDMA cellular"
    cdma2000 = 3, "CDMA2000 cellular"
    wimax = 4, "WiMAX cellular"
    lte_tdd = 5, "LTE-TDD cellular"
    lte_fdd = 6, "LTE-FDD cellular"
    nb_iot = 7, "NB-IoT cellular"
    wlan = 21, "wireless LAN (Wi-Fi)"
    bluetooth = 22, "Bluetooth"
    ethernet = 41, "Ethernet"
    none = 255, "no bearer up"


class TamperState(CodeEnum):
    """State of the security processor's tamper detection."""

    armed = 0, "armed, nothing detected"
    tripped = 1, "a tamper switch tripped; payment keys erased"
    disarmed = 2, "disarmed for authorised service"


class ChipSlotState(CodeEnum):
    """IC-chip slot state."""

    empty = 0, "no card in the slot"
    card_present = 1, "a card is inserted"
    fault = 2, "the contacts or the reader module report a fault"


class ReaderState(CodeEnum):
    """State of a reader module (magnetic head, contactless field, scanner)."""

    ready = 0, "ready"
    busy = 1, "reading"
    fault = 2, "module fault"
    off = 3, "powered down"


class PanelState(CodeEnum):
    """State of the display panel as the terminal sees it."""

    ok = 0, "panel answers and passes its built-in check"
    no_signal = 1, "panel does not answer"
    damaged = 2, "panel reports dead lines or pixels (cracked glass)"


class Measurement(CodeEnum):
    """Identifiers of measurements carried in SELFTEST_RESULT (value is a signed 32-bit integer)."""

    battery_pct = 1, "battery level, percent"
    voltage_mv = 2, "supply voltage, millivolts"
    current_ma = 3, "current, milliamperes (negative when discharging)"
    signal_dbm = 4, "received signal strength, dBm"
    link_quality = 5, "link quality, 0-255 (LwM2M object 4)"
    latency_ms = 6, "round-trip time to the payment host, milliseconds"
    dns_ms = 7, "DNS lookup time, milliseconds"
    track1 = 8, "track 1 read result (TrackCode)"
    track2 = 9, "track 2 read result (TrackCode)"
    track3 = 10, "track 3 read result (TrackCode)"
    atr_length = 11, "length of the chip card's answer-to-reset, bytes"
    cards_detected = 12, "contactless cards seen in the field (anti-collision)"
    keys_seen = 13, "distinct keys pressed during the test"
    keys_total = 14, "keys on the keypad"
    dead_pixels = 15, "pixels the panel reports dead"
    backlight_pct = 16, "backlight level, percent"
    paper_status = 17, "ESC/POS paper-sensor status byte (DLE EOT 4)"
    head_temp_c = 18, "print-head temperature, degrees Celsius"
    free_memory_kb = 19, "free memory, KiB"
    decode_ms = 20, "time to decode the test code, milliseconds"
    touch_points = 21, "touch corners confirmed, 0-4"
    pages_printed = 22, "test pages printed"
    ip_v4 = 23, "IPv4 address as a 32-bit integer (0 when none)"
    checks_skipped = 24, "checks of the plan not run because no person was present"


class EventKind(CodeEnum):
    """Unsolicited events a terminal reports (EVENT message)."""

    card_inserted = 1, "a chip card was inserted (value: 0)"
    card_removed = 2, "a chip card was removed (value: 0)"
    card_swiped = 3, "a card was swiped (value: bits 0-2 = tracks read)"
    card_tapped = 4, "a contactless card entered the field (value: cards in field)"
    key_pressed = 5, "a key was pressed (value: key code, see KeyCode)"
    cover_opened = 6, "the printer cover was opened (value: 0)"
    cover_closed = 7, "the printer cover was closed (value: 0)"
    power_source_changed = 8, "the power source changed (value: PowerSource)"
    battery_low = 9, "the battery fell below its low threshold (value: percent)"
    tamper = 10, "a tamper switch tripped (value: tamper source bits)"
    network_up = 11, "the network link came up (value: Bearer)"
    network_down = 12, "the network link went down (value: Bearer)"
    paper_out = 13, "the printer ran out of paper (value: 0)"
    paper_loaded = 14, "paper was loaded (value: 0)"
    rebooted = 15, "the terminal restarted (value: reset cause, FaultCode or 0)"
    code_scanned = 16, "the scanner decoded a code (value: decoded length)"


class KeyCode(CodeEnum):
    """Key codes in key_pressed events and in the keypad's key map."""

    k0 = 0x30, "digit 0"
    k1 = 0x31, "digit 1"
    k2 = 0x32, "digit 2"
    k3 = 0x33, "digit 3"
    k4 = 0x34, "digit 4"
    k5 = 0x35, "digit 5"
    k6 = 0x36, "digit 6"
    k7 = 0x37, "digit 7"
    k8 = 0x38, "digit 8"
    k9 = 0x39, "digit 9"
    cancel = 0x1B, "red key: cancel"
    clear = 0x08, "yellow key: clear / backspace"
    enter = 0x0D, "green key: enter / confirm"
    func = 0x46, "function key"
    up = 0x55, "up / menu"
    down = 0x44, "down"
    dot = 0x2E, "decimal point / star"
    power = 0x50, "power key"


class FaultCode(CodeEnum):
    """Fault codes in SELFTEST_RESULT, ERROR and the event log.

    The high byte names the component (0x00 for no fault, 0x0C for transaction faults).
    """

    none = 0x0000, "no fault"
    # system (0x01xx)
    out_of_memory = 0x0101, "free memory below the minimum"
    watchdog_reset = 0x0102, "firmware stopped and the watchdog restarted it"
    firmware_integrity = 0x0103, "firmware image failed its integrity check"
    firmware_incompatible = 0x0104, "firmware version incompatible with the hardware"
    firmware_update_failed = 0x0105, "the last firmware update failed"
    clock_invalid = 0x0106, "real-time clock lost or invalid"
    # magnetic stripe (0x02xx)
    msr_no_data = 0x0201, "no data read from any track"
    msr_no_start_sentinel = 0x0202, "start sentinel missing on a track"
    msr_no_end_sentinel = 0x0203, "end sentinel missing on a track"
    msr_bad_lrc = 0x0204, "LRC check failed on a track"
    msr_parity = 0x0205, "parity error on a track"
    msr_head_fault = 0x0206, "magnetic head not answering"
    msr_intermittent = 0x0207, "some swipes read and others fail"
    # chip (0x03xx)
    icc_no_atr = 0x0301, "no answer-to-reset from the chip card"
    icc_bad_atr = 0x0302, "answer-to-reset malformed"
    icc_contact_fault = 0x0303, "slot contacts or reader module fault"
    # contactless (0x04xx)
    nfc_field_fault = 0x0401, "RF field cannot be switched on"
    nfc_collision = 0x0402, "anti-collision did not resolve the cards in the field"
    nfc_no_card = 0x0403, "no card detected in the field"
    # printer (0x05xx), from ESC/POS real-time status
    paper_end = 0x0501, "paper end (DLE EOT 4 bits 5-6)"
    paper_near_end = 0x0502, "paper near end (DLE EOT 4 bits 2-3)"
    cover_open = 0x0503, "printer cover open (DLE EOT 2 bit 2)"
    cutter_error = 0x0504, "autocutter error (DLE EOT 3 bit 3)"
    head_overheat = 0x0505, "print head too hot; recovers by itself (DLE EOT 3 bit 6)"
    printer_unrecoverable = 0x0506, "unrecoverable printer error (DLE EOT 3 bit 5)"
    print_rejected = 0x0507, "the technician rejected the test page"
    printer_offline = 0x0508, "printer offline for no cause it names (DLE EOT 1 bit 3)"
    printer_error = 0x0509, "printer error with no cause named (DLE EOT 2 bit 6, DLE EOT 3 bit 2)"
    # screen (0x06xx)
    panel_damaged = 0x0601, "dead lines or pixels: cracked or damaged panel"
    backlight_fault = 0x0602, "backlight does not light"
    touch_fault = 0x0603, "touch panel does not register"
    pattern_rejected = 0x0604, "the technician rejected the test pattern"
    panel_no_signal = 0x0605, "display does not answer"
    # keypad (0x07xx)
    key_not_registered = 0x0701, "a key did not register when pressed"
    key_stuck = 0x0702, "a key reports pressed without being touched"
    # network (0x08xx), after LwM2M object 3 error codes
    no_sim = 0x0801, "no SIM card"
    no_link = 0x0802, "no network link"
    weak_signal = 0x0803, "signal too weak (LwM2M error 4)"
    no_ip = 0x0804, "no IP address (LwM2M error 7)"
    dns_failure = 0x0805, "DNS lookup failed"
    host_unreachable = 0x0806, "payment host unreachable"
    high_latency = 0x0807, "round trip to the payment host too slow"
    # power (0x09xx)
    battery_low = 0x0901, "battery low (LwM2M error 1)"
    battery_damaged = 0x0902, "battery damaged (LwM2M battery status 3)"
    not_charging = 0x0903, "battery not charging with external power present"
    external_power_off = 0x0904, "external power off (LwM2M error 2)"
    voltage_unstable = 0x0905, "supply voltage out of range"
    battery_missing = 0x0906, "battery not installed"
    # scanner (0x0Axx)
    scanner_no_decode = 0x0A01, "the test code was not decoded"
    scanner_fault = 0x0A02, "camera or scan engine fault"
    # security (0x0Bxx)
    tamper_tripped = 0x0B01, "tamper switch tripped; terminal locked"
    keys_erased = 0x0B02, "payment keys erased"
    keys_missing = 0x0B03, "no payment keys loaded"
    # transaction (0x0Cxx)
    txn_declined = 0x0C01, "transaction declined by the host"
    txn_timeout = 0x0C02, "no answer from the host for a transaction"
    txn_amount_mismatch = 0x0C03, "amount confirmed differs from amount requested"
    txn_unconfirmed = 0x0C04, "transactions awaiting confirmation"


class LifecycleOp(CodeEnum):
    """Authenticated lifecycle operations."""

    activate = 1, "activate: arguments activation_code and merchant_id"
    bind = 2, "bind to a merchant account: argument merchant_id"
    unbind = 3, "unbind from the merchant: argument reason"
    revoke = 4, "revoke an un-activated terminal's activation: argument reason"
    factory_reset = 5, "erase configuration and return to unactivated: argument reason"


class LifecycleStatus(CodeEnum):
    """The terminal's answer to an authenticated lifecycle request."""

    ok = 0, "done; the new state is in the result"
    refused_state = 1, "not allowed in the current state (message says why)"
    bad_auth = 2, "HMAC did not verify"
    replay = 3, "counter not above the last accepted one, or nonce not the one issued"
    bad_arguments = 4, "an argument is missing or invalid"
    no_challenge = 5, "no challenge outstanding for this operation"


class TxKind(CodeEnum):
    """Kind of a transaction-log record."""

    sale = 1, "sale"
    refund = 2, "refund"
    void = 3, "void of an earlier sale"
    pre_auth = 4, "pre-authorisation"


class TxResult(CodeEnum):
    """Result of a transaction-log record."""

    approved = 0, "approved"
    declined = 1, "declined"
    timeout = 2, "no host answer"
    unconfirmed = 3, "sent, not yet confirmed"


class EntryMode(CodeEnum):
    """How the card or code was presented."""

    swipe = 1, "magnetic stripe"
    chip = 2, "IC chip"
    contactless = 3, "contactless"
    qr = 4, "QR code"
    manual = 5, "keyed"


#: every enum that appears on the wire, in the order the spec lists them
ALL_ENUMS: tuple[type[CodeEnum], ...] = (
    FrameFlag, Component, LifecycleState, NakReason, Severity, Outcome, SelfTestPlan, Prompt,
    TrackCode, PowerSource, BatteryStatus, Bearer, TamperState, ChipSlotState, ReaderState,
    PanelState, Measurement, EventKind, KeyCode, FaultCode, LifecycleOp, LifecycleStatus,
    TxKind, TxResult, EntryMode,
)
