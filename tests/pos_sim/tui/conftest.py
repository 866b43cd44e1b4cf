"""Fixtures for the TUI tests: an emulated terminal 50 times faster than life."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

from drivers.link import LinkTimings
from pos_sim.emulator import EmulatorServer, load_scenario, register_url_scheme
from pos_sim.tui import PosSimApp

SPEED = 50.0
TIMINGS = LinkTimings(keepalive_idle=3600)


@pytest.fixture(autouse=True, scope="session")
def _schemes() -> None:
    register_url_scheme()


@pytest.fixture
def emulator() -> Iterator[Callable[..., EmulatorServer]]:
    """Start emulators (pty by default, or TCP); all stopped after the test."""
    started: list[EmulatorServer] = []

    def start(scenario: str = "healthy", *, tcp_port: int | None = None, speed: float = SPEED) -> EmulatorServer:
        server = EmulatorServer(load_scenario(scenario), speed=speed)
        started.append(server)
        if tcp_port is None:
            server.serve_pty()
        else:
            server.serve_tcp(tcp_port)
        return server

    yield start
    for server in started:
        server.stop()


def make_app(port: str | None, **kw: object) -> PosSimApp:
    """The app on ``port`` in English with the test timings, reports in ``report_dir``."""
    kw.setdefault("lang", "en")
    return PosSimApp(port, timings=TIMINGS, **kw)  # type: ignore[arg-type]


async def wait_for(pilot: object, condition: Callable[[], bool], timeout: float = 15.0) -> None:
    """Let the app run until ``condition`` holds (fail after ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.05)  # type: ignore[attr-defined]


def sync(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test in its own event loop (the project has no asyncio pytest plugin)."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(fn(*args, **kwargs))

    return run
