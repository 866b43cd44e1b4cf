"""``pos-sim decode``: frames and dropped byte ranges with their reasons, as an analyser shows them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.capture import CapturedFrame, CaptureWriter, DroppedBytes, analyse, read_capture
from protocols.pos import SYNC, MessageType, encode_frame, encode_message
from protocols.pos.framing import HEADER

ROOT = Path(__file__).resolve().parents[3]


def cmd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pos_sim.cli.capture", *args], capture_output=True, text=True,
                          timeout=60, check=False, cwd=ROOT)


ACK7 = encode_message(MessageType.ACK, None, 7, 0x01)
PING = encode_message(MessageType.PING, None, 8)
INFO = encode_message(MessageType.INFO_REQUEST, None, 9)
BAD = bytearray(encode_message(MessageType.PONG, {"uptime_ms": 5}, 10, 0x01))
BAD[-1] ^= 0xFF
OVERSIZE = SYNC + HEADER.pack(1, 0, 11, 0x31, 2000) + b"\x11\x22"
HALF = encode_message(MessageType.INFO_REQUEST, None, 12)[:6]


@pytest.fixture
def corrupt_capture(tmp_path: Path) -> Path:
    path = tmp_path / "corrupt.cap"
    with CaptureWriter(path, port="test", baud=115200) as w:
        w.record(">", INFO, at=0.001)
        w.record("<", b"\x00\x01\x02" + ACK7 + bytes(BAD) + PING, at=0.010)
        w.record("<", OVERSIZE + ACK7, at=0.020)
        w.record("<", HALF, at=0.030)
        w.record("<", PING, at=0.500)          # 470 ms later: the half frame was given up
    return path


def test_frames_and_drops_in_order(corrupt_capture: Path) -> None:
    items = list(analyse(read_capture(corrupt_capture)))
    summary = [(type(i).__name__, getattr(i, "direction", ""), getattr(i, "offset", None),
                getattr(i, "reasons", None)) for i in items]
    n_bad, n_over = len(BAD), len(OVERSIZE)
    start2 = 3 + len(ACK7) + n_bad + len(PING)
    assert summary == [
        ("CapturedFrame", ">", 0, None),
        ("DroppedBytes", "<", 0, ("garbage",)),
        ("CapturedFrame", "<", 3, None),
        ("DroppedBytes", "<", 3 + len(ACK7), ("bad CRC",)),
        ("CapturedFrame", "<", 3 + len(ACK7) + n_bad, None),
        ("DroppedBytes", "<", start2, ("oversize",)),
        ("CapturedFrame", "<", start2 + n_over, None),
        ("DroppedBytes", "<", start2 + n_over + len(ACK7), ("partial dropped",)),
        ("CapturedFrame", "<", start2 + n_over + len(ACK7) + len(HALF), None),
    ]
    dropped = [i for i in items if isinstance(i, DroppedBytes)]
    assert [d.data for d in dropped] == [b"\x00\x01\x02", bytes(BAD), OVERSIZE, HALF]
    assert dropped[-1].time == pytest.approx(0.130)    # when the link's inter-byte timeout fired


def test_json_lines(corrupt_capture: Path) -> None:
    r = cmd("decode", str(corrupt_capture), "--json", "--raw")
    assert r.returncode == 0, r.stderr
    lines: list[dict[str, Any]] = [json.loads(x) for x in r.stdout.splitlines()]
    assert lines[0]["kind"] == "header" and lines[0]["port"] == "test"
    assert lines[1] == {"t": 0.001, "dir": ">", "kind": "frame", "offset": 0, "version": 1, "flags": [],
                        "seq": 9, "type": "INFO_REQUEST", "fields": {}, "raw": INFO.hex()}
    bad = lines[4]
    assert bad == {"t": 0.01, "dir": "<", "kind": "dropped", "offset": 3 + len(ACK7), "bytes": len(BAD),
                   "reasons": ["bad CRC"], "raw": bytes(BAD).hex()}
    assert lines[-1] == {"kind": "summary", "frames": {">": 1, "<": 4}, "dropped_bytes": {
        ">": 0, "<": 3 + len(BAD) + len(OVERSIZE) + len(HALF)}, "malformed": 0, "complete": True, "torn": False,
        "problem": "", "timestamps_backwards": 0}


def test_human_lines(corrupt_capture: Path) -> None:
    r = cmd("decode", str(corrupt_capture))
    out = r.stdout.splitlines()
    assert r.returncode == 0
    assert out[0].startswith("capture ") and "115200 baud" in out[0]
    assert out[1].split() == ["0.001000", ">", "INFO_REQUEST", "seq=9", "-", "{}"]
    assert "0.010000 < DROPPED 3 bytes at offset 0: garbage" in out[2]
    assert "< ACK" in out[3] and "seq=7" in out[3] and "RESPONSE" in out[3]
    assert any("DROPPED" in x and "partial dropped" in x for x in out)
    assert out[-1] == f"1 frames >, 4 frames <; dropped 0 bytes >, {3 + len(BAD) + len(OVERSIZE) + len(HALF)} " \
                      "bytes <; 0 malformed payloads"
    raw = cmd("decode", str(corrupt_capture), "--raw").stdout.splitlines()
    assert raw[1].endswith(INFO.hex())


def test_a_malformed_payload_is_shown_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "m.cap"
    with CaptureWriter(path) as w:
        w.record("<", encode_frame(MessageType.INFO_REPLY, b"\x05abc", 3, 0x01), at=0.0)
    r = cmd("decode", str(path))
    assert r.returncode == 0 and "INFO_REPLY" in r.stdout and "malformed payload" in r.stdout


def test_the_flaky_fixture_shows_its_corruption() -> None:
    r = cmd("decode", str(ROOT / "fixtures" / "captures" / "flaky-link.cap"), "--json")
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    reasons = {reason for x in lines if x["kind"] == "dropped" for reason in x["reasons"]}
    assert "bad CRC" in reasons
    assert lines[-1]["complete"] and lines[-1]["frames"]["<"] > 40


def test_a_torn_capture_decodes_and_says_so(corrupt_capture: Path) -> None:
    text = corrupt_capture.read_text()
    corrupt_capture.write_text(text[: text.rindex("\n< ") + 12])
    r = cmd("decode", str(corrupt_capture))
    assert r.returncode == 0
    assert "cut off" in r.stderr and r.stderr.count("\n") == 1


@pytest.mark.parametrize(("args", "code", "words"), [
    (["decode", "/no/such.cap"], 1, "no such file"),
    (["decode"], 1, "required"),
])
def test_bad_command_lines(args: list[str], code: int, words: str) -> None:
    r = cmd(*args)
    assert r.returncode == code and words in r.stderr and "Traceback" not in r.stderr


def test_not_a_capture(tmp_path: Path) -> None:
    (tmp_path / "x.cap").write_text("hello\n")
    r = cmd("decode", str(tmp_path / "x.cap"))
    assert r.returncode == 1 and "not a pos-sim capture" in r.stderr


@settings(max_examples=80, deadline=None)
@given(parts=st.lists(st.sampled_from([ACK7, PING, INFO, bytes(BAD), OVERSIZE, HALF, b"\xa5", b"\x00\x5a\xa5\x5a"]),
                      max_size=25),
       cuts=st.lists(st.integers(1, 40), min_size=1, max_size=10), gaps=st.lists(st.booleans(), min_size=1))
def test_every_byte_is_a_frame_or_dropped_in_order(tmp_path_factory: pytest.TempPathFactory, parts: list[bytes],
                                                   cuts: list[int], gaps: list[bool]) -> None:
    stream = b"".join(parts)
    path = tmp_path_factory.mktemp("p") / "p.cap"
    t, i, k = 0.0, 0, 0
    with CaptureWriter(path) as w:
        while i < len(stream):
            n = cuts[k % len(cuts)]
            t += 0.2 if gaps[k % len(gaps)] else 0.001
            w.record("<", stream[i: i + n], at=t)
            i, k = i + n, k + 1
    items = [x for x in analyse(read_capture(path)) if isinstance(x, (CapturedFrame, DroppedBytes))]
    pos = 0
    for x in items:
        assert x.offset == pos
        data = x.raw if isinstance(x, CapturedFrame) else x.data
        assert stream[pos: pos + len(data)] == data
        pos += len(data)
    assert pos == len(stream)
    frames = [x for x in items if isinstance(x, CapturedFrame)]
    assert all(x.raw == encode_frame(x.frame.type, x.frame.payload, x.frame.seq, x.frame.flags) for x in frames)


@pytest.mark.parametrize(("content", "says"), [
    (bytes(range(256)) * 8, "not a pos-sim capture (binary data"),
    (b"hello\n", "not a pos-sim capture (it does not start with"),
    (None, "a directory, not a capture file"),
])
def test_decode_of_a_file_that_is_not_a_capture_says_so_in_one_line(tmp_path: Path, content: bytes | None,
                                                                     says: str) -> None:
    path = tmp_path / "x"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    r = subprocess.run([sys.executable, "-m", "pos_sim.cli", "decode", str(path)], capture_output=True, text=True,
                       timeout=120, check=False)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith(f"pos-sim decode: {path}: {says}") and len(r.stderr.splitlines()) == 1


FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "captures"


def _step_back(src: Path, dst: Path) -> int:
    """Copy a capture with the 12th timestamped line's time moved before the line above it."""
    lines = src.read_text().splitlines(keepends=True)
    timed = [i for i, line in enumerate(lines) if line[:1] in "<>"]
    i = timed[11]
    mark, _, data = lines[i].split(" ")
    before = float(lines[timed[10]].split(" ")[1])
    lines[i] = f"{mark} {before - 0.5:.6f} {data}"
    dst.write_text("".join(lines))
    return i + 1  # the line number the warning must name


def test_decode_and_replay_flag_timestamps_that_go_backwards(tmp_path: Path) -> None:
    edited = tmp_path / "healthy.cap"
    line = _step_back(FIXTURES / "healthy.cap", edited)
    r = cmd("decode", str(edited), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[-1])["timestamps_backwards"] == 1
    assert f"timestamps go backwards 1 time (first at line {line}:" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = cmd("replay", str(edited))
    assert f"timestamps go backwards 1 time (first at line {line}:" in r.stderr
    # the untouched fixture has none
    r = cmd("decode", str(FIXTURES / "healthy.cap"), "--json")
    assert json.loads(r.stdout.splitlines()[-1])["timestamps_backwards"] == 0
    assert "backwards" not in r.stderr
