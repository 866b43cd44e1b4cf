"""The TUI's completeness of a run and its verdict line, from hand-made findings."""

from __future__ import annotations

from pos_sim.diagnostics.catalogue import load_catalogue
from pos_sim.diagnostics.engine import DiagnosticReport, Finding
from pos_sim.tui.completeness import tui_completeness, verdict_text, why_not_tested


def finding(component: str, verdict: str, *, code: str | None = None, note: str = "",
            skipped: int = 0) -> Finding:
    return Finding(component, verdict, code, None, None, None, False, False, verdict, (),
                   {"checks_skipped": skipped} if skipped else {}, note)


def report(*findings: Finding, verdict: str = "ok") -> DiagnosticReport:
    return DiagnosticReport(port="emu://x", plan="full", lang="en", started_at=0.0, results=list(findings),
                            verdict=verdict)


def test_why_a_component_was_not_tested() -> None:
    assert why_not_tested(finding("power", "pass")) is None
    assert why_not_tested(finding("screen", "fail", skipped=1)) is None   # a check that ran found the fault
    assert why_not_tested(finding("printer", "skipped", skipped=1, note="not run: test page (no person present)")) \
        == "needs_person"
    assert why_not_tested(finding("keypad", "skipped", note="aborted by the host")) == "aborted"
    assert why_not_tested(finding("keypad", "skipped"), aborted=True) == "aborted"
    assert why_not_tested(finding("chip", "error", code="terminal_restarted")) == "restart"
    assert why_not_tested(finding("chip", "error", note="not run: the terminal restarted before this test")) \
        == "restart"
    assert why_not_tested(finding("chip", "error", code="link_refused")) == "refused"
    assert why_not_tested(finding("chip", "error", note="not run: the link failed before this test")) == "link"
    assert why_not_tested(finding("chip", "error", code="link_disconnected")) == "link"


def test_the_verdict_line_in_both_languages() -> None:
    cat = load_catalogue()
    r = report(finding("system", "pass"), finding("power", "pass"), finding("screen", "skipped", skipped=2),
               finding("keypad", "skipped", skipped=1), finding("chip", "error", code="terminal_restarted"))
    c = tui_completeness(r, ["system", "power", "screen", "keypad", "chip"])
    assert not c.complete and c.ran == ("system", "power")
    assert verdict_text(r, c, "en", cat) == ("OK for the 2 checks that ran; 3 not tested (2 need a person, "
                                             "1 lost to a restart); 6 not fitted")
    assert verdict_text(r, c, "zh-CN", cat) == ("正常（已完成的 2 项检测）；3 项未检测（2 项需要人工配合，"
                                                "1 项终端重启而中断）；6 项未配备")
    whole = report(finding("system", "pass"), finding("security", "fail"), verdict="locked")
    done = tui_completeness(whole, None)
    assert done.complete
    assert verdict_text(whole, done, "en", cat) == "Locked: all 2 checks ran"
    assert verdict_text(whole, done, "zh-CN", cat) == "已锁定：全部 2 项检测均已完成"
    nothing = report(finding("power", "skipped", note="aborted by the host"))
    none = tui_completeness(nothing, None)
    assert verdict_text(nothing, none, "en", cat) == "No verdict: no check ran; 1 not tested (aborted)"
    # a run of chosen tiles: what the terminal lacks is not part of it
    assert tui_completeness(r, ["system"], whole_plan=False).counts().get("not_fitted") is None


def test_a_receipt_printer_without_a_person_passed_its_status_and_lacks_only_its_page() -> None:
    cat = load_catalogue()
    r = report(finding("printer", "pass", skipped=1, note="not run: test page (no person present)"))
    r.fitted, r.possible = ["printer"], ("printer",)   # as the engine files a receipt printer's run
    c = tui_completeness(r, ["printer"])
    assert c.ran == ("printer",) and not c.complete
    assert verdict_text(r, c, "en", cat) == "OK for the 1 check that ran; 1 not tested (need a person)"
    assert "not fitted" not in verdict_text(r, c, "en", cat)
    # a terminal's run of the same finding names the ten components it lacks
    t = report(finding("printer", "pass", skipped=1))
    assert tui_completeness(t, ["printer"]).counts()["not_fitted"] == 10
