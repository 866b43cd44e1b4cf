"""``pos-sim tui`` and ``pos-sim demo`` as commands, and the port picker."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from pos_sim.cli.tui import add_parser, run_demo
from pos_sim.errors import UsageError
from pos_sim.tui import PosSimApp
from pos_sim.tui.screens import PickerScreen, discover_entries
from tests.pos_sim.tui.conftest import TIMINGS, sync, wait_for


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pos-sim")
    add_parser(p.add_subparsers(dest="command"))
    return p


def test_commands_parse() -> None:
    args = parser().parse_args(["tui", "emu://healthy", "--lang", "zh"])
    assert (args.port, args.lang, args.plan) == ("emu://healthy", "zh", "full")
    assert parser().parse_args(["tui"]).port is None
    demo = parser().parse_args(["demo"])
    assert (demo.scenario, demo.speed) == ("dropped", 5.0)


def test_demo_without_a_tty_prints_diag_output(capsys: pytest.CaptureFixture[str]) -> None:
    args = parser().parse_args(["demo", "--scenario", "healthy", "--speed", "50", "--lang", "en"])
    status = run_demo(args, tty=False)
    out = capsys.readouterr().out
    assert "SP-M7" in out and "SP0000123" in out
    assert status == 0
    # checks that need a person were skipped, never passed: the run was non-interactive
    assert "Skipped" in out


def test_demo_of_the_dropped_terminal_reports_failures(capsys: pytest.CaptureFixture[str]) -> None:
    status = run_demo(parser().parse_args(["demo", "--speed", "50", "--lang", "en"]), tty=False)
    assert status & 8 and status & 32
    assert "Fail" in capsys.readouterr().out


def test_demo_refuses_an_unknown_scenario() -> None:
    with pytest.raises(UsageError, match="no scenario"):
        run_demo(parser().parse_args(["demo", "--scenario", "nope"]), tty=False)
    with pytest.raises(UsageError, match="language"):
        run_demo(parser().parse_args(["demo", "--lang", "fr"]), tty=False)


def test_discovery_lists_the_emulator_scenarios() -> None:
    ports = [e.port for e in discover_entries()]
    assert "emu://healthy" in ports and "emu://dropped" in ports


@sync
async def test_picker_opens_the_chosen_port() -> None:
    app = PosSimApp(None, lang="en", timings=TIMINGS, interactive=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PickerScreen) and bool(app.screen.entries))
        picker = app.screen
        assert isinstance(picker, PickerScreen)
        index = [e.port for e in picker.entries].index("emu://healthy")
        from textual.widgets import OptionList

        options = picker.query_one(OptionList)
        options.highlighted = index
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.device is not None)
        assert app.port == "emu://healthy" and app.device is not None and app.device.serial == "SP0000123"
        await pilot.press("q")


@sync
async def test_picker_follows_a_terminal_plugged_in_and_pulled_out(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    """USB enumeration is the one thing faked: real ListPortInfo objects, appearing and going."""
    from serial.tools.list_ports_common import ListPortInfo

    from drivers import discovery
    from pos_sim.tui import screens

    plugged: list[ListPortInfo] = []
    real = discovery.list_ports
    monkeypatch.setattr(discovery, "list_ports", lambda: real(comports=lambda: list(plugged),
                                                             by_id_dir=tmp_path))
    monkeypatch.setattr(screens, "PICKER_REFRESH", 0.2)
    app = PosSimApp(None, lang="en", timings=TIMINGS, interactive=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PickerScreen) and bool(app.screen.entries))
        picker = app.screen
        assert isinstance(picker, PickerScreen)
        assert not any(e.port == "/dev/ttyACM7" for e in picker.entries)
        port = ListPortInfo("/dev/ttyACM7")
        port.vid, port.pid, port.serial_number, port.description = 0x11CA, 0x0207, "VX810-1", "Vx810"
        plugged.append(port)
        await wait_for(pilot, lambda: picker.entries[0].port == "/dev/ttyACM7")   # terminals first
        assert "Verifone" in picker.entries[0].label or "Vx810" in picker.entries[0].label
        plugged.clear()
        await wait_for(pilot, lambda: not any(e.port == "/dev/ttyACM7" for e in picker.entries))
        await pilot.press("q")
