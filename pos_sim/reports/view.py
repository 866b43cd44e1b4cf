"""What a report shows, resolved into one language: the single source of the HTML and Markdown.

:func:`build_view` turns a :class:`~pos_sim.diagnostics.engine.DiagnosticReport` into a
:class:`ReportView` of plain strings in ``report.lang``. The renderers only lay those strings out
(and escape them), so the two human formats cannot drift apart in content.

Every text comes from the fault catalogue, except the few words only a report uses (the title,
"date", "event log", ...) and the names of lifecycle states: those are the phrase book
``text.toml`` beside this module (groups ``report`` and ``lifecycle``), in the catalogue's format
and read by its loader; :data:`REPORT_TEXTS` and :data:`LIFECYCLE_TEXTS` are its two groups.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

from pos_sim import __version__
from pos_sim.diagnostics.catalogue import Catalogue, Language, Phrases, load_catalogue, load_phrases, normalize_language
from pos_sim.diagnostics.engine import (
    SCHEMA_VERSION,
    DiagnosticReport,
    Finding,
    completeness_text,
    translate_terminal_note,
    verdict_detail_key,
)
from protocols.pos.codes import Severity, TrackCode

__all__ = [
    "LIFECYCLE_TEXTS",
    "MISSING",
    "PHRASES",
    "REPORT_TEXTS",
    "VERDICT_SYMBOLS",
    "EventView",
    "Field",
    "FindingView",
    "MeasurementView",
    "ReportView",
    "TicketView",
    "Verdict",
    "build_view",
]

#: what a value the report does not have looks like
MISSING: Final = "—"

#: the report's phrase book (pos_sim/reports/text.toml)
PHRASES: Final[Phrases] = load_phrases(__package__ or "pos_sim.reports", "text.toml")

#: Words only a report uses, in both languages (the phrase book's ``report`` group).
REPORT_TEXTS: Final[Mapping[str, Mapping[Language, str]]] = PHRASES.pairs("report")

#: Lifecycle states (protocols.pos.codes.LifecycleState) as people say them (group ``lifecycle``).
LIFECYCLE_TEXTS: Final[Mapping[str, Mapping[Language, str]]] = PHRASES.pairs("lifecycle")

#: a symbol for each verdict, so that it reads without colour (component and overall verdicts)
VERDICT_SYMBOLS: Final[Mapping[str, str]] = {
    "pass": "✓", "warn": "!", "fail": "✗", "skipped": "–", "error": "?",
    "ok": "✓", "needs_attention": "!", "needs_repair": "✗", "locked": "■",
}

#: event-log severities that count as errors (the engine's exit bit 64 uses the same)
_ERROR_SEVERITIES: Final = frozenset({"error", "critical"})
_NOT_PASSED: Final = frozenset({"warn", "fail", "error"})
_CSS_KEY: Final = re.compile(r"[a-z_]+\Z")


@dataclass(frozen=True)
class Field:
    """One labelled value: ``Serial number: SP0000457``."""

    label: str
    value: str


@dataclass(frozen=True)
class Verdict:
    """A verdict as shown: its key (``fail``), a symbol, and its words in the report's language."""

    key: str
    symbol: str
    text: str

    @property
    def css(self) -> str:
        """The key as a safe CSS class suffix (a hand-made report may hold anything)."""
        return self.key if _CSS_KEY.match(self.key) else "unknown"


@dataclass(frozen=True)
class FindingView:
    """One finding as shown: a row of a results table and, if it did not pass, its advice.

    ``code`` is how people write the code (``0x0B01``, or the key of a host-side fault);
    ``code_key`` is the catalogue's name for it (``tamper_tripped``). ``note`` is the terminal's
    own detail, left out for a pass.
    """

    component: str
    name: str
    verdict: Verdict
    code: str
    code_key: str
    category: str
    severity: str
    message: str
    note: str
    advice: tuple[str, ...]
    merchant_fixable: bool
    repair_ticket: bool


@dataclass(frozen=True)
class MeasurementView:
    """One measurement: the part it belongs to, what it is, and its value with its unit."""

    name: str
    label: str
    value: str


@dataclass(frozen=True)
class EventView:
    """One error entry of the terminal's event log."""

    time: str
    name: str
    code: str
    code_key: str
    severity: str
    description: str


