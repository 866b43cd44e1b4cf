"""The HTML report: one self-contained file that needs no network and prints well on A4.

Self-contained means inline CSS and nothing else: no scripts, no fonts, images, stylesheets or
links to fetch. A Content-Security-Policy of ``default-src 'none'`` makes a browser refuse a
fetch even if one were ever added. Every text goes through :func:`html.escape`, so a serial
number like ``<script>`` is shown, never run.

Print: ``@page`` sets A4 with 15 mm margins, table headers repeat on each page, and no table row,
advice block, verdict or repair-ticket block is split across pages. Black and white: each
verdict has its own symbol and border style besides its colour, and all text is dark on a light
background, so it still reads when the browser does not print backgrounds.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Final

from pos_sim.reports.view import Field, FindingView, ReportView, Verdict

__all__ = ["render_html"]

#: The fonts are the reader's own, CJK first so that Chinese never lands in a font without it.
_FONTS: Final = ('"Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC", '
                 '"Hiragino Sans GB", "WenQuanYi Micro Hei", "Segoe UI", "Helvetica Neue", Arial, sans-serif')
_MONO: Final = '"DejaVu Sans Mono", "Noto Sans Mono CJK SC", Consolas, "Courier New", monospace'

_CSS: Final = f"""
@page {{ size: A4; margin: 15mm; }}
* {{ box-sizing: border-box; }}
html {{ -webkit-print-color-adjust: exact; print-color-adjust: exact; }}
body {{ margin: 0 auto; padding: 12mm 10mm; max-width: 210mm; color: #1a1a1a; background: #fff;
        font-family: {_FONTS}; font-size: 10.5pt; line-height: 1.45; }}
h1 {{ font-size: 17pt; margin: 0; }}
h2 {{ font-size: 12.5pt; margin: 7mm 0 2.5mm; padding-bottom: 1mm; border-bottom: 1.5pt solid #1a1a1a;
      page-break-after: avoid; break-after: avoid; }}
