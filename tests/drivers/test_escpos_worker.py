"""The printer's link on the generic port worker (drivers.link.PortWorker), over real ptys.

The worker's thread owns the port; what a caller queued before closing is written before the
port closes (the emulated printer's receipt shows it), and a printer that goes away mid-session
is a DeviceDisconnected for the request waiting on it, not a hang.
"""

from __future__ import annotations

import os
import threading
import tty

import pytest

from drivers.errors import DeviceDisconnected
from drivers.escpos import PrinterLink, ReceiptPrinter, make_test_page, open_printer_port
from pos_sim.emulator.escpos import EscPosPrinter, EscPosServer
from protocols.escpos import DLE_EOT


def test_one_worker_thread_owns_the_port_and_closing_writes_what_was_queued() -> None:
    page = make_test_page()
    with EscPosServer(EscPosPrinter()) as server:
        printer = ReceiptPrinter.open(server.serve_pty())
        worker = printer.link.worker
        assert worker.thread.is_alive() and worker.thread.name.startswith("pos-sim link")
        printer.print_page()
        printer.close()   # at once: the page is still queued in the machine
        assert not worker.thread.is_alive()
        for _ in range(100):   # the emulator's own thread takes the last bytes off the pty
            if len(server.printer.printed) >= 2 + len(page):
                break
            threading.Event().wait(0.05)
        assert bytes(server.printer.printed) == b"\x1b\x40" + page


def test_a_printer_that_goes_away_fails_the_waiting_request_as_disconnected() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    port, rate = open_printer_port(path, 9600)
    link = PrinterLink(port, name=path, baud=rate)
    os.close(master)   # the cable out: the slave's reads fail
    try:
        with pytest.raises(DeviceDisconnected, match="went away"):
            link.request(DLE_EOT[1], timeout=3600)   # only the link going down can end this wait
        assert isinstance(link.error, DeviceDisconnected)
    finally:
        link.close()
        os.close(slave)
