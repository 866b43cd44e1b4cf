"""Reports: the same facts in HTML, Markdown and JSON, escaped, written atomically, and the HTML
checked in a real headless browser (Debian's chromium): it renders, its verdict is there, it
prints on A4, and it fetches nothing."""

from __future__ import annotations

import dataclasses
import errno
import functools
import json
import os
import re
import shutil
import stat
import struct
import subprocess
import zlib
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.link import LinkTimings
from drivers.terminal import DeviceInfo, Terminal
from pos_sim.diagnostics.catalogue import load_catalogue
from pos_sim.diagnostics.engine import DiagnosticReport, DiagnosticsEngine, Finding
from pos_sim.emulator import EmulatorServer, load_scenario
from pos_sim.reports import (
    EXTENSIONS,
    ReportWriteError,
    UnknownReportFormat,
    format_for_path,
    render_report,
    write_report,
)
from pos_sim.reports.markdown_report import md_escape

CAT = load_catalogue()
REPO = Path(__file__).resolve().parents[2]
CI_CHROMIUM = REPO / ".ci" / "chromium"

#: scenario and language pairs whose reports are compared across the three formats
CASES = [
    ("healthy", "en"), ("healthy", "zh-CN"),
    ("dropped", "en"), ("dropped", "zh-CN"),
    ("paper-out", "zh-CN"), ("no-network", "en"), ("unactivated", "zh-CN"),
    ("firmware-crash", "zh-CN"),
]


@functools.cache
def diagnose(scenario: str, lang: str) -> DiagnosticReport:
    """A real report: the engine's full plan against the emulated terminal (run once per pair)."""
    server = EmulatorServer(load_scenario(scenario), speed=50)
    try:
        term = Terminal.open(server.serve_pty(), timings=LinkTimings(keepalive_idle=3600))
        try:
            return DiagnosticsEngine(term, lang=lang).run("full", interactive=False)
        finally:
            term.close()
    finally:
        server.stop()


# --------------------------------------------------------------------------------------------
# reading the formats back
# --------------------------------------------------------------------------------------------


class _Page(HTMLParser):
    """Collects the tags, attributes and text of an HTML document as a browser would see them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str]] = []
        self.text: list[str] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [(name, value or "") for name, value in attrs]
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        (self.styles if self._in_style else self.text).append(data)


def parse_html(document: str) -> _Page:
    page = _Page()
    page.feed(document)
    page.close()
    return page


def html_text(document: str) -> str:
    """The visible text, whitespace collapsed."""
    return " ".join(" ".join(parse_html(document).text).split())


def md_text(document: str) -> str:
    """The Markdown's text with its backslash escapes undone, whitespace collapsed."""
    return " ".join(re.sub(r"\\(.)", r"\1", document).split())


def md_cells(line: str) -> list[str]:
    """The cells of a pipe-table row, split only at pipes that are not escaped."""
    return re.split(r"(?<!\\)\|", line.strip())[1:-1]


def md_tables_are_well_formed(document: str) -> None:
    lines = document.splitlines()
    for i, line in enumerate(lines):
        if re.fullmatch(r"\|(---\|)+", line):
            width = len(md_cells(lines[i - 1]))
            j = i + 1
            while j < len(lines) and lines[j].startswith("| "):
                assert len(md_cells(lines[j])) == width, f"row {j + 1} has the wrong number of cells: {lines[j]}"
                j += 1


def norm(text: str) -> str:
    return " ".join(text.split())


