"""Scenarios: the built-in ones exist and are documented, bad ones fail with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest

from pos_sim.emulator import ScenarioError, load_scenario, scenario_names
from pos_sim.emulator.scenario import SCENARIO_DIR
from protocols.pos.codes import Component, FaultCode, LifecycleState

REQUIRED = ["dropped", "firmware-crash", "flaky-link", "healthy", "no-network", "paper-out", "unactivated",
            "weak-battery"]


def test_every_required_scenario_is_there() -> None:
    assert set(REQUIRED) <= set(scenario_names())


@pytest.mark.parametrize("name", REQUIRED)
def test_scenario_loads_and_is_documented_at_its_top(name: str) -> None:
    sc = load_scenario(name)
    assert sc.name == name
    text = (SCENARIO_DIR / f"{name}.toml").read_text(encoding="utf-8")
    assert text.startswith("#"), "the file starts with its comment block"
    # the block says what device, what faults and what a diagnosis should find
    for heading in ("Device:", "Faults:", "A diagnosis should find:"):
        assert heading in sc.description, f"{name}: no {heading!r} in its comment block"
    assert len(sc.lifecycle.key) == 32


def test_scenarios_have_distinct_serials_and_keys() -> None:
    scenarios = [load_scenario(n) for n in REQUIRED]
    assert len({s.device.serial for s in scenarios}) == len(scenarios)
    assert len({s.lifecycle.key for s in scenarios}) == len(scenarios)


def test_the_key_never_appears_in_repr() -> None:
    sc = load_scenario("healthy")
    assert sc.lifecycle.key.hex() not in repr(sc)
    assert "key=" not in repr(sc.lifecycle)


def test_scenarios_describe_what_the_brief_asks() -> None:
    dropped = load_scenario("dropped")
    assert dropped.lifecycle.state == LifecycleState.locked
    assert dropped.component(Component.security).has(FaultCode.tamper_tripped)
    assert dropped.component(Component.screen).get_int("dead_pixels") > 0
    assert load_scenario("paper-out").component(Component.printer).get_str("paper") == "end"
    assert load_scenario("no-network").component(Component.network).has(FaultCode.no_link)
    assert load_scenario("weak-battery").component(Component.power).get_float("battery_pct") < 10
    assert load_scenario("flaky-link").link.active
    crash = load_scenario("firmware-crash").crash
    assert crash is not None and crash.component == Component.printer and crash.at_percent == 50
    unact = load_scenario("unactivated")
    assert unact.lifecycle.state == LifecycleState.unactivated and unact.lifecycle.merchant_id == ""


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ScenarioError) as err:
        load_scenario("exploded")
    message = str(err.value)
    assert "'exploded'" in message
    for name in REQUIRED:
        assert name in message


def test_load_by_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text((SCENARIO_DIR / "paper-out.toml").read_text(encoding="utf-8"), encoding="utf-8")
    sc = load_scenario(path)
    assert sc.name == "mine" and sc.path == path
    assert load_scenario(str(path)).device.serial == sc.device.serial


def test_invalid_toml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("# a comment\n[device\nserial = 'x'\n", encoding="utf-8")
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert str(path) in str(err.value)
    assert "invalid TOML" in str(err.value) and "line 2" in str(err.value)


def test_missing_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "nothing.toml")


_KEY = 'key = "' + "ab" * 32 + '"'


@pytest.mark.parametrize(("body", "expected"), [
    (f"[lifecycle]\n{_KEY}\n[bogus]\n", "unknown table"),
    ("[lifecycle]\nkey = 'abc'\n", "64 hex digits"),
    (f"[lifecycle]\n{_KEY}\n[components.printer]\npaper = 'soggy'\n", "paper"),
    (f"[lifecycle]\n{_KEY}\n[components.printer]\nfaults = ['no_link']\n", "not a fault of printer"),
    (f"[lifecycle]\n{_KEY}\n[components.magstripe]\nfaults = ['msr_intermittent']\n", "cannot be declared"),
    (f"[lifecycle]\n{_KEY}\n[components.printer]\ncolour = 'red'\n", "unknown key"),
    (f"[lifecycle]\n{_KEY}\n[components.screen]\ndead_pixels = 'many'\n", "must be int"),
    (f"[lifecycle]\n{_KEY}\n[components.security]\nfaults = ['tamper_tripped']\n", "go together"),
    (f"[lifecycle]\n{_KEY}\nstate = 'bound'\n", "needs a merchant_id"),
    (f"[lifecycle]\n{_KEY}\n[link]\ncorrupt_rate = 2.0\n", "between 0 and 0.5"),
    (f"[lifecycle]\n{_KEY}\n[device]\nmax_payload = 16\n", "max_payload"),
    (f"[lifecycle]\n{_KEY}\n[crash]\ncomponent = 'toaster'\n", "not a Component"),
    (f"[lifecycle]\n{_KEY}\n[components.keypad]\nstuck_keys = ['k5', 'k99']\n", "k99"),
])
def test_bad_values_are_explained_with_the_file_name(tmp_path: Path, body: str, expected: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert str(path) in str(err.value)
    assert expected in str(err.value)


def test_minimal_scenario_gets_healthy_defaults(tmp_path: Path) -> None:
    path = tmp_path / "minimal.toml"
    path.write_text(f"[lifecycle]\n{_KEY}\n", encoding="utf-8")
    sc = load_scenario(path)
    assert sc.device.components == frozenset(Component)
    assert all(not cfg.faults for cfg in sc.components.values())
    assert not sc.link.active and sc.crash is None
