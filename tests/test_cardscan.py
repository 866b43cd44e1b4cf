"""The card-data scan the suite runs on its own output (tests/cardscan.py).

Every file a test here plants card data in lives in a directory that the ``planted`` fixture
removes afterwards: the session-end scan reads the whole base temporary directory, and would
(rightly) fail the run on what these tests leave behind.
"""

from __future__ import annotations

import gzip
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.capture import TERMINAL_TO_HOST, CaptureWriter
from protocols.pos import encode_frame
from tests.cardscan import PAN, TRACK1, TRACK2, CardData, find_card_data, luhn_valid, scan

ROOT = Path(__file__).resolve().parents[1]


def with_check_digit(prefix: str) -> str:
    """``prefix`` and the Luhn check digit that makes it a valid card number."""
    return next(prefix + d for d in "0123456789" if luhn_valid((prefix + d).encode()))


VISA = "4111111111111111"
VISA_13 = "4222222222222"
UNIONPAY_16 = with_check_digit("622848040256489")
UNIONPAY_19 = with_check_digit("622202100112233445")
AMEX = "378282246310005"
MASTERCARD_2 = "2223000048400011"
#: the shape of the emulator's merchant ids, made Luhn-valid: it must still not count
MERCHANT_ID = with_check_digit("89831004816123")


@pytest.fixture
def planted(tmp_path: Path) -> Iterator[Path]:
    """A directory for files with card data in them, removed when the test ends."""
    directory = tmp_path / "planted"
    directory.mkdir()
    yield directory
    shutil.rmtree(directory)


def pans(data: bytes | str) -> list[str]:
    raw = data.encode() if isinstance(data, str) else data
    return [hit.pan.decode() for hit in find_card_data(raw)]


def kinds(data: bytes | str) -> list[str]:
    raw = data.encode() if isinstance(data, str) else data
    return [hit.kind for hit in find_card_data(raw)]


def test_mastercard_2_series_counts_and_other_2s_do_not() -> None:
    for bin4, card in (("2221", True), ("2720", True), ("2500", True), ("2220", False), ("2721", False),
                       ("2026", False)):
        number = with_check_digit(bin4 + "00000000000")
        assert (pans(f"card {number} ok") == [number]) is card, bin4


def test_the_test_numbers_are_luhn_valid() -> None:
    for number in (VISA, VISA_13, UNIONPAY_16, UNIONPAY_19, AMEX, MASTERCARD_2, MERCHANT_ID):
        assert luhn_valid(number.encode()), number
    assert not luhn_valid(b"4111111111111112")


# -- what counts as a card number ------------------------------------------------------------


@pytest.mark.parametrize("number", [VISA, VISA_13, UNIONPAY_16, UNIONPAY_19, AMEX, MASTERCARD_2])
@pytest.mark.parametrize("template", ["{}", "card {} approved", '{{"pan": "{}"}}', "pan={}&x=1", "<td>{}</td>",
                                      "{}.", "expiry {} 12/25", "卡号{}已批准"])
def test_a_card_number_in_text_is_found(number: str, template: str) -> None:
    assert pans(template.format(number)) == [number]


@pytest.mark.parametrize(("printed", "number"), [
    ("4111 1111 1111 1111", VISA),
    ("4111-1111-1111-1111", VISA),
    ("3782 822463 10005", AMEX),
    ("4111 111 111 111 111", VISA),
    ("4222 2222 22222", VISA_13),
    (f"{UNIONPAY_19[:4]} {UNIONPAY_19[4:8]} {UNIONPAY_19[8:12]} {UNIONPAY_19[12:16]} {UNIONPAY_19[16:]}", UNIONPAY_19),
    ("card: 4111 1111 1111 1111, exp 12/25", VISA),
    ("card: 4111 1111 1111 1111 12/25", VISA),
    ("14:58:33 4111 1111 1111 1111", VISA),
])
def test_a_card_number_printed_in_groups_is_found(printed: str, number: str) -> None:
    assert pans(printed) == [number]


