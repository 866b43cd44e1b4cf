"""The capture format: round trip, card-number masking, torn files, gzip, and the tap."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import serial
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.capture import (
    DEVICE,
    DISCONNECTED,
    LINE_BYTES,
    CaptureError,
    CaptureTap,
    CaptureWriter,
    Chunk,
    Note,
    luhn_valid,
    mask_card_numbers,
    open_terminal,
    read_capture,
)
from pos_sim.ports import register_url_schemes

NO_DIGITS = st.binary(min_size=1, max_size=200).map(lambda b: bytes(x for x in b if not 48 <= x <= 57) or b"x")


def _merged(records: list[Chunk | Note]) -> list[tuple[str, float, bytes]]:
    """Lines of one chunk (same direction and time, split at LINE_BYTES) joined again."""
    out: list[tuple[str, float, bytes]] = []
    for r in records:
        if not isinstance(r, Chunk):
            continue
        if out and out[-1][0] == r.direction and out[-1][1] == r.time:
            out[-1] = (r.direction, r.time, out[-1][2] + r.data)
        else:
            out.append((r.direction, r.time, r.data))
    return out


@settings(max_examples=60, deadline=None)
@given(chunks=st.lists(st.tuples(st.sampled_from(">"), NO_DIGITS) | st.tuples(st.sampled_from("<"), NO_DIGITS),
                       max_size=30),
       gz=st.booleans())
def test_round_trip(tmp_path_factory: pytest.TempPathFactory, chunks: list[tuple[str, bytes]], gz: bool) -> None:
    path = tmp_path_factory.mktemp("rt") / ("c.cap.gz" if gz else "c.cap")
    written = []
    with CaptureWriter(path, port="loop://", baud=9600) as w:
        for i, (direction, data) in enumerate(chunks):
            t = round(i * 0.001, 6)
            w.record(direction, data, at=t)
            written.append((direction, t, data))
        w.note("device", {"serial": "SP1"})
    reader = read_capture(path)
    records = list(reader)
    assert reader.complete and not reader.torn and reader.problem == ""
    assert reader.header.port == "loop://" and reader.header.baud == 9600 and reader.header.format_version == 1
    # consecutive chunks of one direction at one time are indistinguishable from one chunk
    assert _merged(records) == _merged([Chunk(d, t, b) for d, t, b in written])
    assert records[-1] == Note(records[-1].time, "device", {"serial": "SP1"})
    text = gzip.decompress(path.read_bytes()).decode() if gz else path.read_text()
    for line in text.splitlines():
        assert len(line) < 30 + 2 * LINE_BYTES


def test_the_text_is_diffable(tmp_path: Path) -> None:
    path = tmp_path / "c.cap"
    with CaptureWriter(path, port="/dev/ttyACM0", baud=115200, extra={"plan": "full"}) as w:
        w.record(">", b"\xa5\x5a\x01", at=0.5)
        w.record("<", bytes(range(100)), at=1.25)
    lines = path.read_text().splitlines()
    assert lines[0] == "# pos-sim capture 1"
    assert lines[2:4] == ['# port: "/dev/ttyACM0"', "# baud: 115200"]
    assert '# plan: "full"' in lines
    assert "> 0.500000 a55a01" in lines
    assert f"< 1.250000 {bytes(range(64)).hex()}" in lines and f"< 1.250000 {bytes(range(64, 100)).hex()}" in lines
    assert lines[-1].startswith("= ") and lines[-1].endswith(" end")


# -- card numbers ------------------------------------------------------------------------

VISA = b"4111111111111111"          # test card numbers, Luhn-valid
AMEX = b"378282246310005"
UNIONPAY_19 = b"6212345678901234569"


def test_luhn() -> None:
    assert luhn_valid(VISA) and luhn_valid(AMEX) and luhn_valid(b"79927398713")
    assert not luhn_valid(b"4111111111111112")


def test_mask_replaces_all_but_the_first_six_and_last_four() -> None:
    assert luhn_valid(UNIONPAY_19)
    assert mask_card_numbers(b"PAN=" + VISA + b";") == b"PAN=411111******1111;"
    assert mask_card_numbers(AMEX) == b"378282*****0005"
    assert mask_card_numbers(b"\x00" + UNIONPAY_19 + b"\xff") == b"\x00621234*********4569\xff"


@pytest.mark.parametrize("data", [
    b"4111111111111112",            # fails Luhn
    b"41111111111111110000",        # 20 digits: not a card number
    b"411111111111",                # 12 digits
    b"898310048160123",             # a UnionPay merchant ID that passes Luhn: not a card
    b"0000000000000000",            # Luhn-valid, but no card starts with 0
])
def test_mask_leaves_other_numbers(data: bytes) -> None:
    assert mask_card_numbers(data) == data


def test_writer_masks_a_card_number_split_over_reads(tmp_path: Path) -> None:
    path = tmp_path / "c.cap"
    with CaptureWriter(path) as w:
        w.record("<", b"\xa5\x5aPAN 41111", at=0.1)
        w.record("<", b"11111", at=0.2)
        w.record("<", b"111111 end", at=0.3)
        w.record(">", b"ack", at=0.4)
        w.record(">", VISA, at=0.5)     # ends the capture with a held run: written at close
    records = list(read_capture(path))
    assert b"".join(r.data for r in records if isinstance(r, Chunk) and r.direction == "<") == \
        b"\xa5\x5aPAN 411111******1111 end"
    assert [(r.direction, r.time) for r in records if isinstance(r, Chunk)] == \
        [("<", 0.1), ("<", 0.1), ("<", 0.2), ("<", 0.3), (">", 0.4), (">", 0.5)]
    assert records[-1] == Chunk(">", 0.5, b"411111******1111")
    assert b"4111111111111111" not in path.read_bytes()


# -- torn and unreadable files -----------------------------------------------------------


def _capture_with(path: Path, n: int) -> None:
    with CaptureWriter(path) as w:
        for i in range(n):
            w.record(">" if i % 2 else "<", bytes([i]) * 10, at=i / 10)


def test_a_torn_last_line_is_dropped_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "c.cap"
    _capture_with(path, 5)
    text = path.read_text()
    cut = text[: text.rindex("\n", 0, text.rindex("= ")) - 7]   # into the last chunk line, no end line
    path.write_text(cut)
    reader = read_capture(path)
    records = list(reader)
    assert [r.data[0] for r in records if isinstance(r, Chunk)] == [0, 1, 2, 3]
    assert reader.torn and not reader.complete and "cut off" in reader.problem


def test_no_end_line_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "c.cap"
    _capture_with(path, 3)
    path.write_text(path.read_text().rsplit("= ", 1)[0])
    reader = read_capture(path)
    assert len(list(reader)) == 3
    assert not reader.torn and not reader.complete and "no end line" in reader.problem


@pytest.mark.parametrize("suffix", [".cap", ".cap.gz"])
def test_a_killed_recorder_leaves_a_readable_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"killed{suffix}"
    code = textwrap.dedent(f"""
        import os, signal, time
        from drivers.capture import CaptureWriter
        w = CaptureWriter({str(path)!r})
        for i in range(200):
            w.record("<>"[i % 2], bytes([i]) * 100)
        w.flush()
        w.record("<", b"never flushed")
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    r = subprocess.run([sys.executable, "-c", code], check=False, timeout=60)
    assert r.returncode == -9
    reader = read_capture(path)
    records = [x for x in reader if isinstance(x, Chunk)]
    assert sum(len(x.data) for x in records) >= 200 * 100
    assert not reader.complete and reader.problem


