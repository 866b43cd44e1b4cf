"""The emulated ESC/POS printer, through pyserial on a real pty and through python-escpos.

Expected bytes are written out by hand from the Epson reference (DLE EOT replies carry the
fixed bits 0x12; DLE EOT 4 near end 0x0C, paper end 0x60; GS r 1 near end 0x03, paper end 0x0C).
python-escpos 3.1 is a peer nobody here wrote: its ``paper_status()`` and ``is_online()`` must
agree with each emulated fault.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial
from escpos.printer import Dummy
from escpos.printer import Serial as EscposSerial

from pos_sim.emulator.escpos import EscPosPrinter, EscPosServer

# fault: (DLE EOT 1, 2, 3, 4, GS r 1 or None when the printer is offline and holds it)
EXPECTED: dict[str, tuple[int, int, int, int, int | None]] = {
    "none": (0x12, 0x12, 0x12, 0x12, 0x00),
    "paper-near-end": (0x12, 0x12, 0x12, 0x1E, 0x03),
    "paper-out": (0x1A, 0x32, 0x12, 0x7E, None),
    "cover-open": (0x1A, 0x16, 0x12, 0x12, None),
    "cutter-jam": (0x1A, 0x52, 0x1A, 0x12, None),
    "offline": (0x1A, 0x12, 0x12, 0x12, None),
}
# python-escpos: paper_status() 2 adequate, 1 near end, 0 none; is_online()
ESCPOS_SAYS: dict[str, tuple[int, bool]] = {
    "none": (2, True), "paper-near-end": (1, True), "paper-out": (0, False), "cover-open": (2, False),
    "cutter-jam": (2, False), "offline": (2, False),
}


@pytest.fixture(params=sorted(EXPECTED))
def fault(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def served(fault: str, tmp_path: Path) -> Iterator[EscPosServer]:
    with EscPosServer(EscPosPrinter(set() if fault == "none" else {fault}), receipt=tmp_path / "receipt.bin") as s:
        s.serve_pty()
        yield s


def _ask(port: serial.Serial, command: bytes, timeout: float = 0.6) -> bytes:
    port.reset_input_buffer()
    port.write(command)
    port.timeout = timeout
    return bytes(port.read(1))


def test_each_fault_answers_the_references_bytes_over_a_pty(fault: str, served: EscPosServer) -> None:
    assert served.port is not None
    with serial.Serial(served.port, 9600, timeout=0.6) as port:
        got = [_ask(port, bytes([0x10, 0x04, n])) for n in (1, 2, 3, 4)]
        gs_r = _ask(port, b"\x1d\x72\x01", timeout=0.3)
    *eot, paper = EXPECTED[fault]
    assert got == [bytes([b]) for b in eot]
    assert gs_r == (b"" if paper is None else bytes([paper]))


def test_python_escpos_agrees_with_each_fault(fault: str, served: EscPosServer) -> None:
    printer = EscposSerial(devfile=served.port, baudrate=9600, timeout=0.5)
    printer.open()
    try:
        assert (printer.paper_status(), printer.is_online()) == ESCPOS_SAYS[fault]
    finally:
        printer.close()


def test_print_data_is_kept_and_held_while_offline(tmp_path: Path) -> None:
    page = Dummy()
    page.text("pos-sim test page\n")
    page.cut()
    printer = EscPosPrinter({"paper-out"})
    assert printer.receive(page.output + b"\x10\x04\x04") == b"\x7e"   # real time: answered at once
    assert printer.printed == b""                                      # held: no paper
    printer.set_fault("paper-out", False)
    assert printer.printed == page.output
    assert printer.receive(b"\x1d\x72") == b"" and printer.receive(b"\x01") == b"\x00"   # split read


def test_pos_sim_emulate_device_escpos_on_tcp_with_a_receipt_file(tmp_path: Path) -> None:
    receipt = tmp_path / "r.bin"
    proc = subprocess.Popen([sys.executable, "-m", "pos_sim.cli", "emulate", "--device", "escpos", "--fault",
                             "paper-near-end", "--transport", "tcp", "--receipt", str(receipt)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().split()
        assert first[0] == "PORT" and first[1].startswith("socket://127.0.0.1:")
        with serial.serial_for_url(first[1], timeout=2) as port:
            port.write(b"\x10\x04\x04")
            assert port.read(1) == b"\x1e"
            port.write(b"hello printer\n\x1dV\x00")
            deadline = time.monotonic() + 10
            while b"hello printer" not in receipt.read_bytes() and time.monotonic() < deadline:
                time.sleep(0.05)
        assert receipt.read_bytes() == b"hello printer\n\x1dV\x00"
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "stopped" in out


def test_emulate_refuses_terminal_options_for_a_printer() -> None:
    r = subprocess.run([sys.executable, "-m", "pos_sim.cli", "emulate", "--device", "escpos", "--scenario", "dropped"],
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "--scenario" in r.stderr
    r = subprocess.run([sys.executable, "-m", "pos_sim.cli", "emulate", "--fault", "paper-out"],
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 1 and "--device escpos" in r.stderr


def test_a_host_that_goes_away_leaves_the_pty_served() -> None:
    with EscPosServer(EscPosPrinter()) as s:
        path = s.serve_pty()
        for _ in range(2):
            fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
            os.write(fd, b"\x10\x04\x01")
            r, _, _ = select.select([fd], [], [], 5)
            assert r and os.read(fd, 1) == b"\x12"
            os.close(fd)
        assert s.running
