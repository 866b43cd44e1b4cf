"""The pos-sim fault codes a printer's status stands for, and the self-test outcome they make.

An ESC/POS printer has no firmware of ours to judge its own status, so this table is that
judgement, the same as the terminal's printer test makes (docs/escpos.md): what stops
printing but the merchant can put right (paper, cover, a printer set offline, a head too hot)
is a *warning*; what needs a repair (cutter, unrecoverable error, a rejected test page, an
error nobody can name) is a *failure*.
"""

from __future__ import annotations

from collections.abc import Sequence

from protocols.escpos.status import PrinterStatus
from protocols.pos.codes import FaultCode, Outcome

_F = FaultCode

#: the outcome each printer fault gives a self-test, most serious first (first listed wins a tie)
PRINTER_FAULT_OUTCOME: dict[FaultCode, Outcome] = {
    _F.printer_unrecoverable: Outcome.failed,
    _F.cutter_error: Outcome.failed,
    _F.printer_error: Outcome.failed,
    _F.print_rejected: Outcome.failed,
    _F.paper_end: Outcome.warning,
    _F.cover_open: Outcome.warning,
    _F.printer_offline: Outcome.warning,
    _F.head_overheat: Outcome.warning,
    _F.paper_near_end: Outcome.warning,
}
_RANK = {code: i for i, code in enumerate(PRINTER_FAULT_OUTCOME)}


def _h(value: int | None) -> str:
    return "--" if value is None else f"0x{value:02X}"


def faults_of(s: PrinterStatus) -> list[tuple[FaultCode, str]]:
    """Each fault the status shows, with the bytes that show it, in the order of the table above."""
    found: list[tuple[FaultCode, str]] = []
    eot1, eot2, eot3, eot4, gsr = s.printer, s.offline_cause, s.error_cause, s.roll_paper, s.paper_sensor
    if s.unrecoverable_error:
        found.append((_F.printer_unrecoverable, f"unrecoverable error (DLE EOT 3 = {_h(eot3)})"))
    if s.autocutter_error:
        found.append((_F.cutter_error, f"autocutter error (DLE EOT 3 = {_h(eot3)})"))
    named = s.unrecoverable_error or s.autocutter_error or s.auto_recoverable_error
    if s.recoverable_error or (s.error_occurred and not named):
        found.append((_F.printer_error, f"error the printer does not name (DLE EOT 2 = {_h(eot2)}, "
                                        f"DLE EOT 3 = {_h(eot3)})"))
    if s.paper_end or s.paper_end_stop:
        found.append((_F.paper_end, f"paper end (DLE EOT 2 = {_h(eot2)}, DLE EOT 4 = {_h(eot4)}, "
                                    f"GS r 1 = {_h(gsr)})"))
    if s.cover_open:
        found.append((_F.cover_open, f"cover open (DLE EOT 2 = {_h(eot2)})"))
    explained = (s.cover_open or s.paper_end or s.paper_end_stop or s.error_occurred or s.paper_being_fed
                 or s.feed_button_pressed or any(c in _RANK and c is not _F.paper_near_end for c, _ in found))
    if s.offline and not explained:
        found.append((_F.printer_offline, f"offline for no reason the printer names (DLE EOT 1 = {_h(eot1)}, "
                                          f"DLE EOT 2 = {_h(eot2)})"))
    if s.auto_recoverable_error:
        found.append((_F.head_overheat, f"automatically recoverable error: head too hot (DLE EOT 3 = {_h(eot3)})"))
    if s.paper_near_end and not (s.paper_end or s.paper_end_stop):
        found.append((_F.paper_near_end, f"paper near end (DLE EOT 4 = {_h(eot4)}, GS r 1 = {_h(gsr)})"))
    return sorted(found, key=lambda f: _RANK[f[0]])


def stops_printing(s: PrinterStatus) -> bool:
    """Whether a test page would not come out now (offline, or an error that stops printing)."""
    return (s.offline or s.cover_open or s.paper_end or s.paper_end_stop or s.unrecoverable_error
            or s.autocutter_error or s.error_occurred)


def primary_fault(codes: Sequence[FaultCode]) -> FaultCode:
    """The most serious of ``codes`` (``none`` when there is none)."""
    known = [c for c in codes if c in _RANK]
    return min(known, key=lambda c: _RANK[c]) if known else FaultCode.none


def outcome_of(codes: Sequence[FaultCode]) -> Outcome:
    """The self-test outcome for these faults: passed when there is none."""
    primary = primary_fault(codes)
    return Outcome.passed if primary is FaultCode.none else PRINTER_FAULT_OUTCOME[primary]
