"""Hypothesis strategies derived from the construct declarations themselves.

Walking the declarations (rather than hand-writing a strategy per message) means a field added
to a message is covered by the round-trip tests the moment it is declared.
"""

from __future__ import annotations

from typing import Any

from construct import Bytes, Construct, Enum, Flag, FormatField, Struct, Switch
from hypothesis import strategies as st

from protocols.pos.compiler import pascal_parts, prefixed_array_parts, switch_key, unwrap
from protocols.pos.messages import CATALOGUE, MessageType

_RANGES = {
    "B": (0, 0xFF), "H": (0, 0xFFFF), "I": (0, 0xFFFFFFFF), "L": (0, 0xFFFFFFFF),
    "b": (-0x80, 0x7F), "h": (-0x8000, 0x7FFF), "i": (-0x80000000, 0x7FFFFFFF), "l": (-0x80000000, 0x7FFFFFFF),
}


def _int_range(c: FormatField) -> tuple[int, int]:
    return _RANGES[c.fmtstr.lstrip("<>=!")]


def value_strategy(c: Construct) -> st.SearchStrategy[Any]:
    """Values a field accepts for building."""
    c = unwrap(c)
    if isinstance(c, FormatField):
        lo, hi = _int_range(c)
        return st.integers(lo, hi)
    if c is Flag:
        return st.booleans()
    if isinstance(c, Enum):
        lo, hi = _int_range(unwrap(c.subcon))
        names = sorted(str(v) for v in c.decmapping.values())
        unknown = st.integers(lo, hi).filter(lambda v: v not in c.decmapping)
        return st.one_of(st.sampled_from(names), unknown)
    if isinstance(c, Bytes):
        return st.binary(min_size=c.length, max_size=c.length)
    pas = pascal_parts(c)
    if pas is not None:
        if pas[1] is None:
            return st.binary(max_size=40)
        return st.text(max_size=24).filter(lambda s: len(s.encode("utf-8")) <= 255)
    arr = prefixed_array_parts(c)
    if arr is not None:
        return st.lists(value_strategy(arr[1]), max_size=6)
    if isinstance(c, Struct):
        return struct_strategy(c)
    raise TypeError(f"no strategy for {type(c).__name__}")


def struct_strategy(s: Struct) -> st.SearchStrategy[dict[str, Any]]:
    """Field dicts for a Struct, a Switch drawn after the field it depends on."""

    @st.composite
    def draw(draw_: st.DrawFn) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for sub in unwrap(s).subcons:
            if sub.name is None:
                continue
            c = unwrap(sub)
            if isinstance(c, Switch):
                key = out[switch_key(c)]
                case = c.cases.get(key)
                out[sub.name] = None if case is None else draw_(struct_strategy(unwrap(case)))
            else:
                out[sub.name] = draw_(value_strategy(c))
        return out

    return draw()


def expected_decoding(c: Construct, value: Any) -> Any:
    """What decoding should give back for a built value (known enum ints come back as names)."""
    c = unwrap(c)
    if isinstance(c, Enum):
        return str(c.decmapping[value]) if isinstance(value, int) and value in c.decmapping else value
    if c is Flag:
        return bool(value)
    arr = prefixed_array_parts(c)
    if arr is not None:
        return [expected_decoding(arr[1], v) for v in value]
    if isinstance(c, Struct):
        out: dict[str, Any] = {}
        for sub in c.subcons:
            if sub.name is None:
                continue
            inner = unwrap(sub)
            if isinstance(inner, Switch):
                key = out[switch_key(inner)]
                case = inner.cases.get(key)
                out[sub.name] = None if case is None else expected_decoding(case, value[sub.name])
            else:
                out[sub.name] = expected_decoding(inner, value[sub.name])
        return out
    return value


def message_strategy(t: MessageType) -> st.SearchStrategy[dict[str, Any]]:
    """Field dicts for one message type."""
    return struct_strategy(CATALOGUE[t].declaration)
