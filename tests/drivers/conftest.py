"""Fixtures for the driver tests: a terminal played by the test on a pty, and threads to wait on
the host's blocking calls while the test plays the terminal's side."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.drivers.ptypeer import PtyPeer


@pytest.fixture
def peer() -> Iterator[PtyPeer]:
    """The far end of a real pty, for the test to play the terminal on."""
    p = PtyPeer()
    yield p
    p.close()


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    """Two threads for the host's blocking calls."""
    with ThreadPoolExecutor(max_workers=2) as ex:
        yield ex