@dataclass(frozen=True)
class TicketView:
    """The "for the repair ticket" block: identity, the faults, what to bring, back up first.

    ``failed`` pairs each part that needs after-sales service with its fault (code and message).
    """

    title: str
    fields: tuple[Field, ...]
    failed_label: str
    description_label: str
    failed: tuple[Field, ...]
    materials_intro: str
    materials: tuple[str, ...]
    backup_first: str
    after_repair: str


@dataclass(frozen=True)
class ReportView:
    """Everything a report shows, in one language; the HTML and Markdown renderers use only this.

    ``words`` holds the headings and fixed phrases: the keys of :data:`REPORT_TEXTS`, and the
    catalogue's ``heading`` labels as ``heading.<key>``. ``colon`` and ``parens`` are the
    language's punctuation (``：`` and ``（）`` in Chinese).
    """

    lang: Language
    title: str
    subtitle: str
    verdict: Verdict
    verdict_caption: str
    verdict_detail: str
    device: tuple[Field, ...]
    run: tuple[Field, ...]
    results: tuple[FindingView, ...]
    advice: tuple[FindingView, ...]
    measurements: tuple[MeasurementView, ...]
    communication: tuple[FindingView, ...]
    events: tuple[EventView, ...]
    link: tuple[Field, ...]
    ticket: TicketView | None
    footer: str
    words: Mapping[str, str]
    colon: str
    parens: tuple[str, str]
    #: False when the event log could not be read (then ``events`` says nothing about it)
    event_log_read: bool = True
    #: True when every check of the plan ran; else ``verdict_detail`` says what the verdict covers
    complete: bool = True


class _Words:
    """Texts in one language: the catalogue's labels, with the report's own words as fallback."""

    def __init__(self, catalogue: Catalogue, lang: Language) -> None:
        self.catalogue = catalogue
        self.lang = lang

    def label(self, group: str, key: str) -> str:
        """A catalogue label, or the key itself when the catalogue has none (never fails)."""
        try:
            return self.catalogue.label(group, key, self.lang)
        except KeyError:
            return key

    def report(self, key: str) -> str:
        """A word only reports use (the phrase book's ``report`` group)."""
        return REPORT_TEXTS[key][self.lang]

    def lifecycle(self, state: str) -> str:
        """A lifecycle state as people say it (``unknown(7)`` and the like stay as they are)."""
        texts = LIFECYCLE_TEXTS.get(state)
        return texts[self.lang] if texts else state

    def verdict(self, key: str, group: str = "verdict") -> Verdict:
        """A component verdict (group ``verdict``) or the overall one (group ``overall``)."""
        return Verdict(key, VERDICT_SYMBOLS.get(key, "?"), self.label(group, key))

    def unit(self, measurement: str) -> str:
        """The unit of a measurement, or ``""``."""
        try:
            return self.catalogue.unit(measurement, self.lang)
        except KeyError:
            return ""


