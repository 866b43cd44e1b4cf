"""Writes the Wireshark dissector (a Lua plugin) from the protocol's construct declarations.

``python -m tools.dissector`` rewrites ``pos_sim/wireshark/possim.lua`` from the frame layout
(:mod:`protocols.pos.framing`), the message catalogue (:mod:`protocols.pos.messages`) and the
enumerations (:mod:`protocols.pos.codes`); ``--check`` only reports (exit 1) when the checked-in
file is stale.  The plugin is package data: ``pos-sim wireshark install`` copies it into the
user's Wireshark plugin folder (docs/wireshark.md).

The plugin registers the protocol and dissector ``possim``, which the pcapng files of
``pos-sim pcap`` name in each packet's exported-PDU tag.  Its fields: ``possim.kind`` (frame,
dropped or note), ``possim.version``, ``possim.flags`` (and one bit each), ``possim.seq``,
``possim.type`` (the message name, as ``pos-sim decode`` prints it), ``possim.type_code``,
``possim.length``, ``possim.crc``, ``possim.crc_ok``, and one field per message field,
``possim.<message>.<field>`` (``possim.<message>.<case>.<field>`` inside a per-component
block, ``possim.<message>.<array>.<field>`` inside an array, whose item count is
``possim.<message>.<array>_count``), with enumerations shown by name.

Only the constructs :mod:`protocols.pos.compiler` understands are translated; anything else is
an error here, not a silently missing field.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from construct import Bytes, Construct, Enum, Flag, FormatField, Pass, Struct, Switch, Terminated

from protocols.pos.codes import FrameFlag
from protocols.pos.compiler import UnsupportedConstruct, pascal_parts, prefixed_array_parts, switch_key, unwrap
from protocols.pos.framing import CRC_INIT, HEADER_SIZE, MAX_PAYLOAD, PROTOCOL_VERSION, SYNC, TRAILER_SIZE
from protocols.pos.messages import CATALOGUE, MessageType
from tools.generated import write_or_check

DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "pos_sim" / "wireshark" / "possim.lua"

#: struct format letter -> (ProtoField constructor, size)
_INTS = {"B": ("uint8", 1), "H": ("uint16", 2), "I": ("uint32", 4), "L": ("uint32", 4),
         "b": ("int8", 1), "h": ("int16", 2), "i": ("int32", 4), "l": ("int32", 4)}


def _lua_str(text: str) -> str:
    """A Lua string literal (double quotes; only ASCII escapes)."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.extend(f"\\{b}" for b in ch.encode("utf-8"))
    return '"' + "".join(out) + '"'


def _crc_table() -> list[int]:
    """CRC-16/CCITT-FALSE (poly 0x1021, no reflection) table, one entry per byte value."""
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


@dataclass
class _Gen:
    """The generated Lua, in parts: value tables, field declarations, dissecting functions."""

    tables: dict[tuple[tuple[int, str], ...], str] = field(default_factory=dict)
    table_lines: list[str] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)
    field_vars: list[str] = field(default_factory=list)
    funcs: list[str] = field(default_factory=list)
    counter: int = 0

    def value_table(self, mapping: dict[int, str]) -> str:
        key = tuple(sorted(mapping.items()))
        if key not in self.tables:
            name = f"VS[{len(self.tables) + 1}]"
            self.tables[key] = name
            items = ", ".join(f"[{v}] = {_lua_str(k)}" for v, k in key)
            self.table_lines.append(f"{name} = {{ {items} }}")
        return self.tables[key]

    def protofield(self, ctor: str, abbrev: str, label: str, *args: str, doc: str = "") -> str:
        var = f"F[{len(self.field_vars) + 1}]"
        rest = ", ".join([*args, _lua_str(doc)]) if args else f"nil, nil, nil, {_lua_str(doc)}"
        if ctor in {"string", "bytes"}:
            rest = f"nil, {_lua_str(doc)}"
        elif ctor == "bool" and not args:
            rest = f"nil, nil, nil, {_lua_str(doc)}"
        self.fields.append(f"{var} = ProtoField.{ctor}({_lua_str(abbrev)}, {_lua_str(label)}, {rest})")
        self.field_vars.append(var)
        return var

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}[{self.counter}]"


