"""Card data out of everything a terminal says: the one masking rule of pos-sim.

PCI DSS allows at most the first six digits (the BIN) and the last four of a card number (PAN)
anywhere, and no magnetic-track data at all.  A terminal's firmware should never send either,
but a faulty one may put a card number into its model name, a self-test note or an ERROR
detail, so the driver masks every text field it decodes before anything above it sees it
(:func:`mask_fields`, applied by :class:`drivers.link.Link` to every message it delivers), and
the capture writer masks the raw bytes before they reach the file (:func:`mask_bytes`).

The rule (docs/drivers.md, "Card data"):

* **Track 1** (``%B`` PAN ``^`` name ``^`` YYMM ...) and **track 2** (``;`` PAN ``=`` or ``D``
  YYMM ...) data, the sentinels optional, with a PAN of 13 to 19 digits of any first digit (the
  track layout is the evidence): removed, from the start sentinel to the end sentinel ``?``
  (or the last digit when there is none): every character of it becomes ``*``.
* **A card number**: 13 to 19 digits that start with 2, 3, 4, 5 or 6 (ISO/IEC 7812 major
  industry identifiers of payment cards; UnionPay merchant numbers such as ``898310048160457``
  start with 8 and are left alone) and pass the Luhn check, written contiguously (a maximal run:
  a 20-digit number holds no card) or grouped by single spaces or dashes (any whole groups of a
  sequence of digit groups, so a card number after ``12 `` is found too): every digit but the
  first six and the last four becomes ``*``, separators stay (16 contiguous digits ``d`` become
  ``dddddd******dddd``, grouped ones ``dddd dddd dddd dddd`` become ``dddd dd** **** dddd``).
  No real-looking card number is written here: the suite's card-data scan reads the installed
  package too.

Text and raw bytes get the same rule and keep their length, so a capture's masked bytes decode
to exactly the text the driver shows live, and a replay shows what the live session showed.
Masking is idempotent (a masked number has runs of at most six digits) and repeated until
nothing changes, so digits left beside a masked number never make a new one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from protocols.pos import Frame, Message, encode_frame

#: card numbers have this many digits; at most the first 6 and last 4 are ever shown
PAN_MIN, PAN_MAX, PAN_KEEP_FIRST, PAN_KEEP_LAST = 13, 19, 6, 4
#: first digits of payment-card numbers (see the module docstring)
PAN_FIRST_DIGITS = b"23456"
#: the longest stretch of bytes one piece of card data can take (a track 1 is at most 79)
LONGEST = 80

_TRACK1 = r"%?B[0-9]{13,19}\^[^^\r\n]{2,26}\^[0-9]{2}(?:0[1-9]|1[0-2])(?:[^?\r\n]{0,60}\?|[0-9]*)"
_TRACK2 = r";?(?<![0-9])[0-9]{13,19}[=Dd][0-9]{2}(?:0[1-9]|1[0-2])[0-9]*\??"
_TRACKS = re.compile(f"{_TRACK1}|{_TRACK2}")
#: digit groups joined by single spaces or dashes (a contiguous run is one group)
_GROUPS = re.compile(r"[0-9]+(?:[ -][0-9]+)*")
_GROUP = re.compile(r"[0-9]+")
#: what may be the start of card data cut off at the end of a chunk (held back by the writer)
INCOMPLETE_TAIL = re.compile(
    rb"(?:%?B[0-9]{0,19}(?:\^[^^\r\n]{0,26}(?:\^[^?\r\n]{0,64})?)?|;?[0-9][0-9 -]{0,40}(?:[=Dd][0-9]{0,40})?|[;%])\Z")


def luhn_valid(digits: str | bytes) -> bool:
    """True when the digits (only 0-9) pass the Luhn check, as every card number does."""
    text = digits.decode("ascii") if isinstance(digits, bytes) else digits
    total = 0
    for i, ch in enumerate(reversed(text)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def is_card_number(digits: str) -> bool:
    """True when ``digits`` (only 0-9) is a payment-card number by the module's rule."""
    return (PAN_MIN <= len(digits) <= PAN_MAX and digits[0].encode() in PAN_FIRST_DIGITS
            and luhn_valid(digits))