def facts(report: DiagnosticReport) -> list[str]:
    """Texts every human-readable report of ``report`` must show."""
    lang = report.lang
    assert report.device is not None
    out = [report.device.serial, report.device.model, report.device.firmware_version,
           CAT.label("overall", report.verdict, lang), CAT.label("plan", report.plan, lang)]
    # a link or firmware failure (bit 4) is explained as such, never as a merchant fix
    detail = "communication" if report.verdict == "needs_attention" and report.exit_status & 4 else report.verdict
    ran = [f for f in report.results if f.verdict in ("pass", "warn", "fail")]
    if len(ran) == len(report.results) and report.results:
        out.append(CAT.label("overall_detail", detail, lang))
    else:   # not every check ran: the verdict says what it covers ("Every check passed" would lie)
        out.append(CAT.label("completeness", "ran", lang).format(
            verdict=CAT.label("overall", report.verdict, lang), n=len(ran)))
        if report.verdict != "ok":
            out.append(CAT.label("overall_detail", detail, lang))
    for f in [*report.results, *report.communication]:
        out += [CAT.label("component", f.component, lang), CAT.label("verdict", f.verdict, lang)]
        if f.code:
            out.append(f.code)
        if f.code_value is not None:
            out.append(f"0x{f.code_value:04X}")
        if f.category:
            out.append(CAT.label("category", f.category, lang))
        if f.verdict != "pass":
            out.append(f.message)
        if f.verdict in ("warn", "fail", "error"):
            out += list(f.advice)
        for name in f.measurements:
            out.append(CAT.label("measurement", name, lang))
    for e in report.event_log:
        if e["severity"] in ("error", "critical"):
            out.append(CAT.fault(e["code"]).message(lang))
    return [norm(x) for x in out]


# --------------------------------------------------------------------------------------------
# same content in every format
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("scenario", "lang"), CASES)
def test_the_three_formats_carry_the_same_facts(scenario: str, lang: str) -> None:
    report = diagnose(scenario, lang)
    as_html, as_md, as_json = (render_report(report, fmt) for fmt in ("html", "md", "json"))
    shown = {"html": html_text(as_html), "md": md_text(as_md)}
    for fmt, text in shown.items():
        missing = [fact for fact in facts(report) if fact not in text]
        assert not missing, f"{scenario} {lang} {fmt} lacks {missing}"
    md_tables_are_well_formed(as_md)

    data = json.loads(as_json)
    assert data == json.loads(json.dumps(report.as_json())), "the JSON report is the --json object"
    assert report.device is not None
    assert data["device"]["serial"] == report.device.serial
    assert data["verdict"] == report.verdict
    assert [(r["component"], r["verdict"], r["code"]) for r in data["results"]] == \
        [(f.component, f.verdict, f.code) for f in report.results]
    if lang == "zh-CN":
        assert "\\u" not in as_json and report.results[0].message in as_json, "Chinese stays UTF-8"


@pytest.mark.parametrize(("scenario", "lang"), CASES)
def test_repair_ticket_block_only_when_the_terminal_goes_to_service(scenario: str, lang: str) -> None:
    report = diagnose(scenario, lang)
    needs = report.verdict in ("needs_repair", "locked") or any(
        f.repair_ticket and f.verdict != "pass" for f in report.results)
    block = [CAT.label("ticket", "title", lang), CAT.label("ticket", "backup_first", lang),
             *(CAT.label("ticket_material", k, lang) for k in CAT.keys("ticket_material"))]
    for text in (html_text(render_report(report, "html")), md_text(render_report(report, "md"))):
        assert all((norm(b) in text) == needs for b in block), f"{scenario}: ticket block should be {needs}"


def test_dropped_report_in_detail() -> None:
    """The dropped terminal: locked, three failed parts for the ticket, the log's errors, units."""
    report = diagnose("dropped", "zh-CN")
    assert report.verdict == "locked"
    page = html_text(render_report(report, "html"))
    md = md_text(render_report(report, "md"))
    power = next(f for f in report.results if f.component == "power")
    for text in (page, md):
        assert "总体结论" in text and "Overall verdict" not in text
        assert f"{power.measurements['voltage_mv']} mV" in text
        assert f"{power.measurements['battery_pct']} %" in text
        assert "报修信息" in text and "防拆保护已触发" in text
        assert "deframer.bad_crc" in text and "frames_out" in text
        # the failed parts with their faults, as the ticket lists them
        for f in report.results:
            if f.verdict == "fail":
                assert f"0x{f.code_value:04X} {norm(f.message)}" in text
    document = render_report(report, "html")
    assert '<html lang="zh-CN">' in document
    assert 'data-verdict="locked"' in document


def test_communication_findings_are_shown() -> None:
    report = diagnose("firmware-crash", "zh-CN")
    assert report.communication, "the firmware-crash scenario loses the link mid-test"
    lost = report.communication[0]
    for text in (html_text(render_report(report, "html")), md_text(render_report(report, "md"))):
        assert "与终端的通信" in text
        assert norm(lost.message) in text and lost.code is not None and lost.code in text
        assert norm(lost.note) in text


