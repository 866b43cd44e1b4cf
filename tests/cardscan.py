"""A scan of files for card data: full card numbers (PANs) and magnetic-track data.

The suite runs it over everything it wrote (``tests/conftest.py``, at the end of the session):
PCI DSS says a full PAN is never stored, and drivers/masking.py masks card numbers before
they are written, so no log, capture, report or database a test leaves behind may hold one.
A finding names the file, the kind and where; the number itself is only ever shown masked to
its first six and last four digits (``411111…1111``), and a track-1 name is never shown.

What is read
    Every regular file under the given roots (symbolic links, FIFOs and devices are skipped).
    A file that starts with the gzip magic (``.gz`` captures, torn ones too) is decompressed as
    far as it goes; its raw bytes are scanned as well.  SQLite databases and their ``-wal`` and
    ``-journal`` files are scanned as raw bytes: SQLite stores UTF-8 text as it is, and raw bytes
    also show rows that were deleted but are still on a free page.  Not found: a PAN stored as
    an SQLite INTEGER (big-endian binary), UTF-16 text, BCD outside track-2 equivalent data, and
    anything encrypted or base64-encoded.

The rule for a card number (PAN)
    A run of 13 to 19 ASCII digits that passes the Luhn check and whose first digit is 2, 3, 4,
    5 or 6: the ISO/IEC 7812 major industry identifiers of payment cards (2 Mastercard 2-series,
    only 2221-2720, so that date-times such as a PDF's 20261123170936 are not cards; 3
    Amex/JCB/Diners, 4 Visa, 5 Mastercard/Maestro, 6 Discover/Maestro/UnionPay 62).  The other
    first digits are out on purpose, as in the capture writer's masking (``drivers/capture.py``):
    1 is airlines, but also every Unix time in ms, µs or ns until 2033 (``1732370313364``,
    19-digit nanosecond times); 7 is petroleum; 8 is telecommunications and the UnionPay merchant
    ids this emulator sends in every INFO_REPLY (``898310048161642``, Luhn-valid one time in
    ten); 9 is national use.  The run is written either

    * contiguously, bounded on both sides so that it is a whole number, not a window of a longer
      one: the characters either side are not digits, not hex letters ``a-f``/``A-F`` (so a
      digit run inside a hex string is not a number; the hex string is decoded instead, below),
      it is not preceded by ``0x`` (a hex literal) nor by ``digit.`` (the fraction of a decimal
      number such as a float's repr ``0.30000000000000004``), and not followed by ``.digit``; or
    * grouped as cards are printed: groups of digits joined by one kind of separator, a single
      space or a single dash, all the same.  The maximal sequence of such groups is taken (so a
      20-digit number in groups of four gives no 16-digit window); one leading and one trailing
      group of one or two digits are dropped (a time's seconds before, ``12/25`` after); then the
      first group has 4 to 6 digits, the others 3 to 6, at least two groups, 13 to 19 digits in
      all, with the same boundaries as above.  Masked forms (``622848******1234``, ``411111…1111``)
      never match: the digit runs they leave are too short.

The rule for track data (the PAN inside it: 13 to 19 digits, Luhn-valid, any first digit,
because the track layout itself is the evidence)
    * track 2: ``;``-optional, PAN, separator ``=`` (ISO 7813) or ``D``/``d`` (the binary track-2
      equivalent of EMV tag 57, as a hex dump shows it), expiry YYMM with month 01-12, and a
      three-digit service code whose first digit is 1, 2, 5, 6, 7 or 9.  The PAN starts after a
      non-digit, or straight after ``57`` and a length byte (tag 57 in a hex dump).
    * track 1: ``%``-optional ``B``, PAN, ``^``, a name of 2 to 26 characters, ``^``, expiry
      YYMM with month 01-12; without the ``%`` the ``B`` must not follow a letter or digit.

Hex dumps
    A token of at least 13 bytes of hex (an even number of hex digits, not touching a letter or
    digit either side) is decoded and the bytes are scanned by the rules above (one level: hex
    inside decoded hex is not decoded again).  A pos-sim capture (``# pos-sim capture`` first
    line) is read as what it is: each direction's chunk lines are joined into one byte stream,
    as the capture writer masks them, so a number split over two reads is found; the chunk hex
    itself is then left out of the text scan, where a 14-18 digit chunk such as
    ``< 0.017508 3031323334353637`` would otherwise look like a number.

Known limits, by design
    A number glued to a hex letter (``card4111…``: the ``d``) is taken for hex and missed; our
    outputs separate values (JSON, ``key=value``, table cells).  A bare all-digit hex string of
    14 to 18 digits outside a capture is a decimal number to this scan.  Any 13-19 digit
    identifier that starts 2-6 and happens to pass Luhn is reported (French SIRET numbers use
    Luhn: one sits in certifi's CA bundle); 163 MB of site-packages gave that one false finding.

Speed
    Each pass is a regular expression that starts with a character class, with its
    look-behinds after the first character (Python's re then skips to candidates instead of
    trying every byte), and a pass runs on a file only when a cheap test (bytes mapped to
    classes with ``bytes.translate``, then a substring search) shows it could match: about
    50 MB/s, so the suite's output takes a second or two.
"""

