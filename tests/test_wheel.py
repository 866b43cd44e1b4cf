"""The installed wheel is the product: build it, install it in a fresh venv, run it from elsewhere.

The wheel is built from a copy of the tree without build leftovers (a stale ``build/`` would
leak files into the wheel, and building in place would write into the checkout other tests
read), installed with its dependencies from the package registry into a venv outside the
tree, and run with the working directory, HOME and the XDG directories in a temporary folder,
as a technician's ``pip install`` or ``pipx install`` would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCENARIO_SOURCE = ROOT / "pos_sim" / "emulator" / "scenarios"
PACKAGES = ("pos_sim", "drivers", "protocols")
#: the built-in scenarios the design asks for, written out by hand
REQUIRED_SCENARIOS = {"healthy", "dropped", "paper-out", "no-network", "weak-battery", "flaky-link",
                      "firmware-crash", "unactivated"}
#: what ``dropped`` must give without a person at the bench, from docs/emulator.md's table:
#: component -> (verdict, code)
DROPPED_RESULTS = {
    "screen": ("fail", "panel_damaged"),
    "security": ("fail", "tamper_tripped"),
    "system": ("pass", None),
    "power": ("pass", None),
    "network": ("pass", None),
}
COMPONENT_FAILED, TERMINAL_LOCKED = 8, 32
SCHEMA_MEMBER = "pos_sim/diagnostics/report.schema.json"
_LEFTOVERS = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", "build", "dist", ".pytest_cache",
                                    ".mypy_cache", ".ruff_cache", ".hypothesis")
#: generous hang guards for pip (it may fetch from the registry), not a measure of speed
PIP_TIMEOUT = 600
RUN_TIMEOUT = 120


@dataclass(frozen=True)
class Installed:
    """The built wheel and a venv outside the tree with it installed."""

    wheel: Path
    venv: Path
    home: Path
    workdir: Path

    @property
    def python(self) -> Path:
        """The venv's interpreter."""
        return self.venv / "bin" / "python"

    @property
    def env(self) -> dict[str, str]:
        """A technician's environment: home, data and config in the temporary folder."""
        env = {k: v for k, v in os.environ.items()
               if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"} and not k.startswith("POS_SIM_")}
        env.update(HOME=str(self.home), XDG_DATA_HOME=str(self.home / "data"),
                   XDG_CONFIG_HOME=str(self.home / "config"), XDG_CACHE_HOME=str(self.home / "cache"),
                   LANG="C.UTF-8", LC_ALL="C.UTF-8")
        return env

    def pos_sim(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the installed ``pos-sim`` from the temporary folder, stdin and stdout not a TTY."""
        return subprocess.run([str(self.venv / "bin" / "pos-sim"), *args], cwd=self.workdir, env=self.env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=RUN_TIMEOUT,
                              check=False)


def _pip(*args: str) -> None:
    # pip runs with the real HOME so that its cache is reused
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}
    r = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, env=env,
                       timeout=PIP_TIMEOUT, check=False, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"pip {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("wheel")
    assert not base.resolve().is_relative_to(ROOT), "the venv must be outside the tree"
    source = base / "source"
    shutil.copytree(ROOT, source, ignore=_LEFTOVERS, symlinks=True)
    dist = base / "dist"
    try:
        _pip("wheel", str(source), "--no-deps", "-q", "-w", str(dist))
    finally:
        # the copy holds the tests' own sample card numbers: gone before the suite's card-data scan
        shutil.rmtree(source)
    [wheel] = dist.glob("*.whl")
    venv = base / "venv"
    r = subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], capture_output=True, text=True,
                       timeout=RUN_TIMEOUT, check=False)
    assert r.returncode == 0, r.stderr
    # the project's own pip installs into the new venv: no second copy of pip to bootstrap
    _pip("--python", str(venv / "bin" / "python"), "install", "-q", str(wheel))
    home, workdir = base / "home", base / "bench"
    home.mkdir()
    workdir.mkdir()
    return Installed(wheel, venv, home, workdir)


def _wheel_names(installed: Installed) -> set[str]:
    with zipfile.ZipFile(installed.wheel) as zf:
        return set(zf.namelist())


def test_the_wheel_ships_every_scenario_of_the_tree(installed: Installed) -> None:
    in_tree = {p.name for p in SCENARIO_SOURCE.glob("*.toml")}
    assert {name.removesuffix(".toml") for name in in_tree} >= REQUIRED_SCENARIOS
    prefix = "pos_sim/emulator/scenarios/"
    shipped = {n.removeprefix(prefix) for n in _wheel_names(installed) if n.startswith(prefix)}
    assert shipped == in_tree


def test_the_wheel_ships_every_data_file_of_the_packages(installed: Installed) -> None:
    data = {p.relative_to(ROOT).as_posix() for package in PACKAGES for p in (ROOT / package).rglob("*")
            if p.is_file() and p.suffix not in {".py", ".pyc"} and "__pycache__" not in p.parts}
    assert SCHEMA_MEMBER in data and "pos_sim/diagnostics/catalogue.toml" in data
    missing = data - _wheel_names(installed)
    assert not missing, f"not package data (add them to [tool.setuptools.package-data]): {sorted(missing)}"


def test_the_installed_packages_are_not_the_tree(installed: Installed) -> None:
    code = ("import json, importlib.resources, pos_sim, drivers, protocols\n"
            "print(json.dumps([pos_sim.__file__, drivers.__file__, protocols.__file__,\n"
            "                  str(importlib.resources.files('pos_sim.emulator') / 'scenarios')]))")
    r = subprocess.run([str(installed.python), "-c", code], cwd=installed.workdir, env=installed.env,
                       capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)
    assert r.returncode == 0, r.stderr
    for where in json.loads(r.stdout):
        path = Path(where).resolve()
        assert path.is_relative_to(installed.venv.resolve()) and not path.is_relative_to(ROOT), where


def _results(report: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    return {r["component"]: (r["verdict"], r["code"]) for r in report["results"]}


def test_diag_of_the_dropped_terminal_from_outside_the_tree(installed: Installed) -> None:
    r = installed.pos_sim("diag", "emu://dropped", "--non-interactive", "--json")
    assert r.returncode & COMPONENT_FAILED and r.returncode & TERMINAL_LOCKED, (r.returncode, r.stderr)
    report = json.loads(r.stdout)
    with zipfile.ZipFile(installed.wheel) as zf:
        schema = json.loads(zf.read(SCHEMA_MEMBER))
    jsonschema.validators.validator_for(schema).check_schema(schema)
    jsonschema.validate(report, schema)
    assert report["exit_status"] == r.returncode
    assert report["verdict"] == "locked" and report["device"]["serial"] == "SP0000457"
    results = _results(report)
    assert {c: results[c] for c in DROPPED_RESULTS} == DROPPED_RESULTS
    # the run is recorded in the registry in the user's data directory, here the temporary one
    assert (installed.home / "data" / "pos-sim" / "registry.db").is_file()


def test_demo_without_a_terminal_prints_the_diagnosis(installed: Installed) -> None:
    r = installed.pos_sim("demo", "--lang", "en")
    assert r.returncode & COMPONENT_FAILED and r.returncode & TERMINAL_LOCKED, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    lines = [line.split() for line in r.stdout.splitlines()]
    assert ["Screen", "Fail", "panel_damaged"] in [words[:3] for words in lines]
    assert ["Security", "(tamper", "protection)", "Fail", "tamper_tripped"] in [words[:5] for words in lines]
    assert "Serial number SP0000457" in r.stdout
    [verdict] = [line for line in r.stdout.splitlines() if line.startswith("Overall verdict:")]
    assert verdict.startswith("Overall verdict: Locked") and verdict.endswith(f"exit {r.returncode}")


def test_a_scenario_given_by_path_is_read_from_that_file(installed: Installed) -> None:
    text = (SCENARIO_SOURCE / "paper-out.toml").read_text(encoding="utf-8")
    assert 'serial = "SP0000789"' in text
    mine = installed.workdir / "my-terminal.toml"
    mine.write_text(text.replace('serial = "SP0000789"', 'serial = "SP0099999"'), encoding="utf-8")
    r = installed.pos_sim("info", f"emu://{mine}", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["device"]["serial"] == "SP0099999"


def test_an_unknown_scenario_names_every_installed_one(installed: Installed) -> None:
    r = installed.pos_sim("diag", "emu://exploded", "--non-interactive")
    assert r.returncode == 2, r.stderr
    [line] = r.stderr.splitlines()
    assert "unknown scenario 'exploded'" in line
    for name in REQUIRED_SCENARIOS:
        assert name in line
