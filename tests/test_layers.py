"""The layer rules (docs/architecture.md): pos_sim -> drivers -> protocols, protocols/ is pure, and the
emulator stands on the protocol alone."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"protocols", "drivers", "pos_sim"}
ALLOWED = {"protocols": {"protocols"}, "drivers": {"protocols", "drivers"}, "pos_sim": OURS}
#: modules that would give protocols/ I/O, clocks or threads
IMPURE = {"serial", "socket", "threading", "asyncio", "time", "os", "io", "subprocess", "select", "pathlib"}
#: what the emulator may import besides the standard library and itself: the protocol, pyserial (its
#: URL handler), construct (the protocol's field types), and the one file-writing helper of drivers/
EMULATOR_THIRD_PARTY = {"serial", "construct"}
EMULATOR_MAY_IMPORT = ("protocols", "pos_sim.emulator", "drivers.files")


def _modules(path: Path) -> set[str]:
    """Every absolute module name ``path`` imports (``from a.b import c`` gives ``a.b`` and ``a.b.c``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def _imports(path: Path) -> set[str]:
    return {name.split(".")[0] for name in _modules(path)}


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


def _emulator_may_import(module: str) -> bool:
    top = module.split(".", maxsplit=1)[0]
    if top in sys.stdlib_module_names or top in EMULATOR_THIRD_PARTY:
        return True
    return any(module == allowed or module.startswith(allowed + ".") for allowed in EMULATOR_MAY_IMPORT)


def test_emulator_stands_on_the_protocol_alone() -> None:
    files = list((ROOT / "pos_sim" / "emulator").rglob("*.py"))
    assert files
    for f in files:
        modules = _modules(f)
        # ``from pos_sim.emulator.x import Name`` also lists ``...x.Name``: judge the module part only
        bad = {m for m in modules if not _emulator_may_import(m) and not _is_from_name(m, modules)}
        assert not bad, f"{f.relative_to(ROOT)} imports {sorted(bad)}"


def _is_from_name(name: str, modules: set[str]) -> bool:
    parent = name.rpartition(".")[0]
    return bool(parent) and parent in modules and _emulator_may_import(parent)


def test_the_emulator_rule_catches_the_application() -> None:
    """The rule above would fail on an emulator module that reached into the host application."""
    assert not _emulator_may_import("pos_sim.errors")
    assert not _emulator_may_import("pos_sim.services.keys")
    assert not _emulator_may_import("drivers.terminal")
    assert not _emulator_may_import("textual")
    assert _emulator_may_import("drivers.files") and _emulator_may_import("protocols.pos.codes")


def test_only_the_command_line_imports_the_command_line() -> None:
    """Services, the TUI and the engines never reach up into pos_sim/cli/ (the CLI is the top)."""
    for f in (ROOT / "pos_sim").rglob("*.py"):
        if (ROOT / "pos_sim" / "cli") in f.parents:
            continue
        bad = {m for m in _modules(f) if m == "pos_sim.cli" or m.startswith("pos_sim.cli.")}
        assert not bad, f"{f.relative_to(ROOT)} imports {sorted(bad)}"


def _calls(path: Path) -> set[str]:
    """``module.function`` of every attribute call in ``path`` (``os.replace(...)`` gives ``os.replace``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        func = node.func if isinstance(node, ast.Call) else None
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            names.add(f"{func.value.id}.{func.attr}")
    return names


def test_one_atomic_write() -> None:
    """Files are replaced through drivers/files.py alone: nobody else renames a temporary file into place."""
    helper = ROOT / "drivers" / "files.py"
    assert "os.replace" in _calls(helper)
    for package in (*sorted(OURS), "tools"):
        for f in (ROOT / package).rglob("*.py"):
            if f != helper:
                bad = _calls(f) & {"os.replace", "os.rename"}
                assert not bad, f"{f.relative_to(ROOT)} calls {bad}: use drivers.files.write_atomically"


# -- docs/architecture.md stays true ----------------------------------------------------------------

ARCHITECTURE = ROOT / "docs" / "architecture.md"
#: paths the page describes as the seam another line of work fills in; they may not exist yet
_PATH = re.compile(r"`((?:protocols|drivers|pos_sim|tools|bench|tests|docs|fixtures)/[^`\s]*)`")


def test_the_architecture_page_names_every_package() -> None:
    page = ARCHITECTURE.read_text(encoding="utf-8")
    packages = sorted({f"{init.parent.relative_to(ROOT)}/" for top in (*OURS, "tools")
                       for init in (ROOT / top).rglob("__init__.py")})
    assert "pos_sim/cli/" in packages and "pos_sim/emulator/urlhandler/" in packages
    missing = [p for p in packages if f"`{p}`" not in page]
    assert not missing, f"docs/architecture.md does not describe {missing}"


def test_every_path_the_architecture_page_names_exists() -> None:
    named = set(_PATH.findall(ARCHITECTURE.read_text(encoding="utf-8")))
    assert len(named) > 30
    gone = sorted(p for p in named if not (ROOT / p).exists())
    assert not gone, f"docs/architecture.md names paths that do not exist: {gone}"


def test_the_architecture_page_s_path_check_would_catch_a_stale_path() -> None:
    assert _PATH.findall("see `pos_sim/lifecycle.py` and `drivers/files.py`") == ["pos_sim/lifecycle.py",
                                                                                   "drivers/files.py"]
    assert not (ROOT / "pos_sim" / "lifecycle.py").exists()
