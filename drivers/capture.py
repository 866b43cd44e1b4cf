"""Captures: every byte both ways with a timestamp, as diffable text (docs/capture-format.md).

* :class:`CaptureWriter` streams a capture to disk line by line (constant memory, flushed
  periodically, gzip when the name ends in ``.gz``) and masks card numbers before writing.
* :func:`read_capture` / :class:`CaptureReader` read one back as a generator; a file cut off by
  a killed process reads up to its last complete line and says so (``torn``, ``complete``).
* :class:`CaptureTap` wraps an open port the way pyserial's ``spy://`` does: every byte read and
  written passes through unchanged and is recorded.
* :func:`open_terminal` is :meth:`drivers.terminal.Terminal.open` with a tap on the port.

The format records raw bytes, never decoded frames, so corruption and resync replay exactly.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from drivers import masking
from drivers.errors import EXIT_USAGE, DriverError
from drivers.masking import PAN_KEEP_FIRST, PAN_KEEP_LAST
from protocols.pos import Frame, FrameDeframer, MessageType, ProtocolError, decode_message, encode_frame, timing
from protocols.pos.framing import HEADER, HEADER_SIZE, MAX_PAYLOAD, OVERHEAD, SYNC, TRAILER, TRAILER_SIZE, crc16
from protocols.pos.messages import jsonable

if TYPE_CHECKING:
    from drivers.link import LinkTimings
    from drivers.terminal import Terminal

FORMAT_VERSION = 1
MAGIC = "# pos-sim capture"
#: host -> terminal and terminal -> host, as written on each chunk line
HOST_TO_TERMINAL = ">"
TERMINAL_TO_HOST = "<"
DIRECTIONS = (HOST_TO_TERMINAL, TERMINAL_TO_HOST)
#: a chunk longer than this is written as several lines with the same timestamp
LINE_BYTES = 64
#: the writer flushes at least this often (seconds) and on every close
FLUSH_INTERVAL = 0.5
#: the note a tap writes when the port broke under a read (its value: what the port said)
DISCONNECTED = "disconnected"
#: the note with the terminal's identity (INFO_REPLY's fields)
DEVICE = "device"
#: the last line of a capture whose writing failed (a full disk): the value is what the OS said
CAPTURE_FAILED = "capture_failed"

_NOTE_LINE = re.compile(r"^@ (\d+\.\d{6}) ([a-z_][a-z0-9_]*) (.*)$")
_END_LINE = re.compile(r"^= (\d+\.\d{6}) end$")
_HEADER_LINE = re.compile(r"^# ([a-z_]+): (.*)$")


class CaptureError(DriverError):
    """A capture file cannot be read or written (not a capture, a bad line, disk full)."""

    exit_code = EXIT_USAGE


def tool_version() -> str:
    """``pos-sim X.Y.Z`` as installed, for the header."""
    try:
        return f"pos-sim {version('pos-sim')}"
    except PackageNotFoundError:
        return "pos-sim 0.0.0+source"


# -- card numbers --------------------------------------------------------------------------
# The rule has one home, drivers/masking.py; these names stay for the code that imports them.


def luhn_valid(digits: bytes) -> bool:
    """True when the ASCII digits pass the Luhn check (as card numbers do)."""
    return masking.luhn_valid(digits)


def mask_pan_run(run: bytes) -> bytes:
    """``run`` with every digit but the first 6 and last 4 replaced by ``*``."""
    return run[:PAN_KEEP_FIRST] + b"*" * (len(run) - PAN_KEEP_FIRST - PAN_KEEP_LAST) + run[-PAN_KEEP_LAST:]


def mask_card_numbers(data: bytes, *, lead: int = 0) -> bytes:
    """``data`` masked by :func:`drivers.masking.mask_bytes` (card numbers and track data, the
    length kept).  ``lead`` is the length of a digit run that ends just before ``data``
    (already written): a run at the start of ``data`` continues it, and counts with it."""
    return masking.mask_bytes(data, context=b"0" * lead)


# -- records -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaptureHeader:
    """What a capture says about itself before its first chunk."""

    format_version: int = FORMAT_VERSION
    tool: str = field(default_factory=tool_version)
    port: str = ""
    baud: int = 0
    started: str = ""
    #: any further ``# key: value`` lines (JSON values), kept as read
    extra: dict[str, Any] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """The header as text lines (without newlines)."""
        out = [f"{MAGIC} {self.format_version}",
               f"# tool: {json.dumps(self.tool)}",
               f"# port: {json.dumps(self.port)}",
               f"# baud: {json.dumps(self.baud)}",
               f"# started: {json.dumps(self.started)}"]
        out += [f"# {k}: {json.dumps(v, sort_keys=True)}" for k, v in self.extra.items()]
        return out


class Chunk(NamedTuple):
    """Bytes that went one way at one moment: ``direction`` is ``>`` (host to terminal) or ``<``."""

    direction: str
    time: float
    data: bytes


class Note(NamedTuple):
    """Something learnt during the capture, e.g. ``device``: the terminal's identity."""

    time: float
    key: str
    value: Any


