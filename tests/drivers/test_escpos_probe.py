"""Auto-detection asks ``DLE EOT 1`` before HELLO (docs/escpos.md, "Auto-detection").

A printer must be sent nothing but status requests and the test page, so the emulated
printer's receipt holds exactly the page; a terminal must take the probe's 3 bytes as line
noise, so its diagnosis is the same as with ``--device terminal`` and carries no link warning.
The probe's wait is checked against a figure computed by hand, on a fake clock.
"""

from __future__ import annotations

import os
import select
import threading
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.device import Device, open_device
from drivers.escpos import PrinterLink, ReceiptPrinter, make_test_page, open_printer_port
from drivers.link import LinkTimings
from pos_sim.diagnostics.engine import DiagnosticReport, DiagnosticsEngine
from pos_sim.emulator import EmulatorServer, load_scenario
from pos_sim.emulator.escpos import EscPosPrinter, EscPosServer
from pos_sim.ports import register_url_schemes
from protocols.escpos import DLE_EOT, probe_timeout

TIMINGS = LinkTimings(keepalive_idle=3600)


class Person:
    """A technician who accepts every test page."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def show(self, component: str, prompt: str, text: str) -> None:
        raise AssertionError("the printer test only asks to confirm")

    def confirm(self, component: str, prompt: str, text: str) -> bool:
        self.asked.append(prompt)
        return True


def test_a_printer_found_by_auto_receives_nothing_but_the_test_page(tmp_path: Path) -> None:
    receipt = tmp_path / "receipt.bin"
    person = Person()
    with EscPosServer(EscPosPrinter(), receipt=receipt) as server, \
            open_device(server.serve_pty(), "auto", timeout=5) as device:
        assert isinstance(device, ReceiptPrinter)
        report = DiagnosticsEngine(device, lang="en", prompter=person).run("full", interactive=True)
    assert person.asked == ["confirm_print"]
    assert [(f.component, f.verdict) for f in report.results] == [("printer", "pass")]
    # ESC @ (sent once the printer is known) and the page: no HELLO frame, no other byte
    assert receipt.read_bytes() == b"\x1b\x40" + make_test_page()


def _diagnose(port: str, kind: str) -> DiagnosticReport:
    with open_device(port, kind, timeout=10, timings=TIMINGS) as device:
        assert not isinstance(device, ReceiptPrinter)
        return DiagnosticsEngine(device, lang="en").run("full", interactive=False)


def _verdicts(report: DiagnosticReport) -> list[tuple[str, str, str | None]]:
    return [(f.component, f.verdict, f.code) for f in report.results]


def _no_link_warning(report: DiagnosticReport) -> None:
    assert report.communication == []
    assert report.link["deframer"]["bad_crc"] == 0
    assert report.link["retransmits"] == 0


@pytest.fixture
def terminal_pty() -> Iterator[str]:
    server = EmulatorServer(load_scenario("healthy"), speed=float("inf"))
    try:
        yield server.serve_pty()
    finally:
        server.stop()


def test_a_terminal_on_a_pty_gets_the_same_diagnosis_with_auto_and_no_link_warning(terminal_pty: str) -> None:
    auto = _diagnose(terminal_pty, "auto")
    told = _diagnose(terminal_pty, "terminal")
    assert _verdicts(auto) == _verdicts(told)
    assert (auto.verdict, auto.exit_status) == (told.verdict, told.exit_status) == ("ok", 0)
    _no_link_warning(auto)


def test_a_terminal_through_emu_url_gets_the_same_diagnosis_with_auto() -> None:
    register_url_schemes()
    auto = _diagnose("emu://healthy?speed=inf", "auto")
    told = _diagnose("emu://healthy?speed=inf", "terminal")
    assert _verdicts(auto) == _verdicts(told)
    assert (auto.verdict, auto.exit_status) == (told.verdict, told.exit_status)
    _no_link_warning(auto)


class FakeClock:
    """Moves on by ``step`` at each reading."""

    def __init__(self, step: float) -> None:
        self.now, self.step, self.readings = 0.0, step, 0

    def __call__(self) -> float:
        self.now += self.step
        self.readings += 1
        return self.now


def test_the_probe_waits_the_short_line_rate_budget_and_says_the_3_bytes_first() -> None:
    # hand-computed: DLE EOT 1 (3 bytes) and its reply (1 byte) at 9600 baud 8N1 are 40 bits,
    # 4.17 ms; twice that plus the 0.15 s probe turnaround is 0.1583 s (at 115200: 0.1507 s)
    assert probe_timeout(9600) == pytest.approx(0.158333, abs=1e-5)
    assert probe_timeout(115200) == pytest.approx(0.150694, abs=1e-5)
    assert probe_timeout(9600) < 0.5   # shorter than a real request's wait (test_escpos_driver: 0.5083 s)
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    try:
        port, rate = open_printer_port(path, 9600)
        clock = FakeClock(0.01)
        link = PrinterLink(port, name=path, baud=rate, clock=clock)
        with pytest.raises(Exception, match=r"no answer to DLE EOT 1 within 0\.16 s"):
            link.request(DLE_EOT[1], timeout=probe_timeout(rate))
        assert 15 <= clock.readings <= 18   # read until the deadline passed, never far beyond
        r, _, _ = select.select([master], [], [], 5)
        assert r and os.read(master, 16) == b"\x10\x04\x01"
        link.close()
    finally:
        os.close(master)
        os.close(slave)


def test_silence_to_the_probe_closes_the_port_and_a_status_byte_with_noise_is_no_printer() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)

    def play() -> None:
        r, _, _ = select.select([master], [], [], 5)
        assert r and os.read(master, 3) == b"\x10\x04\x01"
        os.write(master, b"\xc3\x12")   # a status-shaped byte behind one that is not: a terminal's noise

    try:
        assert ReceiptPrinter.probe(path) is None   # nothing answered
        t = threading.Thread(target=play)
        t.start()
        assert ReceiptPrinter.probe(path) is None
        t.join(5)
    finally:
        os.close(master)
        os.close(slave)


def test_a_probed_printer_is_a_device() -> None:
    with EscPosServer(EscPosPrinter({"paper-near-end"})) as server:
        printer = ReceiptPrinter.probe(server.serve_pty())
        assert printer is not None
        device: Device = printer
        with device:
            assert device.hello is not None and device.hello.components == ("printer",)
            assert device.info().model == "ESC/POS emulator"   # GS I 67
