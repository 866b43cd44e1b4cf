"""The end of a run in the TUI: the verdict with what was not tested, the registry record as
`pos-sim diag` makes it, Escape and q in a question, re-runs, and the tiles' status while idle.

Expected words and numbers come from the scenario files (pos_sim/emulator/scenarios/*.toml)
and docs/protocol.md, written out here by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Log, Static

from pos_sim import cli
from pos_sim.emulator import EmulatorServer
from pos_sim.registry import Registry
from pos_sim.tui import PosSimApp
from pos_sim.tui.screens import ConfirmScreen, QuitScreen
from tests.pos_sim.tui.conftest import make_app, sync, wait_for

Start = Callable[..., EmulatorServer]
SIZE = (120, 40)
#: healthy without a person: the four components whose checks need nobody pass, the other
#: seven are skipped (docs/protocol.md section 8; the scenario's header)
AUTOMATIC = ("system", "security", "power", "network")
NEED_A_PERSON = ("screen", "keypad", "magstripe", "chip", "contactless", "printer", "scanner")


def tile_text(app: PosSimApp, component: str) -> str:
    return str(app.query_one(f"#tile-{component}", Static).render())


async def connected(pilot: object, app: PosSimApp) -> None:
    await wait_for(pilot, lambda: app.device is not None and app.link_up)


async def run_ended(pilot: object, app: PosSimApp) -> None:
    await wait_for(pilot, lambda: not app.running and app.completeness is not None, timeout=30)


def run_rows(db: Path, serial: str) -> list[tuple[Any, ...]]:
    """What the registry holds of each run: plan, verdict, exit status and every result."""
    with Registry.open(str(db)) as reg:
        return [(r.plan, r.verdict, r.exit_status,
                 sorted((x.component, x.verdict, x.code, x.category, x.severity, x.message, x.communication)
                        for x in r.results))
                for r in reg.runs(serial)]


@sync
async def test_a_run_ends_with_the_verdict_and_what_was_not_tested(emulator: Start, tmp_path: Path) -> None:
    server = emulator("healthy")
    db = tmp_path / "tui.db"
    app = make_app(server.port, interactive=False, db=str(db))
    async with app.run_test(size=SIZE) as pilot:
        await connected(pilot, app)
        await pilot.press("r")
        await run_ended(pilot, app)
        assert {c for c, t in app.tiles.items() if t.state == "pass"} == set(AUTOMATIC)
        assert {c for c, t in app.tiles.items() if t.state == "skipped"} == set(NEED_A_PERSON)
        assert app.verdict_line == ("Verdict: OK for the 4 checks that ran; 7 not tested (need a person) · "
                                    "recorded as run #1 (pos-sim runs SP0000123)")
        await pilot.press("g")
        assert app.verdict_line == ("结论：正常（已完成的 4 项检测）；7 项未检测（需要人工配合） · "
                                    "已记入登记库：诊断 #1（pos-sim runs SP0000123）")
        await pilot.press("q")
    # the registry holds the run exactly as `pos-sim diag` files the same run
    diag_db = tmp_path / "diag.db"
    status = cli.main(["diag", "emu://healthy", "--non-interactive", "--lang", "en", "--db", str(diag_db)])
    assert status == 0
    (tui_run,) = run_rows(db, "SP0000123")
    (diag_run,) = run_rows(diag_db, "SP0000123")
    assert tui_run == diag_run
    assert tui_run[:3] == ("full", "ok", 0)


@sync
async def test_no_record_is_said_on_screen_and_nothing_is_filed(emulator: Start, tmp_path: Path) -> None:
    server = emulator("healthy")
    db = tmp_path / "tui.db"
    app = make_app(server.port, interactive=False, db=str(db), record=False)
    async with app.run_test(size=SIZE) as pilot:
        await connected(pilot, app)
        await pilot.press("3")   # power alone: a run of one tile is complete when that test ran
        await run_ended(pilot, app)
        assert app.verdict_line == "Verdict: OK: the 1 check ran · not recorded in the registry (--no-record)"
        await pilot.press("q")
    assert not db.exists() or not run_rows_or_none(db)


def run_rows_or_none(db: Path) -> list[tuple[Any, ...]]:
    from pos_sim.registry import RegistryError

    try:
        return run_rows(db, "SP0000123")
    except RegistryError:   # the device was never registered
        return []


def test_tui_takes_no_record() -> None:
    parser = cli.build_parser()
    assert parser.parse_args(["tui", "emu://healthy", "--no-record"]).no_record is True
    assert parser.parse_args(["tui", "emu://healthy"]).no_record is False


@sync
async def test_escape_in_a_question_aborts_the_run_and_fails_nothing(emulator: Start, tmp_path: Path) -> None:
    server = emulator("healthy")
    db = tmp_path / "tui.db"
    app = make_app(server.port, db=str(db))
    async with app.run_test(size=SIZE) as pilot:
        await connected(pilot, app)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), timeout=30)
        asked = app.screen.component   # type: ignore[attr-defined]
        await pilot.press("escape")
        await run_ended(pilot, app)
        states = {c: t.state for c, t in app.tiles.items()}
        assert "fail" not in states.values() and "error" not in states.values()
        assert asked == "Screen" and states["screen"] == "skipped"
        # the checks after the question were aborted too, not run
        assert app.report is not None and app.report.verdict == "ok"
        assert app.verdict_line.startswith("Verdict: OK for the 4 checks that ran; 7 not tested (aborted) · recorded")
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("q")
    (run,) = run_rows(db, "SP0000123")
    assert run[1] == "ok" and all(r[1] != "fail" for r in run[3])


@sync
async def test_q_in_a_question_asks_then_quits(emulator: Start, tmp_path: Path) -> None:
    server = emulator("healthy")
    db = tmp_path / "tui.db"
    app = make_app(server.port, db=str(db))
    async with app.run_test(size=SIZE) as pilot:
        await connected(pilot, app)
        await pilot.press("5")   # the screen's test pattern is a question
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("q")
        assert isinstance(app.screen, QuitScreen)
        await pilot.press("n")   # stay: the question is still there
        assert isinstance(app.screen, ConfirmScreen) and app.running
        await pilot.press("q")
        assert isinstance(app.screen, QuitScreen)
        await pilot.press("q")   # q again quits
    assert app.closing.is_set() and app.return_code == 0
    assert not db.exists() or not run_rows_or_none(db)   # a run quit half-way is not filed


@sync
async def test_q_quits_at_once_when_no_run_is_going(emulator: Start) -> None:
    server = emulator("healthy")
    app = make_app(server.port)
    async with app.run_test(size=SIZE) as pilot:
        await connected(pilot, app)
        await pilot.press("q")
        assert app.closing.is_set()


@sync
async def test_a_re_run_starts_from_clean_tiles(emulator: Start) -> None:
    server = emulator("healthy", speed=1.0)   # the network test takes long enough to be seen running
    app = make_app(server.port, interactive=False)
    async with app.run_test(size=SIZE) as pilot:
        await connected(pilot, app)
        await pilot.press("4")
        await wait_for(pilot, lambda: app.tiles["network"].state == "pass" and not app.running, timeout=60)
        assert "Pass" in tile_text(app, "network") and "Verdict" in app.verdict_line
        await pilot.press("4")
        tile = app.tiles["network"]
        assert tile.finding is None and tile.state in ("idle", "running")
        assert "Pass" not in tile_text(app, "network")
        assert app.verdict_line == "running …"
        await wait_for(pilot, lambda: not app.running, timeout=60)
        assert tile.state == "pass"


@sync
async def test_the_tiles_show_the_status_before_any_test(emulator: Start) -> None:
    server = emulator("dropped")
    app = make_app(server.port)
    async with app.run_test(size=SIZE) as pilot:
        await connected(pilot, app)
        fitted = [c for c, t in app.tiles.items() if t.fitted]
        await wait_for(pilot, lambda: all(app.tiles[c].status is not None for c in fitted))
        # dropped.toml: tamper tripped and keys erased, 1873 dead pixels, -71 dBm on LTE (the
        # scenario defaults), paper in; nothing ran
        assert "tamper TRIPPED" in tile_text(app, "security") and "NO KEYS" in tile_text(app, "security")
        assert "panel DAMAGED" in tile_text(app, "screen") and "1873 dead px" in tile_text(app, "screen")
        assert "-71 dBm" in tile_text(app, "network") and "LTE-FDD" in tile_text(app, "network")
        assert "paper ok" in tile_text(app, "printer")
        assert all(t.state == "idle" and t.finding is None for t in app.tiles.values())
        log = app.query_one("#log", Log)
        await wait_for(pilot, lambda: any("STATUS_REPLY" in line for line in log.lines))
        assert not any("SELFTEST_START" in line for line in log.lines)
        await pilot.press("g")
        assert "防拆 已触发" in tile_text(app, "security") and "坏点 1873" in tile_text(app, "screen")


def draining_scenario(tmp_path: Path) -> Path:
    """healthy, on battery, losing 10 % a second: every status read sees another level."""
    from pos_sim.emulator.scenario import load_scenario

    source = load_scenario("healthy").path
    text = source.read_text(encoding="utf-8")
    path = tmp_path / "draining.toml"
    path.write_text(text + '\n[components.power]\nsource = "battery"\nbattery_pct = 100.0\n'
                           'charge_pct_per_hour = -36000.0\n', encoding="utf-8")
    return path


@sync
async def test_the_status_is_read_again_while_idle_and_not_during_a_run(emulator: Start, tmp_path: Path) -> None:
    try:
        server = emulator(str(draining_scenario(tmp_path)))
    except Exception as exc:   # a scenario schema that moved on: say so rather than pass
        pytest.fail(f"the draining scenario does not load: {exc}")
    app = make_app(server.port, interactive=False, status_every=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await connected(pilot, app)
        await wait_for(pilot, lambda: app.tiles["power"].status is not None)
        first = app.tiles["power"].status["battery_pct"]   # type: ignore[index]
        await wait_for(pilot, lambda: app.tiles["power"].status["battery_pct"] != first)   # type: ignore[index]
        assert f"{app.tiles['power'].status['battery_pct']} %" in tile_text(app, "power")  # type: ignore[index]
        log = app.query_one("#log", Log)
        await pilot.press("1")
        await wait_for(pilot, lambda: not app.running and app.tiles["system"].state == "pass")
        await pilot.pause(0.5)   # the frames of the run reach the log
        lines = list(log.lines)
        start = max(i for i, line in enumerate(lines) if "SELFTEST_START" in line)
        end = max(i for i, line in enumerate(lines) if "SELFTEST_RESULT" in line)
        assert not any("STATUS_REQUEST" in line for line in lines[start:end])
        # and once the run has ended, it is read again
        await wait_for(pilot, lambda: any("STATUS_REQUEST" in line for line in list(log.lines)[end:]))


@sync
async def test_the_log_keeps_following_after_a_filter(emulator: Start) -> None:
    server = emulator("healthy")
    app = make_app(server.port, interactive=False, status_every=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        await connected(pilot, app)
        log = app.query_one("#log", Log)
        await wait_for(pilot, lambda: log.max_scroll_y > 0)
        await pilot.press("f")
        # following while the filter is typed: new lines keep arriving and the log stays at its
        # end (a log left behind stays behind, so the wait fails)
        count = log.line_count
        await wait_for(pilot, lambda: log.line_count >= count + 5 and log.scroll_y == log.max_scroll_y)
        await pilot.press(*"status_reply", "enter")
        count = log.line_count
        await wait_for(pilot, lambda: log.line_count >= count + 5 and log.max_scroll_y > 0
                       and log.scroll_y == log.max_scroll_y)


def test_tui_help_lists_every_key(capsys: pytest.CaptureFixture[str]) -> None:
    from pos_sim.tui.device_screen import DeviceScreen

    with pytest.raises(SystemExit):
        cli.main(["tui", "--help"])
    out = capsys.readouterr().out
    main, _, device = out.partition("keys of the device screen")
    names = {"question_mark": "?", "escape": "Esc"}
    for binding in PosSimApp.BINDINGS:
        key = binding.key  # type: ignore[union-attr]
        wanted = "1-9, 0" if key.isdigit() else names.get(key, key)
        assert f"\n  {wanted} " in main, key
    for binding in DeviceScreen.BINDINGS:
        key = binding.key  # type: ignore[union-attr]
        wanted = "1-4" if key.isdigit() else names.get(key, key)
        assert f"\n  {wanted} " in device, key
    assert "\n  ctrl+p " in main and "\n  Esc " in main


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
@sync
async def test_80x24_shows_the_header_values_and_every_button(lang: str) -> None:
    from tests.pos_sim.tui.snapshot_app import SnapshotApp

    app = SnapshotApp("dropped", lang=lang)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        header = str(app.query_one("#device", Static).render())
        for value in ("SP-M7", "SP0000457", "3.2.1", "locked", "898310048160457"):
            assert value in header, value
        from rich.cells import cell_len
        from textual.widgets import Button

        for button in app.query("#buttons Button").results(Button):
            label = str(button.label)
            region = button.region
            assert region.width >= cell_len(label) + 2 and region.right <= 80, (label, region)
        assert app.query_one("#btn-help").region.width and app.query_one("#btn-quit").region.width


@sync
async def test_the_screenshot_goes_to_the_current_folder_without_downloads(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.delenv("XDG_DOWNLOAD_DIR", raising=False)
    monkeypatch.chdir(work)
    app = PosSimApp("/dev/null", lang="en", connect=False)
    async with app.run_test(size=SIZE) as pilot:
        app.action_screenshot()
        # the file, then Textual's "saved" notice: its delivery thread is done with the app
        await wait_for(pilot, lambda: any(work.glob("*.svg")) and len(app._notifications) > 0)
    (shot,) = work.glob("*.svg")
    assert "<svg" in shot.read_text(encoding="utf-8")
    assert not (home / "Downloads").exists()
