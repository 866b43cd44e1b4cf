"""Pilot tests of the live TUI on an ESC/POS receipt printer (the printer emulator on a real pty).

What is expected comes from docs/escpos.md's tables, written out here by hand: paper out is
``paper_end``, a warning; a healthy printer with a person passes once the test page is
accepted; the page is the only print data the printer gets.  What only a terminal has (the
device screen, the keypad map, capture) is hidden or says "not on a receipt printer".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual.widgets import Static

from drivers.escpos import ReceiptPrinter, make_test_page
from pos_sim.emulator import EmulatorServer
from pos_sim.emulator.escpos import EscPosPrinter, EscPosServer
from pos_sim.tui import PosSimApp
from pos_sim.tui.device_screen import DeviceScreen
from pos_sim.tui.screens import ConfirmScreen
from pos_sim.tui.widgets import KeypadMap, Tile
from tests.pos_sim.tui.conftest import make_app, sync, wait_for

SIZE = (120, 40)
StartPrinter = Callable[..., EscPosServer]


@pytest.fixture
def printer() -> Iterator[StartPrinter]:
    """Start emulated printers on ptys; all stopped after the test."""
    started: list[EscPosServer] = []

    def start(*faults: str, receipt: Path | None = None) -> EscPosServer:
        server = EscPosServer(EscPosPrinter(set(faults)), receipt=receipt)
        started.append(server)
        server.serve_pty()
        return server

    yield start
    for server in started:
        server.stop()


def _port(server: EscPosServer) -> str:
    port = server.port
    assert port is not None
    return port


def tile_text(app: PosSimApp, component: str) -> str:
    return str(app.query_one(f"#tile-{component}", Static).render())


def shown_tiles(app: PosSimApp) -> list[str]:
    return [t.component for t in app.query(Tile).results(Tile) if t.display]


async def connected(pilot: object, app: PosSimApp) -> None:
    await wait_for(pilot, lambda: app.device is not None and app.link_up)


def notes(app: PosSimApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


@sync
async def test_a_printer_with_paper_out_shows_the_fault_on_its_one_tile(printer: StartPrinter, tmp_path: Path) -> None:
    server = printer("paper-out")
    app = make_app(_port(server), device_kind="escpos", db=str(tmp_path / "r.db"), status_every=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await connected(pilot, app)
        assert isinstance(app.printer, ReceiptPrinter) and app.terminal is None
        assert shown_tiles(app) == ["printer"]
        assert not app.query_one(KeypadMap).display
        header = str(app.query_one("#device", Static).render())
        assert "ESC/POS" in header and "merchant" not in header.lower()
        # the idle status refresh reads DLE EOT 1-4 and shows the decoded bits before any test
        await wait_for(pilot, lambda: "paper out" in tile_text(app, "printer"))
        assert "DLE EOT 1-4" in tile_text(app, "printer")
        await pilot.press("0")   # the tenth tile: the printer
        await wait_for(pilot, lambda: app.tiles["printer"].finding is not None and not app.running)
        finding = app.tiles["printer"].finding
        assert finding is not None and (finding.verdict, finding.code) == ("warn", "paper_end")
        assert "Needs attention" in app.verdict_line
        await pilot.press("q")


@sync
async def test_terminal_only_keys_say_not_on_a_receipt_printer(printer: StartPrinter) -> None:
    server = printer()
    app = make_app(_port(server), device_kind="escpos")
    async with app.run_test(size=SIZE) as pilot:
        await connected(pilot, app)
        await pilot.press("d")
        await pilot.pause(0.1)
        assert not isinstance(app.screen, DeviceScreen)
        await pilot.press("c")
        await pilot.pause(0.1)
        assert app.capture is None
        assert notes(app).count("not on a receipt printer (a terminal's only)") == 2
        for button in ("device", "capture"):
            assert not app.query_one(f"#btn-{button}").display
        await pilot.press("q")


@sync
async def test_auto_finds_a_printer_and_runs_its_test_page_with_a_person(printer: StartPrinter,
                                                                       tmp_path: Path) -> None:
    receipt = tmp_path / "receipt.bin"
    server = printer(receipt=receipt)
    app = make_app(_port(server), device_kind="auto", db=str(tmp_path / "r.db"))
    async with app.run_test(size=SIZE) as pilot:
        await connected(pilot, app)
        assert app.printer is not None
        assert app.serial == f"escpos:{_port(server)}"   # the port's identity (drivers.escpos.printer_key)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: app.tiles["printer"].finding is not None and not app.running)
        finding = app.tiles["printer"].finding
        assert finding is not None and finding.verdict == "pass"
        assert app.record_note[0] == "recorded"
        await pilot.press("q")
    # nothing but ESC @ and the page reached the printer: no HELLO frame
    assert receipt.read_bytes() == b"\x1b\x40" + make_test_page()


@sync
async def test_auto_still_finds_a_terminal(emulator: Callable[..., EmulatorServer]) -> None:
    server = emulator("healthy")
    app = make_app(server.port, device_kind="auto")
    async with app.run_test(size=SIZE) as pilot:
        await connected(pilot, app)
        assert app.terminal is not None and app.printer is None
        assert len(shown_tiles(app)) == len(app.tiles)
        assert app.query_one(KeypadMap).display
        await pilot.press("q")


@sync
async def test_a_printer_that_goes_away_shows_the_link_down_banner(printer: StartPrinter) -> None:
    server = printer()
    app = make_app(_port(server), device_kind="escpos", status_every=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await connected(pilot, app)
        server.stop()
        await wait_for(pilot, lambda: not app.link_up)
        assert "LINK DOWN" in app.banner_text
        await pilot.press("q")


def test_the_picker_lists_usb_printer_class_devices_as_receipt_printers(tmp_path: Path) -> None:
    from pos_sim.tui.screens import discover_entries

    for name in ("lp10", "lp0", "lp1", "other"):
        (tmp_path / name).touch()
    entries = [e for e in discover_entries(lp_dir=tmp_path) if "receipt-printer" in e.label]
    assert [e.port for e in entries] == [str(tmp_path / n) for n in ("lp0", "lp1", "lp10")]
    assert all("--device escpos" in e.label for e in entries)
    assert not [e for e in discover_entries(lp_dir=tmp_path / "absent") if e.port.startswith(str(tmp_path))]