@pytest.mark.parametrize("text", [
    "622848******1234", "411111…1111", "4111 11** **** 1111", "************1111", "411111XXXXXX1111",
    f"{UNIONPAY_16[:6]}******{UNIONPAY_16[-4:]}",
])
def test_masked_numbers_are_not_card_numbers(text: str) -> None:
    assert pans(text) == []


@pytest.mark.parametrize("text", [
    "4111111111111112",                          # Luhn-invalid
    "99994111111111111111",                      # a valid number inside a 20-digit run
    "1234567890" + VISA + "1234567890",          # inside a longer one
    "4111 1111 1111 1111 1111",                  # 20 digits in groups: no 16-digit window
    "4111-1111 1111-1111",                       # mixed separators
    "41 11 11 11 11 11 11 11",                   # hex-dump-like pairs
    MERCHANT_ID,                                 # 898...: a merchant id, not a card
    f"merchant_id={MERCHANT_ID}",
    with_check_digit("123456789012"),            # first digit 1: Unix times in ms...
    with_check_digit("1732370313364123"),        # ... µs ...
    with_check_digit("173237031336412345"),      # ... and ns start with 1 until 2033
    with_check_digit("71234567890123"),          # 7 petroleum, 9 national use
    with_check_digit("912345678901234"),
    "0x" + VISA,                                 # a hex literal
    "0." + VISA,                                 # the fraction of a float
    "1732370313." + VISA,
    VISA + ".25",                                # the integer part of a decimal
    "a5" + VISA + "ef",                          # digits inside a hex dump
    "123e4567-e89b-12d3-a456-" + "4266" + VISA[:8],  # a UUID
    "2026-11-23 14:58:33",
    "/CreationDate (D:" + with_check_digit("2026112317093") + "+00'00')",  # a PDF's date: 20yy is no BIN
    with_check_digit("20261123170936123"),
])
def test_things_that_are_not_card_numbers(text: str) -> None:
    assert pans(text) == []


def test_a_hex_dump_of_frames_holds_no_card_number_unless_its_bytes_do() -> None:
    # a frame whose hex has long all-digit runs, Luhn-valid 16-digit windows among them
    payload = bytes.fromhex(VISA + "ab" + "32" * 8 + "cd" + MASTERCARD_2 + "ef" + UNIONPAY_16)
    dump = encode_frame(0x35, payload, seq=2).hex()
    assert VISA in dump and pans(dump) == []
    assert pans(" ".join(f"{b:02x}" for b in bytes.fromhex(dump))) == []
    assert pans(dump.upper()) == []
    # a frame whose bytes carry a card number in ASCII: found in the decoded dump
    leaking = encode_frame(0x35, b"\x00" + VISA.encode() + b"\x00", seq=2).hex()
    assert [(h.pan.decode(), h.via.startswith("hex")) for h in find_card_data(leaking.encode())] == [(VISA, True)]


def test_tracks_are_found_and_reported_once() -> None:
    assert kinds(f";{VISA}=25121010000000000000?") == [TRACK2]
    assert kinds(f"{UNIONPAY_19}=2512201") == [TRACK2]
    assert kinds(f";{VISA_13}=2512101?") == [TRACK2]
    assert kinds(f"{VISA}D25122010000000000000F") == [TRACK2]
    assert kinds(f"{VISA}d2512201") == [TRACK2]
    assert kinds(f"9f2608abcd5713{VISA}d25122010000000000000f") == [TRACK2]   # EMV tag 57, hex
    assert kinds(f"%B{VISA}^CARDHOLDER/TEST^25121010000000000000?") == [TRACK1]
    assert kinds(f"B{AMEX}^DOE/JANE^2512101") == [TRACK1]
    # a PAN of another industry is still card data inside a track
    other = with_check_digit("912345678901234")
    assert kinds(f";{other}=2512101") == [TRACK2]


@pytest.mark.parametrize("text", [
    f";{VISA}=25131010000?",            # month 13
    f";{VISA}=25123010000?",            # service code 3..
    ";4111111111111112=25121010000?",   # Luhn-invalid
    f"%B{VISA}^^2512101",               # no name
    f"AB{VISA}^DOE/JANE^2512101",       # B inside a word
])
def test_track_look_alikes_are_not_tracks(text: str) -> None:
    assert TRACK1 not in kinds(text) and TRACK2 not in kinds(text)


