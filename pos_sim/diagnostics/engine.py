"""The diagnostics engine: runs a plan of self-tests and turns what comes back into findings.

A plan is an ordered list of components and the protocol plan to run on each.  Tests that need
no person run concurrently (the terminal NAKs ``busy`` when it cannot, and the engine waits for
one to finish); tests that may prompt a person run one at a time, so the technician is never
asked to swipe a card and press keys at once.  Progress, prompts and results are reported to
an ``on_update`` callback on the engine's own thread; prompts that need an answer go to a
:class:`Prompter` (the CLI asks on the terminal, the TUI in a dialog).

Findings carry the fault catalogue's classification (category, severity, what the merchant can
do, whether a repair ticket is needed) in the chosen language.  A link that fails is reported
as a *communication* finding with verdict ``error`` for the component it interrupted, never as
a failed component.
"""

from __future__ import annotations

import contextlib
import queue
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from drivers.device import Device, SelfTestHandle, protocol_of
from drivers.errors import (
    DeviceDisconnected,
    DriverError,
    ProtocolViolation,
    RequestRefused,
    ResponseTimeout,
    SelfTestLost,
    SessionLost,
)
from drivers.terminal import DeviceInfo, SelfTestProgress, SelfTestResult
from pos_sim import __version__, exitcodes
from pos_sim.diagnostics.catalogue import Catalogue, FaultEntry, load_catalogue, normalize_language
from protocols.pos.codes import Component, ComponentCode, Prompt, PromptCode

SCHEMA_VERSION = 1

#: exit-status bits (docs/diagnostics.md, smartctl's model), from the one table
EXIT_USAGE, EXIT_OPEN, EXIT_COMMUNICATION = exitcodes.USAGE, exitcodes.PORT, exitcodes.COMMUNICATION
EXIT_FAILED, EXIT_WARNING = exitcodes.FAILED, exitcodes.WARNING
EXIT_LOCKED, EXIT_EVENT_LOG = exitcodes.LOCKED, exitcodes.EVENT_LOG


def plan_order(components: Iterable[ComponentCode] = Component,
               key: Literal["plan", "drop"] = "plan") -> tuple[str, ...]:
    """The components' names in the order their declaration ranks them (``plan`` or ``drop``)."""
    return tuple(c.name for c in sorted(components, key=lambda c: (int(getattr(c, key)), int(c))))


def interactive(components: Iterable[ComponentCode] = Component,
                prompts: Iterable[PromptCode] = Prompt) -> tuple[str, ...]:
    """The components a declared prompt belongs to, in plan order: their tests may ask a person."""
    asking = {p.component.name for p in prompts if p.component is not None}
    return tuple(c for c in plan_order(components) if c in asking)


#: the natural order of a full or quick plan, from the Component declaration (its ``plan`` ranks)
NATURAL_ORDER = plan_order()
#: after a fall: tamper first, then what the guides tell a merchant to check, the board last
#: (the Component declaration's ``drop`` ranks)
DROP_ORDER = plan_order(key="drop")
#: components whose full test may ask a person for something, so they run one at a time
INTERACTIVE = interactive()
CONFIRM_PROMPTS = ("confirm_pattern", "confirm_print")
PLANS: dict[str, tuple[str, tuple[str, ...]]] = {
    "full": ("full", NATURAL_ORDER),
    "quick": ("quick", NATURAL_ORDER),
    "drop": ("full", DROP_ORDER),
}
#: why a check of the plan did not run (in full), the ``not_tested`` reasons of docs/diagnostics.md
NOT_TESTED_REASONS = ("needs_person", "not_fitted", "terminal_refused", "terminal_locked", "lost_to_restart",
                      "link_failed", "aborted")
