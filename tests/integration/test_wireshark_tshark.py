"""tshark, with our generated dissector, reads every fixture capture as ``pos-sim decode`` does.

Each capture in fixtures/captures/ goes through ``pos-sim pcap``; the dissector is put where
Wireshark looks for it by ``pos-sim wireshark install`` (into a throwaway home, which is where
tshark looks when HOME points there: no ``-X lua_script``, no preference, no user DLT table).
Then tshark's packets (its PDML) are compared with ``pos-sim decode --json --raw``, packet for
packet: kind, bytes, direction, nanosecond timestamp, seq, message name, flags, CRC verdict and
every payload field with its enumerations by name; dropped bytes and notes by their comments.
A dropped range that tshark finds a whole frame in gets its CRC verdict checked against
binascii's CRC-16/CCITT-FALSE, not against our code.

tshark is Debian's, installed by .ci/tshark when missing (never skipped).
"""

from __future__ import annotations

import binascii
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.cardscan import find_card_data, scan

REPO = Path(__file__).resolve().parents[2]
CI_TSHARK = REPO / ".ci" / "tshark"
CAPTURES = sorted((REPO / "fixtures" / "captures").glob("*.cap"))
#: a per-component block is named by the field it switches on (hand-written, from docs/protocol.md)
SWITCHES = {("STATUS_REPLY", "status"): "component"}
#: pcapng packet-flag directions (pcapng spec, epb_flags bits 0-1)
DIRECTION = {"<": "0x00000001", ">": "0x00000002"}
WORDS = {"<": "terminal to host", ">": "host to terminal"}
HEADER_FIELDS = {"possim.kind", "possim.sync", "possim.version", "possim.flags", "possim.seq", "possim.type",
                 "possim.type_code", "possim.length", "possim.payload", "possim.crc", "possim.crc_ok",
                 "possim.dropped", "possim.malformed", "possim.bad_crc", "possim.dropped_bytes",
                 "possim.malformed_payload"}


def ensure_tshark() -> str:
    """Debian's tshark, installed by .ci/tshark when missing. Never skips."""
    found = shutil.which("tshark")
    if not found:
        try:
            done = subprocess.run(["bash", str(CI_TSHARK)], capture_output=True, text=True, timeout=1200,
                                  check=False)
            why = (done.stderr.strip() or done.stdout.strip() or f"exit status {done.returncode}").splitlines()[-1]
        except (OSError, subprocess.TimeoutExpired) as exc:
            why = str(exc)
        found = shutil.which("tshark")
        if not found:
            pytest.fail(f"captures are checked with Debian's tshark, which is not installed and "
                        f"{CI_TSHARK.relative_to(REPO)} could not install it: {why}", pytrace=False)
    return found


def pos_sim(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed command line in a child process."""
    return subprocess.run([sys.executable, "-m", "pos_sim.cli", *args], capture_output=True, text=True,
                          timeout=300, check=False, env=env)


@pytest.fixture(scope="module")
def tshark_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment whose HOME has the dissector installed by ``pos-sim wireshark install``."""
    ensure_tshark()
    home = tmp_path_factory.mktemp("home")
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    done = pos_sim("wireshark", "install", env=env)
    assert done.returncode == 0, done.stderr
    assert (home / ".local" / "lib" / "wireshark" / "plugins" / "possim.lua").is_file()
    return env


def expected_epoch(started: str, t: float) -> str:
    """``frame.time_epoch`` for a record ``t`` seconds after ``started`` (exact, in ns)."""
    when = datetime.fromisoformat(started)
    seconds = int(when.timestamp())
    ns = when.microsecond * 1000 + round(t * 1_000_000) * 1000
    seconds, ns = seconds + ns // 1_000_000_000, ns % 1_000_000_000
    return f"{seconds}.{ns:09d}"


def flatten(message: str, fields: dict[str, Any]) -> list[tuple[str, str]]:
    """``pos-sim decode``'s fields as (tshark field name, value as text), in order."""
    out: list[tuple[str, str]] = []

    def walk(prefix: str, obj: dict[str, Any]) -> None:
        for key, value in obj.items():
            name = f"{prefix}.{key}"
            if isinstance(value, dict):
                walk(f"{prefix}.{obj[SWITCHES[(message, key)]]}", value)
            elif isinstance(value, list):
                out.append((f"{name}_count", str(len(value))))
                for item in value:
                    walk(name, item)
            elif isinstance(value, bool):
                out.append((name, "1" if value else "0"))
            else:
                out.append((name, str(value)))

    walk(f"possim.{message.lower()}", fields)
    return out


_ENUM = re.compile(r": (?P<name>.*) \((?P<n>-?\d+)\)$")
_HEX = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2})+")


