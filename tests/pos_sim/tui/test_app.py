"""Pilot tests of the live TUI against the emulated terminal (speed 50, real pty or TCP)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.command import CommandPalette
from textual.widgets import Log, Static

from pos_sim.emulator import EmulatorServer
from pos_sim.tui import PosSimApp
from pos_sim.tui.screens import ConfirmScreen, HelpScreen
from tests.pos_sim.tui.conftest import make_app, sync, wait_for

Start = Callable[..., EmulatorServer]
SIZE = (120, 40)


def on_help(app: PosSimApp) -> bool:
    return isinstance(app.screen, HelpScreen)


def _capturing(app: PosSimApp) -> bool:
    return app.capture is not None


def shown(widget: Static) -> bool:
    return bool(widget.display)


def tile_text(app: PosSimApp, component: str) -> str:
    return str(app.query_one(f"#tile-{component}", Static).render())


async def connected(pilot: object, app: PosSimApp) -> None:
    await wait_for(pilot, lambda: app.device is not None and app.link_up)


async def answer_confirms_until_done(pilot: object, app: PosSimApp, answer: str = "y") -> list[str]:
    """Press ``answer`` in every confirm modal until the run ends; return the components asked about."""
    asked: list[str] = []

    def step() -> bool:
        if isinstance(app.screen, ConfirmScreen):
            asked.append(app.screen.component)
        return not app.running and app.report is not None

    while True:
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen) or step(), timeout=30)
        if isinstance(app.screen, ConfirmScreen):
            asked.append(app.screen.component)
            await pilot.press(answer)  # type: ignore[attr-defined]
            await pilot.pause(0.05)  # type: ignore[attr-defined]
            continue
        return asked


@sync
async def test_run_all_reaches_verdicts_on_tiles(emulator: Start, tmp_path: Path) -> None:
    server = emulator("dropped")
    app = make_app(server.port)
    async with app.run_test(size=SIZE) as pilot:
        await connected(pilot, app)
        assert "SP-M7" in str(app.query_one("#device", Static).render())
        await pilot.press("r")
        asked = await answer_confirms_until_done(pilot, app)
        assert "Screen" in asked  # the test pattern was confirmed in the modal
        states = {c: t.state for c, t in app.tiles.items() if t.fitted}
        assert states["screen"] == "fail" and states["security"] == "fail" and states["power"] == "pass"
        assert set(states.values()) <= {"pass", "warn", "fail", "skipped", "error"}
        assert "Fail" in tile_text(app, "screen") and "→" in tile_text(app, "screen")
        assert "Battery" in tile_text(app, "power")
        # the keypad test's key presses lit the map
        assert len(app.query_one("#keypad").seen) >= 10  # type: ignore[attr-defined]
        await pilot.press("q")
    assert app.return_code == 0


@sync
async def test_digit_runs_one_and_tile_click_too(emulator: Start) -> None:
    server = emulator("healthy")
    app = make_app(server.port, interactive=False)
    async with app.run_test(size=SIZE) as pilot:
        await connected(pilot, app)
        await pilot.press("3")  # the third tile: power
        await wait_for(pilot, lambda: app.tiles["power"].state == "pass")
        assert all(t.state == "idle" for c, t in app.tiles.items() if c != "power")
        await wait_for(pilot, lambda: not app.running)
        await pilot.click("#tile-network")
        await wait_for(pilot, lambda: app.tiles["network"].state == "pass")
        assert "dBm" in tile_text(app, "network")


@sync
async def test_abort_stops_a_running_test(emulator: Start) -> None:
    server = emulator("healthy", speed=1.0)   # slow enough to be caught running
    app = make_app(server.port, interactive=False)
    async with app.run_test(size=SIZE) as pilot:
        await connected(pilot, app)
        await pilot.press("4")   # network waits a while
        await wait_for(pilot, lambda: app.tiles["network"].state == "running")
        await pilot.press("a")
        await wait_for(pilot, lambda: not app.running)
        assert app.tiles["network"].state in ("skipped", "error", "warn", "fail")


@sync
async def test_export_writes_an_html_report(emulator: Start, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    server = emulator("healthy")
    app = make_app(server.port, interactive=False)
    async with app.run_test(size=SIZE) as pilot:
        await connected(pilot, app)
        await pilot.press("1")
        await wait_for(pilot, lambda: app.tiles["system"].state == "pass" and not app.running)
        await pilot.press("e")
        await pilot.pause(0.1)
        assert app.last_export is not None
        files = list(tmp_path.glob("pos-sim-report-*.html"))
        assert files == [app.last_export.resolve()] or files == [app.last_export]
        assert "<html" in files[0].read_text(encoding="utf-8").lower()


@sync
async def test_capture_starts_and_stops_and_records_the_line(emulator: Start, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from drivers.capture import Chunk, read_capture

    monkeypatch.chdir(tmp_path)
    server = emulator("healthy")
    app = make_app(server.port, interactive=False)
    async with app.run_test(size=SIZE) as pilot:
        await connected(pilot, app)
        await pilot.press("c")
        await pilot.pause(0.1)
        assert app.capture is not None
        assert "REC" in str(app.query_one("#status", Static).render())
        await pilot.press("1")
        await wait_for(pilot, lambda: app.tiles["system"].state == "pass" and not app.running)
        await pilot.press("c")
        await pilot.pause(0.1)
        assert not _capturing(app)
    (path,) = tmp_path.glob("pos-sim-capture-*.cap")
    records = list(read_capture(path))
    sent = b"".join(r.data for r in records if isinstance(r, Chunk) and r.direction == ">")
    got = b"".join(r.data for r in records if isinstance(r, Chunk) and r.direction == "<")
    from protocols.pos import FrameDeframer, MessageType

    assert MessageType.SELFTEST_START in {f.type for f in FrameDeframer().feed(sent)}
    assert MessageType.SELFTEST_RESULT in {f.type for f in FrameDeframer().feed(got)}


@sync
async def test_log_toggle_hex_and_pause(emulator: Start) -> None:
    server = emulator("healthy")
    app = make_app(server.port, interactive=False)
    async with app.run_test(size=SIZE) as pilot:
        await connected(pilot, app)
        log = app.query_one("#log", Log)
        await wait_for(pilot, lambda: any("INFO_REPLY" in line for line in log.lines))
        assert any("HELLO" in line for line in log.lines)
        # raw hex: new lines carry the sync bytes
        await pilot.press("x")
        assert "HEX" in str(app.query_one("#status", Static).render())
        await pilot.press("1")
        await wait_for(pilot, lambda: any("a5 5a" in line for line in log.lines))
        await wait_for(pilot, lambda: not app.running)
        await pilot.press("x")
        # pause: frames are counted, not written
        await pilot.press("p")
        assert "PAUSED" in str(app.query_one("#status", Static).render())
        await pilot.pause(0.2)
        before = log.line_count
        await pilot.press("1")
        await wait_for(pilot, lambda: not app.running and app.tiles["system"].state == "pass")
        await pilot.pause(0.3)
        assert log.line_count == before
        await pilot.press("p")
        await wait_for(pilot, lambda: log.line_count > before)
        # the log hides and comes back
        assert app.query_one("#logpanel").display
        await pilot.press("l")
        assert not app.query_one("#logpanel").display
        await pilot.press("l")
        assert app.query_one("#logpanel").display


@sync
async def test_filter_by_message_type(emulator: Start) -> None:
    server = emulator("healthy")
    app = make_app(server.port, interactive=False)
    async with app.run_test(size=SIZE) as pilot:
        await connected(pilot, app)
        await pilot.press("f")
        await pilot.press(*"selftest_result", "enter")
        assert app.log_filter == ("SELFTEST_RESULT",)
        log = app.query_one("#log", Log)
        log.clear()
        await pilot.press("1")
        await wait_for(pilot, lambda: any("SELFTEST_RESULT" in line for line in log.lines))
        await pilot.pause(0.2)
        assert all("SELFTEST_RESULT" in line for line in log.lines)


@sync
async def test_language_switch_changes_labels_to_chinese(emulator: Start) -> None:
    server = emulator("healthy")
    app = make_app(server.port, interactive=False)
    async with app.run_test(size=SIZE) as pilot:
        await connected(pilot, app)
        await pilot.press("3")
        await wait_for(pilot, lambda: app.tiles["power"].state == "pass")
        assert "Power" in str(app.query_one("#tile-power").border_title)
        await pilot.press("g")
        assert app.lang == "zh-CN"
        assert "电" in str(app.query_one("#tile-power").border_title)
        assert "通过" in tile_text(app, "power")
        assert "序列号" in str(app.query_one("#device", Static).render())
        await pilot.press("g")
        assert "Pass" in tile_text(app, "power")


@sync
async def test_help_and_palette(emulator: Start) -> None:
    server = emulator("healthy")
    app = make_app(server.port)
    async with app.run_test(size=SIZE) as pilot:
        await connected(pilot, app)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not on_help(app)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for wanted in ("Run all", "Run power", "Abort", "Export report", "Toggle frame log", "Toggle raw hex",
                       "Pause frame log", "Filter frame log", "Switch language", "Help"):
            assert any(t.startswith(wanted) for t in titles), wanted
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"language", "enter")
        await wait_for(pilot, lambda: app.lang == "zh-CN")


@sync
async def test_confirm_answered_no_fails_the_screen(emulator: Start) -> None:
    server = emulator("healthy")
    app = make_app(server.port)
    async with app.run_test(size=SIZE) as pilot:
        await connected(pilot, app)
        await pilot.press("5")  # screen
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.click("#no")
        await wait_for(pilot, lambda: not app.running)
        assert app.tiles["screen"].state == "fail"


@sync
async def test_quit_leaves_nothing_running(emulator: Start) -> None:
    server = emulator("healthy", speed=1.0)
    app = make_app(server.port, interactive=False)
    async with app.run_test(size=SIZE) as pilot:
        await connected(pilot, app)
        await pilot.press("r")
        await pilot.pause(0.2)
        await pilot.press("q")
    assert app.terminal is None and app.closing.is_set()
    # the autouse fixture checks that no thread outlives the test


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@sync
async def test_unplug_keeps_results_and_replug_reconnects(emulator: Start) -> None:
    port = free_port()
    first = emulator("healthy", tcp_port=port)
    app = make_app(first.port, interactive=False)
    async with app.run_test(size=SIZE) as pilot:
        await connected(pilot, app)
        await pilot.press("3")
        await wait_for(pilot, lambda: app.tiles["power"].state == "pass" and not app.running)
        first.unplug()
        first.stop()
        await wait_for(pilot, lambda: not app.link_up, timeout=5)
        banner = app.query_one("#banner", Static)
        assert banner.display and "LINK DOWN" in str(banner.render())
        assert app.tiles["power"].state == "pass"   # completed results stay
        second = emulator("healthy", tcp_port=port)
        await wait_for(pilot, lambda: app.link_up, timeout=10)
        assert second.stats.connections >= 1
        assert not shown(banner)
        assert app.tiles["power"].state == "pass"
        await pilot.press("4")
        await wait_for(pilot, lambda: app.tiles["network"].state == "pass")


@sync
async def test_a_different_terminal_is_not_mixed_in(emulator: Start) -> None:
    port = free_port()
    first = emulator("healthy", tcp_port=port)
    app = make_app(first.port, interactive=False)
    async with app.run_test(size=SIZE) as pilot:
        await connected(pilot, app)
        first.unplug()
        first.stop()
        await wait_for(pilot, lambda: not app.link_up, timeout=5)
        emulator("dropped", tcp_port=port)   # another serial number
        await wait_for(pilot, lambda: "different terminal" in app.banner_text, timeout=10)
        assert not app.link_up and app.serial == "SP0000123"


@sync
async def test_autorun_starts_the_plan_once_connected(emulator: Start) -> None:
    """What `pos-sim demo` does on a terminal: connect, then run everything at once."""
    server = emulator("healthy")
    app = make_app(server.port, interactive=False, autorun=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.report is not None and not app.running, timeout=30)
        assert all(t.state in ("pass", "skipped") for t in app.tiles.values() if t.fitted)
