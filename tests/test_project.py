"""The newcomer's setup and the code's hygiene: README, CI script, ruff and mypy."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```sh\n(.*?)\n```", text, re.DOTALL)[:2]


def test_readme_starts_with_try_and_test_commands() -> None:
    try_cmd, test_cmd = _readme_commands()
    assert "pip install -e ." in try_cmd and "pos-sim" in try_cmd
    assert "[test]" in test_cmd and "pytest" in test_cmd


def test_ci_runs_exactly_the_readme_test_command() -> None:
    _, test_cmd = _readme_commands()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_cmd in ci.splitlines()
    assert '"$status" -eq 5' in ci, "pytest's 'no tests collected' must fail CI"


def _tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed; it is part of the test extra")
    return found


def test_ruff_is_clean() -> None:
    r = subprocess.run([_tool("ruff"), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True,
                       timeout=120, check=False)
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_is_clean() -> None:
    r = subprocess.run([_tool("mypy")], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stdout + r.stderr


def test_no_card_number_in_what_the_project_ships() -> None:
    """The packages a wheel installs, the docs, the README and the benches hold no card number
    or track data, written out whole: the suite's end-of-session scan reads an installed wheel,
    and an example in a docstring counts there like any leak."""
    from tests import cardscan
    shipped = [ROOT / name for name in ("drivers", "pos_sim", "protocols", "docs", "bench", "README.md")]
    result = cardscan.scan(shipped)
    assert result.findings == [], [str(finding) for finding in result.findings]
    assert result.unreadable == []
