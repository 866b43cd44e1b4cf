"""Pilot tests: a terminal that restarts under the TUI, a worker that fails, a pty taken by another.

The emulator is power-cycled with ``EmulatorServer.restart()`` (its pty stays open, so the link
stays up); the TUI must notice it by itself (keep-alive every 0.3 s here), say so, HELLO again
and let the technician run again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from textual.widgets import Static

from drivers.link import LinkTimings
from drivers.terminal import Terminal
from pos_sim.diagnostics.engine import DiagnosticsEngine
from pos_sim.emulator import EmulatorServer, load_scenario
from pos_sim.tui import PosSimApp
from tests.pos_sim.tui.conftest import sync, wait_for

SIZE = (120, 40)
KEEPALIVE = LinkTimings(keepalive_idle=0.3)
Start = Callable[..., EmulatorServer]


def app_on(port: str | None, **kw: Any) -> PosSimApp:
    return PosSimApp(port, lang="en", timings=KEEPALIVE, interactive=False, **kw)


def banner(app: PosSimApp) -> str:
    return str(app.query_one("#banner", Static).render())


def banners_of(app: PosSimApp) -> list[str]:
    """Every banner text ``app`` shows from now on, in order (the list fills as it runs)."""
    shown: list[str] = []
    original = app.set_banner

    def record(key: str, note: bool = False, **values: object) -> None:
        original(key, note, **values)
        if key:
            shown.append(app.banner_text)
            assert app.query_one("#banner", Static).display

    app.set_banner = record  # type: ignore[method-assign]
    return shown


async def connected(pilot: object, app: PosSimApp) -> None:
    await wait_for(pilot, lambda: app.device is not None and app.link_up)


@sync
async def test_a_restart_mid_run_is_shown_hello_is_sent_again_and_run_all_works(emulator: Start) -> None:
    server = emulator("healthy", speed=1.0)   # slow enough to restart while tests run
    app = app_on(server.port)
    async with app.run_test(size=SIZE) as pilot:
        await connected(pilot, app)
        term = app.terminal
        assert term is not None and term.hello is not None
        first_boot = term.hello.boot_id
        await pilot.press("3")   # power: quick to pass
        await wait_for(pilot, lambda: app.tiles["power"].state == "pass" and not app.running)
        await pilot.press("4")   # network: still running when the power goes
        await wait_for(pilot, lambda: app.tiles["network"].state == "running")
        shown = banners_of(app)
        server.restart()
        # the red banner may give way to the "said HELLO again" note within one pause: every
        # banner shown is kept, so the test sees it however fast the HELLO comes
        await wait_for(pilot, lambda: any("TERMINAL RESTARTED" in text for text in shown))
        red = next(text for text in shown if "TERMINAL RESTARTED" in text)
        assert "\n" not in red
        await wait_for(pilot, lambda: not app.running)
        lost = app.tiles["network"]
        assert lost.state == "error" and lost.finding is not None and lost.finding.code == "terminal_restarted"
        assert app.tiles["power"].state == "pass"   # what finished before keeps its verdict
        # HELLO again on the same line (no reconnect): a new boot id, the banner says so
        await wait_for(pilot, lambda: "said HELLO again" in app.banner_text)
        assert app.terminal is term and term.hello.boot_id != first_boot and not term.restarted
        assert server.stats.connections == 1 and app.link_up
        await pilot.press("r")
        await wait_for(pilot, lambda: app.report is not None and not app.running and all(
            t.state in ("pass", "skipped") for t in app.tiles.values() if t.fitted), timeout=30)
        assert app.tiles["network"].state == "pass"
        assert app.banner_text == ""


@sync
async def test_an_idle_terminal_that_restarts_is_noticed_by_the_keepalive(emulator: Start) -> None:
    server = emulator("healthy")
    app = app_on(server.port)
    async with app.run_test(size=SIZE) as pilot:
        await connected(pilot, app)
        await pilot.pause(0.8)   # up longer than the allowance, keep-alives answered
        server.restart()
        await wait_for(pilot, lambda: "restarted (its uptime went back)" in app.banner_text)
        assert app.terminal is not None and app.terminal.link.restarts == 1
        await pilot.press("1")
        await wait_for(pilot, lambda: app.tiles["system"].state == "pass")


@sync
async def test_a_restart_while_disconnected_is_noticed_at_reconnect(emulator: Start) -> None:
    server = emulator("healthy", tcp_port=free_port())
    app = app_on(server.port)
    async with app.run_test(size=SIZE) as pilot:
        await connected(pilot, app)
        first = app.boot_id
        server.unplug()   # the TCP client goes; the emulator takes the next one
        await wait_for(pilot, lambda: not app.link_up, timeout=5)
        server.stop()
        again = emulator("healthy", tcp_port=int(str(server.port).rsplit(":", 1)[1]))
        await wait_for(pilot, lambda: app.link_up, timeout=10)
        assert again.stats.connections >= 1 and app.boot_id != first
        said = [n.message for n in app._notifications]
        assert "SP0000123 restarted while it was disconnected" in said, said


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- a worker that fails on an unexpected exception ---------------------------------------------


@sync
async def test_an_exception_in_the_run_worker_ends_on_the_banner(emulator: Start,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    server = emulator("healthy")
    app = app_on(server.port)

    def broken(self: DiagnosticsEngine, *args: Any, **kw: Any) -> Any:
        raise KeyError("no such catalogue entry\nand a second line nobody should see")

    async with app.run_test(size=SIZE) as pilot:
        await connected(pilot, app)
        with monkeypatch.context() as m:
            m.setattr(DiagnosticsEngine, "run", broken)
            await pilot.press("r")
            await wait_for(pilot, lambda: "stopped on an unexpected error" in app.banner_text)
        assert app.banner_text.startswith("the run stopped on an unexpected error: KeyError:")
        assert "second line" not in app.banner_text and "Traceback" not in app.banner_text
        await wait_for(pilot, lambda: not app.running)
        assert all(t.state == "idle" for t in app.tiles.values())
        await pilot.press("1")   # and the next run works
        await wait_for(pilot, lambda: app.tiles["system"].state == "pass")
        assert app.banner_text == ""


@sync
async def test_an_exception_in_the_connect_worker_ends_on_the_banner(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kw: Any) -> Terminal:
        raise RuntimeError("a bug in opening")

    monkeypatch.setattr(Terminal, "open", broken)
    app = app_on("emu://healthy")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "connecting stopped on an unexpected error" in app.banner_text)
        assert "RuntimeError: a bug in opening" in banner(app)


@sync
async def test_an_exception_in_the_abort_worker_ends_on_the_banner(emulator: Start,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    server = emulator("healthy", speed=1.0)
    app = app_on(server.port)

    def broken(self: Terminal, component: str | int = 0xFF) -> None:
        raise AttributeError("abort went wrong")

    async with app.run_test(size=SIZE) as pilot:
        await connected(pilot, app)
        await pilot.press("4")
        await wait_for(pilot, lambda: app.tiles["network"].state == "running")
        monkeypatch.setattr(Terminal, "abort", broken)
        await pilot.press("a")
        await wait_for(pilot, lambda: "abort stopped on an unexpected error" in app.banner_text)
        assert "AttributeError: abort went wrong" in app.banner_text
        await wait_for(pilot, lambda: not app.running, timeout=20)


# -- a pty freed and taken by another terminal --------------------------------------------------


@pytest.fixture
def pty_holder() -> Iterator[Callable[[str, str], EmulatorServer | None]]:
    """Serve a scenario on one given pty path: ptys are numbered lowest free first, so hold
    every other one handed out until that number comes round (None if another program has it)."""
    held: list[EmulatorServer] = []
    kept: list[EmulatorServer] = []

    def serve_on(path: str, scenario: str) -> EmulatorServer | None:
        for _ in range(40):
            server = EmulatorServer(load_scenario(scenario), speed=50.0)
            if server.serve_pty() == path:
                kept.append(server)
                return server
            held.append(server)
        return None

    yield serve_on
    for server in held + kept:
        server.stop()


@sync
async def test_a_reconnect_by_path_to_another_terminal_on_the_freed_pty_is_refused(
        emulator: Start, pty_holder: Callable[[str, str], EmulatorServer | None]) -> None:
    first = emulator("healthy")
    path = first.port
    assert path is not None and path.startswith("/dev/pts/")
    app = app_on(path)
    async with app.run_test(size=SIZE) as pilot:
        await connected(pilot, app)
        await pilot.press("3")
        await wait_for(pilot, lambda: app.tiles["power"].state == "pass" and not app.running)
        first.stop()   # the terminal goes; its pty number is free once the app lets go too
        await wait_for(pilot, lambda: not app.link_up, timeout=5)
        await wait_for(pilot, lambda: not os.path.exists(path), timeout=5)
        other = pty_holder(path, "dropped")    # another terminal (serial SP0000457) gets the number
        if other is None:
            pytest.skip(f"another program took {path} first")
        await wait_for(pilot, lambda: "different terminal" in app.banner_text, timeout=10)
        assert "SP0000457" in app.banner_text and path in app.banner_text
        assert not app.link_up and app.terminal is None and app.serial == "SP0000123"
        assert app.device is not None and app.device.serial == "SP0000123"
        assert "SP0000123" in str(app.query_one("#device", Static).render())
        assert app.tiles["power"].state == "pass"   # the results of the first one, unmixed
        await pilot.press("1")                       # nothing runs on the other terminal
        await pilot.pause(0.3)
        assert app.tiles["system"].state == "idle"
        # the same terminal back on that number: the app takes it again
        other.stop()
        await wait_for(pilot, lambda: not os.path.exists(path), timeout=5)
        if pty_holder(path, "healthy") is None:
            pytest.skip(f"another program took {path} first")
        await wait_for(pilot, lambda: app.link_up, timeout=10)
        assert app.banner_text == "" and app.tiles["power"].state == "pass"
