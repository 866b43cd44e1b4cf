"""The ``/dev/usb/lp*`` code path for real: a printer device file read and written as a file
(``FilePort``: ``os.open``, ``select``, no termios, no pyserial), pointed at the emulated
printer's pty slave.  Verdicts and exit bits are docs/escpos.md's table, written out by hand.
"""

from __future__ import annotations

import pytest

from drivers.escpos import FilePort, PrinterLink, ReceiptPrinter, is_printer_file, make_test_page
from pos_sim.diagnostics.engine import DiagnosticsEngine
from pos_sim.emulator.escpos import EscPosPrinter, EscPosServer


class Accept:
    def show(self, component: str, prompt: str, text: str) -> None:
        raise AssertionError("the printer test only asks to confirm")

    def confirm(self, component: str, prompt: str, text: str) -> bool:
        return True


def _as_lp(path: str) -> ReceiptPrinter:
    """The printer as open_printer_port opens /dev/usb/lpN: a FilePort, no line rate."""
    printer = ReceiptPrinter(PrinterLink(FilePort(path), name=path, baud=None))
    printer.connect()
    return printer


def test_the_usb_printer_class_path_is_taken_for_lp_names() -> None:
    assert is_printer_file("/dev/usb/lp0") and is_printer_file("/dev/usb/lp12")
    assert not is_printer_file("/dev/usb/lpx")


@pytest.mark.parametrize(("fault", "verdict", "code", "status"), [
    ("paper-out", "warn", "paper_end", 16),
    ("cutter-jam", "fail", "cutter_error", 8),
    ("cover-open", "warn", "cover_open", 16),
])
def test_each_fault_through_a_printer_file(fault: str, verdict: str, code: str, status: int) -> None:
    with EscPosServer(EscPosPrinter({fault})) as server, _as_lp(server.serve_pty()) as printer:
        assert isinstance(printer.link.port, FilePort)
        report = DiagnosticsEngine(printer, lang="en").run("full", interactive=False)
    (f,) = report.results
    assert (f.verdict, f.code, report.exit_status) == (verdict, code, status)


def test_a_healthy_printer_file_prints_the_page_and_tells_its_identity() -> None:
    with EscPosServer(EscPosPrinter()) as server, _as_lp(server.serve_pty()) as printer:
        assert printer.identity["model"] == "ESC/POS emulator"   # a block reply read through the file
        report = DiagnosticsEngine(printer, lang="en", prompter=Accept()).run("full", interactive=True)
        printed = bytes(server.printer.printed)
    (f,) = report.results
    assert (f.verdict, report.exit_status) == ("pass", 0)
    assert printed == b"\x1b\x40" + make_test_page()
