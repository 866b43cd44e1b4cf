"""Suite-wide fixtures: no test may leave a thread behind (pymodbus' conftest habit)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def registry_in_a_temporary_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Runs recorded by `pos-sim diag` (also in subprocesses) go to a throwaway database, never
    to the user's data directory."""
    previous = os.environ.get("POS_SIM_DB")
    os.environ["POS_SIM_DB"] = str(tmp_path_factory.mktemp("registry") / "registry.db")
    yield
    if previous is None:
        os.environ.pop("POS_SIM_DB", None)
    else:
        os.environ["POS_SIM_DB"] = previous

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