def _card_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each card number in ``text``: whole groups of a digit-group sequence."""
    spans: list[tuple[int, int]] = []
    for seq in _GROUPS.finditer(text):
        groups = [(m.start() + seq.start(), m.end() + seq.start()) for m in _GROUP.finditer(seq.group())]
        i = 0
        while i < len(groups):
            found = None
            digits = ""
            for j in range(i, len(groups)):
                a, b = groups[j]
                digits += text[a:b]
                if len(digits) > PAN_MAX:
                    break
                if len(digits) >= PAN_MIN and is_card_number(digits):
                    found = j     # the longest window from group i wins
            if found is None:
                i += 1
                continue
            spans.append((groups[i][0], groups[found][1]))
            i = found + 1
    return spans


def _mask_once(text: str, track: Callable[[str], str], card: Callable[[str], str]) -> str:
    text = _TRACKS.sub(lambda m: track(m.group()), text)
    out, last = [], 0
    for a, b in _card_spans(text):
        out += [text[last:a], card(text[a:b])]
        last = b
    return "".join(out) + text[last:]


def _fixpoint(text: str, track: Callable[[str], str], card: Callable[[str], str]) -> str:
    for _ in range(8):
        masked = _mask_once(text, track, card)
        if masked == text:
            break
        text = masked
    return text


def _stars(track: str) -> str:
    return "*" * len(track)


def _card_same_length(run: str) -> str:
    positions = [i for i, ch in enumerate(run) if ch.isdigit()]
    hide = set(positions[PAN_KEEP_FIRST: len(positions) - PAN_KEEP_LAST])
    return "".join("*" if i in hide else ch for i, ch in enumerate(run))


def mask_text(text: str) -> str:
    """``text`` with its track data removed and its card numbers cut to BIN and last four
    (the length kept)."""
    if not any(ch.isdigit() for ch in text):
        return text
    return _fixpoint(text, _stars, _card_same_length)


def mask_bytes(data: bytes, *, context: bytes = b"") -> bytes:
    """``data`` masked by the same rule without changing its length (for raw capture bytes).

    ``context`` is what came just before ``data`` on the same stream (already written): it
    decides where a digit run starts, and is not part of the result.
    """
    text = (context + data).decode("latin-1")
    masked = _fixpoint(text, _stars, _card_same_length)
    return masked[len(context):].encode("latin-1")


def contains_card_data(text: str) -> bool:
    """True when :func:`mask_text` would change ``text`` (a card number or track data)."""
    return mask_text(text) != text


def mask_fields(value: Any) -> Any:
    """Decoded message fields with every text masked (:func:`mask_text`), at any depth, and
    every bytes value masked in place (:func:`mask_bytes`, the length kept); numbers and the
    rest unchanged.  Generic on purpose: a field added to the protocol later is covered."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: mask_fields(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(mask_fields(v) for v in value)
    if isinstance(value, bytes | bytearray):
        return mask_bytes(bytes(value))
    return value


def mask_message(msg: Message) -> Message:
    """``msg`` with its fields masked (:func:`mask_fields`)."""
    return msg._replace(fields=mask_fields(msg.fields))


def mask_frame(frame: Frame) -> Frame:
    """``frame`` with its payload bytes masked in place (the CRC is not recomputed: the frame
    was checked when it arrived), for anything that shows frames as they crossed the line."""
    payload = mask_bytes(frame.payload)
    return frame if payload == frame.payload else frame._replace(payload=payload)


def mask_wire_frame(frame: Frame, raw: bytes) -> bytes:
    """A frame's bytes as they crossed the line (``raw``), with the payload masked; a payload
    that changed gets a CRC over the masked bytes, so the frame still checks (for anything that
    shows or exports raw bytes: ``pos-sim decode --raw``, the pcapng export)."""
    payload = mask_bytes(frame.payload)
    return raw if payload == frame.payload else encode_frame(frame.type, payload, frame.seq, frame.flags,
                                                              frame.version)