#: what the event log is filed under in ``not_tested`` (it is read after the self-tests)
EVENT_LOG = "event_log"
#: recovered link trouble worth telling the technician about: on a sound cable there is none
CRC_WARNING_THRESHOLD = 1
#: a test whose request or events were lost on a bad line is run once more before it counts as
#: a communication failure (a pulled cable is not retried: that needs the technician)
RETRIES = 1
#: a test whose reports the line spoilt (damaged frames arrived while it went silent, and the
#: terminal still answers) is run again up to this many times: a noisy cable costs time, not a
#: verdict (docs/protocol.md section 5, "A noisy line")
NOISY_RETRIES = 3


class RunAborted(Exception):
    """The technician ended the run at a prompt (end of input, Ctrl-C, Escape): nothing the run
    found so far is a verdict. A :class:`Prompter` raises it; :meth:`DiagnosticsEngine.run`
    aborts the terminal's running tests and lets it through."""


class Prompter(Protocol):
    """Where a running test's requests to the technician go."""

    def show(self, component: str, prompt: str, text: str) -> None:
        """Tell the technician what to do now (swipe, insert, press every key ...)."""

    def confirm(self, component: str, prompt: str, text: str) -> bool:
        """Ask the technician a yes/no question (does the test pattern look right?); raise
        :class:`RunAborted` when the technician ends the run instead of answering."""


@dataclass(frozen=True)
class Finding:
    """One component's verdict, classified and explained."""

    component: str
    verdict: str                      # pass, warn, fail, skipped, error
    code: str | None                  # FaultCode name or host-side fault key; None on pass
    code_value: int | None
    category: str | None
    severity: str | None
    merchant_fixable: bool
    repair_ticket: bool
    message: str
    advice: tuple[str, ...]
    measurements: dict[str, int] = field(default_factory=dict)
    note: str = ""
    duration_ms: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        d = asdict(self)
        d["advice"] = list(self.advice)
        return d


@dataclass
class Update:
    """What ``on_update`` receives: a test started, progressed, prompted, or finished."""

    kind: str                         # started, progress, prompt, finished, info
    component: str = ""
    percent: int = 0
    prompt: str = ""
    text: str = ""
    finding: Finding | None = None


@dataclass(frozen=True)
class NotTested:
    """A check of the plan that did not run, or ran only in part, and why.

    ``reason`` is one of :data:`NOT_TESTED_REASONS`. ``partial`` is true when the component's
    test ran but left checks out (its verdict stands for the checks that ran).
    """

    component: str
    reason: str
    partial: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"component": self.component, "reason": self.reason, "partial": self.partial}