Record = Chunk | Note


# -- writing -------------------------------------------------------------------------------


def _open_text(path: Path, mode: str) -> IO[str]:
    if path.name.endswith(".gz"):
        # mtime=0 keeps a gzip capture reproducible byte for byte
        raw = gzip.GzipFile(filename=str(path), mode=mode.replace("t", "") + "b", mtime=0)
        return io.TextIOWrapper(raw, encoding="ascii", newline="\n")
    return open(path, mode, encoding="ascii", newline="\n")  # closed by the owner


class CaptureWriter:
    """Streams a capture to ``path``; safe to call from several threads.  Use as a context manager.

    Card numbers and track data are masked per direction before they are written
    (:func:`drivers.masking.mask_bytes`).  To mask a number split over two reads, a trailing
    stretch that may still become card data (digits and separators, a track's start: at most
    :data:`drivers.masking.LONGEST` bytes) is held back until the next chunk of the same
    direction (or any chunk of the other direction, a note, or close) shows where it ends; it
    is then written with its own timestamp, so chunk boundaries and order stay as they were.
    """

    def __init__(self, path: str | Path, *, port: str = "", baud: int = 0, tool: str | None = None,
                 extra: dict[str, Any] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path)
        self.header = CaptureHeader(tool=tool or tool_version(), port=port, baud=baud,
                                    started=datetime.now(UTC).isoformat(timespec="milliseconds"),
                                    extra=dict(extra or {}))
        self._clock = clock
        self._t0 = clock()
        self._lock = threading.Lock()
        try:
            self._out: IO[str] | None = _open_text(self.path, "wt")
        except OSError as exc:
            raise CaptureError(f"{self.path}: cannot write the capture: {exc.strerror or exc}") from exc
        self._held: dict[str, list[tuple[float, bytes]]] = {d: [] for d in DIRECTIONS}
        #: the last bytes written in each direction, as they came: where a digit run starts
        self._context: dict[str, bytes] = dict.fromkeys(DIRECTIONS, b"")
        self._last_flush = clock()
        self.bytes_recorded = {d: 0 for d in DIRECTIONS}
        #: set when writing failed mid-capture (one line: what happened and what became of the
        #: file); recording has stopped, and nothing raises: the session carries on without it
        self.problem = ""
        self._write_lines(self.header.lines())
        self._flush()
        if self.problem:
            raise CaptureError(self.problem)

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._out is None

    def elapsed(self) -> float:
        """Seconds since the capture started (its time base)."""
        return self._clock() - self._t0

    def record(self, direction: str, data: bytes, at: float | None = None) -> None:
        """Record bytes that went ``direction`` (``>`` or ``<``) now (or ``at`` seconds in)."""
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be '>' or '<', not {direction!r}")
        if not data:
            return
        with self._lock:
            if self._out is None:
                return
            t = self.elapsed() if at is None else at
            self.bytes_recorded[direction] += len(data)
            other = TERMINAL_TO_HOST if direction == HOST_TO_TERMINAL else HOST_TO_TERMINAL
            self._release(other)
            held = self._held[direction]
            held.append((t, bytes(data)))
            combined = b"".join(d for _, d in held)
            # what may still become card data with the next bytes is held back, and so is a
            # frame not complete yet (its CRC is put right below if masking changed it)
            n = len(combined)
            tail = masking.INCOMPLETE_TAIL.search(combined, max(0, n - masking.LONGEST))
            intact, incomplete = _frame_spans(combined)
            cut = min(tail.start() if tail is not None else n, n if incomplete is None else incomplete)
            for start, end in reversed(intact):
                if start < cut < end:
                    cut = start
            self._emit(direction, combined, n - cut, intact)
            self._maybe_flush()

    def note(self, key: str, value: Any) -> None:
        """Record a fact (``device``: the identity) with the current time."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", key):
            raise ValueError(f"note key must be lower_case, not {key!r}")
        with self._lock:
            if self._out is None:
                return
            for d in DIRECTIONS:
                self._release(d)
            text = json.dumps(jsonable(value), sort_keys=True, ensure_ascii=True)
            self._write_lines([f"@ {self.elapsed():.6f} {key} {text}"])
            self._flush()

    def flush(self) -> None:
        """Write everything recorded so far to the file (held digits excepted)."""
        with self._lock:
            self._flush()

    def close(self) -> None:
        """Write what is held, the end line, and close the file (once)."""
        with self._lock:
            if self._out is None:
                return
            for d in DIRECTIONS:
                self._release(d)
            self._write_lines([f"= {self.elapsed():.6f} end"])
            if self.problem:
                return   # the end line could not be written: the file is marked or removed
            out, self._out = self._out, None
            try:
                out.close()
            except OSError as exc:
                self._fail(exc, out)

    # -- inside the lock ---------------------------------------------------------------------

    def _release(self, direction: str) -> None:
        """The held run is complete: mask it as it stands and write it."""
        held = self._held[direction]
        if held:
            combined = b"".join(d for _, d in held)
            self._emit(direction, combined, 0, _frame_spans(combined)[0])

    def _emit(self, direction: str, combined: bytes, keep: int, intact: list[tuple[int, int]]) -> None:
        held = self._held[direction]
        if keep == len(combined):
            return   # all of it may still be part of a card number
        context = self._context[direction]
        # the kept bytes are masked later, with what follows them; the written part ends before them
        written = len(combined) - keep
        masked = _with_crcs_put_right(combined, masking.mask_bytes(combined, context=context), intact, written)
        lines: list[str] = []
        pos = 0
        rest: list[tuple[float, bytes]] = []
        for t, data in held:
            n = len(data)
            if pos + n <= written:
                lines += _chunk_lines(direction, t, masked[pos: pos + n])
            elif pos < written:
                lines += _chunk_lines(direction, t, masked[pos:written])
                rest.append((t, data[written - pos:]))
            else:
                rest.append((t, data))
            pos += n
        self._held[direction] = rest
        self._context[direction] = (context + combined[:written])[-masking.LONGEST:]
        self._write_lines(lines)

    def _write_lines(self, lines: list[str]) -> None:
        if not lines or self._out is None:
            return
        try:
            self._out.write("\n".join(lines) + "\n")
        except OSError as exc:
            self._fail(exc, self._out)

    def _fail(self, exc: OSError, out: IO[str]) -> None:
        """Writing failed (a full disk): stop recording, and mark the file or remove it.

        A plain capture is cut back to its last whole line, far enough to make room, and ends
        with a ``capture_failed`` note (the decoder reports it); a gzip one, whose stream is
        broken, or a plain one that cannot take even that line, is removed.
        """
        self._out = None
        with contextlib.suppress(OSError, ValueError):
            out.close()   # its buffer cannot be written either; the descriptor is closed anyway
        why = exc.strerror or str(exc)
        note = f"@ {self.elapsed():.6f} {CAPTURE_FAILED} {json.dumps(why)}\n".encode("ascii", "replace")
        fate = "removed"
        if not self.path.name.endswith(".gz"):
            with contextlib.suppress(OSError):
                _mark_failed(self.path, note, len("\n".join(self.header.lines())) + 1)
                fate = f"kept up to {self.elapsed():.1f} s and marked as cut short"
        if fate == "removed":
            with contextlib.suppress(OSError):
                self.path.unlink(missing_ok=True)
        self.problem = (f"{self.path}: the capture stopped: cannot write ({why}); the file was {fate}; "
                        f"free some space or capture elsewhere")

    def _maybe_flush(self) -> None:
        if self._clock() - self._last_flush >= FLUSH_INTERVAL:
            self._flush()

    def _flush(self) -> None:
        if self._out is not None:
            try:
                self._out.flush()
            except OSError as exc:
                self._fail(exc, self._out)
            self._last_flush = self._clock()


def _mark_failed(path: Path, note: bytes, header_size: int) -> None:
    """Cut ``path`` back to a whole line that leaves room for ``note``, and append it (raises
    OSError when even that fails, or when only the header would be left)."""
    with open(path, "r+b") as f:
        size = f.seek(0, io.SEEK_END)
        limit = size - len(note)      # the note fits where the cut-off bytes were
        start = max(0, limit - 65536)
        f.seek(start)
        tail = f.read(max(0, limit - start))
        cut = tail.rfind(b"\n")
        if cut < 0 or start + cut + 1 < header_size:
            raise OSError("no room for the note after the header")
        f.truncate(start + cut + 1)
        f.seek(start + cut + 1)
        f.write(note)
        f.flush()
        os.fsync(f.fileno())


def _frame_spans(data: bytes) -> tuple[list[tuple[int, int]], int | None]:
    """(start, end) of each intact frame in ``data`` (its CRC checks), and where the first frame
    that is not complete yet starts (None: none), as the deframer would see them."""
    intact: list[tuple[int, int]] = []
    incomplete: int | None = len(data) - 1 if data[-1:] == SYNC[:1] else None
    pos, n = 0, len(data)
    while (i := data.find(SYNC, pos)) >= 0:
        if n - i < HEADER_SIZE:
            incomplete = i if incomplete is None else min(incomplete, i)
            break
        length = HEADER.unpack_from(data, i + len(SYNC))[-1]
        end = i + HEADER_SIZE + length + TRAILER_SIZE
        if length > MAX_PAYLOAD:
            pos = i + 1
        elif end > n:
            incomplete = i if incomplete is None else min(incomplete, i)
            pos = i + 1
        elif TRAILER.unpack_from(data, end - TRAILER_SIZE)[0] == crc16(
                memoryview(data)[i + len(SYNC): end - TRAILER_SIZE]):
            intact.append((i, end))
            pos = end
        else:
            pos = i + 1
    return intact, incomplete


def _with_crcs_put_right(original: bytes, masked: bytes, intact: list[tuple[int, int]], upto: int) -> bytes:
    """``masked[:upto]`` where every frame that was intact in ``original`` and that masking changed
    gets a CRC over its masked bytes: a frame that crossed the line intact stays intact in the
    capture, so a replay decodes it (masked) as the live session did."""
    out = bytearray(masked[:upto])
    for start, end in intact:
        if end <= upto and out[start:end] != original[start:end]:
            crc = crc16(memoryview(out)[start + len(SYNC): end - TRAILER_SIZE])
            out[end - TRAILER_SIZE: end] = TRAILER.pack(crc)
    return bytes(out)


def _chunk_lines(direction: str, t: float, data: bytes) -> list[str]:
    stamp = f"{t:.6f}"
    return [f"{direction} {stamp} {data[i: i + LINE_BYTES].hex()}" for i in range(0, len(data), LINE_BYTES)]


# -- reading -------------------------------------------------------------------------------


class CaptureReader:
    """Reads a capture as a stream of :class:`Chunk` and :class:`Note` (iterate once).

    After iteration: ``complete`` is True when the end line was read (the recorder closed the
    file); ``torn`` is True when the last line was cut off (a killed recorder), and ``problem``
    says what was wrong in one line.  Any other bad line raises :class:`CaptureError`.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.complete = False
        self.torn = False
        self.problem = ""
        self.end_time: float | None = None
        #: True when the capture ends with a ``capture_failed`` note (its recorder's disk was full)
        self.cut_short = False
        #: how many records carry a timestamp earlier than the record before them
        self.backwards = 0
        #: the first of those: (line number, its time, the time of the record before it)
        self.first_backwards: tuple[int, float, float] | None = None
        self.lines_read = 0
        try:
            self._file: IO[str] | None = _open_text(self.path, "rt")
            first = self._file.readline()
        except FileNotFoundError:
            self.close()
            raise CaptureError(f"{self.path}: no such file") from None
        except IsADirectoryError:
            self.close()
            raise CaptureError(f"{self.path}: a directory, not a capture file") from None
        except UnicodeDecodeError:
            self.close()
            raise CaptureError(f"{self.path}: not a pos-sim capture (binary data; a capture is text that starts "
                               f"with {MAGIC!r})") from None
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            self.close()
            raise CaptureError(f"{self.path}: not a readable capture ({exc})") from exc
        if not first.startswith(MAGIC + " "):
            self.close()
            raise CaptureError(f"{self.path}: not a pos-sim capture (it does not start with {MAGIC!r})")
        try:
            fmt = int(first[len(MAGIC):].strip())
        except ValueError:
            self.close()
            raise CaptureError(f"{self.path}: bad first line {first.strip()!r}") from None
        if fmt != FORMAT_VERSION:
            self.close()
            raise CaptureError(f"{self.path}: capture format {fmt}, this tool reads format {FORMAT_VERSION}")
        self.lines_read = 1
        values: dict[str, Any] = {}
        self._pending: str | None = None
        assert self._file is not None
        while True:
            line = self._readline()
            if line is None:
                break
            m = _HEADER_LINE.match(line.rstrip("\n"))
            if not m:
                self._pending = line
                break
            try:
                values[m.group(1)] = json.loads(m.group(2))
            except json.JSONDecodeError:
                raise CaptureError(f"{self.path}:{self.lines_read}: bad header value {m.group(2)!r}") from None
        self.header = CaptureHeader(
            format_version=fmt, tool=str(values.pop("tool", "")), port=str(values.pop("port", "")),
            baud=int(values.pop("baud", 0) or 0), started=str(values.pop("started", "")), extra=values)

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file."""
        f, self._file = getattr(self, "_file", None), None
        if f is not None:
            f.close()

    def _readline(self) -> str | None:
        """The next line, or None at the end (a cut-off gzip stream counts as the end, torn)."""
        if self._file is None:
            return None
        try:
            line = self._file.readline()
        except EOFError:
            self.torn = True
            self.problem = "the compressed stream was cut off (the recorder was killed?)"
            return None
        except (OSError, gzip.BadGzipFile, UnicodeDecodeError) as exc:
            raise CaptureError(f"{self.path}:{self.lines_read + 1}: unreadable: {exc}") from exc
        if not line:
            return None
        self.lines_read += 1
        return line

    def __iter__(self) -> Iterator[Record]:
        line = self._pending
        self._pending = None
        if line is None:
            line = self._readline()
        last = float("-inf")
        while line is not None:
            if not line.endswith("\n"):
                # every line is written whole with its newline: one without was cut off
                self.torn = True
                self.problem = f"line {self.lines_read} was cut off (the recorder was killed?)"
                break
            text = line.rstrip("\n")
            record = self._parse(text)
            if isinstance(record, Note) and record.key == CAPTURE_FAILED:
                self.cut_short = True
                self.problem = f"the recorder could not write the rest ({record.value}): the capture is cut short"
            if record is not None:
                if record.time < last:
                    self.backwards += 1
                    if self.first_backwards is None:
                        self.first_backwards = (self.lines_read, record.time, last)
                else:
                    last = record.time
                yield record
            elif text and not text.startswith("#") and not self.complete:
                raise CaptureError(f"{self.path}:{self.lines_read}: not a capture line: {text[:60]!r}")
            line = self._readline()
        if not self.complete and not self.problem:
            self.problem = "no end line: the recording was interrupted"
        self.close()

    @property
    def time_warning(self) -> str:
        """One line when timestamps go backwards (empty when they never do).

        The recorder stamps every record from a monotonic clock, so a step back means the file
        was edited or joined from two recordings; replay then plays those records without a gap.
        """
        if self.first_backwards is None:
            return ""
        line, t, before = self.first_backwards
        return (f"timestamps go backwards {self.backwards} time{'s' if self.backwards != 1 else ''} "
                f"(first at line {line}: {t:.6f} after {before:.6f}): the file was edited or joined; "
                f"replay plays those records without a pause")

    def _parse(self, text: str) -> Record | None:
        if not text:
            return None
        head = text[0]
        if head == ">" or head == "<":  # noqa: PLR1714 (the hot path: a tuple test costs more)
            # split rather than a regular expression: this runs once per line of a 1 GB capture
            parts = text.split(" ")
            if len(parts) != 3:
                return None
            try:
                return Chunk(head, float(parts[1]), bytes.fromhex(parts[2]))
            except ValueError:
                return None
        if head == "@":
            m = _NOTE_LINE.match(text)
            if not m:
                return None
            try:
                return Note(float(m.group(1)), m.group(2), json.loads(m.group(3)))
            except json.JSONDecodeError:
                return None
        if head == "=":
            m = _END_LINE.match(text)
            if m:
                self.complete = True
                self.end_time = float(m.group(1))
            return None
        return None


def read_capture(path: str | Path) -> CaptureReader:
    """Open a capture for reading; iterate the result for its records."""
    return CaptureReader(path)


# -- the tap -------------------------------------------------------------------------------


class IdentitySniffer:
    """Watches the terminal's bytes for HELLO_REPLY / INFO_REPLY and notes the identity once."""

    def __init__(self, writer: CaptureWriter) -> None:
        self.writer = writer
        self.deframer = FrameDeframer()
        self.done = False

    def feed(self, data: bytes) -> None:
        """Look at bytes from the terminal."""
        if self.done:
            return
        for frame in self.deframer.feed(data):
            if frame.type != MessageType.INFO_REPLY:
                continue
            try:
                fields = masking.mask_fields(decode_message(frame).fields)   # as the driver shows them
            except ProtocolError:
                continue
            keys = ("manufacturer", "model", "serial", "hardware_rev", "firmware_version")
            self.writer.note(DEVICE, {k: fields[k] for k in keys if k in fields})
            self.done = True
            return