def build_view(report: DiagnosticReport, catalogue: Catalogue | None = None) -> ReportView:
    """Resolve a report into the texts it shows, in ``report.lang``.

    Never fails for what a terminal sent: unknown components, codes, severities, lifecycle
    states or measurements are shown as they came.
    """
    lang = normalize_language(report.lang)
    w = _Words(catalogue or load_catalogue(), lang)
    words = {key: w.report(key) for key in REPORT_TEXTS}
    words.update({f"heading.{key}": w.label("heading", key) for key in w.catalogue.keys("heading")})

    device = report.device
    device_fields: tuple[Field, ...] = ()
    if device is not None:
        device_fields = (
            Field(words["manufacturer"], device.manufacturer or MISSING),
            Field(w.label("ticket_field", "model"), device.model or MISSING),
            Field(w.label("ticket_field", "serial_number"), device.serial or MISSING),
            Field(w.label("ticket_field", "firmware_version"), device.firmware_version or MISSING),
            Field(w.label("ticket_field", "hardware_revision"), device.hardware_rev or MISSING),
            Field(words["lifecycle"], w.lifecycle(device.lifecycle)),
            Field(words["merchant"], device.merchant_id or words["not_bound"]),
            Field(words["activated_at"], _when(device.activated_at)),
        )
        subtitle = " · ".join(x for x in (f"{device.manufacturer} {device.model}".strip(), device.serial) if x)
    else:
        subtitle = words["no_device"]
    duration = max(0.0, report.finished_at - report.started_at) if report.finished_at else 0.0
    run_fields = (
        Field(words["date"], _when(report.started_at)),
        Field(words["plan"], w.label("plan", report.plan)),
        Field(words["duration"], f"{duration:.1f} {words['seconds']}"),
        Field(words["port"], report.port or MISSING),
    )

    why = {n.component: w.label("not_tested_reason", n.reason) for n in report.not_tested if not n.partial}
    results = tuple(_finding_view(f, w, why.get(f.component) if f.verdict == "skipped" else None)
                    for f in report.results)
    communication = tuple(_finding_view(f, w) for f in report.communication)
    advice: list[FindingView] = []
    same: dict[tuple[str, str, tuple[str, ...]], int] = {}
    for f in (*results, *communication):
        if not f.advice or f.verdict.key not in (*_NOT_PASSED, "skipped"):
            continue
        # a link failure shows up as each interrupted component and as a communication finding:
        # one entry naming them all, its steps once
        key = (f.code_key, f.message, f.advice)
        if key in same:
            first = advice[same[key]]
            if f.name not in first.name.split(", "):
                advice[same[key]] = replace(first, name=f"{first.name}, {f.name}")
            continue
        same[key] = len(advice)
        advice.append(f)
    # a step two faults share (open a repair ticket ...) is given once, under the first
    given: set[str] = set()
    for i, f in enumerate(advice):
        steps = tuple(step for step in f.advice if step not in given)
        given.update(steps)
        advice[i] = replace(f, advice=steps)
    advice = [f for f in advice if f.advice]
    detail = w.label("overall_detail", verdict_detail_key(report)) if report.verdict else ""
    if not report.complete and report.device is not None:
        scope = completeness_text(report, w.catalogue, lang)
        left, right = ("（", "）") if lang == "zh-CN" else (" (", ")")
        # "every check passed" is not true of an incomplete run; the other explanations still are
        detail = scope if report.verdict == "ok" else f"{scope}{left}{detail}{right}"

    return ReportView(
        lang=lang,
        title=words["title"],
        subtitle=subtitle,
        verdict=w.verdict(report.verdict, "overall"),
        verdict_caption=w.label("heading", "overall"),
        verdict_detail=detail,
        device=device_fields,
        run=run_fields,
        results=results,
        advice=tuple(advice),
        measurements=tuple(_measurements(report.results, w)),
        communication=communication,
        events=tuple(_events(report.event_log, w)),
        link=tuple(_counters(report.link)),
        ticket=_ticket(report, results, communication, w),
        footer=words["made_by"].format(version=__version__, schema=SCHEMA_VERSION),
        words=words,
        colon="：" if lang == "zh-CN" else ": ",
        parens=("（", "）") if lang == "zh-CN" else (" (", ")"),
        event_log_read=report.event_log_read,
        complete=report.complete,
    )


def _finding_view(f: Finding, w: _Words, not_tested: str | None = None) -> FindingView:
    severity = _severity_key(f.severity)
    message = "" if f.verdict == "pass" and f.message == w.label("verdict", "pass") else f.message
    if not_tested and message == w.label("verdict", "skipped"):   # a bare "skipped": say why
        left, right = ("（", "）") if w.lang == "zh-CN" else (" (", ")")
        message = f"{message}{left}{not_tested}{right}"
    return FindingView(
        component=f.component,
        name=w.label("component", f.component),
        verdict=w.verdict(f.verdict),
        code=_code_text(f.code, f.code_value),
        code_key=f.code or "",
        category=w.label("category", f.category) if f.category else "",
        severity=w.label("severity", severity) if severity else "",
        # a pass says nothing more than its verdict; its message is only the verdict again
        message=message,
        note=translate_terminal_note(f.note, w.catalogue, w.lang) if f.verdict != "pass" else "",
        advice=tuple(f.advice),
        merchant_fixable=f.merchant_fixable,
        repair_ticket=f.repair_ticket,
    )


def _code_text(key: str | None, value: int | None) -> str:
    """``0x0B01`` for a terminal's code, the key for a host-side one, ``""`` for none."""
    if value is not None:
        return f"0x{value:04X}"
    return key or ""


