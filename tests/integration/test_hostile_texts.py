"""A terminal that puts card data into every text it sends: nothing the tool prints or writes
holds more of it than BIN and last four (drivers/masking.py, docs/drivers.md "Card data").

The scenario ``hostile-texts`` (pos_sim/emulator/scenarios/hostile-texts.toml) carries test
card numbers, 13 to 19 digits, contiguous and grouped, and track 1/2 data, in every string field
of the protocol.  Every command runs as the installed ``pos-sim`` executable, as a technician
would run it, against a throwaway registry; then tests/cardscan.py (written independently of
the masking code) reads everything printed and written, the SQLite file included.  The masked
forms expected below are written out by hand from the rule, so that a test that sees no card
data because nothing was shown at all fails too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import cardscan

PORT = "emu://hostile-texts?speed=50"
EXE = Path(sys.executable).with_name("pos-sim")
#: what each field of the scenario must look like wherever it is shown (BIN and last four; a
#: track is removed: one * per character); by hand from the scenario file and the rule
MANUFACTURER = "SimPOS 411111******1111"          # 16 digits, contiguous
MODEL = "SP-M7 5500-00**-****-0004"               # 16, grouped by dashes
SERIAL = "SP371449*****8431"                      # 15 (Amex)
HARDWARE = "422222***2222"                        # 13
FIRMWARE = "3.2.1 " + "*" * 39                    # a track 2 with its sentinels
MERCHANT = "6221 26** **** ***0 001"              # 19, grouped by spaces
#: device.firmware_text, after every note, ERROR detail and LC_RESULT message: 16 grouped by
#: spaces, 18 contiguous, a track 2
FIRMWARE_TEXT = "ref 3530 11** **** 0000 id 510510********0004 " + "*" * 24


def _run(out: Path, name: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``pos-sim ARGS``; its stdout and stderr are kept in ``out`` for the scan."""
    r = subprocess.run([str(EXE), *args], capture_output=True, text=True, timeout=600, check=False,
                       stdin=subprocess.DEVNULL, env=env, cwd=out)
    (out / f"{name}.stdout").write_text(r.stdout, encoding="utf-8")
    (out / f"{name}.stderr").write_text(r.stderr, encoding="utf-8")
    return r


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, subprocess.CompletedProcess[str]]]:
    """Every command once, against one registry file; returns the output folder and the runs."""
    assert EXE.exists(), f"{EXE}: the installed pos-sim executable"
    out = tmp_path_factory.mktemp("hostile")
    db = out / "registry.db"
    home = out / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home / "data"), "POS_SIM_DB": str(db),
           "LANG": "C.UTF-8"}
    runs: dict[str, subprocess.CompletedProcess[str]] = {}
    common = ("--non-interactive", "--lang", "en", "--db", str(db))
    steps: list[tuple[str, tuple[str, ...]]] = [
        ("info", ("info", PORT)),
        ("diag", ("diag", PORT, *common, "--report", "report.html", "--capture", "session.cap")),
        ("diag_json", ("diag", PORT, "--json", *common, "--report", "report.md")),
        ("diag_report_json", ("diag", PORT, "--json", *common, "--report", "report.json",
                              "--capture", "session.cap.gz")),
        ("decode", ("decode", "session.cap")),
        ("decode_json", ("decode", "session.cap.gz", "--json", "--raw")),
        ("replay", ("replay", "session.cap", "--junit", "replay.xml")),
        ("backup", ("device", "backup", PORT, "-o", "backups", "--db", str(db))),
        ("devices", ("devices", "--db", str(db))),
        ("devices_json", ("devices", "--json", "--db", str(db))),
        ("device_json", ("devices", SERIAL, "--json", "--db", str(db))),
        ("runs", ("runs", SERIAL, "--db", str(db))),
        ("runs_json", ("runs", SERIAL, "--json", "--db", str(db))),
        ("audit", ("audit", "show", "--db", str(db))),
        ("audit_json", ("audit", "show", "--json", "--db", str(db))),
    ]
    for name, args in steps:
        runs[name] = _run(out, name, *args, env=env)
    return out, runs