@dataclass
class DiagnosticReport:
    """Everything one diagnostic run found; what reports, JSON and the registry are made of."""

    port: str
    plan: str
    lang: str
    started_at: float
    finished_at: float = 0.0
    device: DeviceInfo | None = None
    results: list[Finding] = field(default_factory=list)
    communication: list[Finding] = field(default_factory=list)
    event_log: list[dict[str, Any]] = field(default_factory=list)
    link: dict[str, Any] = field(default_factory=dict)
    verdict: str = "ok"
    exit_status: int = 0
    #: the components the terminal has (from HELLO); None when unknown
    fitted: list[str] | None = None
    #: the components a device of its kind can have: those not fitted are named so (a
    #: receipt printer: its printer alone, so no terminal component is "not fitted" on it)
    possible: tuple[str, ...] = NATURAL_ORDER
    #: components (or :data:`EVENT_LOG`) that the host decided did not run, and why
    untested: dict[str, str] = field(default_factory=dict)
    #: False when the event log could not be read (then ``event_log`` is empty and says nothing)
    event_log_read: bool = True

    @property
    def not_tested(self) -> list[NotTested]:
        """Every check of the plan that did not run in full, and why; then the components the
        terminal does not have (``not_fitted``: they are not in the plan, so they leave a run
        complete)."""
        out: list[NotTested] = []
        for f in self.results:
            reason = self.untested.get(f.component)
            skipped = f.measurements.get("checks_skipped", 0)
            if reason is None:
                if f.verdict == "skipped":
                    reason = "needs_person"     # the terminal leaves out only checks that need one
                elif f.verdict == "error":
                    reason = "link_failed"
                elif skipped:
                    out.append(NotTested(f.component, "needs_person", partial=True))
                    continue
                else:
                    continue
            out.append(NotTested(f.component, reason))
        if self.device is None and not self.results:
            out += [NotTested(c, "link_failed") for c in (self.fitted or ())]
        if not self.event_log_read or EVENT_LOG in self.untested:
            out.append(NotTested(EVENT_LOG, self.untested.get(EVENT_LOG, "link_failed")))
        if self.fitted is not None:
            out += [NotTested(c, "not_fitted") for c in self.possible if c not in self.fitted]
        return out

    @property
    def complete(self) -> bool:
        """True only when every check of the plan ran (a ``quick`` plan: its own checks)."""
        if self.device is None:
            return False
        return not any(n.reason != "not_fitted" for n in self.not_tested)

    @property
    def tested(self) -> list[str]:
        """The components whose test ran, in full or in part (their verdict says something)."""
        untested = {n.component for n in self.not_tested if not n.partial}
        return [f.component for f in self.results if f.component not in untested]

    def as_json(self) -> dict[str, Any]:
        """The ``--json`` object (docs/diagnostics.md documents every field)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "pos-sim", "version": __version__},
            "port": self.port,
            "plan": self.plan,
            "lang": self.lang,
            "started_at": round(self.started_at, 3),
            "finished_at": round(self.finished_at, 3),
            "device": self.device.as_dict() if self.device else None,
            "results": [f.as_dict() for f in self.results],
            "communication": [f.as_dict() for f in self.communication],
            "event_log": self.event_log if self.event_log_read else None,
            "link": self.link,
            "verdict": self.verdict,
            "complete": self.complete,
            "not_tested": [n.as_dict() for n in self.not_tested],
            "exit_status": self.exit_status,
        }


class DiagnosticsEngine:
    """Runs a plan on a connected :class:`~drivers.device.Device` (a terminal, a receipt printer);
    see the module docstring."""

    def __init__(self, terminal: Device, *, lang: str = "en", catalogue: Catalogue | None = None,
                 prompter: Prompter | None = None, on_update: Callable[[Update], None] | None = None,
                 port: str = "") -> None:
        self.terminal = terminal
        self.lang = normalize_language(lang)
        self.catalogue = catalogue or load_catalogue()
        self.prompter = prompter
        self.on_update = on_update or (lambda u: None)
        self.port = port or terminal.link.name
        self._progress: queue.Queue[SelfTestProgress] = queue.Queue()
        # the terminal repeats a prompt in every progress report: ask and show each once
        self._asked: tuple[str, str] | None = None
        self._shown: tuple[str, str] | None = None

    # -- planning --------------------------------------------------------------------------

    @staticmethod
    def components_for(plan: str, fitted: Sequence[str], tests: Sequence[str] | None = None) -> list[str]:
        """The components a plan runs, in order, limited to what is fitted (and to ``tests``)."""
        if plan not in PLANS:
            raise ValueError(f"unknown plan {plan!r}; plans: {', '.join(PLANS)}")
        order = PLANS[plan][1]
        chosen = [c for c in order if c in fitted]
        chosen += [c for c in fitted if c not in chosen]
        if tests:
            unknown = [t for t in tests if t not in fitted]
            if unknown:
                raise ValueError(f"not fitted on this terminal: {', '.join(unknown)}; "
                                 f"fitted: {', '.join(fitted)}")
            chosen = [c for c in chosen if c in tests]
        return chosen

    # -- running ---------------------------------------------------------------------------

    def run(self, plan: str = "full", tests: Sequence[str] | None = None,
            interactive: bool = True) -> DiagnosticReport:
        """Run the plan and return the report (never raises for what the terminal does).

        Raises :class:`RunAborted` (or ``KeyboardInterrupt``) when the technician ends the run at
        a prompt; the terminal's running tests are aborted first, and no report is made."""
        try:
            return self._run(plan, tests, interactive)
        except (RunAborted, KeyboardInterrupt):
            with contextlib.suppress(DriverError):
                self.terminal.abort()   # 0xFF: every running test (docs/protocol.md section 8)
            raise

    def _run(self, plan: str, tests: Sequence[str] | None, interactive: bool) -> DiagnosticReport:
        report = DiagnosticReport(port=self.port, plan=plan, lang=self.lang, started_at=time.time())
        hello = self.terminal.hello
        report.fitted = list(hello.components) if hello else None
        if protocol_of(self.terminal) == "escpos":
            report.possible = tuple(report.fitted or ())
        try:
            report.device = self.terminal.info()
        except DriverError as exc:
            report.communication.append(self._link_finding("link", exc))
            report.event_log_read = False
            return self._finish(report)
        fitted = list(hello.components) if hello else list(NATURAL_ORDER)
        components = self.components_for(plan, fitted, tests)
        wire_plan = PLANS[plan][0]
        person = interactive and wire_plan == "full"
        alone = [c for c in components if person and c in INTERACTIVE]
        together = [c for c in components if c not in alone]
        broken = self._run_together(together, wire_plan, person, report)
        for component in alone:
            if broken:
                report.results.append(self._not_run(component, broken))
                report.untested[component] = _lost_reason(broken)
                continue
            broken = self._run_together([component], wire_plan, person, report)
        if broken:
            report.event_log_read = False
            report.untested[EVENT_LOG] = _lost_reason(broken)
        else:
            try:
                report.event_log = [dict(e) for e in self.terminal.read_event_log()]
            except RequestRefused as exc:
                # the terminal answered, and said no: a finding, not an empty log
                report.event_log_read = False
                locked = report.device.lifecycle == "locked" and exc.reason == "not_permitted"
                report.untested[EVENT_LOG] = "terminal_locked" if locked else "terminal_refused"
                f = self._from_entry("link", "skipped", self.catalogue.fault("eventlog_refused"))
                report.communication.append(Finding(**{**asdict(f), "note": str(exc), "advice": f.advice}))
            except DriverError as exc:
                report.event_log_read = False
                report.untested[EVENT_LOG] = _lost_reason(exc)
                report.communication.append(self._link_finding("link", exc))
        order = {c: i for i, c in enumerate(components)}
        report.results.sort(key=lambda f: order.get(f.component, len(order)))
        _name_restart_losses(report, self.catalogue)
        return self._finish(report)

    def _run_together(self, components: list[str], wire_plan: str, person: bool,
                      report: DiagnosticReport) -> DriverError | None:
        """Run these tests concurrently (as far as the terminal allows); return a link failure."""
        waiting = list(components)
        running: dict[str, SelfTestHandle] = {}
        retries = dict.fromkeys(components, RETRIES)
        noisy = dict.fromkeys(components, NOISY_RETRIES)
        #: components whose SELFTEST_START went unanswered: the terminal may have started them
        unanswered_start: set[str] = set()
        while waiting or running:
            for component in list(waiting):
                try:
                    run = self.terminal.start_self_test(component, wire_plan, person)
                except RequestRefused as exc:
                    if exc.reason == "busy" and component in unanswered_start and not running:
                        # with nothing else of ours running, busy means this very component is
                        # testing: our earlier START went out and only its answers were lost
                        run = self.terminal.watch_self_test(component)
                        unanswered_start.discard(component)
                        waiting.remove(component)
                        running[component] = run
                        run.on_progress(self._progress.put)
                        self.on_update(Update("started", component))
                        continue
                    if exc.reason == "busy" and running:
                        continue   # the terminal runs what it can; try again when one finishes
                    waiting.remove(component)
                    refused = self._refused(component, exc, report)
                    report.results.append(refused)
                    self.on_update(Update("finished", component, finding=refused))
                    continue
                except DriverError as exc:
                    if self._retry(exc, component, retries, noisy):
                        unanswered_start.add(component)
                        continue
                    if isinstance(exc, SessionLost):   # it never started: not run, not lost
                        return self._abandon(exc, None, waiting, running, report)
                    waiting.remove(component)
                    return self._abandon(exc, component, waiting, running, report)
                waiting.remove(component)
                running[component] = run
                run.on_progress(self._progress.put)
                self.on_update(Update("started", component))
            self._drain_progress()
            for component, run in list(running.items()):
                try:
                    result = run.poll()
                except DriverError as exc:
                    del running[component]
                    if self._retry(exc, component, retries, noisy):
                        waiting.append(component)
                        continue
                    if (isinstance(exc, SelfTestLost) and exc.noisy and noisy[component] <= 0
                            and self.terminal.link.error is None and self._still_answers()):
                        # the line, not the terminal (it answers still): this test is lost, the others go on
                        f = self._error_finding(component, exc)
                        report.results.append(f)
                        if not any(c.code == f.code for c in report.communication):
                            report.communication.append(self._link_finding("link", exc))
                        self.on_update(Update("finished", component, finding=f))
                        continue
                    return self._abandon(exc, component, waiting, running, report)
                if result is not None:
                    del running[component]
                    finding = self._finding(result, report)
                    report.results.append(finding)
                    self.on_update(Update("finished", component, 100, finding=finding))
            if running and not self._progress.qsize():
                time.sleep(0.01)
        self._drain_progress()
        return None

    def _retry(self, exc: DriverError, component: str, retries: dict[str, int],
               noisy: dict[str, int] | None = None) -> bool:
        """Whether to run ``component`` again after ``exc`` (lost on the line, link still up)."""
        if isinstance(exc, SelfTestLost) and exc.noisy and noisy is not None:
            # its reports were spoilt on the line; if the terminal still answers, it did not hang
            if self.terminal.link.error is not None or noisy[component] <= 0 or not self._still_answers():
                return False
            noisy[component] -= 1
            self.on_update(Update("info", component, text=f"running again after: {exc}"))
            return True
        # a test that went silent mid-way is a hung terminal, not a lost frame: no retry
        if (not isinstance(exc, ResponseTimeout) or isinstance(exc, SelfTestLost)
                or self.terminal.link.error is not None or retries[component] <= 0):
            return False
        retries[component] -= 1
        self.on_update(Update("info", component, text=f"retrying after: {exc}"))
        return True

    def _still_answers(self) -> bool:
        """Whether the terminal answers a PING now (a hung one does not)."""
        try:
            self.terminal.ping()
        except DriverError:
            return False
        return True

    def _abandon(self, exc: DriverError, component: str | None, waiting: list[str],
                 running: dict[str, SelfTestHandle], report: DiagnosticReport) -> DriverError:
        """The link failed (or the terminal restarted) during ``component``: it and every test
        still running are lost, those not started are not run; each is an error."""
        lost: list[str] = []   # cut off mid-test
        for interrupted in [*([component] if component else []), *running]:
            run = running.get(interrupted)
            if run is not None and run.result is not None:
                f = self._finding(run.result)   # it finished before the failure: its verdict stands
            else:
                f = self._error_finding(interrupted, exc)
                lost.append(interrupted)
            report.results.append(f)
            if interrupted in lost:
                report.untested[interrupted] = _lost_reason(exc)
            self.on_update(Update("finished", interrupted, 0 if interrupted in lost else 100, finding=f))
        for other in waiting:
            f = self._not_run(other, exc)
            report.untested[other] = _lost_reason(exc)
            report.results.append(f)
            self.on_update(Update("finished", other, finding=f))
        report.communication.append(self._link_finding("link", exc))
        return exc

    def _drain_progress(self) -> None:
        while True:
            try:
                p = self._progress.get_nowait()
            except queue.Empty:
                return
            self.on_update(Update("progress", p.component, p.percent, p.prompt))
            if p.prompt in ("", "none"):
                continue
            text = self.catalogue.label("prompt", p.prompt, self.lang)
            if p.prompt in CONFIRM_PROMPTS:
                if self._asked == (p.component, p.prompt):
                    continue
                self._asked = (p.component, p.prompt)
                accepted = self.prompter.confirm(p.component, p.prompt, text) if self.prompter else False
                # a broken link is reported by the run's own poll(), with its component
                with contextlib.suppress(DriverError):
                    self.terminal.confirm(p.component, accepted)
            elif self.prompter is not None and self._shown != (p.component, p.prompt):
                self._shown = (p.component, p.prompt)
                self.prompter.show(p.component, p.prompt, text)
                self.on_update(Update("prompt", p.component, p.percent, p.prompt, text))

    # -- findings --------------------------------------------------------------------------

    def _finding(self, r: SelfTestResult, report: DiagnosticReport | None = None) -> Finding:
        verdict = self.catalogue.verdict_for(r.outcome)
        if report is not None and getattr(r.outcome, "name", r.outcome) == "aborted":
            report.untested[r.component] = "aborted"
        code = r.code
        if code in ("none", 0) or verdict == "pass":
            label = self.catalogue.label("verdict", verdict, self.lang)
            return Finding(r.component, verdict, None, None, None, None, False, False,
                           _with_note(label, verdict, r, self.catalogue, self.lang), (),
                           r.measurements, r.note, r.duration_ms)
        entry = self.catalogue.fault(code if isinstance(code, int | str) else int(code))
        return self._from_entry(r.component, verdict, entry, r.measurements, r.note, r.duration_ms)

    def _from_entry(self, component: str, verdict: str, entry: FaultEntry, measurements: dict[str, int] | None = None,
                    note: str = "", duration_ms: int = 0) -> Finding:
        return Finding(component, verdict, entry.key, entry.code, str(entry.category), entry.severity.name,
                       entry.merchant_fixable, entry.repair_ticket, entry.message(self.lang),
                       entry.advice(self.lang), measurements or {}, note, duration_ms)

    def _link_finding(self, component: str, exc: DriverError) -> Finding:
        entry = self.catalogue.fault(_host_fault_key(exc, self.terminal))
        f = self._from_entry(component, "error", entry)
        return Finding(**{**asdict(f), "note": str(exc), "advice": f.advice})

    def _error_finding(self, component: str, exc: DriverError) -> Finding:
        """The component interrupted by a link failure: verdict error, category communication."""
        return self._link_finding(component, exc)

    def _not_run(self, component: str, exc: DriverError) -> Finding:
        label = self.catalogue.label("verdict", "error", self.lang)
        note = self.catalogue.label("note", f"not_run_{_lost_reason(exc)}", self.lang)
        return Finding(component, "error", None, None, "communication", None, False, False,
                       f"{label}: {self.catalogue.fault(_host_fault_key(exc, self.terminal)).message(self.lang)}",
                       (), {}, note)

    def _refused(self, component: str, exc: RequestRefused, report: DiagnosticReport) -> Finding:
        """A test the terminal would not start. A locked terminal whose firmware keeps no service
        diagnostics refuses them all (docs/protocol.md section 8): not tested, not a link fault."""
        if exc.reason == "not_permitted" and report.device is not None and report.device.lifecycle == "locked":
            report.untested[component] = "terminal_locked"
            text = self.catalogue.label("not_tested_reason", "terminal_locked", self.lang)
            return Finding(component, "skipped", None, None, None, None, False, False,
                           f"{self.catalogue.label('verdict', 'skipped', self.lang)} ({text})", (), {}, str(exc))
        report.untested[component] = "terminal_refused"
        entry = self.catalogue.fault("link_refused")
        f = self._from_entry(component, "error", entry)
        return Finding(**{**asdict(f), "note": str(exc), "advice": f.advice})

    # -- verdict ---------------------------------------------------------------------------

    def _finish(self, report: DiagnosticReport) -> DiagnosticReport:
        stats = self.terminal.link.stats
        deframer = self.terminal.link.deframer.stats
        report.link = {**stats.as_dict(), "deframer": deframer.as_dict()}
        if deframer.bad_crc >= CRC_WARNING_THRESHOLD and not report.communication:
            entry = self.catalogue.fault("link_crc_errors")
            f = self._from_entry("link", "warn", entry)
            report.communication.append(Finding(**{**asdict(f), "advice": f.advice,
                                                   "note": self.catalogue.label("note", "crc_errors", self.lang).format(
                                                       bad_crc=deframer.bad_crc, retransmits=stats.retransmits)}))
        report.finished_at = time.time()
        report.exit_status = exit_status(report)
        report.verdict = overall_verdict(report.exit_status)
        return report


