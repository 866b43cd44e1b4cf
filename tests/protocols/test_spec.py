"""docs/protocol.md and the declarations cannot drift apart."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import struct
from pathlib import Path

import pytest

from protocols.pos import crc16, decode_frame
from protocols.pos.codes import ALL_ENUMS
from protocols.pos.messages import CATALOGUE, STATUS_BY_COMPONENT, describe_frame
from tools.specdoc import DEFAULT_SPEC, SpecError, regenerate

SPEC = DEFAULT_SPEC.read_text(encoding="utf-8")
EXAMPLE = re.compile(r"### Example \d+: (?P<title>.*?)\n.*?```hex\n(?P<hex>.*?)```.*?```json\n(?P<json>.*?)```",
                     re.DOTALL)


def test_spec_file_is_where_the_tool_says() -> None:
    assert Path(__file__).resolve().parents[2] / "docs" / "protocol.md" == DEFAULT_SPEC


def test_generated_sections_are_current() -> None:
    assert regenerate(SPEC) == SPEC, "run: python -m tools.specdoc"


def test_a_missing_section_is_an_error() -> None:
    without = re.sub(r"<!-- BEGIN GENERATED: codes -->.*?<!-- END GENERATED: codes -->", "", SPEC, flags=re.DOTALL)
    with pytest.raises(SpecError, match="codes"):
        regenerate(without)


def _section(name: str) -> str:
    m = re.search(rf"^### {name}\n(.*?)(?=^### )", SPEC, re.DOTALL | re.MULTILINE)
    assert m, f"no section for {name}"
    return m.group(1)


def test_every_message_number_and_field_is_in_the_spec() -> None:
    for t, spec in CATALOGUE.items():
        assert f"| 0x{int(t):02X} | [{spec.name}](#{spec.name.lower()})" in SPEC
        body = _section(spec.name)
        assert f"Type 0x{int(t):02X}," in body
        for sub in spec.declaration.subcons:
            if sub.name:
                assert f"| `{sub.name}` |" in body, (spec.name, sub.name)
    for comp, st in STATUS_BY_COMPONENT.items():
        body = SPEC.split(f"#### status: {comp}\n", 1)[1].split("####", 1)[0]
        for sub in st.subcons:
            assert f"| `{sub.name}` |" in body, (comp, sub.name)


def test_every_code_is_in_the_spec() -> None:
    for enum in ALL_ENUMS:
        body = _section(enum.__name__)
        width = 4 if max(int(m) for m in enum) > 0xFF else 2
        for m in enum:
            assert f"| 0x{int(m):0{width}X} | `{m.name}` |" in body, (enum.__name__, m.name)


def test_at_least_five_worked_examples_decode_as_printed() -> None:
    found = list(EXAMPLE.finditer(SPEC))
    assert len(found) >= 5
    for m in found:
        frame = decode_frame(bytes.fromhex(m.group("hex").replace("\n", " ")))
        assert describe_frame(frame) == json.loads(m.group("json")), m.group("title")


def test_crc_check_value_in_the_spec() -> None:
    assert "**0x29B1**" in SPEC
    assert crc16(b"123456789") == 0x29B1


def test_ack_walkthrough_matches_example() -> None:
    ack = next(m for m in EXAMPLE.finditer(SPEC) if m.group("title").startswith("ACK"))
    raw = bytes.fromhex(ack.group("hex").replace("\n", " "))
    assert raw == bytes.fromhex("a55a0101000106 0000 c81b")
    assert "= 0xC81B" in SPEC and crc16(raw[2:-2]) == 0xC81B


def test_lifecycle_mac_example_follows_the_spec_text() -> None:
    """Recompute the LC_REQUEST example's MAC from section 11's formula, by hand."""
    ex = next(m for m in EXAMPLE.finditer(SPEC) if m.group("title").startswith("LC_REQUEST"))
    fields = json.loads(ex.group("json"))["fields"]
    key = bytes(range(32))
    serial = b"SP0000123"
    args = b"".join(bytes([len(s.encode())]) + s.encode()
                    for s in (fields["activation_code"], fields["merchant_id"], fields["reason"]))
    signed = (b"POSSIM-LC1" + bytes([len(serial)]) + serial + bytes([2]) + hashlib.sha256(args).digest()
              + bytes.fromhex(fields["nonce"]) + struct.pack(">I", fields["counter"]))
    assert fields["operation"] == "bind" and fields["counter"] == 8
    assert hmac.new(key, signed, hashlib.sha256).hexdigest() == fields["mac"]