class CaptureTap:
    """A port that records every byte read from and written to the port it wraps (like ``spy://``).

    Everything not defined here (``is_open``, ``fileno``, ``baudrate``, ...) is the wrapped
    port's.  Closing the tap closes the port, then the capture.
    """

    def __init__(self, port: Any, writer: CaptureWriter | None, *, sniff_identity: bool = True) -> None:
        self.port = port
        self._sniff = sniff_identity
        # the link's thread records while another thread (a TUI key) may start or stop the capture
        self._lock = threading.Lock()
        self.writer: CaptureWriter | None = None
        self._sniffer: IdentitySniffer | None = None
        if writer is not None:
            self.start(writer)

    def start(self, writer: CaptureWriter) -> None:
        """Record from now on into ``writer`` (a tap may pass bytes through unrecorded before)."""
        with self._lock:
            if self.writer is not None:
                raise CaptureError("a capture is already running on this port")
            self.writer = writer
            self._sniffer = IdentitySniffer(writer) if self._sniff else None

    def stop(self) -> CaptureWriter | None:
        """Stop recording and finish the capture file; return its writer (None if none ran)."""
        with self._lock:
            writer, self.writer, self._sniffer = self.writer, None, None
        if writer is not None:
            writer.close()
            self.capture_problem = self.capture_problem or writer.problem
        return writer

    #: why the capture stopped early (a full disk), one line; "" when it did not
    capture_problem = ""

    def read(self, size: int = 1) -> bytes:
        """Read from the port and record what came (terminal to host); a broken port is noted."""
        try:
            data: bytes = self.port.read(size)
        except Exception as exc:
            self._disconnected(exc)
            raise
        if data:
            with self._lock:
                if self.writer is not None:
                    self.writer.record(TERMINAL_TO_HOST, data)
                    if self._sniffer is not None:
                        self._sniffer.feed(data)
        return data

    def write(self, data: bytes) -> int:
        """Write to the port and record what went out (host to terminal)."""
        n: int = self.port.write(data)
        sent = bytes(data) if n is None or n >= len(data) else bytes(data[:n])
        with self._lock:
            if self.writer is not None:
                self.writer.record(HOST_TO_TERMINAL, sent)
        return len(data) if n is None else n

    def _disconnected(self, exc: BaseException) -> None:
        """Note a broken port, so that a replay breaks the port at the same point of the session."""
        with self._lock:
            if self.writer is not None:
                self.writer.note(DISCONNECTED, (str(exc).strip().splitlines() or [type(exc).__name__])[0])

    @property
    def in_waiting(self) -> int:
        """Bytes waiting in the wrapped port (a hung-up port is noted as for :meth:`read`)."""
        try:
            return int(self.port.in_waiting)
        except Exception as exc:
            self._disconnected(exc)
            raise

    def close(self) -> None:
        """Close the port and finish the capture."""
        try:
            self.port.close()
        finally:
            self.stop()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.port, name)

    def __enter__(self) -> CaptureTap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_terminal(port: str, capture: str | Path, *, timeout: float | None = None, connect: bool = True,
                  baud: int | None = None, timings: LinkTimings | None = None,
                  extra: dict[str, Any] | None = None) -> Terminal:
    """Open ``port`` like :meth:`Terminal.open`, recording the session to ``capture``.

    Returns the connected :class:`drivers.terminal.Terminal`; closing it finishes the capture.
    The header's baud is the rate the port runs at (an ``emu://...?baud=`` URL's own).
    ``extra`` goes into the header (``pos-sim diag`` puts its plan and tests there, so that
    ``pos-sim replay`` runs the same plan).
    """
    from drivers.terminal import Terminal

    writers: list[CaptureWriter] = []

    def tap(ser: Any) -> CaptureTap:
        rate = getattr(ser, "baudrate", None)
        fallback = baud or (timings.baud if timings else timing.DEFAULT_BAUD)
        writer = CaptureWriter(capture, port=port, baud=rate if isinstance(rate, int) and rate > 0 else fallback,
                               extra=extra)
        writers.append(writer)
        return CaptureTap(ser, writer)

    opened = False
    try:
        term = Terminal.open(port, baud=baud, timings=timings, connect=connect, timeout=timeout, wrap=tap)
        opened = True
    finally:
        if not opened:   # the port never opened (or HELLO failed): the capture still ends cleanly
            for w in writers:
                w.close()
    return term


