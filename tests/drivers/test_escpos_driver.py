"""The receipt-printer driver and its diagnosis, over real pseudo-terminals.

The peer is either a test-played printer on the master side of a pty (bytes by hand) or the
emulated printer; verdicts and exit bits are checked against the table of docs/escpos.md,
written out here by hand: paper out, near end, cover open or offline => bit 16; cutter jam =>
bit 8 (and a rejected test page); no answer => bit 4.
"""

from __future__ import annotations

import os
import select
import threading
import tty
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from drivers.device import NotADevice, open_device
from drivers.errors import ResponseTimeout
from drivers.escpos import FilePort, PrinterLink, ReceiptPrinter, make_test_page, open_printer_port
from pos_sim.diagnostics.engine import DiagnosticsEngine
from pos_sim.emulator.escpos import EscPosPrinter, EscPosServer
from pos_sim.ports import register_url_schemes

SCHEMA = Path(__file__).resolve().parents[2] / "pos_sim" / "diagnostics" / "report.schema.json"


class RawPeer:
    """A printer played by the test on the master side of a pty."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)

    def read(self, n: int, timeout: float = 5.0) -> bytes:
        out = b""
        while len(out) < n:
            r, _, _ = select.select([self.master], [], [], timeout)
            if not r:
                break
            out += os.read(self.master, n - len(out))
        return out

    def close(self) -> None:
        for fd in (self.master, self.slave):
            os.close(fd)


@pytest.fixture
def peer() -> Iterator[RawPeer]:
    p = RawPeer()
    yield p
    p.close()


def test_the_status_requests_go_out_and_split_replies_among_garbage_come_back(peer: RawPeer) -> None:
    def play() -> None:
        assert peer.read(3) == b"\x10\x04\x01"
        os.write(peer.master, b"\x99\xff\x12")                       # garbage, then the reply
        assert peer.read(2) == b"\x1b\x40"                           # ESC @ once it is a printer
        for _ in range(4):                                           # GS I 66, 67, 68, 65
            req = peer.read(3)
            assert req[:2] == b"\x1d\x49"
            os.write(peer.master, {0x42: b"_EPSON\x00", 0x43: b"_TM-T88V\x00", 0x44: b"_X5KL0012\x00",
                                   0x41: b"_30.01 ESC/POS\x00"}[req[2]])
        for n in (1, 2, 3):
            assert peer.read(3) == bytes([0x10, 0x04, n])
            os.write(peer.master, b"\x12")
        assert peer.read(3) == b"\x10\x04\x04"
        os.write(peer.master, b"\x80")                               # garbage first ...
        os.write(peer.master, b"\x1e")                               # ... then near end
        assert peer.read(3) == b"\x1d\x72\x01"
        os.write(peer.master, b"\x03")

    t = threading.Thread(target=play)
    t.start()
    with ReceiptPrinter.open(peer.path) as printer:
        info = printer.info()
        status = printer.status()
    t.join(5)
    assert (info.manufacturer, info.model, info.firmware_version) == ("EPSON", "TM-T88V", "30.01 ESC/POS")
    # the registry key is the port's identity; the printer's own serial number is kept beside it
    assert info.serial == f"escpos:{peer.path}" and printer.identity["serial"] == "X5KL0012"
    assert status.paper_near_end and not status.paper_end and status.raw() == "DLE EOT 1-4 12 12 12 1E, GS r 1 03"
    assert printer.link.deframer.stats.garbage == 3


class FakeClock:
    """Time that moves only when read: each reading is ``step`` seconds after the last."""

    def __init__(self, step: float) -> None:
        self.now, self.step, self.readings = 1000.0, step, 0

    def __call__(self) -> float:
        self.readings += 1
        self.now += self.step
        return self.now


def test_no_answer_is_a_timeout_after_the_line_rate_budget_on_a_fake_clock(peer: RawPeer) -> None:
    # hand-computed: DLE EOT 1 (3 bytes) and its reply (1 byte) at 9600 baud 8N1 are 40 bits,
    # 4.17 ms; twice that plus the 0.5 s real-time turnaround is 0.5083 s
    port, rate = open_printer_port(peer.path, 9600)
    clock = FakeClock(0.01)
    link = PrinterLink(port, name=peer.path, baud=rate, clock=clock)
    printer = ReceiptPrinter(link)
    with pytest.raises(ResponseTimeout, match=r"no answer to DLE EOT 1 within 0\.51 s"):
        printer.connect()
    # the deadline was read until it passed: about 0.5083 / 0.01 readings, never far beyond
    assert 50 <= clock.readings <= 53
    assert link.stats.timeouts == 1
    printer.close()


def test_a_printer_device_file_is_opened_as_a_file_not_a_serial_port() -> None:
    port, rate = open_printer_port("/dev/null")   # a character device that is no tty, as /dev/usb/lp0 is
    assert isinstance(port, FilePort) and rate is None
    assert port.write(b"\x10\x04\x01") == 3
    port.close()


# -- the diagnosis through the emulated printer: the hand table of docs/escpos.md -------------------

# fault: (verdict, code, exit status) for a run with nobody present; a healthy printer passes
# the status checks, and its test page is "not tested (needs a person)"
NON_INTERACTIVE = {
    "none": ("pass", None, 0),
    "paper-near-end": ("warn", "paper_near_end", 16),
    "paper-out": ("warn", "paper_end", 16),
    "cover-open": ("warn", "cover_open", 16),
    "offline": ("warn", "printer_offline", 16),
    "cutter-jam": ("fail", "cutter_error", 8),
}


@pytest.mark.parametrize("fault", sorted(NON_INTERACTIVE))
def test_each_fault_gives_its_verdict_and_exit_bit(fault: str) -> None:
    with EscPosServer(EscPosPrinter(set() if fault == "none" else {fault})) as server, \
            ReceiptPrinter.open(server.serve_pty()) as printer:
        report = DiagnosticsEngine(printer, lang="en").run("full", interactive=False)
        # no page without a person: nothing but the ESC @ an online printer gets at connect
        assert bytes(server.printer.printed) == (b"" if server.printer.offline else b"\x1b\x40")
    (f,) = report.results
    assert (f.component, f.verdict, f.code, report.exit_status) == ("printer", *NON_INTERACTIVE[fault])
    jsonschema.validate(report.as_json(), __import__("json").loads(SCHEMA.read_text()))
    # a printer has no terminal components to be "not fitted": only its own check is named
    untested = {(n.component, n.reason, n.partial) for n in report.not_tested}
    if fault in ("none", "paper-near-end"):   # the page was possible, but nobody was there to judge it
        assert untested == {("printer", "needs_person", True)}
        assert report.tested == ["printer"] and not report.complete
    else:
        assert untested == set()
    if fault == "none":
        from pos_sim.diagnostics.catalogue import load_catalogue
        from pos_sim.diagnostics.engine import completeness_text

        assert completeness_text(report, load_catalogue()) == \
            "OK for the 1 check that ran; 1 tested only in part (need a person)"


class Answer:
    """A technician who answers every confirm prompt the same, and can change the printer first."""

    def __init__(self, accepted: bool, before: object = None) -> None:
        self.accepted, self.before = accepted, before
        self.asked: list[tuple[str, str]] = []

    def show(self, component: str, prompt: str, text: str) -> None:
        raise AssertionError("the printer test only asks to confirm")

    def confirm(self, component: str, prompt: str, text: str) -> bool:
        self.asked.append((component, prompt))
        if callable(self.before):
            self.before()
        return self.accepted


@pytest.mark.parametrize(("accepted", "verdict", "code", "status"), [(True, "pass", None, 0),
                                                                     (False, "fail", "print_rejected", 8)])
def test_with_a_person_the_page_prints_and_the_answer_counts(accepted: bool, verdict: str, code: str | None,
                                                            status: int) -> None:
    with EscPosServer(EscPosPrinter()) as server, ReceiptPrinter.open(server.serve_pty()) as printer:
        prompter = Answer(accepted)
        report = DiagnosticsEngine(printer, lang="en", prompter=prompter).run("full", interactive=True)
        printed = bytes(server.printer.printed)
    assert prompter.asked == [("printer", "confirm_print")]
    (f,) = report.results
    assert (f.verdict, f.code, report.exit_status) == (verdict, code, status)
    assert printed == b"\x1b\x40" + make_test_page()
    assert f.measurements["pages_printed"] == 1
    assert report.complete


def test_a_cutter_that_jams_on_the_pages_cut_is_found_after_the_answer() -> None:
    with EscPosServer(EscPosPrinter()) as server, ReceiptPrinter.open(server.serve_pty()) as printer:
        prompter = Answer(True, before=lambda: server.set_fault("cutter-jam"))
        report = DiagnosticsEngine(printer, lang="en", prompter=prompter).run("full", interactive=True)
    (f,) = report.results
    assert (f.verdict, f.code, report.exit_status) == ("fail", "cutter_error", 8)


def test_the_test_page_comes_from_python_escpos() -> None:
    from escpos.printer import Dummy

    page = make_test_page()
    reference = Dummy()
    reference.cut()
    assert page.startswith(b"\x1b\x40") and page.endswith(reference.output)   # ESC @ ... GS V
    assert b"pos-sim test page" in page


def test_auto_tells_a_printer_from_a_terminal_and_from_silence(peer: RawPeer) -> None:
    register_url_schemes()
    with EscPosServer(EscPosPrinter()) as server, open_device(server.serve_pty(), "auto", timeout=5) as device:
        assert isinstance(device, ReceiptPrinter)
        assert device.hello is not None and device.hello.components == ("printer",)
    with open_device("emu://healthy?speed=inf", "auto", timeout=5) as device:
        assert not isinstance(device, ReceiptPrinter)
        assert device.hello is not None and "printer" in device.hello.components
    with pytest.raises(NotADevice, match="neither a pos-sim terminal nor an ESC/POS receipt printer"):
        open_device(peer.path, "auto", timeout=1)


def test_auto_detection_wants_a_steady_status_byte_and_a_quiet_line(peer: RawPeer) -> None:
    from drivers.errors import ProtocolViolation

    def play() -> None:
        assert peer.read(3) == b"\x10\x04\x01"
        os.write(peer.master, b"\x12")
        assert peer.read(3) == b"\x10\x04\x01"
        os.write(peer.master, b"\xc3\x1a")   # noise, and another byte: a chance fit, not a printer

    t = threading.Thread(target=play)
    t.start()
    with pytest.raises(ProtocolViolation, match="not an ESC/POS printer"):
        ReceiptPrinter.open(peer.path, strict=True)
    t.join(5)


def test_discovery_says_receipt_printer_for_the_tables_printer_ids() -> None:
    from dataclasses import dataclass

    from drivers.discovery import list_ports

    @dataclass
    class Record:
        device: str
        vid: int | None
        pid: int | None
        description: str | None = None
        hwid: str | None = None
        serial_number: str | None = None
        manufacturer: str | None = None
        product: str | None = None

    # usb.ids 2025.07.26: 04b8:0e03 "Thermal Receipt Printer [TM-T20]"; 0403:6001 is FTDI's FT232 bridge
    records = [Record("/dev/ttyUSB0", 0x0403, 0x6001), Record("/dev/ttyACM3", 0x04B8, 0x0E03)]
    ports = list_ports(comports=lambda: records, by_id_dir=Path("/nonexistent"))
    assert [(p.device, p.kind) for p in ports] == [("/dev/ttyACM3", "receipt-printer"), ("/dev/ttyUSB0", "usb")]
    assert ports[0].known is not None and ports[0].known.label == "Epson TM-T20"
