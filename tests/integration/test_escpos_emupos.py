"""pos-sim diagnoses emupos's simulated receipt printer, a peer nobody on the team wrote.

emupos 0.4.0 (PyPI, Apache-2.0) serves an Epson TM-T20III profile over TCP and a pty, with
faults switched through its own CLI (``emupos fault set``) and receipts read back with
``emupos receipt show``.  It needs Python 3.13: ``.ci/emupos`` makes the venv (in the user's
cache, ``~/.cache/pos-sim/emupos-0.4.0``, or ``POS_SIM_EMUPOS_VENV``); without it these tests
are skipped, except in CI, where that is a failure.  Expected verdicts: the table of
docs/escpos.md, written out here by hand.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from drivers.escpos import ReceiptPrinter
from pos_sim.diagnostics.engine import DiagnosticsEngine

_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
VENV = Path(os.environ.get("POS_SIM_EMUPOS_VENV") or _CACHE / "pos-sim" / "emupos-0.4.0")
EMUPOS = VENV / "bin" / "emupos"

if not EMUPOS.exists():
    if os.environ.get("CI"):
        pytest.fail(f"{EMUPOS} is missing: .ci/run should have made it with .ci/emupos", pytrace=False)
    pytest.skip(f"emupos needs a Python 3.13 venv at {VENV}: run .ci/emupos to make it", allow_module_level=True)

# emupos fault: (verdict, code, exit status) with nobody present (docs/escpos.md)
VERDICTS = {
    None: ("pass", None, 0),   # the status checks pass; the page is "not tested (needs a person)"
    "paper-near-end": ("warn", "paper_near_end", 16),
    "paper-out": ("warn", "paper_end", 16),
    "cover-open": ("warn", "cover_open", 16),
    "offline": ("warn", "printer_offline", 16),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Emupos:
    api: str
    tcp: str
    pty: Path
    proc: subprocess.Popen[str]

    def cli(self, *args: str) -> str:
        r = subprocess.run([str(EMUPOS), "--api", self.api, *args], capture_output=True, text=True, timeout=60,
                           check=False)
        assert r.returncode == 0, f"emupos {' '.join(args)}: {r.stdout}{r.stderr}"
        return r.stdout


@pytest.fixture(scope="module")
def emupos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emupos]:
    home = tmp_path_factory.mktemp("emupos")
    api_port, tcp_port = _free_port(), _free_port()
    (home / "emupos.yaml").write_text(f"""schema: 1
api: {{host: 127.0.0.1, port: {api_port}}}
devices:
  - id: front
    type: printer
    profile: epson-tm-t20iii
    receipts_dir: {home / 'receipts'}
    connections:
      - tcp: {{host: 127.0.0.1, port: {tcp_port}}}
      - serial: {{pty: true, link: front}}
""", encoding="utf-8")
    env = {**os.environ, "TMPDIR": str(home)}
    proc = subprocess.Popen([str(EMUPOS), "run", "--config", str(home / "emupos.yaml")], cwd=home, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    api = f"http://127.0.0.1:{api_port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{api}/api/v1/devices", timeout=2) as r:
                if r.status == 200:
                    break
        except (urllib.error.URLError, OSError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out = proc.communicate()[0]
            pytest.fail(f"emupos did not start: {out[-2000:]}")
        time.sleep(0.2)
    try:
        yield Emupos(api, f"socket://127.0.0.1:{tcp_port}", home / "emupos" / "front", proc)
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def _diag(port: str, device: str = "escpos") -> dict[str, object]:
    r = subprocess.run([sys.executable, "-m", "pos_sim.cli", "diag", port, "--device", device, "--json",
                        "--non-interactive", "--no-record", "--lang", "en"],
                       capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL)
    report: dict[str, object] = json.loads(r.stdout)
    assert report["exit_status"] == r.returncode, r.stderr
    return report


@pytest.mark.parametrize("fault", list(VERDICTS), ids=lambda f: f or "no-fault")
def test_the_verdict_follows_each_emupos_printer_fault(emupos: Emupos, fault: str | None) -> None:
    if fault:
        emupos.cli("fault", "set", "front", fault)
    try:
        report = _diag(emupos.tcp)
    finally:
        if fault:
            emupos.cli("fault", "clear", "front", fault)
    results = report["results"]
    assert isinstance(results, list) and len(results) == 1
    result = results[0]
    assert (result["verdict"], result["code"], report["exit_status"]) == VERDICTS[fault]
    device = report["device"]
    assert isinstance(device, dict) and device["serial"]


def test_auto_finds_the_printer_on_emupos_pty_and_reads_its_identity(emupos: Emupos) -> None:
    report = _diag(str(emupos.pty), device="auto")
    device = report["device"]
    assert isinstance(device, dict)
    assert (device["manufacturer"], device["model"]) == ("EPSON", "TM-T20III")   # its GS I 66 / 67
    assert report["exit_status"] == 0


class Accept:
    def show(self, component: str, prompt: str, text: str) -> None:
        raise AssertionError("unexpected prompt")

    def confirm(self, component: str, prompt: str, text: str) -> bool:
        return True


def test_the_test_page_shows_up_in_emupos_receipt(emupos: Emupos) -> None:
    with ReceiptPrinter.open(emupos.tcp) as printer:
        report = DiagnosticsEngine(printer, lang="en", prompter=Accept()).run("full", interactive=True)
    (result,) = report.results
    assert (result.verdict, report.exit_status) == ("pass", 0)
    # every receipt emupos completed (another test's auto-detection may have left one of its own)
    deadline = time.monotonic() + 30
    while True:
        ids = [r["id"] for r in json.loads(emupos.cli("receipt", "list", "--device", "front", "--json"))]
        texts = [emupos.cli("receipt", "show", receipt, "--device", "front") for receipt in ids]
        pages = [t for t in texts if "pos-sim test page" in t]
        if pages or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(pages) == 1, texts
    assert "ESC/POS status read by pos-sim" in pages[0]
    # the character line wraps at the TM-T20III's 48 columns of font A
    assert "".join(chr(c) for c in range(0x21, 0x7F)) in pages[0].replace("\n", "")
