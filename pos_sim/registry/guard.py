"""Canonical JSON for the audit chain, and the guard that keeps card numbers out of the registry.

PCI DSS: a full card number (PAN) is never stored.  The registry has no card data to store, so
the guard is a tripwire: free text and audit details that hold a card number or track data by
the driver's masking rule (drivers/masking.py: 13 to 19 digits, contiguous or grouped by single
spaces or dashes, starting 2-6 and passing the Luhn check; track 1 or 2 data) are refused.  The
error never repeats the digits.  Masking has that one home; this module only applies it.
"""

from __future__ import annotations

import json
from typing import Any

from drivers import masking
from pos_sim.registry.errors import CardDataRefused


def luhn_valid(digits: str) -> bool:
    """True when ``digits`` (only 0-9) passes the Luhn check."""
    return masking.luhn_valid(digits)


def contains_card_number(text: str) -> bool:
    """True when ``text`` holds a card number or track data (see the module docstring)."""
    return masking.contains_card_data(text)


def mask_card_numbers(text: str) -> str:
    """``text`` with every card number shown as its first six and last four digits, and its
    track data removed (:func:`drivers.masking.mask_text`)."""
    return masking.mask_text(text)


def refuse_card_data(what: str, text: str) -> None:
    """Raise :class:`CardDataRefused` when ``text`` looks like it carries a card number."""
    if contains_card_number(text):
        raise CardDataRefused(f"refused to store {what}: it contains what looks like a card number "
                              "(a Luhn-valid run of 13-19 digits); mask it to BIN and last four")


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 text, no NaN: the same value always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
