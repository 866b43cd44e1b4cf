"""Turns a message's construct declaration into a fast decoder over a bytes buffer.

construct's interpreted parser reads through a stream object field by field, and its
``.compile()`` output still does (and skips length checks, raising ``struct.error``).  For the
handful of shapes our messages use, this module writes a plain Python function instead: runs of
fixed-size fields become one precompiled ``struct.Struct.unpack_from``, variable parts advance
an offset, and every read is bounds-checked before it happens.  The output is the same plain
data ``construct`` gives (dicts, lists, enum names as ``str``, unknown enum values as ``int``);
``tests/protocols/test_compiler.py`` proves it on every message and on random input.

Only the constructs below are understood; anything else is a programming error found at
import time, not at run time:

``Struct``, ``Renamed``, ``FormatField`` (``Int8ub`` ...), ``Flag``, ``Bytes(n)``,
``Enum(FormatField)``, ``PascalString`` (``StringEncoded(Prefixed(FormatField, GreedyBytes))``),
``Prefixed(FormatField, GreedyBytes)``, ``PrefixedArray(FormatField, subcon)``,
``Switch(this.field, {...})`` with ``Struct`` or ``Pass`` cases, ``Terminated``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from construct import (
    Array,
    Bytes,
    Construct,
    Enum,
    Flag,
    FocusedSeq,
    FormatField,
    GreedyBytes,
    Pass,
    Prefixed,
    Rebuild,
    Renamed,
    StringEncoded,
    Struct,
    Switch,
    Terminated,
)

from protocols.pos.errors import MalformedPayload

Decoder = Callable[[bytes], dict[str, Any]]


class UnsupportedConstruct(TypeError):
    """A declaration uses a construct this compiler does not translate."""


def unwrap(c: Construct) -> Construct:
    """Strip names and docs (``Renamed``) to reach the construct that does the work."""
    while isinstance(c, Renamed):
        c = c.subcon
    return c


def prefixed_array_parts(c: Construct) -> tuple[FormatField, Construct] | None:
    """``(countfield, item)`` when ``c`` is construct's ``PrefixedArray`` macro, else None."""
    if not isinstance(c, FocusedSeq) or c.parsebuildfrom != "items" or len(c.subcons) != 2:
        return None
    count, items = c.subcons
    if count.name != "count" or items.name != "items":
        return None
    rebuild, array = unwrap(count), unwrap(items)
    if not isinstance(rebuild, Rebuild) or not isinstance(array, Array):
        return None
    field = unwrap(rebuild.subcon)
    if not isinstance(field, FormatField):
        return None
    return field, array.subcon


def pascal_parts(c: Construct) -> tuple[FormatField, str | None] | None:
    """``(lengthfield, encoding)`` for a length-prefixed string (encoding) or bytes (None)."""
    encoding = None
    if isinstance(c, StringEncoded):
        encoding = c.encoding
        c = c.subcon
    if isinstance(c, Prefixed) and isinstance(unwrap(c.subcon), type(GreedyBytes)):
        field = unwrap(c.lengthfield)
        if isinstance(field, FormatField):
            return field, encoding
    return None


def switch_key(c: Switch) -> str:
    """The name of the earlier field a ``Switch(this.name, ...)`` dispatches on."""
    field = getattr(c.keyfunc, "_Path__field", None)
    parent = getattr(c.keyfunc, "_Path__parent", None)
    if not isinstance(field, str) or parent is None or getattr(parent, "_Path__parent", 1) is not None:
        raise UnsupportedConstruct(f"Switch key must be this.<field>, not {c.keyfunc!r}")
    return field


def _fixed_fmt(c: Construct) -> str | None:
    """struct format of a fixed-size leaf, or None when the field is not one."""
    if isinstance(c, FormatField):
        return str(c.fmtstr).lstrip("<>=!")
    if isinstance(c, Enum):
        return _fixed_fmt(unwrap(c.subcon))
    if c is Flag:
        return "?"
    if isinstance(c, Bytes) and isinstance(c.length, int):
        return f"{c.length}s"
    return None