def test_a_finding_never_shows_the_number_or_the_name() -> None:
    [hit] = find_card_data(f"%B{UNIONPAY_19}^ZHANG/SAN^2512101".encode())
    shown = f"{hit} {hit!r}"
    assert UNIONPAY_19 not in shown and "ZHANG" not in shown
    assert f"{UNIONPAY_19[:6]}…{UNIONPAY_19[-4:]}" in shown


@settings(max_examples=300, deadline=None)
@given(body=st.integers(10**13, 10**14 - 1), before=st.text(), after=st.text())
def test_any_visa_number_between_text_is_found(body: int, before: str, after: str) -> None:
    number = with_check_digit(f"4{body}")
    # the boundary rule: the neighbours are not digits and not hex letters (a digit run touching
    # a-f is part of a hex string, which is decoded instead)
    hexish = "0123456789abcdefABCDEF"
    before = "".join(c for c in before if c not in "0123456789").rstrip(hexish)
    after = "".join(c for c in after if c not in "0123456789").lstrip(hexish)
    found = find_card_data(f"{before}{number}{after}".encode())
    assert [(h.kind, h.offset, h.pan.decode()) for h in found] == [(PAN, len(before.encode()), number)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(b"0123456789"), st.integers(0, 255)), min_size=13).map(bytes))
def test_a_hex_dump_shows_what_its_bytes_hold_and_nothing_more(data: bytes) -> None:
    # bytes rich in ASCII digits hex-dump to long all-digit runs ("3132..."): those are no number
    def seen(hits: list[CardData]) -> list[tuple[str, int, bytes]]:
        return [(h.kind, h.offset, h.pan) for h in hits]
    assert seen(find_card_data(data.hex().encode())) == seen(find_card_data(data, decode_hex=False))
    assert seen(find_card_data(data.hex().upper().encode())) == seen(find_card_data(data, decode_hex=False))


# -- files -----------------------------------------------------------------------------------


def test_a_card_number_in_a_text_file_is_found(planted: Path) -> None:
    (planted / "clean.log").write_text("nothing here 898310048161642 1732370313364\n")
    (planted / "leak.log").write_text(f"line one\nauth ok card {UNIONPAY_16}\n")
    result = scan([planted])
    assert [(f.path.name, f.data.kind, f.data.pan.decode()) for f in result.findings] == \
        [("leak.log", PAN, UNIONPAY_16)]
    assert result.files == 2 and result.bytes == sum(p.stat().st_size for p in planted.iterdir())
    assert UNIONPAY_16 not in str(result.findings[0]) and "card data" in result.summary().lower()


