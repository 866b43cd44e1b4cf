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

from tests.cardscan import scan

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
    """Export ``capture`` and compare tshark's packets with ``pos-sim decode``'s; return tshark's."""
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