def test_english_report_is_in_english() -> None:
    report = diagnose("dropped", "en")
    for text in (html_text(render_report(report, "html")), md_text(render_report(report, "md"))):
        assert "Overall verdict" in text and "For the repair ticket" in text
        assert not re.search(r"[\u4e00-\u9fff]", text), "an English report holds no Chinese"
    assert '<html lang="en">' in render_report(report, "html")


# --------------------------------------------------------------------------------------------
# hand-made reports: escaping, the event log's errors only, odd values
# --------------------------------------------------------------------------------------------

DEVICE = DeviceInfo(manufacturer="SimPOS", model="SP-M7", serial="SP0000001", hardware_rev="B2",
                    firmware_version="3.2.1", lifecycle="bound", merchant_id="898310048160001",
                    activated_at=1764547200, clock=1795444128)


def finding(component: str, verdict: str, key: str, lang: str = "en", **kw: Any) -> Finding:
    entry = CAT.fault(key)
    fields: dict[str, Any] = dict(
        component=component, verdict=verdict, code=entry.key, code_value=entry.code,
        category=str(entry.category), severity=entry.severity.name, merchant_fixable=entry.merchant_fixable,
        repair_ticket=entry.repair_ticket, message=entry.message(lang), advice=entry.advice(lang),
        measurements={}, note="")
    fields.update(kw)
    return Finding(**fields)


def handmade(lang: str = "en", **device: Any) -> DiagnosticReport:
    return DiagnosticReport(
        port="/dev/ttyACM0", plan="drop", lang=lang, started_at=1795444128.0, finished_at=1795444141.5,
        device=dataclasses.replace(DEVICE, **device),
        results=[finding("printer", "warn", "paper_near_end", lang, measurements={"head_temp_c": 41}),
                 finding("screen", "fail", "panel_damaged", lang, note="1873 dead pixels")],
        event_log=[{"time": 1795444000, "component": "printer", "code": "paper_near_end", "severity": "info"},
                   {"time": 1795444001, "component": "screen", "code": "panel_damaged", "severity": "error"}],
        link={"frames_out": 7, "deframer": {"bad_crc": 0}},
        verdict="needs_repair", exit_status=8 | 16 | 64)


HOSTILE = '<script>alert(1)</script>'
HOSTILE_SERIAL = 'S|N<img src=x onerror=alert(2)>*x* & "q"'
#: every tag the report's own markup uses; anything else came from the data
OWN_TAGS = {"html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "p", "section",
            "div", "table", "thead", "tbody", "tr", "th", "td", "span", "ol", "ul", "li", "footer", "code"}


def test_html_escapes_every_text() -> None:
    report = handmade(model=HOSTILE, serial=HOSTILE_SERIAL, manufacturer="Acme & Sons")
    report.results.append(finding("<b>keypad</b>", "fail", "key_stuck", message="stuck key <i>5</i>"))
    document = render_report(report, "html")
    page = parse_html(document)
    assert set(page.tags) <= OWN_TAGS, f"markup from the data: {set(page.tags) - OWN_TAGS}"
    assert not [n for n, _ in page.attrs if n.startswith("on") or n in ("src", "href")]
    text = " ".join(page.text)
    assert HOSTILE in text and HOSTILE_SERIAL in text and "<b>keypad</b>" in text and "stuck key <i>5</i>" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in document
    assert "<script" not in document.lower() and "<img" not in document.lower()


def test_markdown_escapes_every_text_and_keeps_tables_whole() -> None:
    report = handmade(model=HOSTILE, serial=HOSTILE_SERIAL)
    report.results.append(finding("keypad", "fail", "key_stuck", message="a | b\nc", note="- x | y"))
    document = render_report(report, "md")
    assert "\\<script\\>" in document and "\\<img src" in document
    assert not re.search(r"(?<!\\)<", document), "every < is escaped, so no HTML gets through"
    md_tables_are_well_formed(document)
    text = md_text(document)
    assert HOSTILE in text and HOSTILE_SERIAL in text and "a | b c" in text
    keypad = next(line for line in document.splitlines() if "a \\| b c" in line)
    assert len(md_cells(keypad)) == 5


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=60))
def test_markdown_escape_is_inert_and_reversible(text: str) -> None:
    escaped = md_escape(text)
    assert "\n" not in escaped
    plain, chars = [], iter(escaped)
    for c in chars:
        if c == "\\":
            plain.append(next(chars))      # an escaped character is text, whatever it is
        else:
            assert c not in "|<>*_`[]&~", f"unescaped {c!r} in {escaped!r}"
            plain.append(c)
    assert "".join(plain) == " ".join(text.split())


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40))
def test_html_shows_any_serial_as_text(serial: str) -> None:
    page = parse_html(render_report(handmade(serial=serial), "html"))
    assert set(page.tags) <= OWN_TAGS
    assert serial in page.text, "the serial number is one text node, exactly as the terminal sent it"


