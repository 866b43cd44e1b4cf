"""docs/emulator.md stays true: every scenario, key, parameter and declarable fault is in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.masking import mask_text
from pos_sim.emulator import load_scenario, scenario_names
from pos_sim.emulator.scenario import COMPONENT_SCHEMAS
from protocols.pos.codes import Component

DOC = (Path(__file__).resolve().parents[3] / "docs" / "emulator.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", scenario_names())
def test_every_scenario_is_documented_with_its_serial_and_key(name: str) -> None:
    sc = load_scenario(name)
    assert f"`{name}`" in DOC
    assert sc.device.serial in DOC or f"`{mask_text(sc.device.serial)}`" in DOC   # hostile-texts: as shown
    assert sc.lifecycle.key.hex() in DOC, f"{name}'s lifecycle key is not in docs/emulator.md"


@pytest.mark.parametrize("component", list(Component), ids=lambda c: c.name)
def test_every_component_parameter_and_declarable_fault_is_documented(component: Component) -> None:
    schema = COMPONENT_SCHEMAS[component]
    table = DOC[DOC.index("| component | parameters |"):]
    row = next(line for line in table.splitlines() if line.startswith(f"| {component.name} |"))
    for param in schema.params:
        assert f"`{param}`" in row, param
    for code in schema.declarable:
        assert f"`{code.name}`" in row, code.name