def _leaf(gen: _Gen, c: Construct, abbrev: str, label: str, doc: str) -> tuple[str, str] | None:
    """Lua statements that read one fixed or length-prefixed leaf at ``off`` into ``tree``."""
    if isinstance(c, Enum):
        inner = unwrap(c.subcon)
        ctor, size = _INTS[str(inner.fmtstr).lstrip("<>=!")]
        vs = gen.value_table({int(v): str(k) for v, k in c.decmapping.items()})
        var = gen.protofield(ctor, abbrev, label, "base.DEC", vs, "nil", doc=doc)
        return var, f"need({size}); tree:add({var}, tvb(off, {size})); off = off + {size}"
    if isinstance(c, FormatField):
        ctor, size = _INTS[str(c.fmtstr).lstrip("<>=!")]
        var = gen.protofield(ctor, abbrev, label, "base.DEC", "nil", "nil", doc=doc)
        return var, f"need({size}); tree:add({var}, tvb(off, {size})); off = off + {size}"
    if c is Flag:
        var = gen.protofield("bool", abbrev, label, doc=doc)
        return var, f"need(1); tree:add({var}, tvb(off, 1), tvb(off, 1):uint() ~= 0); off = off + 1"
    if isinstance(c, Bytes) and isinstance(c.length, int):
        var = gen.protofield("bytes", abbrev, label, doc=doc)
        return var, f"need({c.length}); tree:add({var}, tvb(off, {c.length})); off = off + {c.length}"
    pas = pascal_parts(c)
    if pas is not None:
        length_field, encoding = pas
        ctor, size = _INTS[str(length_field.fmtstr).lstrip("<>=!")]
        if encoding is not None:
            if encoding.lower().replace("-", "") != "utf8":
                raise UnsupportedConstruct(f"{abbrev}: only UTF-8 strings are translated, not {encoding}")
            var = gen.protofield("string", abbrev, label, doc=doc)
            add = f"tree:add({var}, tvb(off, {size} + ln), text(tvb, off + {size}, ln))"
        else:
            var = gen.protofield("bytes", abbrev, label, doc=doc)
            add = f"tree:add({var}, tvb(off + {size}, ln))"
        return var, (f"need({size}); local ln = tvb(off, {size}):uint(); need({size} + ln); "
                     f"{add}; off = off + {size} + ln")
    return None


def _struct(gen: _Gen, st: Struct, prefix: str, label: str) -> str:
    """Emit ``local function dN(tvb, tree, off, n)`` for ``st``: it returns the offset after it,
    or raises the error ``short`` / ``trailing`` (caught by the caller); return its name."""
    fname = gen.fresh("D")
    body: list[str] = []
    raw_locals: dict[str, str] = {}
    for sub in st.subcons:
        name = sub.name
        c = unwrap(sub)
        doc = str(getattr(sub, "docs", "") or "")
        if c is Terminated:
            body.append("if off ~= n then error(trailing(n - off), 0) end")
            continue
        if name is None:
            raise UnsupportedConstruct(f"unnamed {type(c).__name__} in {label}")
        abbrev = f"{prefix}.{name}"
        leaf = _leaf(gen, c, abbrev, name, doc)
        if leaf is not None:
            if isinstance(c, Enum | FormatField):
                size = int(c.sizeof())
                var = f"k_{name}"
                raw_locals[name] = var
                body.append(f"local {var} = (off + {size} <= n) and tvb(off, {size}):uint() or nil")
            body.append(leaf[1])
            continue
        arr = prefixed_array_parts(c)
        if arr is not None:
            count_field, item = arr
            ctor, size = _INTS[str(count_field.fmtstr).lstrip("<>=!")]
            cvar = gen.protofield(ctor, f"{abbrev}_count", f"{name} (count)", "base.DEC", "nil", "nil",
                                  doc=f"items in {name}")
            item_c = unwrap(item)
            if not isinstance(item_c, Struct):
                raise UnsupportedConstruct(f"{abbrev}: array items must be Struct, not {type(item_c).__name__}")
            fn = _struct(gen, item_c, abbrev, name)
            body += [
                f"need({size}); local cnt = tvb(off, {size}):uint(); tree:add({cvar}, tvb(off, {size})); "
                f"off = off + {size}",
                "for i = 1, cnt do",
                f"  local it = tree:add(tvb(off, math.min(1, n - off)), {_lua_str(name)} .. \" #\" .. i)",
                "  local start = off",
                f"  off = {fn}(tvb, it, off, n)",
                "  it:set_len(off - start)",
                "end",
            ]
            continue
        if isinstance(c, Switch):
            key = switch_key(c)
            if key not in raw_locals:
                raise UnsupportedConstruct(f"{abbrev}: Switch on {key!r}, which is not an earlier number")
            lines = [f"local sw = tree:add(tvb(off, math.min(1, n - off)), {_lua_str(name)})", "local start = off"]
            first = True
            for k, case in c.cases.items():
                if not isinstance(k, str):
                    continue   # the same blocks, keyed by number too: the names are enough
                cc = unwrap(case)
                number = next((int(v) for v, s in unwrap_enum_mapping(st, key).items() if s == k), None)
                if number is None:
                    raise UnsupportedConstruct(f"{abbrev}: case {k!r} is not a value of {key!r}")
                cond = f"{'if' if first else 'elseif'} {raw_locals[key]} == {number} then"
                first = False
                if cc is Pass:
                    lines += [cond, "  -- nothing"]
                    continue
                if not isinstance(cc, Struct):
                    raise UnsupportedConstruct(f"{abbrev}: Switch cases must be Struct or Pass")
                fn = _struct(gen, cc, f"{prefix}.{k}", k)
                lines += [cond, f"  sw:append_text(\": \" .. {_lua_str(k)}); off = {fn}(tvb, sw, off, n)"]
            if unwrap(c.default) is not Pass:
                raise UnsupportedConstruct(f"{abbrev}: a Switch default must be Pass")
            lines += ["end", "sw:set_len(off - start)"]
            body += lines
            continue
        raise UnsupportedConstruct(f"field {abbrev}: {type(c).__name__} is not translated")
    gen.funcs += [f"{fname} = function(tvb, tree, off, n)",
                  "  local function need(k) if off + k > n then error(short(off + k - n), 0) end end",
                  *(f"  {line}" for line in body),
                  "  return off",
                  "end",
                  ""]
    return fname


