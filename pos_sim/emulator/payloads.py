"""Building the terminal's payloads without construct's interpreter, from the same declarations.

construct's ``build`` walks a declaration field by field through a stream object: about 60 us
for a SELFTEST_RESULT here, and a self-test sends several frames at once.  For the shapes the
catalogue uses, :func:`compile_encoder` writes a plain Python function instead, once, at
import: every run of fixed-size fields becomes one precompiled ``struct.Struct.pack``, a
length-prefixed string or array its prefix and its items.  The declarations in
``protocols.pos.messages`` stay the one source of truth: the functions are generated from them,
and :func:`encode_payload` hands anything the fast function does not build (a message of a
shape not translated here, a field missing or out of range) to construct's ``build``, so the
bytes and the errors are construct's in every case.  ``tests/pos_sim/emulator/test_payloads.py``
checks the bytes against construct's on many random messages.

Translated: ``Struct`` (with ``Terminated`` at its end), ``Renamed``, ``FormatField``, ``Flag``,
``Enum(FormatField)`` (a name is looked up, an integer goes as it is, as construct does),
``PascalString`` (UTF-8) and ``PrefixedArray(FormatField, Struct of those)``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from construct import Construct, Enum, Flag, FormatField, Struct, Terminated

from protocols.pos import messages
from protocols.pos.compiler import pascal_parts, prefixed_array_parts, unwrap
from protocols.pos.messages import CATALOGUE

Encoder = Callable[[dict[str, Any]], bytes]


class _Untranslated(Exception):
    """The declaration uses a construct this module does not translate (construct builds it)."""


class _Source:
    """Generated source lines and the constants they name."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.consts: dict[str, Any] = {"_int": int}
        self.count = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def const(self, value: Any, prefix: str) -> str:
        key = self.name(prefix)
        self.consts[key] = value
        return key


def _big_endian(field: FormatField) -> str:
    """``field``'s struct code, to be packed big-endian (a one-byte field has no byte order)."""
    fmt = str(field.fmtstr)
    code = fmt.lstrip("<>=!@")
    if struct.calcsize(">" + code) != 1 and fmt[:1] not in (">", "!"):
        raise _Untranslated(f"byte order of {fmt!r}")
    return code


def _leaf(src: _Source, c: Construct, expr: str) -> tuple[str, str] | None:
    """``(struct format, value expression)`` of a fixed-size leaf, or None when ``c`` is not one."""
    if isinstance(c, FormatField):
        return _big_endian(c), expr
    if c is Flag:
        return "B", f"(1 if {expr} else 0)"
    if isinstance(c, Enum) and isinstance(unwrap(c.subcon), FormatField):
        mapping = src.const(dict(c.encmapping), "_map")
        return _big_endian(unwrap(c.subcon)), f"({expr} if isinstance({expr}, _int) else {mapping}[{expr}])"
    return None


def _struct(src: _Source, decl: Construct, obj: str, parts: str, ind: str) -> None:
    """Emit the lines that append ``decl``'s bytes, built from the dict ``obj``, to ``parts``."""
    decl = unwrap(decl)
    if not isinstance(decl, Struct):
        raise _Untranslated(type(decl).__name__)
    fmt: list[str] = []
    values: list[str] = []

    def flush() -> None:
        if fmt:
            packer = src.const(struct.Struct(">" + "".join(fmt)), "_s")
            src.lines.append(f"{ind}{parts}.append({packer}.pack({', '.join(values)}))")
            fmt.clear()
            values.clear()

    for i, sub in enumerate(decl.subcons):
        inner = unwrap(sub)
        if inner is Terminated:
            if i != len(decl.subcons) - 1:
                raise _Untranslated("Terminated before the end")
            continue
        if sub.name is None:
            raise _Untranslated("an unnamed field")
        var = src.name("v")
        src.lines.append(f"{ind}{var} = {obj}[{sub.name!r}]")
        leaf = _leaf(src, inner, var)
        if leaf is not None:
            fmt.append(leaf[0])
            values.append(leaf[1])
            continue
        flush()
        pascal = pascal_parts(inner)
        array = prefixed_array_parts(inner)
        if pascal is not None and pascal[1] is not None:
            length, encoding = pascal[0], pascal[1]
            if encoding.replace("-", "").lower() != "utf8":
                raise _Untranslated(f"encoding {encoding}")
            prefix = src.const(struct.Struct(">" + _big_endian(length)), "_s")
            data = src.name("b")
            src.lines.append(f"{ind}{data} = {var}.encode('utf-8')")  # only a str has encode() giving bytes
            src.lines.append(f"{ind}{parts}.append({prefix}.pack(len({data})))")
            src.lines.append(f"{ind}{parts}.append({data})")
        elif array is not None:
            count, item = array
            prefix = src.const(struct.Struct(">" + _big_endian(count)), "_s")
            src.lines.append(f"{ind}{parts}.append({prefix}.pack(len({var})))")
            each = src.name("i")
            src.lines.append(f"{ind}for {each} in {var}:")
            _struct(src, item, each, parts, ind + "    ")
        else:
            raise _Untranslated(type(inner).__name__)
    flush()


def compile_encoder(declaration: Construct, name: str = "payload") -> Encoder | None:
    """A function building ``declaration``'s bytes from a dict of fields, or None when the
    declaration uses a construct not translated here.

    The function raises (``KeyError``, ``struct.error``, ``TypeError``, ...) where construct
    would refuse the fields; :func:`encode_payload` then asks construct, for its own error.
    """
    src = _Source()
    try:
        _struct(src, declaration, "obj", "parts", "    ")
    except _Untranslated:
        return None
    body = "\n".join(src.lines) or "    pass"
    code = f"def encode_{name}(obj):\n    parts = []\n{body}\n    return b''.join(parts)\n"
    scope: dict[str, Any] = dict(src.consts)
    exec(compile(code, f"<encoder {name}>", "exec"), scope)  # generated from our own declarations
    fn: Encoder = scope[f"encode_{name}"]
    return fn


#: the fast builder of every message whose declaration is translated, by message number
ENCODERS: dict[int, Encoder] = {
    int(t): fn for t, spec in CATALOGUE.items() if (fn := compile_encoder(spec.declaration, spec.name)) is not None
}


def encode_payload(msg_type: int, fields: dict[str, Any] | None = None) -> bytes:
    """The bytes :func:`protocols.pos.messages.encode_payload` gives, built by the fast function
    where there is one (and by construct, with its error, wherever the fast one gives up)."""
    fn = ENCODERS.get(msg_type)
    if fn is not None:
        try:
            return fn(fields or {})
        except Exception:  # construct decides what was wrong, and says it
            pass
    return messages.encode_payload(msg_type, fields)