from __future__ import annotations

import os
import re
import stat
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

#: card numbers have this many digits (ISO/IEC 7812)
PAN_MIN, PAN_MAX = 13, 19
#: first digits of payment-card numbers (see the module docstring for why not 1, 7, 8 and 9)
PAN_FIRST_DIGITS = b"23456"
#: the only BINs starting with 2 that are payment cards
MASTERCARD_2_SERIES = (2221, 2720)
#: a track's service code starts with one of these (ISO/IEC 7813: interchange 1, 2, 5, 6, 7, 9)
SERVICE_CODE_FIRST = b"125679"
#: a hex token shorter than this many bytes cannot hold a PAN and is not decoded
HEX_MIN_BYTES = PAN_MIN

_GZIP_MAGIC = b"\x1f\x8b"
_CAPTURE_MAGIC = b"# pos-sim capture"

# Every pattern starts with a character class or a literal, and the look-behinds that bound it
# come after that first character (20 times faster on database pages than look-behinds first).
#
# Boundaries shared by the contiguous and grouped forms: not inside a longer digit or hex run,
# not a hex literal, not either half of a decimal number.
_FIRST_DIGIT = rb"[0-9](?<![0-9A-Fa-f][0-9])(?<!0[xX][0-9])(?<![0-9]\.[0-9])"
_AFTER = rb"(?![0-9A-Fa-f])(?!\.[0-9])"
_CONTIGUOUS = re.compile(_FIRST_DIGIT + rb"[0-9]{12,18}" + _AFTER)
#: maximal sequences of digit groups with one kind of separator (possessive: never a shorter one)
_GROUPED = tuple(re.compile(_FIRST_DIGIT + rb"[0-9]*+(?:" + sep + rb"[0-9]++)++" + _AFTER) for sep in (b" ", b"-"))
_TRACK2 = re.compile(rb"([0-9](?:(?<![0-9][0-9])|(?<=57[0-9A-Fa-f]{2}[0-9]))[0-9]{12,18})[=Dd]"
                     rb"[0-9]{2}(?:0[1-9]|1[0-2])[" + SERVICE_CODE_FIRST + rb"][0-9]{2}")
_TRACK1 = re.compile(rb"B(?:(?<=%B)|(?<![0-9A-Za-z]B))([0-9]{13,19})\^[^^\r\n]{2,26}\^[0-9]{2}(?:0[1-9]|1[0-2])")
_HEX_TOKEN = re.compile(rb"[0-9A-Fa-f](?<![0-9A-Za-z][0-9A-Fa-f])[0-9A-Fa-f](?:[0-9A-Fa-f]{2})*+(?![0-9A-Za-z])")
_CHUNK_LINE = re.compile(rb"^([<>]) [0-9]+\.[0-9]+ ([0-9a-f]*)$", re.MULTILINE)

# Cheap tests that let a file skip the passes that cannot match in it (most database pages and
# browser caches): bytes mapped to classes, then a substring search, both in C.
_DIGITS_ONLY = bytes(ord("d") if chr(c) in "0123456789" else ord("s") if chr(c) in " -" else ord(".")
                     for c in range(256))
_HEX_CLASSES = bytes(ord("h") if chr(c) in "0123456789abcdefABCDEF" else ord(".") for c in range(256))
_SOME_RUN = b"d" * PAN_MIN                 # contiguous numbers and tracks need 13 digits in a row
_SOME_GROUPS = b"dddd" + b"s" + b"ddd"     # a grouped number has a 4-digit group, separator, 3 digits
_SOME_HEX = b"h" * (2 * HEX_MIN_BYTES)