h3 {{ font-size: 10.5pt; margin: 0 0 1mm; page-break-after: avoid; break-after: avoid; }}
p {{ margin: 1mm 0; }}
.subtitle {{ margin-top: 1mm; font-size: 11pt; color: #444; }}
.muted, footer, .note, .key {{ color: #555; }}
.code, code {{ font-family: {_MONO}; font-size: 9.5pt; }}
.key {{ display: block; font-size: 8.5pt; }}
.keep, tr, li, section.verdict, section.ticket, .finding {{ page-break-inside: avoid; break-inside: avoid; }}
thead {{ display: table-header-group; }}
table {{ width: 100%; border-collapse: collapse; margin: 1mm 0 2mm; }}
th, td {{ text-align: left; vertical-align: top; padding: 1.2mm 2mm; border-bottom: 0.5pt solid #b8bcc2; }}
thead th {{ font-weight: 700; border-bottom: 1pt solid #1a1a1a; white-space: nowrap; }}
.fields th {{ width: 36%; font-weight: 600; }}
.identity {{ display: flex; gap: 6mm; }}
.identity > section {{ flex: 1 1 0; }}
.verdict {{ margin: 5mm 0; padding: 4mm 6mm; border: 2pt solid #2e7d32; border-left-width: 8pt; }}
.verdict .caption {{ font-size: 9.5pt; font-weight: 600; }}
.verdict .big {{ font-size: 26pt; font-weight: 800; line-height: 1.2; margin: 1mm 0; }}
.verdict .sym {{ display: inline-block; min-width: 1.2em; }}
.verdict-ok {{ border-color: #2e7d32; background: #eef7ee; color: #1b4d1e; }}
.verdict-needs_attention {{ border-style: dashed; border-color: #9a5b00; background: #fff6e5; color: #5c3700; }}
.verdict-needs_repair {{ border-style: double; border-width: 5pt 5pt 5pt 12pt; border-color: #b3261e;
                        background: #fdeeed; color: #6e100b; }}
.verdict-locked {{ border-style: double; border-width: 6pt 6pt 6pt 14pt; border-color: #000; color: #000;
                  background: repeating-linear-gradient(135deg, #f3f3f6 0 6pt, #e4e4ea 6pt 12pt); }}
.v {{ font-weight: 600; white-space: nowrap; padding: 0 1mm; }}
.v-pass {{ color: #1b5e20; }}
.v-warn {{ color: #7a4a00; border: 1pt dashed #7a4a00; }}
.v-fail {{ color: #9b1c14; border: 1.5pt solid #9b1c14; font-weight: 800; }}
.v-skipped {{ color: #555; font-style: italic; font-weight: 400; }}
.v-error {{ color: #4a2a7a; border: 1pt dotted #4a2a7a; font-weight: 800; }}
tr.row-fail td, tr.row-error td {{ background: #fbf1f0; }}
tr.row-warn td {{ background: #fff8ec; }}
.note {{ display: block; font-size: 8.5pt; margin-top: 0.5mm; }}
.finding {{ margin: 2mm 0 3mm; padding: 1mm 3mm; border-left: 3pt solid #888; }}
.finding.f-fail {{ border-left: 3pt solid #9b1c14; }}
.finding.f-warn {{ border-left: 3pt dashed #7a4a00; }}
.finding.f-error {{ border-left: 3pt dotted #4a2a7a; }}
.finding ol {{ margin: 1mm 0 0; padding-left: 6mm; }}
.tag {{ display: inline-block; font-size: 8.5pt; font-weight: 400; border: 0.75pt solid #555;
        padding: 0 1.5mm; margin-left: 1.5mm; }}
section.ticket {{ margin-top: 7mm; padding: 1mm 5mm 3mm; border: 1.5pt dashed #1a1a1a; }}
section.ticket ul {{ margin: 1mm 0; padding-left: 6mm; }}
.backup {{ font-weight: 700; border: 1pt solid #1a1a1a; padding: 1.5mm 3mm; margin: 2mm 0; }}
.counters td {{ width: 25%; }}
.counters td.n {{ font-family: {_MONO}; text-align: right; }}
footer {{ margin-top: 8mm; padding-top: 2mm; border-top: 0.5pt solid #b8bcc2; font-size: 8.5pt; }}
@media print {{
  body {{ padding: 0; max-width: none; }}
  .verdict {{ margin-top: 3mm; }}
}}
"""

#: Nothing may load; inline styles are all the page needs.
_CSP: Final = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _verdict(v: Verdict) -> str:
    return f'<span class="v v-{v.css}"><span aria-hidden="true">{_e(v.symbol)}</span> {_e(v.text)}</span>'


def _code(code: str, key: str) -> str:
    if not code:
        return ""
    extra = f'<span class="key">{_e(key)}</span>' if key and key != code else ""
    return f'<span class="code">{_e(code)}</span>{extra}'


def _fields(fields: Sequence[Field]) -> str:
    rows = "".join(f'<tr><th scope="row">{_e(f.label)}</th><td>{_e(f.value)}</td></tr>' for f in fields)
    return f'<table class="fields"><tbody>{rows}</tbody></table>'


def _table(header: Sequence[str], rows: Sequence[str], cls: str = "") -> str:
    """A table; ``rows`` are finished ``<tr>`` elements, the header is plain text."""
    head = "".join(f'<th scope="col">{_e(h)}</th>' for h in header)
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _findings(view: ReportView, findings: Sequence[FindingView]) -> str:
    h = view.words
    rows = []
    for f in findings:
        note = f'<span class="note">{_e(h["note"])}{_e(view.colon)}{_e(f.note)}</span>' if f.note else ""
        rows.append(
            f'<tr class="row-{f.verdict.css}" data-component="{_e(f.component)}">'
            f"<td>{_e(f.name)}</td><td>{_verdict(f.verdict)}</td><td>{_code(f.code, f.code_key)}</td>"
            f"<td>{_e(f.category)}</td><td>{_e(f.message)}{note}</td></tr>")
    header = [h[f"heading.{k}"] for k in ("component", "verdict", "code", "category", "message")]
    return _table(header, rows, "results")


def _advice(view: ReportView, f: FindingView) -> str:
    h = view.words
    tags = []
    if f.severity:
        tags.append(f'<span class="tag">{_e(h["heading.severity"])}{_e(view.colon)}{_e(f.severity)}</span>')
    if f.merchant_fixable:
        tags.append(f'<span class="tag">{_e(h["heading.merchant_fixable"])}</span>')
    if f.repair_ticket:
        tags.append(f'<span class="tag">{_e(h["heading.repair_ticket"])}</span>')
    code = f' <span class="code">{_e(f.code)}</span>' if f.code else ""
    steps = "".join(f"<li>{_e(step)}</li>" for step in f.advice)
    return (f'<div class="finding f-{f.verdict.css}"><h3>{_e(f.name)} · {_verdict(f.verdict)}{code}'
            f'{"".join(tags)}</h3><p>{_e(f.message)}</p><ol>{steps}</ol></div>')


def _ticket(view: ReportView) -> list[str]:
    t = view.ticket
    if t is None:
        return []
    failed = [f"<tr><td>{_e(f.label)}</td><td>{_e(f.value)}</td></tr>" for f in t.failed]
    materials = "".join(f"<li>{_e(m)}</li>" for m in t.materials)
    return [
        f'<section class="ticket"><h2>{_e(t.title)}</h2>',
        f'<p class="backup">{_e(t.backup_first)}</p>',
        _fields(t.fields),
        _table([t.failed_label, t.description_label], failed) if failed else "",
        f"<h3>{_e(t.materials_intro)}</h3><ul>{materials}</ul>",
        f'<p class="muted">{_e(t.after_repair)}</p>',
        "</section>",
    ]


def _measurements(view: ReportView) -> str:
    h = view.words
    if not view.measurements:
        return f'<p>{_e(h["no_measurements"])}</p>'
    rows, last = [], None
    for m in view.measurements:
        name = m.name if m.name != last else ""   # the part once, for its first measurement
        last = m.name
        rows.append(f"<tr><td>{_e(name)}</td><td>{_e(m.label)}</td><td>{_e(m.value)}</td></tr>")
    return _table([h["heading.component"], h["heading.measurements"], h["value"]], rows)


def _events(view: ReportView) -> str:
    h = view.words
    if not view.events:
        return f'<p>{_e(h["event_log_ok" if view.event_log_read else "event_log_not_read"])}</p>'
    rows = [f"<tr><td>{_e(ev.time)}</td><td>{_e(ev.name)}</td><td>{_code(ev.code, ev.code_key)}</td>"
            f"<td>{_e(ev.severity)}</td><td>{_e(ev.description)}</td></tr>" for ev in view.events]
    return _table([h["time"], h["heading.component"], h["heading.code"], h["heading.severity"],
                   h["heading.message"]], rows)


def _counters(view: ReportView) -> list[str]:
    if not view.link:
        return []
    cells = [f'<td><code>{_e(c.label)}</code></td><td class="n">{_e(c.value)}</td>' for c in view.link]
    if len(cells) % 2:
        cells.append("<td></td><td></td>")
    rows = "".join(f"<tr>{cells[i]}{cells[i + 1]}</tr>" for i in range(0, len(cells), 2))
    return [f'<section class="link"><h2>{_e(view.words["link"])}</h2>'
            f'<table class="counters"><tbody>{rows}</tbody></table></section>']


def render_html(view: ReportView) -> str:
    """The report as one self-contained HTML document (see the module docstring)."""
    h = view.words
    v = view.verdict
    device = _fields(view.device) if view.device else f"<p>{_e(h['no_device'])}</p>"
    out: list[str] = [
        "<!DOCTYPE html>",
        f'<html lang="{_e(view.lang)}">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_e(_CSP)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="color-scheme" content="light">',
        f"<title>{_e(view.title)} · {_e(view.subtitle)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f'<header><h1>{_e(view.title)}</h1><p class="subtitle">{_e(view.subtitle)}</p></header>',
        f'<section class="verdict verdict-{v.css}" role="status" data-verdict="{_e(v.key)}">'
        f'<div class="caption">{_e(view.verdict_caption)}</div>'
        f'<div class="big"><span class="sym" aria-hidden="true">{_e(v.symbol)}</span>{_e(v.text)}</div>'
        f'<p class="detail">{_e(view.verdict_detail)}</p></section>',
        '<div class="identity keep">',
        f'<section class="device"><h2>{_e(h["heading.device"])}</h2>{device}</section>',
        f'<section class="run"><h2>{_e(h["run"])}</h2>{_fields(view.run)}</section>',
        "</div>",
        f'<section class="results"><h2>{_e(h["results"])}</h2>',
        _findings(view, view.results) if view.results else f'<p>{_e(h["no_results"])}</p>',
        "</section>",
        f'<section class="advice"><h2>{_e(h["heading.advice"])}</h2>',
        "".join(_advice(view, f) for f in view.advice) or f'<p>{_e(h["nothing_to_do"])}</p>',
        "</section>",
        *_ticket(view),
        f'<section class="measurements"><h2>{_e(h["heading.measurements"])}</h2>{_measurements(view)}</section>',
        f'<section class="communication"><h2>{_e(h["communication"])}</h2>',
        _findings(view, view.communication) if view.communication else f'<p>{_e(h["communication_ok"])}</p>',
        "</section>",
        f'<section class="events"><h2>{_e(h["event_log"])}</h2>{_events(view)}</section>',
        *_counters(view),
        f"<footer>{_e(view.footer)}</footer>",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(out)