def _value(field: ET.Element) -> str:
    show = field.get("show", "")
    m = _ENUM.search(field.get("showname", ""))
    if m and m.group("n") == show:
        return show if m.group("name") == "Unknown" else m.group("name")
    return show.replace(":", "") if _HEX.fullmatch(show) else show


def tshark_packets(pcapng: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    """Every packet tshark read, as what the test compares."""
    done = subprocess.run([ensure_tshark(), "-r", str(pcapng), "-T", "pdml"], capture_output=True, text=True,
                          timeout=600, check=False, env=env)
    assert done.returncode == 0, done.stderr
    assert "Lua" not in done.stderr, done.stderr      # the plugin loaded without an error
    packets = []
    for pkt in ET.fromstring(done.stdout).iter("packet"):
        got: dict[str, Any] = {"fields": [], "possim": {}}
        for field in pkt.iter("field"):
            name = field.get("name", "")
            if name == "timestamp":
                got["epoch"] = field.get("value")
            elif name == "frame.comment":
                got["comment"] = field.get("show")
            elif name == "frame.packet_flags_direction":
                got["direction"] = field.get("show")
            elif name == "exported_pdu.exported_pdu":
                got["raw"] = field.get("value", "")
            elif name.startswith("possim.flags."):
                got.setdefault("flags", [])
                if field.get("show") == "1":
                    got["flags"].append(name.removeprefix("possim.flags.").upper())
            elif name in HEADER_FIELDS:
                got["possim"][name] = field.get("show")
            elif name.startswith("possim."):
                got["fields"].append((name, _value(field)))
        got["protocols"] = [p.get("name") for p in pkt.iter("proto")]
        packets.append(got)
    return packets


def whole_frame_crc(data: bytes) -> bool | None:
    """The CRC verdict of bytes that are one whole frame by their length field, else None."""
    if len(data) < 9 or data[:2] != b"\xa5\x5a" or len(data) != 11 + int.from_bytes(data[7:9], "big"):
        return None
    return binascii.crc_hqx(data[2:-2], 0xFFFF) == int.from_bytes(data[-2:], "big")


def test_the_crc_oracle_is_ccitt_false() -> None:
    assert binascii.crc_hqx(b"123456789", 0xFFFF) == 0x29B1      # the catalogue's check value


def test_there_are_fixture_captures() -> None:
    assert len(CAPTURES) >= 10


@pytest.mark.parametrize("capture", CAPTURES, ids=[c.stem for c in CAPTURES])
def test_tshark_reads_every_packet_as_decode_does(capture: Path, tshark_env: dict[str, str],
                                                   tmp_path: Path) -> None:
    check_capture(capture, tshark_env, tmp_path)


def test_tshark_reads_every_component_status_as_decode_does(tshark_env: dict[str, str], tmp_path: Path) -> None:
    """The fixtures hold no STATUS_REPLY: record `pos-sim status` of every component through
    `pos-sim record` (a real pty), and compare that capture too."""
    cap = tmp_path / "status.cap"
    rec = subprocess.Popen([sys.executable, "-m", "pos_sim.cli", "record", "emu://weak-battery?speed=50",
                            "-o", str(cap)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert rec.stdout is not None
        port = rec.stdout.readline().split()[1]
        status = subprocess.run([sys.executable, "-m", "pos_sim.cli", "status", port, "--json"],
                                capture_output=True, text=True, timeout=120, check=False, cwd=REPO)
        assert status.returncode in {0, 16}, status.stderr
    finally:
        rec.send_signal(signal.SIGINT)
        rec.communicate(timeout=30)
    got = check_capture(cap, tshark_env, tmp_path)
    replies = [p for p in got if p["possim"].get("possim.type") == "STATUS_REPLY"]
    components = {name.split(".")[2] for p in replies for name, _ in p["fields"]} - {"component"}
    assert len(components) >= 10, components


def check_capture(capture: Path, tshark_env: dict[str, str], tmp_path: Path) -> list[dict[str, Any]]:
    """Export ``capture`` and compare tshark's packets with ``pos-sim decode``'s; return tshark's.
    Both show raw bytes masked (a capture by another tool may hold card data), so they are
    compared as they are."""
    decoded = pos_sim("decode", "--json", "--raw", str(capture))
    assert decoded.returncode == 0, decoded.stderr
    lines = [json.loads(line) for line in decoded.stdout.splitlines()]
    header, items = lines[0], [x for x in lines if x["kind"] in {"frame", "dropped", "note"}]
    out = tmp_path / f"{capture.stem}.pcapng"
    done = pos_sim("pcap", str(capture), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert f"wrote {len(items)} packets" in done.stderr
    packets = tshark_packets(out, tshark_env)
    assert len(packets) == len(items)
    kinds = {"frame": 0, "dropped": 0, "note": 0}
    for i, (item, got) in enumerate(zip(items, packets, strict=True)):
        where = f"{capture.name} packet {i + 1}: {item}"
        assert "possim" in got["protocols"], where
        assert got["epoch"] == expected_epoch(header["started"], item["t"]), where
        kinds[item["kind"]] += 1
        if item["kind"] == "note":
            assert got["possim"]["possim.kind"] == "note", where
            assert got.get("comment") == (f"note {item['key']} "
                                          f"{json.dumps(item['value'], sort_keys=True, ensure_ascii=False)}"), where
            assert "direction" not in got and got["raw"] == "", where
            continue
        assert got["direction"] == DIRECTION[item["dir"]], where
        assert got["raw"] == item["raw"], where
        if item["kind"] == "dropped":
            assert got["possim"]["possim.kind"] == "dropped", where
            assert got.get("comment") == (f"dropped {item['bytes']} bytes at offset {item['offset']} "
                                          f"({WORDS[item['dir']]}): {', '.join(item['reasons'])}"), where
            verdict = whole_frame_crc(bytes.fromhex(item["raw"]))
            assert got["possim"].get("possim.crc_ok") == (None if verdict is None else str(int(verdict))), where
            assert got["fields"] == [], where      # a dropped range's payload is not decoded
            continue
        assert got["possim"]["possim.kind"] == "frame", where
        assert "comment" not in got, where
        assert got["possim"]["possim.crc_ok"] == "1", where
        assert got["possim"]["possim.seq"] == str(item["seq"]), where
        assert got["possim"]["possim.type"] == item["type"], where
        assert got["possim"]["possim.version"] == str(item["version"]), where
        assert got["flags"] == item["flags"], where
        assert "error" not in item, where
        assert got["fields"] == flatten(item["type"], item["fields"]), where
    assert kinds["frame"] > 0
    assert scan([out]).findings == []       # the captures are masked; so is what tshark reads
    return packets


def test_a_corrupted_frame_is_a_bad_crc_to_tshark(tshark_env: dict[str, str], tmp_path: Path) -> None:
    # a frame from the spec's catalogue example, one payload byte flipped on the wire
    capture = tmp_path / "bad.cap"
    good = "a55a0100148201000b01040007706f732d73696db6bc"        # HELLO from docs/capture-format.md
    bad = good[:30] + ("00" if good[30:32] != "00" else "01") + good[32:]
    capture.write_text("# pos-sim capture 1\n# tool: \"test\"\n# port: \"x\"\n# baud: 115200\n"
                       "# started: \"2026-11-23T14:58:39.866+00:00\"\n"
                       f"> 0.010000 {good}\n> 0.500000 {bad}\n= 1.000000 end\n")
    out = tmp_path / "bad.pcapng"
    assert pos_sim("pcap", str(capture), "-o", str(out)).returncode == 0
    first, second = tshark_packets(out, tshark_env)
    assert first["possim"]["possim.kind"] == "frame" and first["possim"]["possim.crc_ok"] == "1"
    assert first["fields"] == [("possim.hello.protocol_version", "1"), ("possim.hello.max_payload", "1024"),
                               ("possim.hello.host", "pos-sim")]
    assert second["possim"]["possim.kind"] == "dropped" and second["possim"]["possim.crc_ok"] == "0"
    assert second["comment"] == "dropped 22 bytes at offset 22 (host to terminal): bad CRC"


SPEC = (REPO / "docs" / "protocol.md").read_text(encoding="utf-8")
EXAMPLE = re.compile(r"### Example \d+: (?P<title>.*?)\n.*?```hex\n(?P<hex>.*?)```.*?```json\n(?P<json>.*?)```",
                     re.DOTALL)


def write_capture(path: Path, frames: list[bytes]) -> None:
    """A capture of ``frames`` from the terminal, half a second apart (one chunk each)."""
    lines = ["# pos-sim capture 1", '# tool: "test"', '# port: "test"', "# baud: 115200",
             '# started: "2026-11-23T14:58:39.866+00:00"']
    lines += [f"< {0.5 * (i + 1):.6f} {frame.hex()}" for i, frame in enumerate(frames)]
    lines.append(f"= {0.5 * (len(frames) + 1):.6f} end")
    path.write_text("\n".join(lines) + "\n")


def test_tshark_decodes_the_specs_worked_examples_as_the_spec_prints_them(
        tshark_env: dict[str, str], tmp_path: Path) -> None:
    """The oracle is docs/protocol.md's own text: each example's bytes and its decoded JSON."""
    examples = list(EXAMPLE.finditer(SPEC))
    assert len(examples) >= 8
    cap = tmp_path / "examples.cap"
    write_capture(cap, [bytes.fromhex(m.group("hex").replace("\n", " ")) for m in examples])
    out = tmp_path / "examples.pcapng"
    assert pos_sim("pcap", str(cap), "-o", str(out)).returncode == 0
    packets = tshark_packets(out, tshark_env)
    assert len(packets) == len(examples)
    for m, got in zip(examples, packets, strict=True):
        want = json.loads(m.group("json"))
        title = m.group("title")
        assert got["possim"]["possim.kind"] == "frame" and got["possim"]["possim.crc_ok"] == "1", title
        assert got["possim"]["possim.seq"] == str(want["seq"]), title
        assert got["possim"]["possim.type"] == want["type"], title
        assert got["flags"] == want["flags"], title
        assert got["fields"] == flatten(want["type"], want["fields"]), title


def _sample(c: Any, depth: int = 0) -> Any:
    """A value for every shape of field the catalogue declares (enums: their last member)."""
    from construct import Bytes, Enum, Flag, FormatField, Struct, Switch, Terminated

    from protocols.pos.compiler import pascal_parts, prefixed_array_parts, unwrap

    c = unwrap(c)
    if isinstance(c, Enum):
        return str(list(c.encmapping)[-1])
    if c is Flag:
        return True
    if isinstance(c, FormatField):
        return -5 if c.fmtstr.lstrip("<>=!").islower() else 200
    if isinstance(c, Bytes):
        return bytes(range(1, c.length + 1))
    if pascal_parts(c) is not None:
        return "ok ✓" if pascal_parts(c)[1] else b"\x3b\x9f"     # type: ignore[index]
    parts = prefixed_array_parts(c)
    if parts is not None:
        return [_sample(parts[1], depth + 1) for _ in range(2)]
    if isinstance(c, Struct):
        return {s.name: _sample(s, depth + 1) for s in c.subcons if s.name and unwrap(s) is not Terminated}
    if isinstance(c, Switch):
        raise AssertionError("a Switch is filled by its caller")
    raise AssertionError(f"no sample for {c!r}")


def every_message_frames() -> list[bytes]:
    """One frame of every catalogue message, and a STATUS_REPLY of every component."""
    from protocols.pos.codes import Component
    from protocols.pos.messages import CATALOGUE, STATUS_BY_COMPONENT, MessageType, encode_message

    frames = []
    for seq, (t, spec) in enumerate(CATALOGUE.items()):
        if t == MessageType.STATUS_REPLY:
            for comp, block in STATUS_BY_COMPONENT.items():
                fields = {"component": comp, "status": _sample(block)}
                frames.append(encode_message(t, fields, 1000 + int(Component[str(comp)]), 1))
            continue
        frames.append(encode_message(t, _sample(spec.declaration), seq, 2 if spec.rule.kind == "event" else 0))
    return frames


def test_tshark_reads_one_frame_of_every_message_as_decode_does(tshark_env: dict[str, str], tmp_path: Path) -> None:
    cap = tmp_path / "every.cap"
    frames = every_message_frames()
    write_capture(cap, frames)
    packets = check_capture(cap, tshark_env, tmp_path)
    assert len(packets) == len(frames)
    assert all(p["possim"]["possim.kind"] == "frame" for p in packets)
    from protocols.pos.messages import CATALOGUE
    assert {p["possim"]["possim.type"] for p in packets} == {s.name for s in CATALOGUE.values()}


def test_unknown_types_values_and_malformed_payloads(tshark_env: dict[str, str], tmp_path: Path) -> None:
    def frame(msg_type: int, payload: bytes, seq: int) -> bytes:
        body = bytes([1, 0]) + seq.to_bytes(2, "big") + bytes([msg_type]) + len(payload).to_bytes(2, "big") + payload
        return b"\xa5\x5a" + body + binascii.crc_hqx(body, 0xFFFF).to_bytes(2, "big")

    cap = tmp_path / "odd.cap"
    write_capture(cap, [frame(0x7F, b"\x01\x02", 1),          # not in the catalogue
                        frame(0x15, b"\x63", 2),               # NAK with a reason no table names
                        frame(0x15, b"\x03\x00", 3),           # NAK with a trailing byte
                        frame(0x01, b"\x01\x04", 4)])          # HELLO cut short
    out = tmp_path / "odd.pcapng"
    assert pos_sim("pcap", str(cap), "-o", str(out)).returncode == 0
    unknown, odd_reason, trailing, short = tshark_packets(out, tshark_env)
    assert unknown["possim"]["possim.type"] == "unknown(127)" and unknown["fields"] == []
    assert odd_reason["fields"] == [("possim.nak.reason", "99")] and "possim.malformed" not in odd_reason["possim"]
    assert trailing["fields"] == [("possim.nak.reason", "busy")]
    assert "1 bytes after the last field" in trailing["possim"]["possim.malformed"]
    assert short["fields"] == [("possim.hello.protocol_version", "1")]
    assert "payload ends early" in short["possim"]["possim.malformed"]
    decoded = [json.loads(x) for x in pos_sim("decode", "--json", str(cap)).stdout.splitlines()]
    frames = [x for x in decoded if x["kind"] == "frame"]
    assert [("error" in x) for x in frames] == [True, False, True, True]     # decode agrees on which


def _luhn_number(prefix: str, length: int) -> str:
    """A number that passes the Luhn check, made here so that none is written in the source."""
    body = prefix + "0" * (length - len(prefix) - 1)
    for check in "0123456789":
        digits = [int(d) for d in body + check][::-1]
        total = sum(d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2) for i, d in enumerate(digits))
        if total % 10 == 0:
            return body + check
    raise AssertionError("unreachable")


def test_a_hand_made_capture_with_card_data_is_masked_in_the_pcapng(tshark_env: dict[str, str],
                                                                    tmp_path: Path) -> None:
    """Our captures are masked when written; one made by another tool may not be: the export
    masks again, as `pos-sim decode` does, and tshark shows what decode shows."""
    from protocols.pos.messages import MessageType, encode_message

    pan = _luhn_number("5", 16)
    info = {"manufacturer": "SimPOS", "model": pan, "serial": "SP1", "hardware_rev": "B2",
            "firmware_version": "3.2.1", "lifecycle": "bound", "merchant_id": "", "activated_at": 0, "clock": 0}
    cap = tmp_path / "hand.cap"
    try:
        write_capture(cap, [encode_message(MessageType.INFO_REPLY, info, 7, 1), b"track " + pan.encode()])
        got = check_capture(cap, tshark_env, tmp_path)    # also: no card data in the pcapng
        for args in (["--json", "--raw"], ["--raw"]):
            shown = pos_sim("decode", *args, str(cap)).stdout
            assert pan not in shown and find_card_data(shown.encode()) == [], args
    finally:
        cap.unlink()                                       # the suite's own card-data scan reads tmp too
    model = dict(got[0]["fields"])["possim.info_reply.model"]
    assert model == pan[:6] + "******" + pan[-4:]
    assert got[0]["possim"]["possim.crc_ok"] == "1"       # a new CRC over the masked bytes
    assert bytes.fromhex(got[1]["raw"]) == b"track " + (pan[:6] + "******" + pan[-4:]).encode()