PAN = "PAN"
TRACK1 = "track 1"
TRACK2 = "track 2"


def luhn_valid(digits: bytes) -> bool:
    """True when the ASCII digits pass the Luhn check, as every card number does.  Written
    here again on purpose (drivers.capture has one): the scan is the oracle for the code that
    masks, so it must not share that code's mistakes."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ch - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def mask(pan: bytes) -> str:
    """The only form in which a found number is ever shown: first six, an ellipsis, last four."""
    return f"{pan[:6].decode()}…{pan[-4:].decode()}"


def _is_card_number(digits: bytes) -> bool:
    if not (PAN_MIN <= len(digits) <= PAN_MAX and digits[0] in PAN_FIRST_DIGITS):
        return False
    # a 2 is a card only in Mastercard's 2-series, 2221-2720: 20yy... is a date (a PDF's
    # CreationDate D:20261123170936 passes Luhn one time in ten)
    if digits[:1] == b"2" and not MASTERCARD_2_SERIES[0] <= int(digits[:4]) <= MASTERCARD_2_SERIES[1]:
        return False
    return luhn_valid(digits)


@dataclass(frozen=True)
class CardData:
    """Card data found in a byte string: what kind, where, and the number (never print ``pan``)."""

    kind: str
    offset: int
    pan: bytes = field(repr=False)
    #: how the bytes were reached: "" as stored, "hex" decoded from a hex dump, "capture >"/"<"
    #: the joined stream of one direction of a capture
    via: str = ""

    @property
    def masked(self) -> str:
        """The number as it may be shown: BIN six and last four."""
        return mask(self.pan)

    def __str__(self) -> str:
        where = f"{self.via} byte {self.offset}" if self.via else f"byte {self.offset}"
        return f"{self.kind} {self.masked} at {where}"


def _grouped_pan(match: re.Match[bytes]) -> tuple[int, bytes] | None:
    """The card number in a maximal grouped digit sequence, with its offset, if it is one."""
    text = match.group()
    sep = b" " if b" " in text else b"-"
    groups = text.split(sep)
    start = match.start()
    if len(groups[0]) <= 2:
        start += len(groups[0]) + 1
        groups = groups[1:]
    if groups and len(groups[-1]) <= 2:
        groups = groups[:-1]
    if len(groups) < 2 or not 4 <= len(groups[0]) <= 6 or not all(3 <= len(g) <= 6 for g in groups[1:]):
        return None
    digits = b"".join(groups)
    return (start, digits) if _is_card_number(digits) else None


def find_card_data(data: bytes, *, decode_hex: bool = True, via: str = "") -> list[CardData]:
    """Every PAN and every track in ``data`` by the rules of the module docstring, in order.

    A PAN that is part of a track found at the same place is reported once, as the track.
    """
    found: list[CardData] = []
    spans: list[tuple[int, int]] = []
    classes = data.translate(_DIGITS_ONLY)
    runs, groups = _SOME_RUN in classes, _SOME_GROUPS in classes
    for kind, regex in ((TRACK1, _TRACK1), (TRACK2, _TRACK2)) if runs else ():
        for m in regex.finditer(data):
            pan = m.group(1)
            if PAN_MIN <= len(pan) <= PAN_MAX and luhn_valid(pan):
                found.append(CardData(kind, m.start(1), pan, via))
                spans.append(m.span())

    def in_track(pos: int) -> bool:
        return any(a <= pos < b for a, b in spans)

    for m in _CONTIGUOUS.finditer(data) if runs else ():
        if _is_card_number(m.group()) and not in_track(m.start()):
            found.append(CardData(PAN, m.start(), m.group(), via))
    for regex in _GROUPED if groups else ():
        for m in regex.finditer(data):
            grouped = _grouped_pan(m)
            if grouped is not None and not in_track(grouped[0]):
                found.append(CardData(PAN, grouped[0], grouped[1], via))
    if decode_hex and _SOME_HEX in data.translate(_HEX_CLASSES):
        for m in _HEX_TOKEN.finditer(data):
            if len(m.group()) >= 2 * HEX_MIN_BYTES:
                for hit in find_card_data(bytes.fromhex(m.group().decode("ascii")), decode_hex=False):
                    found.append(CardData(hit.kind, hit.offset, hit.pan, f"hex at byte {m.start()}, decoded"))
    found.sort(key=lambda c: c.offset)
    return found


def _gunzip(data: bytes) -> bytes | None:
    """The decompressed content of gzip ``data`` (all members), as far as it goes; None if none."""
    out: list[bytes] = []
    rest = data
    while rest[:2] == _GZIP_MAGIC:
        z = zlib.decompressobj(wbits=31)
        try:
            out.append(z.decompress(rest))
        except zlib.error:
            break
        rest = z.unused_data
    return b"".join(out) if out else None


def _find_in_capture(data: bytes) -> tuple[bytes, list[CardData]]:
    """Card data in a capture's joined direction streams, and the capture with its chunk hex blanked."""
    streams: dict[bytes, bytearray] = {b">": bytearray(), b"<": bytearray()}
    text = bytearray(data)
    for m in _CHUNK_LINE.finditer(data):
        hex_digits = m.group(2)
        if len(hex_digits) % 2:
            continue   # a malformed line stays in the text scan
        streams[m.group(1)] += bytes.fromhex(hex_digits.decode("ascii"))
        text[m.start(2):m.end(2)] = b" " * len(hex_digits)
    found = [hit for direction, stream in streams.items()
             for hit in find_card_data(bytes(stream), decode_hex=False, via=f"capture stream {direction.decode()}")]
    return bytes(text), found