def _severity_key(value: object) -> str:
    """A severity's name, whether it came as ``"critical"``, ``3`` or ``"3"``."""
    if value is None or value == "":
        return ""
    text = str(value)
    if text.isdigit():
        try:
            return Severity(int(text)).name
        except ValueError:
            return text
    return text


def _when(timestamp: object) -> str:
    """A Unix time as local date and time with its UTC offset; ``—`` for none."""
    if isinstance(timestamp, bool) or not isinstance(timestamp, int | float) or timestamp <= 0:
        return MISSING
    try:
        return datetime.fromtimestamp(timestamp).astimezone().isoformat(sep=" ", timespec="seconds")
    except (OverflowError, OSError, ValueError):
        return str(timestamp)


def _measurement_value(name: str, value: object, w: _Words) -> str:
    """A measurement with its unit, or decoded when it is a code or an address."""
    if isinstance(value, bool) or not isinstance(value, int):
        return str(value)
    if name == "ip_v4":
        return str(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    if name in ("track1", "track2", "track3"):
        try:
            return f"{w.label('track_code', TrackCode(value).name)} ({value})"
        except ValueError:
            return str(value)
    if name == "paper_status":
        return f"0x{value & 0xFF:02X}"   # the ESC/POS status byte: its bits are what matter
    unit = w.unit(name)
    return f"{value} {unit}" if unit else str(value)


def _measurements(findings: Iterable[Finding], w: _Words) -> Iterable[MeasurementView]:
    for f in findings:
        name = w.label("component", f.component)
        for key, value in f.measurements.items():
            yield MeasurementView(name, w.label("measurement", key), _measurement_value(key, value, w))


def _events(entries: Iterable[Mapping[str, Any]], w: _Words) -> Iterable[EventView]:
    for e in entries:
        severity = _severity_key(e.get("severity"))
        if severity not in _ERROR_SEVERITIES:
            continue
        code = e.get("code")
        code_key = "" if code is None else str(code)
        code_text, description = code_key, ""
        if code is not None and not isinstance(code, bool):
            try:
                entry = w.catalogue.fault(code if isinstance(code, int) else str(code))
            except (KeyError, ValueError):
                pass
            else:
                code_key, code_text, description = entry.key, entry.code_text, entry.message(w.lang)
        yield EventView(
            time=_when(e.get("time")),
            name=w.label("component", str(e.get("component", ""))),
            code=code_text,
            code_key=code_key,
            severity=w.label("severity", severity),
            description=description,
        )


def _counters(link: Mapping[str, Any], prefix: str = "") -> Iterable[Field]:
    for key, value in link.items():
        if isinstance(value, Mapping):
            yield from _counters(value, f"{prefix}{key}.")
        else:
            yield Field(f"{prefix}{key}", str(value))


def _needs_ticket(f: FindingView) -> bool:
    """A finding that has to go to after-sales service (not one the merchant or a cable fixes)."""
    if f.verdict.key == "pass":
        return False
    return f.repair_ticket or (f.verdict.key == "fail" and not f.merchant_fixable)


def _ticket(report: DiagnosticReport, results: Sequence[FindingView], communication: Sequence[FindingView],
            w: _Words) -> TicketView | None:
    """The repair-ticket block when the terminal has to go to after-sales service, else None."""
    failed = [f for f in (*results, *communication) if _needs_ticket(f)]
    if not failed and report.verdict not in ("needs_repair", "locked"):
        return None
    device = report.device

    def field(key: str, value: str | None) -> Field:
        return Field(w.label("ticket_field", key), value or MISSING)

    return TicketView(
        title=w.label("ticket", "title"),
        fields=(
            field("model", device.model if device else None),
            field("serial_number", device.serial if device else None),
            field("firmware_version", device.firmware_version if device else None),
            field("hardware_revision", device.hardware_rev if device else None),
        ),
        failed_label=w.label("ticket_field", "failed_components"),
        description_label=w.label("ticket_field", "fault_descriptions"),
        failed=tuple(Field(f.name, " ".join(x for x in (f.code, f.message) if x)) for f in failed),
        materials_intro=w.label("ticket", "materials_intro"),
        materials=tuple(w.label("ticket_material", key) for key in w.catalogue.keys("ticket_material")),
        backup_first=w.label("ticket", "backup_first"),
        after_repair=w.label("ticket", "after_repair"),
    )