def test_json_is_the_report_object_with_nothing_lost() -> None:
    report = handmade(lang="zh-CN", model=HOSTILE, serial="序列号 ✓")
    document = render_report(report, "json")
    assert json.loads(document) == report.as_json()
    assert "序列号 ✓" in document, "text stays UTF-8, not \\u escapes"
    assert document.endswith("}\n") and document.count("\n") > 20, "pretty-printed"


def test_only_error_entries_of_the_event_log_are_shown() -> None:
    report = handmade()
    for text in (html_text(render_report(report, "html")), md_text(render_report(report, "md"))):
        assert "paper_near_end" in text, "the warn finding is shown"
        log = text[text.index("Errors in the terminal's event log"):]
        assert "panel_damaged" in log and "paper_near_end" not in log


def test_odd_values_are_shown_as_they_came() -> None:
    report = handmade(lifecycle="unknown(9)", merchant_id="")
    report.results.append(Finding("scanner", "error", None, None, None, "7", False, False, "odd", (),
                                  {"ip_v4": 0x0A400C07, "track2": 4, "paper_status": 0x12, "checks_skipped": 1}))
    report.event_log.append({"time": 0, "component": "martian", "code": "no_such_code", "severity": "critical"})
    for text in (html_text(render_report(report, "html")), md_text(render_report(report, "md"))):
        assert "unknown(9)" in text and "Not bound to a merchant" in text
        assert "10.64.12.7" in text and "LRC" in text and "0x12" in text
        assert "martian" in text and "no_such_code" in text


def test_severity_is_named_whether_it_came_as_a_name_or_a_number() -> None:
    by_name = handmade()
    by_number = handmade()
    by_number.results[1] = dataclasses.replace(by_number.results[1], severity="2")
    assert render_report(by_name, "html") == render_report(by_number, "html")


def test_report_without_device_identity() -> None:
    report = handmade()
    report.device = None
    report.results = []
    for fmt in ("html", "md"):
        assert "identity could not be read" in render_report(report, fmt)


def test_html_is_made_for_a4_and_cjk() -> None:
    document = render_report(handmade(lang="zh-CN"), "html")
    style = " ".join(parse_html(document).styles)
    assert re.search(r"@page\s*\{\s*size:\s*A4;\s*margin:\s*15mm", style)
    assert "page-break-inside: avoid" in style and "break-inside: avoid" in style
    fonts = style[style.index("font-family"):]
    for family in ('"Noto Sans CJK SC"', '"Microsoft YaHei"', '"PingFang SC"', "sans-serif"):
        assert family in fonts


# --------------------------------------------------------------------------------------------
# writing files
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", sorted(EXTENSIONS))
def test_write_report_picks_the_format_by_extension(tmp_path: Path, suffix: str) -> None:
    report = handmade()
    name = f"report{suffix.upper() if suffix == '.htm' else suffix}"   # extensions are case-blind
    path = write_report(report, tmp_path / name)
    assert path.read_text(encoding="utf-8") == render_report(report, EXTENSIONS[suffix])
    assert [p.name for p in tmp_path.iterdir()] == [path.name], "no temporary file left"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_replacing_a_report_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "r.md"
    path.write_text("old")
    path.chmod(0o600)
    write_report(handmade(), path)
    assert path.read_text(encoding="utf-8").startswith("# POS terminal diagnostic report")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("name", ["report.txt", "report.pdf", "report", "report.html.bak"])
