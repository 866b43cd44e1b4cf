"""Diagnostic reports for people and machines: HTML, Markdown and JSON, written safely.

``pos-sim diag PORT --report FILE`` ends here. :func:`render_report` turns a
:class:`~pos_sim.diagnostics.engine.DiagnosticReport` into one of three formats, all carrying
the same content in the report's own language (``report.lang``):

``html``
    One self-contained file for people, no network needed, laid out for A4 and readable in black
    and white (:mod:`pos_sim.reports.html_report`).
``md``
    Markdown that reads as plain text and renders as tables (:mod:`pos_sim.reports.markdown_report`).
``json``
    Exactly ``report.as_json()``, the ``--json`` object (schema in
    ``pos_sim/diagnostics/report.schema.json``), pretty-printed with text as UTF-8, so a report
    file and ``--json`` never disagree.

HTML and Markdown are both made from one language-resolved
:class:`~pos_sim.reports.view.ReportView`: device identity, date and plan, the overall verdict
with its explanation, every component's verdict, code, category and message, the advice for
everything that did not pass, measurements with units, communication findings, the event log's
errors, the link counters, and (when the terminal has to go to after-sales service) the block for
the repair ticket: model, serial number, firmware, the failed parts with their faults, what to
bring, and the reminder to back up the transaction records first.

:func:`write_report` picks the format from the file's extension and writes atomically: the text
goes to a temporary file in the same directory, is flushed to disk, and only then replaces the
target, so a full disk, a missing directory or a crash never leaves a partial report behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from drivers.files import FileWriteError, write_atomically
from pos_sim.diagnostics.catalogue import Catalogue
from pos_sim.diagnostics.engine import DiagnosticReport
from pos_sim.reports.html_report import render_html
from pos_sim.reports.markdown_report import render_markdown
from pos_sim.reports.view import ReportView, build_view

__all__ = [
    "EXTENSIONS",
    "FORMATS",
    "ReportError",
    "ReportView",
    "ReportWriteError",
    "UnknownReportFormat",
    "build_view",
    "check_report_path",
    "format_for_path",
    "render_report",
    "write_report",
]

#: the formats :func:`render_report` makes
FORMATS: Final[tuple[str, ...]] = ("html", "md", "json")
#: the file extensions :func:`write_report` understands, and the format each one means
EXTENSIONS: Final[Mapping[str, str]] = {".html": "html", ".htm": "html", ".md": "md", ".json": "json"}


class ReportError(Exception):
    """A report could not be made or written; the message is one line for the technician."""


class UnknownReportFormat(ReportError, ValueError):
    """A format or file extension the reports do not have."""


class ReportWriteError(ReportError, OSError):
    """The report file could not be written; nothing, not even part of a file, was left behind.

    Also an :class:`OSError`, so that code written for plain file errors catches it.
    """


def render_report(report: DiagnosticReport, fmt: str, *, catalogue: Catalogue | None = None) -> str:
    """The report as text in ``fmt`` (``html``, ``md`` or ``json``), in the report's language.

    ``catalogue`` defaults to the packaged fault catalogue. Raises :class:`UnknownReportFormat`
    (a :class:`ValueError`) for any other format.
    """
    if fmt == "json":
        return json.dumps(report.as_json(), ensure_ascii=False, indent=2) + "\n"
    if fmt == "html":
        return render_html(build_view(report, catalogue))
    if fmt == "md":
        return render_markdown(build_view(report, catalogue))
    raise UnknownReportFormat(f"unknown report format {fmt!r}; formats: {', '.join(FORMATS)}")


def format_for_path(path: str | os.PathLike[str]) -> str:
    """The format a report file's extension names; :class:`UnknownReportFormat` if none does."""
    suffix = Path(path).suffix.lower()
    try:
        return EXTENSIONS[suffix]
    except KeyError:
        what = f"extension {suffix!r}" if suffix else "no extension"
        raise UnknownReportFormat(
            f"cannot tell the report format of {os.fspath(path)!r} ({what}); "
            f"name the file with one of: {', '.join(EXTENSIONS)}") from None


def write_report(report: DiagnosticReport, path: str | os.PathLike[str], *,
                 catalogue: Catalogue | None = None) -> Path:
    """Write the report to ``path`` in the format its extension names, and return the path.

    Atomic: a temporary file in the same directory is written, flushed to disk and renamed over
    ``path``, so a reader sees the old file or the whole new one, never a part. A new file gets
    mode 0644; a replaced file keeps its mode. Raises :class:`UnknownReportFormat` for an
    extension other than .html, .htm, .md or .json (before touching the disk), and
    :class:`ReportWriteError` (one line: the path and why) when the file cannot be written.
    """
    target = Path(path)
    text = render_report(report, format_for_path(target), catalogue=catalogue)
    _write_atomically(target, text.encode("utf-8"))
    return target


def check_report_path(path: str | os.PathLike[str]) -> Path:
    """Make sure a report can be written to ``path`` before any work starts, and return it.

    Checks the extension (:class:`UnknownReportFormat`) and that the folder exists and takes a
    new file, by creating and removing a temporary file there (permission bits alone do not say
    it for root, a read-only mount or a full disk): :class:`ReportWriteError`, one line, if not.
    An existing report at ``path`` is left as it is.
    """
    target = Path(path)
    format_for_path(target)
    if target.is_dir():
        raise ReportWriteError(f"cannot write the report {os.fspath(target)!r}: it is a folder; "
                               f"give a file name ending in .html, .md or .json")
    directory = target.parent
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".probe", dir=directory)
    except OSError as exc:
        why = exc.strerror or str(exc) or type(exc).__name__
        error = ReportWriteError(f"cannot write the report {os.fspath(target)!r}: {why} "
                                 f"(folder {os.fspath(directory)!r}); choose another --report path")
        error.errno = exc.errno
        raise error from exc
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return target


def _write_error(target: Path, exc: OSError) -> ReportWriteError:
    why = exc.strerror or str(exc) or type(exc).__name__
    error = ReportWriteError(f"cannot write the report {os.fspath(target)!r}: {why}")
    error.errno = exc.errno
    return error


def _write_atomically(target: Path, data: bytes) -> None:
    """The report, whole or not at all; an existing report keeps its permission bits."""
    try:
        write_atomically(target, data)
    except FileWriteError as exc:
        raise _write_error(target, exc) from exc