def exit_status(report: DiagnosticReport) -> int:
    """The exit-status bitmask of docs/diagnostics.md for a report."""
    status = 0
    for f in report.results:
        if f.verdict == "fail":
            if f.code == "tamper_tripped":
                # locked means the tamper switch (docs/protocol.md, LifecycleState locked); keys
                # missing or erased are a security fault that needs repair, not a lock
                status |= EXIT_LOCKED | EXIT_FAILED
            elif f.merchant_fixable:
                status |= EXIT_WARNING
            else:
                status |= EXIT_FAILED
        elif f.verdict == "warn":
            status |= EXIT_WARNING
    for f in report.communication:
        if f.verdict == "error":
            status |= EXIT_COMMUNICATION
        elif f.verdict == "warn":
            status |= EXIT_WARNING
        # "skipped" (a read the terminal refused) is in not_tested; it sets no bit
    if report.device is not None and report.device.lifecycle == "locked":
        status |= EXIT_LOCKED
    if any(str(e.get("severity")) in ("error", "critical") for e in report.event_log):
        status |= EXIT_EVENT_LOG
    return status


def verdict_detail_key(report: DiagnosticReport) -> str:
    """The ``overall_detail`` label that explains a report's verdict. A link or firmware failure
    (bit 4) is not something the merchant can fix, so it never gets needs_attention's words."""
    if report.verdict == "needs_attention" and report.exit_status & EXIT_COMMUNICATION:
        return "communication"
    return report.verdict


