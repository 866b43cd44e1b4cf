"""The Markdown report: reads as plain text, renders as headings, lists and pipe tables.

Every text is made inert: one line, Markdown's markup characters (including ``|``, which would
split a table cell, and ``<``, which would start raw HTML) escaped with a backslash, and a text
that starts a line cannot become a heading, quote or list item.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Final

from pos_sim.reports.view import Field, FindingView, ReportView, Verdict

__all__ = ["md_escape", "render_markdown"]

_INLINE: Final = re.compile(r"([\\`*_\[\]<>|~&])")
#: what makes a line a heading, quote, list item or rule when it starts one
_BLOCK_START: Final = re.compile(r"^([#>+=-]|\d{1,9}[.)](?=\s|$))")


def md_escape(text: object) -> str:
    """Text made inert inside a Markdown line: one line, markup characters and pipes escaped."""
    return _INLINE.sub(r"\\\1", " ".join(str(text).split()))


def _para(text: object) -> str:
    """Like :func:`md_escape`, for a text that starts a line (so ``- x`` or ``1. x`` stays text)."""
    return _BLOCK_START.sub(r"\\\1", md_escape(text))


_m = md_escape


def _verdict(v: Verdict) -> str:
    return f"{v.symbol} {_m(v.text)}"


def _code(code: str, key: str) -> str:
    if not code:
        return ""
    return f"{_m(code)} ({_m(key)})" if key and key != code else _m(code)


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A pipe table of plain-text header cells and already-escaped body cells."""
    lines = ["| " + " | ".join(_m(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _fields(view: ReportView, fields: Sequence[Field]) -> list[str]:
    return [*(f"- **{_m(f.label)}**{view.colon}{_m(f.value)}" for f in fields), ""]


def _findings(view: ReportView, findings: Sequence[FindingView]) -> list[str]:
    h = view.words
    left, right = view.parens
    rows = []
    for f in findings:
        note = f"{left}{_m(h['note'])}{view.colon}{_m(f.note)}{right}" if f.note else ""
        rows.append([_m(f.name), _verdict(f.verdict), _code(f.code, f.code_key), _m(f.category),
                     _m(f.message) + note])
    return _table([h[f"heading.{k}"] for k in ("component", "verdict", "code", "category", "message")], rows)


def _advice(view: ReportView) -> list[str]:
    h = view.words
    if not view.advice:
        return [_para(h["nothing_to_do"]), ""]
    out: list[str] = []
    for f in view.advice:
        tags = [f"{_m(h['heading.severity'])}{view.colon}{_m(f.severity)}"] if f.severity else []
        if f.merchant_fixable:
            tags.append(_m(h["heading.merchant_fixable"]))
        if f.repair_ticket:
            tags.append(_m(h["heading.repair_ticket"]))
        code = f" · {_m(f.code)}" if f.code else ""
        out += [f"### {_m(f.name)} · {_verdict(f.verdict)}{code}", ""]
        if tags:
            out += [f"*{' · '.join(tags)}*", ""]
        out += [_para(f.message), ""]
        out += [f"{i}. {_m(step)}" for i, step in enumerate(f.advice, 1)] + [""]
    return out


def _ticket(view: ReportView) -> list[str]:
    t = view.ticket
    if t is None:
        return []
    out = [f"## {_m(t.title)}", "", f"**{_m(t.backup_first)}**", "", *_fields(view, t.fields)]
    if t.failed:
        out += _table([t.failed_label, t.description_label], ([_m(f.label), _m(f.value)] for f in t.failed))
    out += [f"**{_m(t.materials_intro)}**", ""]
    out += [f"- {_m(m)}" for m in t.materials]
    return [*out, "", _para(t.after_repair), ""]


def _measurements(view: ReportView) -> list[str]:
    h = view.words
    if not view.measurements:
        return [_para(h["no_measurements"]), ""]
    rows, last = [], None
    for m in view.measurements:
        rows.append([_m(m.name) if m.name != last else "", _m(m.label), _m(m.value)])
        last = m.name
    return _table([h["heading.component"], h["heading.measurements"], h["value"]], rows)


def _events(view: ReportView) -> list[str]:
    h = view.words
    if not view.events:
        return [_para(h["event_log_ok" if view.event_log_read else "event_log_not_read"]), ""]
    return _table([h["time"], h["heading.component"], h["heading.code"], h["heading.severity"], h["heading.message"]],
                  ([_m(e.time), _m(e.name), _code(e.code, e.code_key), _m(e.severity), _m(e.description)]
                   for e in view.events))


def render_markdown(view: ReportView) -> str:
    """The report as Markdown (see the module docstring)."""
    h = view.words
    out: list[str] = [f"# {_m(view.title)}", "", _para(view.subtitle), ""]
    out += [f"> {_m(view.verdict_caption)}", ">", f"> ## {_verdict(view.verdict)}", ">",
            f"> {_para(view.verdict_detail)}", ""]
    out += [f"## {_m(h['heading.device'])}", ""]
    out += _fields(view, view.device) if view.device else [_para(h["no_device"]), ""]
    out += [f"## {_m(h['run'])}", "", *_fields(view, view.run)]
    out += [f"## {_m(h['results'])}", ""]
    out += _findings(view, view.results) if view.results else [_para(h["no_results"]), ""]
    out += [f"## {_m(h['heading.advice'])}", "", *_advice(view)]
    out += _ticket(view)
    out += [f"## {_m(h['heading.measurements'])}", "", *_measurements(view)]
    out += [f"## {_m(h['communication'])}", ""]
    out += _findings(view, view.communication) if view.communication else [_para(h["communication_ok"]), ""]
    out += [f"## {_m(h['event_log'])}", "", *_events(view)]
    if view.link:
        out += [f"## {_m(h['link'])}", ""]
        out += _table([h["counter"], h["value"]], ([_m(c.label), _m(c.value)] for c in view.link))
    out += ["---", "", f"*{_m(view.footer)}*", ""]
    return "\n".join(out)
