"""What a run left untested, and the verdict line the TUI shows when a run ends.

:func:`tui_completeness` derives, from the findings the TUI has, which components of the run
gave a verdict and which were not tested and why (need a person, not fitted, refused by the
terminal, lost to a restart or a link failure, aborted).  It is the TUI's own reading of the
findings, kept in this one function (and :class:`Completeness`) so that it can be replaced by
the diagnostics engine's computation of the same thing without touching the screen code.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from pos_sim.diagnostics.catalogue import Catalogue
from pos_sim.diagnostics.engine import DiagnosticReport, Finding
from pos_sim.tui.text import ui_text

#: why a component was not tested, in the order the verdict line names them
REASONS = ("needs_person", "aborted", "refused", "restart", "link", "not_run", "not_fitted")
#: verdicts of a test that ran to its end and judged the part
JUDGED = ("pass", "warn", "fail")


@dataclass(frozen=True)
class NotTested:
    """A component of the run that gave no verdict of its own, and why (a key of ``REASONS``)."""

    component: str
    why: str


@dataclass(frozen=True)
class Completeness:
    """How much of a run was tested: the components judged and those not tested."""

    ran: tuple[str, ...]
    not_tested: tuple[NotTested, ...]

    @property
    def complete(self) -> bool:
        """True when every check of the run ran (a component the terminal lacks is no gap)."""
        return all(n.why == "not_fitted" for n in self.not_tested)

    def counts(self) -> Counter[str]:
        """How many components were not tested, by reason."""
        return Counter(n.why for n in self.not_tested)


def why_not_tested(finding: Finding, *, aborted: bool = False) -> str | None:
    """Why ``finding``'s component was not tested (None: its test ran and judged the part).

    ``aborted`` says the technician aborted this run, so a skipped test without checks left
    for a person was stopped by that.
    """
    if finding.verdict in JUDGED:
        return None
    note = finding.note.lower()
    if finding.verdict == "skipped":
        if "abort" in note:
            return "aborted"
        if finding.measurements.get("checks_skipped", 0) or "no person" in note:
            return "needs_person"
        return "aborted" if aborted else "not_run"
    # error: the test never gave a verdict of its own
    if finding.code == "terminal_restarted" or "restarted" in note:
        return "restart"
    if finding.code == "link_refused":
        return "refused"
    return "link"


def tui_completeness(report: DiagnosticReport, fitted: Iterable[str] | None = None, *,
                     aborted: bool = False, whole_plan: bool = True) -> Completeness:
    """The completeness of ``report`` from its findings.

    ``fitted`` is what the terminal said it has (HELLO); with ``whole_plan`` (a run of the whole
    plan, not of chosen tiles) the components a device of its kind can have (``report.possible``)
    that it lacks are listed as not fitted.  ``aborted``: the technician aborted the run.
    """
    ran: list[str] = []
    not_tested: list[NotTested] = []
    for f in report.results:
        why = why_not_tested(f, aborted=aborted)
        if why is None:
            ran.append(f.component)
            if f.verdict == "pass" and f.measurements.get("checks_skipped", 0):
                not_tested.append(NotTested(f.component, "needs_person"))   # passed what ran (a receipt printer)
        else:
            not_tested.append(NotTested(f.component, why))
    if whole_plan and fitted is not None:
        have = set(fitted)
        seen = {f.component for f in report.results}
        not_tested += [NotTested(c, "not_fitted") for c in report.possible if c not in have and c not in seen]
    return Completeness(tuple(ran), tuple(not_tested))


def _reasons(counts: Counter[str], lang: str, *, single: bool) -> str:
    keys = [k for k in REASONS if counts.get(k) and k != "not_fitted"]
    if single and len(keys) == 1:
        return ui_text(f"why_{keys[0]}", lang)
    sep = "，" if lang == "zh-CN" else ", "
    return sep.join(ui_text("why_n", lang, n=counts[k], why=ui_text(f"why_{k}", lang)) for k in keys)


def verdict_text(report: DiagnosticReport, completeness: Completeness, lang: str, catalogue: Catalogue) -> str:
    """The verdict line: the overall verdict and what it covers, e.g. "OK for the 4 checks that
    ran; 7 not tested (need a person)"; never a bare "OK" for checks that did not run."""
    overall = catalogue.label("overall", report.verdict, lang)
    counts = completeness.counts()
    ran = len(completeness.ran)
    gaps = sum(n for k, n in counts.items() if k != "not_fitted")
    if gaps == 0:
        text = ui_text("verdict_complete_1" if ran == 1 else "verdict_complete", lang, overall=overall, n=ran)
    else:
        reasons = _reasons(counts, lang, single=True)
        if ran == 0:
            key = "verdict_none_ran_ok" if report.verdict == "ok" else "verdict_none_ran"
            text = ui_text(key, lang, overall=overall, m=gaps, why=reasons)
        else:
            text = ui_text("verdict_partial_1" if ran == 1 else "verdict_partial", lang, overall=overall, n=ran,
                           m=gaps, why=reasons)
    if counts.get("not_fitted"):
        text += ui_text("verdict_not_fitted", lang, n=counts["not_fitted"])
    return text


__all__ = ["REASONS", "Completeness", "NotTested", "tui_completeness", "verdict_text", "why_not_tested"]
