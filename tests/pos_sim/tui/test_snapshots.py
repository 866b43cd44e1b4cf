"""Snapshot tests (pytest-textual-snapshot) of the main screen fed from fixed data.

Update after an intended change of the layout with ``pytest tests/pos_sim/tui --snapshot-update``
and look at the SVGs in ``__snapshots__`` before committing them.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import pytest_textual_snapshot  # noqa: F401  (a missing plugin must fail here, not skip)

from tests.pos_sim.tui.snapshot_app import SnapshotApp

SIZES = {"80x24": (80, 24), "120x40": (120, 40)}


@pytest.mark.parametrize("size", SIZES)
def test_healthy_run(snap_compare: Callable[..., bool], size: str) -> None:
    assert snap_compare(SnapshotApp("healthy"), terminal_size=SIZES[size])


@pytest.mark.parametrize("size", SIZES)
def test_dropped_run(snap_compare: Callable[..., bool], size: str) -> None:
    assert snap_compare(SnapshotApp("dropped"), terminal_size=SIZES[size])


@pytest.mark.parametrize("size", SIZES)
def test_dropped_run_in_chinese(snap_compare: Callable[..., bool], size: str) -> None:
    assert snap_compare(SnapshotApp("dropped", lang="zh-CN"), terminal_size=SIZES[size])


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_idle_status_on_the_tiles(snap_compare: Callable[..., bool], size: str, lang: str) -> None:
    assert snap_compare(SnapshotApp("dropped", lang=lang, idle=True), terminal_size=SIZES[size])