def test_every_command_ran(session: tuple[Path, dict[str, subprocess.CompletedProcess[str]]]) -> None:
    out, runs = session
    # diag: the scenario's verdict (screen failed, paper near its end, errors in the log)
    assert runs["diag"].returncode == 88, runs["diag"].stderr
    assert json.loads(runs["diag_json"].stdout)["exit_status"] == 88
    for name in ("info", "decode", "decode_json", "backup", "devices", "devices_json", "device_json", "runs",
                 "runs_json", "audit", "audit_json"):
        assert runs[name].returncode == 0, f"{name}: {runs[name].stderr}"
    assert runs["replay"].returncode in (0, 4), runs["replay"].stderr   # 4: no expectation was given
    for written in ("report.html", "report.md", "report.json", "session.cap", "session.cap.gz", "replay.xml",
                    "registry.db"):
        assert (out / written).stat().st_size > 0, written
    assert len(list((out / "backups").glob("*.json"))) == 1


def test_nothing_printed_or_written_holds_card_data(
        session: tuple[Path, dict[str, subprocess.CompletedProcess[str]]]) -> None:
    out, _ = session
    result = cardscan.scan([out])
    assert not result.unreadable
    assert result.files >= 30, result.summary()   # every stdout, stderr, report, capture, backup, the database
    assert result.findings == [], "\n".join(str(f) for f in result.findings)


def test_the_masked_forms_are_shown_where_the_fields_are(
        session: tuple[Path, dict[str, subprocess.CompletedProcess[str]]]) -> None:
    out, runs = session
    info = runs["info"].stdout
    for shown in (MANUFACTURER, MODEL, SERIAL, HARDWARE, FIRMWARE, MERCHANT):
        assert shown in info, shown

    report = json.loads(runs["diag_json"].stdout)
    device = report["device"]
    assert (device["manufacturer"], device["model"], device["serial"], device["hardware_rev"],
            device["firmware_version"], device["merchant_id"]) == (MANUFACTURER, MODEL, SERIAL, HARDWARE, FIRMWARE,
                                                                   MERCHANT)
    # the self-test notes and ERROR details carry the firmware's text, masked
    assert any(FIRMWARE_TEXT in s for s in _strings(report["results"])), "no note or detail shown"
    assert MODEL in runs["diag"].stdout and SERIAL in runs["diag"].stdout

    for name in ("report.html", "report.md", "report.json"):
        text = (out / name).read_text(encoding="utf-8")
        if name.endswith(".md"):   # Markdown escapes the stars
            text = text.replace("\\*", "*")
        assert SERIAL in text and MODEL in text, name

    # the capture's device note, and decode's reading of the identity frame
    notes = [line for line in (out / "session.cap").read_text().splitlines() if line.startswith("@ ")]
    device_note = json.loads(next(n for n in notes if n.split()[2] == "device").split(" ", 3)[3])
    assert device_note == {"manufacturer": MANUFACTURER, "model": MODEL, "serial": SERIAL,
                           "hardware_rev": HARDWARE, "firmware_version": FIRMWARE}
    assert MANUFACTURER in runs["decode"].stdout
    decoded = [json.loads(line) for line in runs["decode_json"].stdout.splitlines()]
    assert [d["value"] for d in decoded if d.get("kind") == "note" and d["key"] == "device"] == [device_note]
    # an identity frame that reached the file intact decodes to the masked text (one that the
    # host's bytes interleaved keeps the wire's CRC over unmasked bytes: docs/capture-format.md)
    assert all(d["fields"]["model"] == MODEL for d in decoded if d.get("type") == "INFO_REPLY")

    assert SERIAL in runs["devices"].stdout and SERIAL in runs["devices_json"].stdout
    shown = json.loads(runs["device_json"].stdout)["device"]
    assert (shown["serial"], shown["manufacturer"], shown["model"], shown["firmware"], shown["merchant"]) == \
        (SERIAL, MANUFACTURER, MODEL, FIRMWARE, MERCHANT)
    assert SERIAL in runs["audit"].stdout
    assert SERIAL in runs["runs_json"].stdout
    [backup] = (out / "backups").glob("*.json")
    assert json.loads(backup.read_text())["serial"] == SERIAL
    assert SERIAL.encode() in (out / "registry.db").read_bytes()