def completeness_text(report: DiagnosticReport, catalogue: Catalogue, lang: str | None = None) -> str:
    """The overall verdict with what it covers, in ``lang`` (default the report's), when the run
    was not complete: "OK for the 4 checks that ran; 7 not tested (need a person)".  Empty when
    every check of the plan ran (then the verdict speaks for the whole plan)."""
    if report.complete:
        return ""
    lang = normalize_language(lang or report.lang)
    untested = [n for n in report.not_tested if n.reason != "not_fitted"]
    ran = "ran_1" if len(report.tested) == 1 else "ran" if report.tested else "none_ran"
    parts = [catalogue.label("completeness", ran, lang).format(
        verdict=catalogue.label("overall", report.verdict, lang) if report.verdict else "",
        n=len(report.tested))]
    # punctuation, not words: the catalogue holds texts a translator checks
    sep, parts_sep = ("，", "；") if lang == "zh-CN" else (", ", "; ")
    for key, group in (("not_tested", [n for n in untested if not n.partial and n.component != EVENT_LOG]),
                       ("partial", [n for n in untested if n.partial]),
                       ("event_log", [n for n in untested if n.component == EVENT_LOG])):
        if not group:
            continue
        counts: dict[str, int] = {}
        for n in group:
            counts[n.reason] = counts.get(n.reason, 0) + 1
        if len(counts) == 1:
            reasons = catalogue.label("not_tested_reason", next(iter(counts)), lang)
        else:
            reasons = sep.join(f"{c} {catalogue.label('not_tested_reason', r, lang)}" for r, c in counts.items())
        parts.append(catalogue.label("completeness", key, lang).format(n=len(group), reasons=reasons))
    return parts_sep.join(parts)