# -- analysis (pos-sim decode) -------------------------------------------------------------

_DROP_REASONS = (("bad_crc", "bad CRC"), ("oversize", "oversize"), ("bad_version", "bad version"),
                 ("partial_dropped", "partial dropped"))


class CapturedFrame(NamedTuple):
    """An intact frame found in one direction: ``offset`` counts that direction's bytes."""

    direction: str
    time: float
    offset: int
    raw: bytes
    frame: Frame


class DroppedBytes(NamedTuple):
    """Bytes of one direction that are not part of any intact frame, and why they were dropped."""

    direction: str
    time: float
    offset: int
    data: bytes
    reasons: tuple[str, ...]


class DirectionTrack:
    """One direction of a capture: a deframer plus the bytes it still holds, with offsets."""

    def __init__(self, direction: str, inter_byte: float) -> None:
        self.direction = direction
        #: the link's inter-byte timeout at the capture's rate: a partial frame older than this is dropped
        self.inter_byte = inter_byte
        self.deframer = FrameDeframer()
        self.held = b""          # the deframer's pending bytes (it does not show them)
        self.base = 0            # stream offset of held[0]
        self.last = 0.0
        self.snapshot = self.counters()

    def counters(self) -> tuple[int, ...]:
        s = self.deframer.stats
        return (s.bad_crc, s.oversize, s.bad_version, s.partial_dropped)

    def feed(self, t: float, data: bytes) -> list[CapturedFrame | DroppedBytes]:
        out: list[CapturedFrame | DroppedBytes] = []
        while self.held and t - self.last >= self.inter_byte:
            # the link gives up the partial frame after the inter-byte timeout, and keeps giving
            # up whatever partial frame is left while the line stays quiet
            self._resolve(out, self.last + self.inter_byte, self.held, None)
        self.last = t
        self._resolve(out, t, self.held + data if self.held else data, data)
        return out

    def finish(self) -> list[CapturedFrame | DroppedBytes]:
        out: list[CapturedFrame | DroppedBytes] = []
        while self.held:
            self._resolve(out, self.last + self.inter_byte, self.held, None)
        return out

    def _resolve(self, out: list[CapturedFrame | DroppedBytes], t: float, window: bytes, data: bytes | None) -> None:
        """Feed ``data`` (None: give up the partial frame); ``window`` is held bytes + data."""
        deframer = self.deframer
        stats = deframer.stats
        dropped_before = stats.bytes_dropped
        frames = deframer.feed(data) if data is not None else deframer.drop_partial()
        pending = deframer.pending
        resolved = len(window) - pending
        base, d = self.base, self.direction
        pos = 0
        if stats.bytes_dropped == dropped_before:
            # nothing dropped: the frames are all the resolved bytes, back to back
            for f in frames:
                n = OVERHEAD + len(f.payload)
                out.append(CapturedFrame(d, t, base + pos, window[pos: pos + n], f))
                pos += n
        else:
            # counters only move when bytes are dropped, so the change since the last drop is this one's
            now = self.counters()
            reasons = tuple(label for (_, label), a, b in zip(_DROP_REASONS, self.snapshot, now, strict=True)
                            if b > a)
            self.snapshot = now
            for f in frames:
                # the first copy of the frame's exact bytes at or after pos: an earlier, corrupt
                # copy differs somewhere, so find() skips it
                raw = encode_frame(f.type, f.payload, f.seq, f.flags, f.version)
                i = window.find(raw, pos)
                if i > pos:
                    out.append(self._dropped(t, window, pos, i, reasons))
                out.append(CapturedFrame(d, t, base + i, raw, f))
                pos = i + len(raw)
            if resolved > pos:
                out.append(self._dropped(t, window, pos, resolved, reasons))
        self.held = window[resolved:] if pending else b""
        self.base += resolved

    def _dropped(self, t: float, window: bytes, start: int, end: int, reasons: tuple[str, ...]) -> DroppedBytes:
        data = window[start:end]
        why: tuple[str, ...] = ()
        if not data.startswith(SYNC):
            why = ("garbage",)
        if SYNC in data:
            why += reasons
        return DroppedBytes(self.direction, t, self.base + start, data, why or ("garbage",))


def analyse(records: Iterator[Record] | CaptureReader) -> Iterator[CapturedFrame | DroppedBytes | Note]:
    """Every intact frame and every dropped byte range of a capture, in order, streaming.

    Each direction has its own :class:`FrameDeframer`, fed chunk by chunk as the link was, with
    the link's inter-byte timeout (at the rate in the capture's header) applied from the
    timestamps; why bytes were dropped comes from the deframer's counters before and after each
    chunk.
    """
    baud = records.header.baud if isinstance(records, CaptureReader) else timing.DEFAULT_BAUD
    inter_byte = timing.inter_byte_timeout(baud if isinstance(baud, int) and baud > 0 else timing.DEFAULT_BAUD)
    tracks = {d: DirectionTrack(d, inter_byte) for d in DIRECTIONS}
    for record in records:
        if isinstance(record, Chunk):
            yield from tracks[record.direction].feed(record.time, record.data)
        else:
            yield record
    for track in tracks.values():
        yield from track.finish()