def test_a_card_number_in_a_gzip_file_is_found_even_torn(planted: Path) -> None:
    body = ("x" * 5000 + f" {VISA} " + "y" * 5000).encode()
    (planted / "log.gz").write_bytes(gzip.compress(body))
    (planted / "rotated.log.1").write_bytes(gzip.compress(body))          # gzip without the name
    whole = gzip.compress(body + b"z" * 100_000)
    (planted / "torn.gz").write_bytes(whole[: len(whole) // 2])
    found = {f.path.name: f.data for f in scan([planted]).findings}
    assert set(found) == {"log.gz", "rotated.log.1", "torn.gz"}
    assert all(d.pan == VISA.encode() and d.via == "gunzipped" for d in found.values())


def test_a_card_number_in_a_sqlite_database_and_its_wal_is_found(planted: Path) -> None:
    db = planted / "runs.db"
    con = sqlite3.connect(db)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA wal_autocheckpoint=0")
        con.execute("CREATE TABLE run (id INTEGER PRIMARY KEY, note TEXT)")
        con.execute("INSERT INTO run (note) VALUES (?)", (f"customer card {UNIONPAY_19}",))
        con.commit()
        # not checkpointed yet: the row is only in the write-ahead log
        assert [f.path.name for f in scan([planted]).findings] == ["runs.db-wal"]
    finally:
        con.close()   # the last connection checkpoints the log into the database and removes it
    assert [(f.path.name, f.data.pan.decode()) for f in scan([planted]).findings] == [("runs.db", UNIONPAY_19)]


def test_a_deleted_row_is_still_found_in_the_database_file(planted: Path) -> None:
    db = planted / "old.db"
    con = sqlite3.connect(db)
    try:
        con.execute("PRAGMA secure_delete=OFF")
        con.execute("CREATE TABLE t (note TEXT)")
        con.execute("INSERT INTO t VALUES (?), ('kept')", (f"pan {VISA}",))
        con.commit()
        con.execute("DELETE FROM t WHERE note != 'kept'")
        con.commit()
    finally:
        con.close()
    assert [f.path.name for f in scan([planted]).findings] == ["old.db"]


def test_the_capture_writer_masks_and_the_scan_agrees(planted: Path) -> None:
    with CaptureWriter(planted / "masked.cap.gz", port="emu://healthy") as cap:
        cap.record(TERMINAL_TO_HOST, b"\xa5\x5a" + VISA[:9].encode(), at=0.1)
        cap.record(TERMINAL_TO_HOST, VISA[9:].encode() + b"\x00", at=0.2)
    assert scan([planted]).findings == []


def test_a_card_number_split_over_capture_lines_is_found(planted: Path) -> None:
    header = "# pos-sim capture 1\n# tool: \"pos-sim 0.1.0\"\n# port: \"emu://x\"\n# baud: 115200\n"
    first, second = VISA[:7].encode().hex(), (VISA[7:].encode() + b"\x00").hex()
    (planted / "leak.cap").write_text(f"{header}< 0.100000 a55a{first}\n> 0.150000 a55a\n"
                                      f"< 0.200000 {second}\n= 0.300000 end\n")
    [finding] = scan([planted]).findings
    assert finding.data.pan == VISA.encode() and finding.data.via == "capture stream <"


def test_all_digit_chunk_hex_in_a_capture_is_not_a_number(planted: Path) -> None:
    # the chunk "4111111111111111" is the bytes 41 11 11 ...: hex, not a decimal number
    capture = f"# pos-sim capture 1\n# baud: 115200\n< 0.017508 {VISA}\n< 0.017600 {MASTERCARD_2}\n"
    (planted / "x.cap").write_text(capture)
    assert scan([planted]).findings == []
    # the same line outside a capture is only text, and there it is a number
    (planted / "x.cap").write_text(capture.replace("# pos-sim capture 1\n", ""))
    assert len(scan([planted]).findings) == 2


def test_links_and_special_files_are_not_followed(planted: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "leak.txt").write_text(VISA)
    try:
        (planted / "link.txt").symlink_to(outside / "leak.txt")
        (planted / "dir-link").symlink_to(outside)
        result = scan([planted])
        assert result.findings == [] and result.files == 0
    finally:
        shutil.rmtree(outside)


# -- the session-end hook --------------------------------------------------------------------


def test_card_data_left_by_a_test_fails_the_run_and_is_shown_masked(planted: Path) -> None:
    # no card number in these files' text: they build it
    (planted / "test_leaves_card_data.py").write_text(
        "def test_writes_a_log(tmp_path):\n"
        "    number = '4' + '1' * 15\n"
        "    (tmp_path / 'app.log').write_text('approved ' + number + '\\n')\n")
    # as pytest-textual-snapshot does: a report in the rootdir, written at the end of the session
    (planted / "conftest.py").write_text(
        "def pytest_sessionfinish(session):\n"
        "    (session.config.rootpath / 'snapshot_report.html').write_text('<td>' + '5' * 12 + '4' * 4 + '</td>')\n")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
                        "--rootdir", str(planted), "--basetemp", str(planted / "base"),
                        str(planted / "test_leaves_card_data.py")],
                       cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "1 passed" in out and "app.log: PAN 411111…1111" in out and VISA not in out
    assert "snapshot_report.html: PAN 555555…4444" in out and "5" * 12 + "4" * 4 not in out
    assert "card-data scan: " in out and "2 CARD DATA FINDING(S)" in out