def test_unknown_extension_is_a_clear_value_error(tmp_path: Path, name: str) -> None:
    with pytest.raises(UnknownReportFormat) as caught:
        write_report(handmade(), tmp_path / name)
    assert isinstance(caught.value, ValueError)
    message = str(caught.value)
    assert "\n" not in message and name in message
    assert all(ext in message for ext in (".html", ".htm", ".md", ".json"))
    assert list(tmp_path.iterdir()) == []


def test_unknown_format_name_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="html, md, json"):
        render_report(handmade(), "pdf")
    assert format_for_path("x/REPORT.HTML") == "html"


def test_missing_directory_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "dir" / "r.html"
    with pytest.raises(ReportWriteError) as caught:
        write_report(handmade(), target)
    message = str(caught.value)
    assert "\n" not in message and str(target) in message and "No such file or directory" in message
    assert isinstance(caught.value, OSError) and caught.value.errno == errno.ENOENT
    assert list(tmp_path.iterdir()) == []


def test_target_that_is_a_directory_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "r.json").mkdir()
    with pytest.raises(ReportWriteError, match=r"r\.json"):
        write_report(handmade(), tmp_path / "r.json")
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_full_disk_keeps_the_old_report_and_leaves_no_partial_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str) -> None:
    path = tmp_path / "r.html"
    path.write_text("the previous report")

    def no_space(*args: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, failing, no_space)
    with pytest.raises(ReportWriteError) as caught:
        write_report(handmade(), path)
    monkeypatch.undo()
    assert str(caught.value) == f"cannot write the report {str(path)!r}: No space left on device"
    assert caught.value.errno == errno.ENOSPC
    assert path.read_text() == "the previous report"
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]


def test_interrupted_write_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_report(handmade(), tmp_path / "r.md")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# the HTML in a real browser
# --------------------------------------------------------------------------------------------

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1",
                  "--host-resolver-rules=MAP * ~NOTFOUND")
