"""Fixtures that run the emulated terminal on a real pseudo-terminal (or in-process via emu://)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from drivers.link import LinkTimings
from drivers.terminal import Terminal
from pos_sim.emulator import EmulatorServer, load_scenario, register_url_scheme

#: the emulator's components run 50x faster than life in tests; the line stays at 115200
SPEED = 50.0
TIMINGS = LinkTimings(keepalive_idle=3600)


@pytest.fixture(scope="session", autouse=True)
def _schemes() -> None:
    register_url_scheme()


Opener = Callable[..., tuple[EmulatorServer, Terminal]]


@pytest.fixture
def emulated() -> Iterator[Opener]:
    """Start an emulator on a pty and connect a Terminal to it; both stopped afterwards."""
    started: list[tuple[EmulatorServer, Terminal]] = []

    def start(scenario: str = "healthy", *, speed: float = SPEED, baud: int = 115200,
              timings: LinkTimings = TIMINGS, connect: bool = True, **kw: object) -> tuple[EmulatorServer, Terminal]:
        server = EmulatorServer(load_scenario(scenario), baud=baud, speed=speed, **kw)  # type: ignore[arg-type]
        path = server.serve_pty()
        try:
            term = Terminal.open(path, timings=timings, connect=connect)
        except BaseException:
            server.stop()
            raise
        started.append((server, term))
        return server, term

    yield start
    for server, term in started:
        term.close()
        server.stop()