def translate_terminal_note(note: str, catalogue: Catalogue, lang: str) -> str:
    """A self-test note in ``lang``, as far as its phrases are in the catalogue (group
    ``terminal_note``): "not run: test page (no person present)" is "未运行：打印测试页（无人操作）".
    What the catalogue does not know (a number, another firmware's words) stays as it came."""
    if normalize_language(lang) == "en" or not note:
        return note
    words = {catalogue.label("terminal_note", k, "en"): catalogue.label("terminal_note", k, lang)
             for k in catalogue.keys("terminal_note")}

    def say(phrase: str) -> str:
        return words.get(phrase, phrase)

    parts = []
    for part in note.split("; "):
        head, colon, rest = part.partition(": ")
        if colon and head == "not run":
            items = []
            for item in rest.split(", "):
                name, paren, why = item.partition(" (")
                items.append(f"{say(name)}（{say(why.removesuffix(')'))}）" if paren and why.endswith(")")
                             else say(item))
            parts.append(f"{say(head)}：{'，'.join(items)}")
        elif part.startswith("also "):
            parts.append(f"{say('also')} {part.removeprefix('also ')}")
        else:
            parts.append(say(part))
    return "；".join(parts)


def _lost_reason(exc: DriverError) -> str:
    """Why a check did not run after a failure: the terminal restarted, or the link failed."""
    return "lost_to_restart" if isinstance(exc, SessionLost) else "link_failed"