def test_gzip_is_chosen_by_the_suffix(tmp_path: Path) -> None:
    path = tmp_path / "c.cap.gz"
    _capture_with(path, 3)
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    assert gzip.decompress(path.read_bytes()).startswith(b"# pos-sim capture 1\n")
    assert len([r for r in read_capture(path)]) == 3


@pytest.mark.parametrize(("content", "words"), [
    ("hello\n", "not a pos-sim capture"),
    ("# pos-sim capture 7\n", "format 7"),
    ("# pos-sim capture 1\n> 0.1 zz\n", "not a capture line"),
])
def test_what_is_not_a_capture_is_one_error(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "bad.cap"
    path.write_text(content)
    with pytest.raises(CaptureError, match=words):
        list(read_capture(path))


# -- the tap -----------------------------------------------------------------------------


def test_the_tap_records_exactly_the_bytes_and_passes_them_through(tmp_path: Path) -> None:
    path = tmp_path / "tap.cap"
    port = serial.serial_for_url("loop://", timeout=0.05)
    writer = CaptureWriter(path, port="loop://")
    sent = bytes(range(256)) * 3
    with CaptureTap(port, writer) as tap:
        for i in range(0, len(sent), 100):
            assert tap.write(sent[i: i + 100]) == len(sent[i: i + 100])
        got = b""
        while len(got) < len(sent):
            got += tap.read(tap.in_waiting or 1)
        assert got == sent
    assert writer.closed and not port.is_open
    records = [r for r in read_capture(path) if isinstance(r, Chunk)]
    assert b"".join(r.data for r in records if r.direction == ">") == sent
    assert b"".join(r.data for r in records if r.direction == "<") == sent


def test_a_terminal_session_through_the_tap(tmp_path: Path) -> None:
    register_url_schemes()
    path = tmp_path / "s.cap"
    with open_terminal("emu://healthy?speed=50", path, timeout=10) as term:
        info = term.info()
        stats = term.link.stats
    records = list(read_capture(path))
    chunks = [r for r in records if isinstance(r, Chunk)]
    assert sum(len(c.data) for c in chunks if c.direction == ">") == stats.bytes_out
    assert sum(len(c.data) for c in chunks if c.direction == "<") == stats.bytes_in
    device = [r for r in records if isinstance(r, Note) and r.key == DEVICE]
    assert device and device[0].value["serial"] == info.serial == "SP0000123"


def test_a_broken_port_is_noted(tmp_path: Path) -> None:
    class Broken:
        is_open = True

        def read(self, size: int) -> bytes:
            raise serial.SerialException("read failed: [Errno 5] Input/output error")

        def close(self) -> None:
            pass

    path = tmp_path / "b.cap"
    tap = CaptureTap(Broken(), CaptureWriter(path))
    with pytest.raises(serial.SerialException):
        tap.read(1)
    tap.close()
    notes = [r for r in read_capture(path) if isinstance(r, Note)]
    assert notes == [Note(notes[0].time, DISCONNECTED, "read failed: [Errno 5] Input/output error")]


def test_an_unwritable_capture_is_one_error(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="cannot write"):
        CaptureWriter(tmp_path / "no" / "such" / "dir.cap")
    assert os.path.exists(tmp_path)
