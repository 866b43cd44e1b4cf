"""Suite-wide fixtures: no test may leave a thread behind (pymodbus' conftest habit)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

#: threads that belong to the test runner or libraries, not to the code under test
_FOREIGN = ("pytest_timeout", "hypothesis", "ThreadPoolExecutor-", "asyncio_")


@pytest.fixture(autouse=True)
def no_thread_left_behind() -> Iterator[None]:
    """Fail a test whose threads outlive it (after a short grace period for joins in progress)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 2.0
    while True:
        extra = [t for t in threading.enumerate()
                 if t not in before and t.is_alive() and not t.name.startswith(_FOREIGN)]
        if not extra or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert not extra, f"threads left behind: {[t.name for t in extra]}"
