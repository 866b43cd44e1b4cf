"""Snapshot (pytest-textual-snapshot) of the device screen fed a fixed view.

Update after an intended change of the layout with
``pytest tests/pos_sim/tui/test_device_snapshot.py --snapshot-update`` and look at the SVG.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import pytest_textual_snapshot  # noqa: F401  (a missing plugin must fail here, not skip)

from tests.pos_sim.tui.device_snapshot_app import DeviceSnapshotApp


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Dates on the screen are local time: pin the zone so the picture is the same everywhere."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_device_screen(snap_compare: Callable[..., bool], utc: None) -> None:
    assert snap_compare(DeviceSnapshotApp(), terminal_size=(120, 30))