def unwrap_enum_mapping(st: Struct, name: str) -> dict[int, str]:
    """The value -> name mapping of the Enum field ``name`` of ``st``."""
    for sub in st.subcons:
        if sub.name == name:
            c = unwrap(sub)
            if isinstance(c, Enum):
                return {int(v): str(k) for v, k in c.decmapping.items()}
    raise UnsupportedConstruct(f"{name!r} is not an enumerated field")


def render() -> str:
    """The whole plugin, as text."""
    gen = _Gen()
    f_kind = gen.protofield("string", "possim.kind", "Kind", doc="frame, dropped (bytes no frame took) or note")
    f_sync = gen.protofield("bytes", "possim.sync", "Sync", doc=f"sync pattern {SYNC.hex()}")
    f_version = gen.protofield("uint8", "possim.version", "Version", "base.DEC", "nil", "nil",
                               doc=f"protocol version ({PROTOCOL_VERSION})")
    f_flags = gen.protofield("uint8", "possim.flags", "Flags", "base.HEX", "nil", "nil", doc="FrameFlag bits")
    flag_vars = []
    for flag in FrameFlag:
        var = gen.protofield("bool", f"possim.flags.{flag.name.lower()}", flag.name, "8", "nil",
                             f"0x{int(flag):02x}", doc=flag.doc)
        flag_vars.append((var, flag))
    f_seq = gen.protofield("uint16", "possim.seq", "Sequence number", "base.DEC", "nil", "nil",
                           doc="sequence number, 0..65535, wraps")
    f_type = gen.protofield("string", "possim.type", "Type", doc="message name (MessageType)")
    f_code = gen.protofield("uint8", "possim.type_code", "Type code", "base.HEX", "nil", "nil",
                            doc="the message type byte")
    f_length = gen.protofield("uint16", "possim.length", "Length", "base.DEC", "nil", "nil",
                              doc="payload length in bytes")
    f_payload = gen.protofield("bytes", "possim.payload", "Payload", doc="the payload as sent")
    f_crc = gen.protofield("uint16", "possim.crc", "CRC", "base.HEX", "nil", "nil",
                           doc="CRC-16/CCITT-FALSE over everything after the sync")
    f_crc_ok = gen.protofield("bool", "possim.crc_ok", "CRC good", doc="the CRC matches the contents")
    f_dropped = gen.protofield("bytes", "possim.dropped", "Dropped bytes",
                               doc="bytes no frame took; the packet comment says why")
    f_malformed = gen.protofield("string", "possim.malformed", "Malformed payload",
                                 doc="why the payload does not match its declaration")
    types = {int(t): t.name for t in MessageType}
    vs_types = gen.value_table(types)
    dispatch = []
    for t, spec in CATALOGUE.items():
        st = unwrap(spec.declaration)
        if not isinstance(st, Struct):
            raise UnsupportedConstruct(f"{spec.name}: a payload must be a Struct")
        fn = _struct(gen, st, f"possim.{spec.name.lower()}", spec.name)
        dispatch.append(f"  [{int(t)}] = {fn},")
    crc = _crc_table()
    crc_rows = [", ".join(str(v) for v in crc[i: i + 16]) for i in range(0, 256, 16)]
    flag_adds = "\n".join(f"    ft:add({v}, tvb(3, 1))" for v, _ in flag_vars)
    flag_names = "\n".join(f"    if hasbit(flags, {int(f)}) then names[#names + 1] = {_lua_str(f.name)} end"
                           for _, f in flag_vars)
    header = HEADER_SIZE
    trailer = TRAILER_SIZE
    return _TEMPLATE.format(
        tables="\n".join(gen.table_lines),
        fields="\n".join(gen.fields),
        funcs="\n".join(gen.funcs),
        dispatch="\n".join(dispatch),
        crc_table=",\n  ".join(crc_rows),
        crc_init=CRC_INIT,
        sync=", ".join(str(b) for b in SYNC),
        header=header, trailer=trailer, max_payload=MAX_PAYLOAD, version=PROTOCOL_VERSION,
        vs_types=vs_types, flag_adds=flag_adds, flag_names=flag_names,
        f_kind=f_kind, f_sync=f_sync, f_version=f_version, f_flags=f_flags, f_seq=f_seq, f_type=f_type,
        f_code=f_code, f_length=f_length, f_payload=f_payload, f_crc=f_crc, f_crc_ok=f_crc_ok,
        f_dropped=f_dropped, f_malformed=f_malformed,
    )


