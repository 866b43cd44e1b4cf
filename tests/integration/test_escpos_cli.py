"""pos-sim diag / status / info on an emulated receipt printer, end to end through the command line:
the exit bits, the reports, the registry, and a bad option as one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest

from pos_sim.emulator.escpos import EscPosPrinter, EscPosServer


def pos_sim(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pos_sim.cli", *args], capture_output=True, text=True, timeout=120,
                          check=False, stdin=subprocess.DEVNULL, env=env)


@pytest.fixture
def printer(request: pytest.FixtureRequest) -> Iterator[tuple[EscPosServer, str]]:
    faults: set[str] = getattr(request, "param", set())
    with EscPosServer(EscPosPrinter(faults)) as server:
        yield server, server.serve_pty()


@pytest.mark.parametrize(("printer", "status", "verdict"), [
    ({"cutter-jam"}, 8, "needs_repair"),
    ({"paper-out"}, 16, "needs_attention"),
    ({"cover-open", "paper-near-end"}, 16, "needs_attention"),
], indirect=["printer"])
def test_diag_exit_bits_reports_and_registry(printer: tuple[EscPosServer, str], status: int, verdict: str,
                                             tmp_path: Path) -> None:
    _, port = printer
    db = tmp_path / "registry.db"
    html, md = tmp_path / "r.html", tmp_path / "r.md"
    r = pos_sim("diag", port, "--device", "escpos", "--non-interactive", "--lang", "en", "--db", str(db),
                "--report", str(html))
    assert r.returncode == status, r.stdout + r.stderr
    assert f"exit {status}" in r.stdout and "recorded as run #1" in r.stderr
    assert "Printer" in html.read_text(encoding="utf-8")
    r = pos_sim("diag", port, "--device", "escpos", "--non-interactive", "--lang", "zh", "--db", str(db),
                "--report", str(md))
    assert r.returncode == status
    assert "打印机" in md.read_text(encoding="utf-8")
    serial = "escpos:" + port   # the port's identity, online or offline (GS I is not answered offline)
    runs = pos_sim("runs", serial, "--db", str(db))
    assert runs.returncode == 0, runs.stdout + runs.stderr
    assert runs.stdout.count(verdict) == 2


def test_diag_without_answer_is_bit_4_and_a_bad_device_kind_is_one_line() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        r = pos_sim("diag", os.ttyname(slave), "--device", "escpos", "--json", "--no-record")
    finally:
        os.close(master)
        os.close(slave)
    assert r.returncode == 4
    assert json.loads(r.stdout)["exit_status"] == 4 and "no answer to DLE EOT 1" in r.stderr
    r = pos_sim("diag", "/dev/null", "--device", "fax")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_status_and_info_show_the_decoded_bits(printer: tuple[EscPosServer, str]) -> None:
    server, port = printer
    server.set_fault("paper-near-end")
    r = pos_sim("status", port, "--device", "escpos", "--lang", "en")
    assert r.returncode == 0, r.stderr
    assert "near end" in r.stdout and "DLE EOT 1-4 12 12 12 1E, GS r 1 03" in r.stdout
    doc = json.loads(pos_sim("status", port, "--json").stdout)
    assert doc["components"]["printer"]["status"]["flags"]["roll_paper"] == {"near_end": True, "paper_end": False}
    doc = json.loads(pos_sim("info", port, "--json", "--device", "escpos").stdout)
    assert doc["device"]["serial"] == f"escpos:{port}" and doc["status"]["paper_sensor"]["near_end"] is True
    assert doc["device"]["manufacturer"] == "pos-sim"   # GS I 66


def test_the_tui_printer_tile_shows_a_receipt_printers_status() -> None:
    from drivers.escpos import ReceiptPrinter
    from pos_sim.cli.status import escpos_block
    from pos_sim.diagnostics.catalogue import load_catalogue
    from pos_sim.tui.model import TileState, tile_lines

    with EscPosServer(EscPosPrinter({"cover-open", "paper-near-end"})) as server, \
            ReceiptPrinter.open(server.serve_pty()) as printer:
        block = escpos_block(printer.status())
    _, _, lines = tile_lines(TileState("printer", status=block), "en", load_catalogue())
    assert "DLE EOT 1-4 1A 16 12 1E, GS r 1 --" in lines
    _, _, zh = tile_lines(TileState("printer", status=block), "zh-CN", load_catalogue())
    assert len(zh) == len(lines) and zh != lines   # the same parts, in Chinese


def test_one_printer_offline_then_online_is_one_device_in_the_registry(tmp_path: Path) -> None:
    db = tmp_path / "registry.db"
    with EscPosServer(EscPosPrinter({"paper-out"})) as server:
        port = server.serve_pty()
        assert pos_sim("diag", port, "--device", "escpos", "--non-interactive", "--db", str(db)).returncode == 16
        server.set_fault("paper-out", False)   # paper loaded: online, and GS I answered now
        assert pos_sim("diag", port, "--device", "escpos", "--non-interactive", "--db", str(db)).returncode == 0
    devices = json.loads(pos_sim("devices", "--json", "--db", str(db)).stdout)
    serials = [d["serial"] for d in (devices if isinstance(devices, list) else devices["devices"])]
    assert serials == [f"escpos:{port}"]


def test_capture_on_a_printer_found_by_auto_is_refused_in_one_line_before_any_hello(tmp_path: Path) -> None:
    receipt = tmp_path / "receipt.bin"
    with EscPosServer(EscPosPrinter(), receipt=receipt) as server:
        r = pos_sim("diag", server.serve_pty(), "--capture", str(tmp_path / "c.cap"), "--non-interactive")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "is an ESC/POS receipt printer; --capture records the terminal protocol" in r.stderr
    assert receipt.read_bytes() == b"\x1b\x40"   # status requests and ESC @ only: no HELLO frame
    assert not (tmp_path / "c.cap").exists()