def find_in_file_content(data: bytes) -> list[CardData]:
    """Card data in the content of one file: gunzipped if it is gzip, read as a capture if one."""
    found: list[CardData] = []
    inflated = _gunzip(data) if data[:2] == _GZIP_MAGIC else None
    layers = [(data, "")] if inflated is None else [(inflated, "gunzipped"), (data, "")]
    for content, label in layers:
        text, hits = _find_in_capture(content) if content.startswith(_CAPTURE_MAGIC) else (content, [])
        hits += find_card_data(text)
        found += [CardData(c.kind, c.offset, c.pan, f"{label}, {c.via}" if c.via else label) for c in hits] \
            if label else hits
    return found


@dataclass(frozen=True)
class Finding:
    """Card data in one file."""

    path: Path
    data: CardData

    def __str__(self) -> str:
        return f"{self.path}: {self.data}"


@dataclass
class ScanResult:
    """What a scan read and found."""

    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    #: files that could not be read, with the reason: not scanned, so not known to be clean
    unreadable: list[tuple[Path, str]] = field(default_factory=list)

    def summary(self) -> str:
        """One line: how much was scanned, how long it took, and the outcome."""
        outcome = f"{len(self.findings)} CARD DATA FINDING(S)" if self.findings else "no card data"
        extra = f", {len(self.unreadable)} unreadable" if self.unreadable else ""
        files = f"{self.files} file" + ("" if self.files == 1 else "s")
        return f"card-data scan: {files}, {self.bytes / 1e6:.1f} MB in {self.seconds:.2f} s{extra}, {outcome}"


def _regular_files(roots: Iterable[Path]) -> list[Path]:
    seen: set[Path] = set()
    files: list[Path] = []
    for root in roots:
        candidates = ([Path(d) / n for d, _, names in os.walk(root) for n in sorted(names)]
                      if root.is_dir() else [root])
        for path in candidates:
            try:
                mode = path.lstat().st_mode
            except OSError:
                continue   # gone, or a root that does not exist
            key = path.resolve()
            if stat.S_ISREG(mode) and key not in seen:
                seen.add(key)
                files.append(path)
    return files


def scan(roots: Iterable[Path | str]) -> ScanResult:
    """Scan every regular file under ``roots`` (directories or files; missing ones are skipped)."""
    started = time.perf_counter()
    result = ScanResult()
    for path in _regular_files(Path(r) for r in roots):
        try:
            data = path.read_bytes()
        except OSError as exc:
            result.unreadable.append((path, exc.strerror or str(exc)))
            continue
        result.files += 1
        result.bytes += len(data)
        result.findings += [Finding(path, hit) for hit in find_in_file_content(data)]
    result.seconds = time.perf_counter() - started
    return result