_TEMPLATE = """\
-- possim.lua: Wireshark dissector for the pos-sim terminal protocol (docs/protocol.md).
-- GENERATED by `python -m tools.dissector` from the construct declarations in protocols/pos/:
-- do not edit; regenerate. Install: `pos-sim wireshark install` (docs/wireshark.md).
-- Reads the pcapng files of `pos-sim pcap`, whose packets name the dissector "possim".

local possim = Proto("possim", "pos-sim terminal protocol")

-- value names (protocols/pos/codes.py)
local VS = {{}}
{tables}

-- fields
local F = {{}}
{fields}

possim.fields = F

local ef_bad_crc = ProtoExpert.new("possim.bad_crc", "CRC does not match", expert.group.CHECKSUM, expert.severity.ERROR)
local ef_dropped = ProtoExpert.new("possim.dropped_bytes", "bytes no frame took (see the packet comment)",
                                   expert.group.PROTOCOL, expert.severity.WARN)
local ef_malformed = ProtoExpert.new("possim.malformed_payload", "payload does not match its declaration",
                                     expert.group.MALFORMED, expert.severity.ERROR)
possim.experts = {{ ef_bad_crc, ef_dropped, ef_malformed }}

-- the packet comment (pcapng), when this Wireshark has the field
local comment_field = nil
do
  local ok, f = pcall(Field.new, "frame.comment")
  if ok then comment_field = f end
end

-- bitwise xor of two 16-bit numbers, whatever the Lua version
local bxor
if bit32 then bxor = bit32.bxor
elseif bit then bxor = bit.bxor
else bxor = load("return function(a, b) return a ~ b end")() end

local function hasbit(value, mask)
  return math.floor(value / mask) % 2 == 1
end

-- CRC-16/CCITT-FALSE: poly 0x1021, init 0x{crc_init:04X}, no reflection, xorout 0
local CRC_TABLE = {{
  {crc_table}
}}

local function crc16(tvb, from, to)
  local crc = {crc_init}
  for i = from, to - 1 do
    local idx = bxor(math.floor(crc / 256), tvb(i, 1):uint())
    crc = bxor(CRC_TABLE[idx + 1], (crc % 256) * 256)
  end
  return crc
end

local function short(k) return "payload ends early (" .. k .. " more bytes needed)" end
local function trailing(k) return k .. " bytes after the last field" end

local function text(tvb, off, ln)
  if ln == 0 then return "" end
  return tvb(off, ln):string(ENC_UTF_8)
end

-- one dissecting function per payload declaration (protocols/pos/messages.py)
local D = {{}}
{funcs}
local PAYLOADS = {{
{dispatch}
}}

local HEADER, TRAILER, SYNC1, SYNC2 = {header}, {trailer}, {sync}

local function type_name(code)
  return {vs_types}[code] or ("unknown(" .. code .. ")")
end

local function flag_text(flags)
  local names = {{}}
{flag_names}
  return table.concat(names, "|")
end

function possim.dissector(tvb, pinfo, tree)
  local n = tvb:len()
  pinfo.cols.protocol = "POSSIM"
  if pinfo.p2p_dir == 1 then
    pinfo.cols.src = "terminal"; pinfo.cols.dst = "host"
  elseif pinfo.p2p_dir == 0 then
    pinfo.cols.src = "host"; pinfo.cols.dst = "terminal"
  end
  local comment = ""
  if comment_field then
    local c = comment_field()
    if c then comment = tostring(c.value) end
  end
  if n == 0 then
    local t = tree:add(possim, tvb(), "pos-sim note")
    t:add({f_kind}, "note")
    pinfo.cols.info = comment ~= "" and comment or "note"
    return 0
  end
  local t = tree:add(possim, tvb())
  local framed = n >= HEADER and tvb(0, 1):uint() == SYNC1 and tvb(1, 1):uint() == SYNC2
  local length = framed and tvb(7, 2):uint() or nil
  local whole = framed and n == HEADER + length + TRAILER
  local crc_ok = false
  if whole then crc_ok = crc16(tvb, 2, HEADER + length) == tvb(HEADER + length, TRAILER):uint() end
  local version = framed and tvb(2, 1):uint() or nil
  local is_frame = whole and crc_ok and version == {version} and length <= {max_payload}
  t:add({f_kind}, is_frame and "frame" or "dropped")
  if not is_frame then
    t:add({f_dropped}, tvb())
    t:add_proto_expert_info(ef_dropped)
  end
  if not framed then
    t:append_text(", " .. n .. " dropped bytes")
    pinfo.cols.info = comment ~= "" and comment or (n .. " dropped bytes")
    return n
  end
  local code = tvb(6, 1):uint()
  local flags = tvb(3, 1):uint()
  local seq = tvb(4, 2):uint()
  t:add({f_sync}, tvb(0, 2))
  t:add({f_version}, tvb(2, 1))
  local ft = t:add({f_flags}, tvb(3, 1))
{flag_adds}
  t:add({f_seq}, tvb(4, 2))
  t:add({f_type}, tvb(6, 1), type_name(code))
  t:add({f_code}, tvb(6, 1))
  t:add({f_length}, tvb(7, 2))
  local summary = type_name(code) .. " seq=" .. seq
  local ftext = flag_text(flags)
  if ftext ~= "" then summary = summary .. " " .. ftext end
  if not whole then
    t:append_text(", dropped: " .. summary .. " (" .. n .. " bytes, not a whole frame)")
    pinfo.cols.info = (comment ~= "" and (comment .. ": ") or "") .. summary
    return n
  end
  local crc_item = t:add({f_crc}, tvb(HEADER + length, TRAILER))
  t:add({f_crc_ok}, tvb(HEADER + length, TRAILER), crc_ok)
  if not crc_ok then crc_item:add_proto_expert_info(ef_bad_crc) end
  if length > 0 then
    local payload = t:add({f_payload}, tvb(HEADER, length))
    local fn = PAYLOADS[code]
    if is_frame and fn then
      local ok, err = pcall(fn, tvb, payload, HEADER, HEADER + length)
      if not ok then
        payload:add({f_malformed}, tvb(HEADER, length), tostring(err))
        payload:add_proto_expert_info(ef_malformed, tostring(err))
      end
    end
  elseif is_frame and PAYLOADS[code] then
    local ok, err = pcall(PAYLOADS[code], tvb, t, HEADER, HEADER)
    if not ok then t:add({f_malformed}, tvb(HEADER, 0), tostring(err)) end
  end
  t:append_text(", " .. summary)
  if is_frame then
    pinfo.cols.info = summary
  else
    pinfo.cols.info = (comment ~= "" and (comment .. ": ") or "") .. summary
  end
  return n
end
"""


def main(argv: list[str] | None = None) -> int:
    """Entry point: regenerate (default) or check the checked-in plugin."""
    ap = argparse.ArgumentParser(prog="python -m tools.dissector", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path", nargs="?", type=Path, default=DEFAULT_OUTPUT)
    ap.add_argument("--check", action="store_true", help="report a stale plugin, change nothing")
    args = ap.parse_args(argv)
    new = render()
    try:
        old = args.path.read_text(encoding="utf-8")
    except FileNotFoundError:
        old = None
    except OSError as exc:
        print(f"dissector: {exc}", file=sys.stderr)
        return 1
    return write_or_check(args.path, new, old, check=args.check, stale="stale; run python -m tools.dissector")


if __name__ == "__main__":
    sys.exit(main())
