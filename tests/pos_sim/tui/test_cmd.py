"""``pos-sim tui`` and ``pos-sim demo`` as commands, and the port picker."""

from __future__ import annotations

import argparse

import pytest

from pos_sim.errors import UsageError
from pos_sim.tui import PosSimApp
from pos_sim.tui.screens import PickerScreen, discover_entries
from pos_sim.tui_cmd import add_parser, run_demo
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