A4_WINDOW = (794, 1123)   # A4 at 96 dpi


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium: installed by .ci/chromium when missing. Never skipped: CI has it."""
    found = shutil.which("chromium") or ("/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None)
    if found:
        return found
    try:
        done = subprocess.run(["bash", str(CI_CHROMIUM)], capture_output=True, text=True, timeout=1200, check=False)
        why = (done.stderr.strip() or done.stdout.strip() or f"exit status {done.returncode}").splitlines()[-1]
    except (OSError, subprocess.TimeoutExpired) as exc:
        why = str(exc)
    found = shutil.which("chromium")
    if not found:
        pytest.fail(f"the HTML report is checked in Debian's chromium, which is not installed and "
                    f"{CI_CHROMIUM.relative_to(REPO)} could not install it: {why}", pytrace=False)
    return found


Browser = Callable[..., tuple[subprocess.CompletedProcess[bytes], list[str]]]


@pytest.fixture
def browse(chromium: str, tmp_path: Path) -> Iterator[Browser]:
    """Run headless chromium on a file; returns the process and the URLs the page asked the network for."""
    runs = iter(range(1000))

    def run(page: Path, *args: str) -> tuple[subprocess.CompletedProcess[bytes], list[str]]:
        n = next(runs)
        netlog = tmp_path / f"net-{n}.json"
        done = subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / f'profile-{n}'}",
             f"--log-net-log={netlog}", *args, page.as_uri()],
            capture_output=True, timeout=120, check=False, cwd=tmp_path)
        tail = done.stderr.decode(errors="replace")[-1500:]
        assert done.returncode == 0, f"chromium failed with {done.returncode}: {tail}"
        return done, page_requests(netlog)

    yield run


def page_requests(netlog: Path) -> list[str]:
    """The URLs a page (not the browser itself) asked the network for, from chromium's net log.

    The browser's own background requests carry the initiator "not an origin"; everything a
    document loads (stylesheets, images, fonts, imports) carries the document's origin, which
    for a file is the opaque "null".
    """
    raw = netlog.read_text(encoding="utf-8").rstrip()
    try:
        log = json.loads(raw)
    except json.JSONDecodeError:     # a log cut short at exit lacks its closing brackets
        log = json.loads(raw.rstrip(",") + "]}")
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = []
    for event in log["events"]:
        params = event.get("params") or {}
        if event["type"] == start_job and "url" in params and params.get("initiator") != "not an origin":
            urls.append(str(params.get("url")))
    return urls


def decode_png(data: bytes, max_rows: int | None = None) -> tuple[int, int, list[bytes]]:
    """Width, height and up to ``max_rows`` rows of RGB pixels of an 8-bit RGB or RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, f"unexpected PNG kind {depth=} {colour=}"
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height if max_rows is None else min(height, max_rows)):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            left = line[x - bpp] if x >= bpp else 0
            up = previous[x]
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                corner = previous[x - bpp] if x >= bpp else 0
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[x] = (line[x] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        previous = line
        rows.append(bytes(line) if bpp == 3 else bytes(b for i, b in enumerate(line) if i % 4 != 3))
    return width, height, rows


@pytest.fixture
def dropped_html(tmp_path: Path) -> Path:
    path = write_report(diagnose("dropped", "zh-CN"), tmp_path / "dropped.html")
    document = path.read_text(encoding="utf-8")
    # nothing in the file that could make a browser fetch anything
    for needle in ("http:", "https:", "//", "@import", "url(", "<link", "<script", "<img", "<iframe",
                   "<object", "<embed", "src=", "href=", "srcset="):
        assert needle not in document.lower(), f"the report holds {needle!r}"
    return path


def test_the_net_log_sees_what_a_page_fetches(browse: Browser, tmp_path: Path) -> None:
    """The control for the tests below: a page that does fetch is caught, whatever it fetches."""
    probe = tmp_path / "probe.html"
    probe.write_text('<!doctype html><html><head><style>@import url("https://import.invalid/a.css");'
                     "body { background: url(http://background.invalid/b.png) }</style>"
                     '<link rel="stylesheet" href="http://link.invalid/c.css"></head>'
                     '<body><img src="http://img.invalid/x.png">probe</body></html>')
    _, fetched = browse(probe, "--dump-dom")
    hosts = {re.sub(r"^\w+://([^/]+)/.*", r"\1", url) for url in fetched}
    assert {"import.invalid", "background.invalid", "link.invalid", "img.invalid"} <= hosts, fetched


def test_browser_renders_the_verdict_and_fetches_nothing(browse: Browser, dropped_html: Path) -> None:
    report = diagnose("dropped", "zh-CN")
    done, fetched = browse(dropped_html, "--dump-dom")
    assert fetched == [], f"the report made the browser fetch {fetched}"
    dom = done.stdout.decode("utf-8")
    page = parse_html(dom)
    text = " ".join(" ".join(page.text).split())
    assert CAT.label("overall", "locked", "zh-CN") in text
    assert CAT.label("overall_detail", "locked", "zh-CN") in text
    assert report.device is not None and report.device.serial in text
    assert 'class="verdict verdict-locked"' in dom
    assert "script" not in page.tags


def test_browser_screenshot_shows_the_report(browse: Browser, dropped_html: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    _, fetched = browse(dropped_html, f"--window-size={A4_WINDOW[0]},{A4_WINDOW[1]}", f"--screenshot={shot}")
    assert fetched == []
    data = shot.read_bytes()
    width, height, rows = decode_png(data, max_rows=A4_WINDOW[1] // 3)
    assert (width, height) == A4_WINDOW
    pixels = [row[i:i + 3] for row in rows for i in range(0, len(row), 3)]
    white = sum(1 for p in pixels if min(p) >= 245)
    dark = sum(1 for p in pixels if max(p) <= 60)
    assert white < 0.97 * len(pixels), "the top of the page is blank"
    # the locked verdict's black double border and big text, and the title, are near-black
    assert dark > 2000, f"only {dark} dark pixels at the top of the page"


def test_browser_prints_it_on_a4(browse: Browser, dropped_html: Path, tmp_path: Path) -> None:
    pdf = tmp_path / "report.pdf"
    _, fetched = browse(dropped_html, "--no-pdf-header-footer", f"--print-to-pdf={pdf}")
    assert fetched == []
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-") and b"%%EOF" in data[-64:]
    pages = re.findall(rb"/Type\s*/Page(?!s)", data)
    boxes = {tuple(round(float(v)) for v in box.split()) for box in
             re.findall(rb"/MediaBox\s*\[\s*([\d.\s]+?)\s*\]", data)}
    assert len(pages) >= 2, "the full dropped report is longer than one page"
    assert boxes == {(0, 0, 595, 842)}, f"not A4: {boxes}"