def overall_verdict(status: int) -> str:
    """ok, needs_attention (the merchant can fix it), needs_repair, or locked (tamper)."""
    if status & EXIT_LOCKED:
        return "locked"
    if status & EXIT_FAILED:
        return "needs_repair"
    if status & (EXIT_WARNING | EXIT_COMMUNICATION):
        return "needs_attention"
    return "ok"


def _host_fault_key(exc: DriverError, terminal: Device) -> str:
    """Which host-side catalogue entry a driver error is."""
    text = str(exc)
    if isinstance(exc, SessionLost):
        return "terminal_restarted"
    if isinstance(exc, DeviceDisconnected):
        return "link_disconnected"
    if isinstance(exc, SelfTestLost):
        return "selftest_lost"
    if isinstance(exc, RequestRefused):
        return "link_refused"
    if isinstance(exc, ProtocolViolation):
        return "link_protocol"
    if isinstance(exc, ResponseTimeout):
        if "echoes" in text:
            return "link_echo"
        if "not frames" in text:
            return "link_garbage"
        return "link_timeout"
    return "link_protocol"


def _name_restart_losses(report: DiagnosticReport, cat: Catalogue) -> None:
    """Say in the restart's finding which checks it cost, so the technician knows what to run
    again: those cut off mid-test and those it kept from starting."""
    for i, f in enumerate(report.communication):
        if f.code != "terminal_restarted":
            continue
        lost = [r.component for r in report.results if r.code == "terminal_restarted"]
        not_run = [r.component for r in report.results if r.verdict == "error" and r.code is None
                   and r.component in report.untested]
        lang = report.lang
        names = [cat.label("note", "lost", lang).format(names=", ".join(lost) or cat.label("note", "nothing", lang)),
                 *([cat.label("note", "not_run", lang).format(names=", ".join(not_run))] if not_run else [])]
        report.communication[i] = Finding(**{**asdict(f), "advice": f.advice,
                                             "note": f"{f.note} ({'; '.join(names)})"})


def _with_note(label: str, verdict: str, r: SelfTestResult, cat: Catalogue, lang: str) -> str:
    skipped = r.measurements.get("checks_skipped", 0)
    if verdict in ("skipped", "pass") and skipped:   # a pass: the checks that ran (a receipt printer's)
        if normalize_language(lang) == "zh-CN":
            return f"{label}（{cat.label('measurement', 'checks_skipped', lang)}：{skipped}）"
        return f"{label} ({cat.label('measurement', 'checks_skipped', lang)}: {skipped})"
    return label
