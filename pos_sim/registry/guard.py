"""Canonical JSON for the audit chain, and the guard that keeps card numbers out of the registry.

PCI DSS: a full card number (PAN) is never stored.  The registry has no card data to store, so
the guard is a tripwire: free text and audit details that contain a run of 13 to 19 digits
(contiguous, or grouped by single spaces or dashes as PANs are often written) that starts with
2-6 (payment cards' major industry identifiers, as the capture writer's masking: merchant
numbers such as 898310048161234 start with 8) and passes the Luhn check are refused.  The
error never repeats the digits.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from drivers.capture import PAN_FIRST_DIGITS, PAN_MAX, PAN_MIN
from drivers.capture import luhn_valid as _luhn_valid_bytes
from pos_sim.registry.errors import CardDataRefused

#: 13-19 digits, optionally grouped by single spaces or dashes, not part of a longer digit run
_CANDIDATE = re.compile(r"(?<![\d])\d(?:[ -]?\d){12,18}(?![\d])")


def luhn_valid(digits: str) -> bool:
    """True when ``digits`` (only 0-9) passes the Luhn check."""
    return _luhn_valid_bytes(digits.encode("ascii"))


def contains_card_number(text: str) -> bool:
    """True when ``text`` holds a Luhn-valid 13-19 digit run that starts as payment cards do
    (see the module docstring)."""
    return any(True for _ in _card_numbers(text))


def _card_numbers(text: str) -> Iterator[re.Match[str]]:
    for m in _CANDIDATE.finditer(text):
        digits = re.sub(r"[ -]", "", m.group())
        if (PAN_MIN <= len(digits) <= PAN_MAX and digits[0].encode() in PAN_FIRST_DIGITS
                and luhn_valid(digits)):
            yield m


def mask_card_numbers(text: str) -> str:
    """``text`` with every card number in it shown as its first six and last four digits."""
    out, last = [], 0
    for m in _card_numbers(text):
        digits = re.sub(r"[ -]", "", m.group())
        out += [text[last:m.start()], digits[:6], "*" * (len(digits) - 10), digits[-4:]]
        last = m.end()
    return "".join(out) + text[last:]


def refuse_card_data(what: str, text: str) -> None:
    """Raise :class:`CardDataRefused` when ``text`` looks like it carries a card number."""
    if contains_card_number(text):
        raise CardDataRefused(f"refused to store {what}: it contains what looks like a card number "
                              "(a Luhn-valid run of 13-19 digits); mask it to BIN and last four")


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 text, no NaN: the same value always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