class _Writer:
    """Accumulates generated source and the constants it refers to."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.consts: dict[str, Any] = {"MalformedPayload": MalformedPayload}
        self.funcs: list[str] = []
        self.counter = 0

    def const(self, value: Any, prefix: str) -> str:
        self.counter += 1
        name = f"_{prefix}{self.counter}"
        self.consts[name] = value
        return name

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"


def _short(w: _Writer, ind: str, need: str, what: str) -> None:
    w.lines.append(f"{ind}if off + {need} > n:")
    w.lines.append(f"{ind}    raise MalformedPayload({what!r} + ': payload ends early')")


def _read_count(w: _Writer, ind: str, field: FormatField, var: str, what: str) -> None:
    """Emit the read of a length or count prefix into ``var``."""
    fmt = ">" + str(field.fmtstr).lstrip("<>=!")
    _short(w, ind, str(struct.calcsize(fmt)), what)
    if fmt == ">B":  # indexing bytes is several times faster than a struct call
        w.lines.append(f"{ind}{var} = data[off]")
        w.lines.append(f"{ind}off += 1")
        return
    s = struct.Struct(fmt)
    w.lines.append(f"{ind}({var},) = {w.const(s, 'S')}.unpack_from(data, off)")
    w.lines.append(f"{ind}off += {s.size}")


def _emit_struct(w: _Writer, st: Struct) -> str:
    """Emit ``def f(data, off, n) -> (dict, off)`` for a Struct; return its name."""
    fname = w.fresh("_struct")
    body: list[str] = []
    outer, w.lines = w.lines, body
    ind = "    "
    names: list[str] = []        # field names in order, for the result dict
    local: dict[str, str] = {}   # field name -> local variable
    run: list[tuple[str, str, Construct]] = []  # pending fixed fields (name, var, construct)

    def flush() -> None:
        if not run:
            return
        fmt = ">" + "".join(_fixed_fmt(c) or "" for _, _, c in run)
        s = struct.Struct(fmt)
        sname = w.const(s, "S")
        vars_ = [v for _, v, _ in run]
        _short(w, ind, str(s.size), "/".join(nm for nm, _, _ in run))
        target = ", ".join(vars_) + ("," if len(vars_) == 1 else "")
        w.lines.append(f"{ind}{target} = {sname}.unpack_from(data, off)")
        w.lines.append(f"{ind}off += {s.size}")
        for _nm, var, c in run:
            if isinstance(c, Enum):
                mname = w.const({v: str(k) for v, k in c.decmapping.items()}, "M")
                w.lines.append(f"{ind}{var} = {mname}.get({var}, {var})")
        run.clear()

    for sub in st.subcons:
        name = sub.name
        c = unwrap(sub)
        if c is Terminated:
            flush()
            w.lines.append(f"{ind}if off != n:")
            w.lines.append(f"{ind}    raise MalformedPayload(str(n - off) + ' bytes after the last field')")
            continue
        if name is None:
            raise UnsupportedConstruct(f"unnamed {type(c).__name__} in {st!r}")
        var = w.fresh("v")
        local[name] = var
        names.append(name)
        if _fixed_fmt(c) is not None:
            run.append((name, var, c))
            continue
        flush()
        pas = pascal_parts(c)
        arr = prefixed_array_parts(c)
        if pas is not None:
            field, encoding = pas
            _read_count(w, ind, field, "ln", name)
            _short(w, ind, "ln", name)
            if encoding is None:
                w.lines.append(f"{ind}{var} = data[off:off + ln]")
            else:
                w.lines.append(f"{ind}try:")
                w.lines.append(f"{ind}    {var} = str(data[off:off + ln], {encoding!r})")
                w.lines.append(f"{ind}except UnicodeDecodeError:")
                w.lines.append(f"{ind}    raise MalformedPayload({name!r} + ': not {encoding} text') from None")
            w.lines.append(f"{ind}off += ln")
        elif arr is not None:
            field, item = arr
            _read_count(w, ind, field, "cnt", name)
            item_c = unwrap(item)
            if not isinstance(item_c, Struct):
                raise UnsupportedConstruct(f"array items must be Struct, not {type(item_c).__name__}")
            fn = _emit_struct(w, item_c)
            w.lines.append(f"{ind}{var} = []")
            w.lines.append(f"{ind}for _ in range(cnt):")
            w.lines.append(f"{ind}    it, off = {fn}(data, off, n)")
            w.lines.append(f"{ind}    {var}.append(it)")
        elif isinstance(c, Switch):
            key = switch_key(c)
            if key not in local:
                raise UnsupportedConstruct(f"Switch on {key!r} before that field")
            cases: dict[Any, Any] = {}
            for k, case in c.cases.items():
                cc = unwrap(case)
                cases[k] = None if cc is Pass else _emit_struct(w, _as_struct(cc))
            dflt = unwrap(c.default)
            dname = "None" if dflt is Pass else _emit_struct(w, _as_struct(dflt))
            table = w.const(cases, "C")
            w.lines.append(f"{ind}fn = {table}.get({local[key]}, {dname})")
            w.lines.append(f"{ind}if fn is None:")
            w.lines.append(f"{ind}    {var} = None")
            w.lines.append(f"{ind}else:")
            w.lines.append(f"{ind}    {var}, off = fn(data, off, n)")
        elif isinstance(c, Struct):
            fn = _emit_struct(w, c)
            w.lines.append(f"{ind}{var}, off = {fn}(data, off, n)")
        else:
            raise UnsupportedConstruct(f"field {name!r}: {type(c).__name__} is not supported")
    flush()
    result = ", ".join(f"{nm!r}: {local[nm]}" for nm in names)
    w.lines.append(f"{ind}return {{{result}}}, off")
    w.lines = outer
    w.funcs.extend([f"def {fname}(data, off, n):", *body, ""])
    return fname


def _as_struct(c: Construct) -> Struct:
    if not isinstance(c, Struct):
        raise UnsupportedConstruct(f"Switch cases must be Struct or Pass, not {type(c).__name__}")
    return c


def compile_decoder(declaration: Construct, name: str = "message") -> Decoder:
    """Build the fast decoder of a ``Struct`` declaration (see the module docstring)."""
    st = _as_struct(unwrap(declaration))
    w = _Writer()
    top = _emit_struct(w, st)
    entry = f"decode_{''.join(ch if ch.isalnum() else '_' for ch in name)}"
    w.funcs += [
        f"def {entry}(data):",
        "    n = len(data)",
        f"    result, _ = {top}(data, 0, n)",
        "    return result",
    ]
    source = "\n".join(w.funcs)
    namespace: dict[str, Any] = dict(w.consts)
    exec(compile(source, f"<decoder {name}>", "exec"), namespace)
    # Switch tables name their case functions until the source has been executed
    for cname, value in w.consts.items():
        if cname.startswith("_C"):
            for k, fn in list(value.items()):
                value[k] = None if fn is None else namespace[fn]
    decoder: Decoder = namespace[entry]
    decoder.__doc__ = f"Decode a {name} payload (generated from its construct declaration)."
    decoder.source = source  # type: ignore[attr-defined]
    return decoder
