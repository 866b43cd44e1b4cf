"""The layer rules of DESIGN.md: pos_sim -> drivers -> protocols, and protocols/ is pure."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"protocols", "drivers", "pos_sim"}
ALLOWED = {"protocols": {"protocols"}, "drivers": {"protocols", "drivers"}, "pos_sim": OURS}
#: modules that would give protocols/ I/O, clocks or threads
IMPURE = {"serial", "socket", "threading", "asyncio", "time", "os", "io", "subprocess", "select", "pathlib"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(OURS))
def test_imports_point_one_way(package: str) -> None:
    files = list((ROOT / package).rglob("*.py"))
    assert files
    for f in files:
        bad = (_imports(f) & OURS) - ALLOWED[package]
        assert not bad, f"{f.relative_to(ROOT)} imports {bad}"


def test_protocols_is_pure() -> None:
    for f in (ROOT / "protocols").rglob("*.py"):
        bad = _imports(f) & IMPURE
        assert not bad, f"{f.relative_to(ROOT)} imports {bad}"
