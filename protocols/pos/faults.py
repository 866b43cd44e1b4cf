"""How serious each fault code is, and what outcome a self-test reports for it.

``protocols.pos.codes.FaultCode`` says which codes exist; this table says how serious each one
is, which settles "the most serious fault" of a run (the result's ``code``), the ``severity`` of
its ERROR events and the run's outcome.  docs/protocol.md section 8 prints it (generated from
here): ``warning`` means the merchant can act (paper, battery, signal, SIM), ``failed`` means
repair.  A terminal follows it so that hosts from different makers read results alike.
"""

from __future__ import annotations

from collections.abc import Sequence

from protocols.pos.codes import Component, FaultCode, Outcome, Severity

_F, _S = FaultCode, Severity

#: the severity of every fault code (section 8's table)
FAULT_SEVERITY: dict[FaultCode, Severity] = {
    _F.none: _S.info,
    _F.out_of_memory: _S.error,
    _F.watchdog_reset: _S.warning,
    _F.firmware_integrity: _S.critical,
    _F.firmware_incompatible: _S.error,
    _F.firmware_update_failed: _S.warning,
    _F.clock_invalid: _S.warning,
    _F.msr_no_data: _S.error,
    _F.msr_no_start_sentinel: _S.error,
    _F.msr_no_end_sentinel: _S.error,
    _F.msr_bad_lrc: _S.error,
    _F.msr_parity: _S.error,
    _F.msr_head_fault: _S.error,
    _F.msr_intermittent: _S.error,
    _F.icc_no_atr: _S.error,
    _F.icc_bad_atr: _S.error,
    _F.icc_contact_fault: _S.error,
    _F.nfc_field_fault: _S.error,
    _F.nfc_collision: _S.error,
    _F.nfc_no_card: _S.error,
    _F.paper_end: _S.warning,
    _F.paper_near_end: _S.warning,
    _F.cover_open: _S.warning,
    _F.cutter_error: _S.error,
    _F.head_overheat: _S.warning,
    _F.printer_unrecoverable: _S.error,
    _F.print_rejected: _S.error,
    _F.printer_offline: _S.warning,
    _F.printer_error: _S.error,
    _F.panel_damaged: _S.error,
    _F.backlight_fault: _S.error,
    _F.touch_fault: _S.error,
    _F.pattern_rejected: _S.error,
    _F.panel_no_signal: _S.error,
    _F.key_not_registered: _S.error,
    _F.key_stuck: _S.error,
    _F.no_sim: _S.warning,
    _F.no_link: _S.error,
    _F.weak_signal: _S.warning,
    _F.no_ip: _S.error,
    _F.dns_failure: _S.error,
    _F.host_unreachable: _S.error,
    _F.high_latency: _S.warning,
    _F.battery_low: _S.warning,
    _F.battery_damaged: _S.error,
    _F.not_charging: _S.warning,
    _F.external_power_off: _S.warning,
    _F.voltage_unstable: _S.error,
    _F.battery_missing: _S.error,
    _F.scanner_no_decode: _S.error,
    _F.scanner_fault: _S.error,
    _F.tamper_tripped: _S.critical,
    _F.keys_erased: _S.critical,
    _F.keys_missing: _S.error,
    _F.txn_declined: _S.info,
    _F.txn_timeout: _S.warning,
    _F.txn_amount_mismatch: _S.error,
    _F.txn_unconfirmed: _S.warning,
}


def severity(code: FaultCode) -> Severity:
    """The severity of a fault code."""
    return FAULT_SEVERITY[code]


def component_of(code: FaultCode) -> Component | None:
    """The component a fault code belongs to (its high byte), or None for none / transactions."""
    try:
        return Component(int(code) >> 8)
    except ValueError:
        return None


def primary_fault(faults: Sequence[FaultCode]) -> FaultCode:
    """The most serious fault of a run; among equals the first found (none when empty)."""
    best = FaultCode.none
    for code in faults:
        if best == FaultCode.none or severity(code) > severity(best):
            best = code
    return best


def outcome_for(code: FaultCode) -> Outcome:
    """The self-test outcome that a run whose most serious fault is ``code`` reports."""
    sev = severity(code)
    if code == FaultCode.none or sev == Severity.info:
        return Outcome.passed
    if sev == Severity.warning:
        return Outcome.warning
    return Outcome.failed
