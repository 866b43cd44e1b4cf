"""Every line rate from 1200 to 921600 baud: the quick plan, a four-page backup and a lifecycle
operation, through the `pos-sim` executable, over a real pty to the emulator throttled to that rate.

The emulator moves bytes at the rate it is given (a pty ignores baud, so the emulator puts the
line time back); the host is told the same rate with ``--baud`` and must derive every timer from
it (docs/protocol.md section 5).  On a clean line that means no request is ever sent twice: a
retransmit would be the host giving up on an answer the line had not yet carried.

Expected values come from the scenario and the spec, worked by hand: 128 records at 32 a page
(a 1024-byte payload holds min(32, (1024 - 7) // 29) records) is exactly four full pages; the
backup's digest is recomputed here from the pages in the file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pos_sim.emulator import EmulatorServer
from pos_sim.emulator.scenario import SCENARIO_DIR
from pos_sim.services.keys import KeyFile

RATES = [1200, 2400, 9600, 19200, 38400, 57600, 115200, 230400, 921600]
RECORDS = 128
PAGES = 4
SERIAL = "SP0000123"
#: healthy.toml's key (docs/protocol.md worked example 8): 00 01 02 ... 1F
KEY = bytes(range(32))


def _pos_sim(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pos_sim.cli", *args], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=600, check=False)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """healthy, with a transaction log of exactly four full pages."""
    text = SCENARIO_DIR.joinpath("healthy.toml").read_text(encoding="utf-8")
    assert "records = 120" in text
    path = tmp_path_factory.mktemp("scenario") / "four-pages.toml"
    path.write_text(text.replace("records = 120", f"records = {RECORDS}"), encoding="utf-8")
    return path


@pytest.fixture
def line(request: pytest.FixtureRequest, scenario: Path, tmp_path: Path) -> Iterator[tuple[str, int, dict[str, str]]]:
    baud: int = request.param
    keys = tmp_path / "keys.toml"
    KeyFile(keys, {SERIAL: KEY}).save()
    env = {**os.environ, "POS_SIM_DB": f"sqlite:///{tmp_path / 'registry.db'}", "POS_SIM_KEYS": str(keys),
           "NO_COLOR": "1"}
    server = EmulatorServer(scenario, baud=baud, speed=float("inf"), state_path=tmp_path / "terminal.json")
    try:
        yield server.serve_pty(), baud, env
    finally:
        server.stop()


@pytest.mark.parametrize("line", RATES, indirect=True, ids=[f"{r}baud" for r in RATES])
def test_quick_plan_backup_and_unbind_at_every_rate(line: tuple[str, int, dict[str, str]], tmp_path: Path) -> None:
    port, baud, env = line
    rate = str(baud)

    r = _pos_sim("diag", port, "--baud", rate, "--plan", "quick", "--non-interactive", "--json", "--no-record",
                 "--lang", "en", env=env)
    report = json.loads(r.stdout)
    assert r.returncode == 0, r.stderr
    assert report["verdict"] == "ok" and report["device"]["serial"] == SERIAL
    assert {f["verdict"] for f in report["results"]} == {"pass"}
    assert len(report["results"]) == 11
    # a clean line at the right rate: nothing sent twice, nothing timed out, nothing dropped
    assert report["link"]["retransmits"] == 0, report["link"]
    assert report["link"]["timeouts"] == 0
    assert report["link"]["deframer"]["bytes_dropped"] == 0

    r = _pos_sim("device", "backup", port, "--baud", rate, "-o", str(tmp_path / "backups"), "--json", env=env)
    assert r.returncode == 0, r.stderr
    backup = json.loads(r.stdout)
    assert (backup["records"], backup["pages"]) == (RECORDS, PAGES)
    doc = json.loads(Path(backup["path"]).read_text(encoding="utf-8"))
    pages = [base64.b64decode(p) for p in doc["page_data"]]
    assert len(pages) == PAGES and len(doc["transactions"]) == RECORDS
    # full pages: each holds 32 records of 29 bytes after its count byte (the page number and
    # the page CRC around them are not kept: docs/protocol.md section 10)
    assert {len(p) for p in pages} == {1 + 32 * 29}
    assert hashlib.sha256(b"".join(pages)).hexdigest() == backup["sha256"]

    r = _pos_sim("device", "unbind", port, "--baud", rate, "--reason", f"line test at {baud}", "--yes", "--json",
                 env=env)
    assert r.returncode == 0, r.stderr
    op = json.loads(r.stdout)
    assert (op["state_before"], op["state"], op["forced"]) == ("bound", "unactivated", False)
    assert op["backup"] == backup["path"]


def test_a_host_told_the_wrong_rate_says_so_in_one_line(scenario: Path, tmp_path: Path) -> None:
    # the line runs at 2400 but the host assumes 115200: its answer timeout is far too short
    # for a 1 KiB page (4.3 s on the line), and it must fail cleanly, not hang or trace back
    env = {**os.environ, "POS_SIM_DB": f"sqlite:///{tmp_path / 'registry.db'}"}
    server = EmulatorServer(scenario, baud=2400, speed=float("inf"))
    try:
        port = server.serve_pty()
        r = _pos_sim("device", "backup", port, "--baud", "115200", "-o", str(tmp_path / "b"), env=env)
    finally:
        server.stop()
    assert r.returncode == 4
    lines = r.stderr.strip().splitlines()
    assert "no answer to TXLOG_READ" in lines[-1] and "no backup was recorded" in lines[-1]
    assert "Traceback" not in r.stderr
    assert not list(tmp_path.glob("b/*.json"))
