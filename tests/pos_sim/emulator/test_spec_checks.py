"""The reference terminal against the spec's check table (docs/protocol.md section 8).

The table is written by hand in the spec; these tests run every component's self-test on the
emulator (a fake clock, through the wire only) and check that the steps it reports and the
measurements it sends are the ones the table lists, with and without a person, and that the
"after a fault" column holds for the faults the scenarios carry.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from protocols.pos.codes import Component
from tests.pos_sim.emulator.hosts import EngineHost, T

SPEC = Path(__file__).resolve().parents[3] / "docs" / "protocol.md"
_ROW = re.compile(r"^\| (\w+) \| (\d) \|([^|]+)\|([^|]*)\|([^|]*)\|[^|]*\|[^|]*\|$", re.MULTILINE)


def _table() -> dict[str, list[tuple[int, str, bool, set[str]]]]:
    text = SPEC.read_text(encoding="utf-8")
    section = text[text.index("### The checks of each component"):text.index("### Fault, severity, outcome")]
    out: dict[str, list[tuple[int, str, bool, set[str]]]] = {}
    for comp, step, check, person, measurements in _ROW.findall(section):
        out.setdefault(comp, []).append((int(step), check.strip(), person.strip().startswith("yes"),
                                         set(re.findall(r"`(\w+)`", measurements))))
    return out


TABLE = _table()


def _steps(host: EngineHost, component: str) -> list[int]:
    seen: list[int] = []
    for m in host.events_of(T.SELFTEST_PROGRESS):
        if m.fields["component"] == component and m.fields["step"] not in seen:
            seen.append(m.fields["step"])
    return seen


def test_the_table_covers_every_component_once() -> None:
    assert sorted(TABLE) == sorted(c.name for c in Component)
    for rows in TABLE.values():
        assert [step for step, *_ in rows] == list(range(1, len(rows) + 1))


@pytest.mark.parametrize("component", sorted(TABLE))
@pytest.mark.parametrize("plan,interactive", [("full", True), ("quick", False), ("full", False)])
def test_a_healthy_run_reports_the_tables_steps_and_measurements(component: str, plan: str,
                                                                  interactive: bool) -> None:
    host = EngineHost("healthy", confirm=True)
    host.hello()
    result = host.run_self_test(component, plan=plan, interactive=interactive)
    rows = TABLE[component]
    fitted_touch = host.engine.scenario.component(Component.screen).get_bool("touch")
    expected = [step for step, check, person, _ in rows
                if (interactive or not person) and not (check.startswith("touch") and not fitted_touch)]
    assert _steps(host, component) == expected
    listed = set().union(*(m for *_, m in rows))
    sent = {m["id"] for m in result["measurements"]}
    assert sent <= listed | {"checks_skipped"}
    if interactive:
        assert result["outcome"] == "passed"
    elif any(person for _, _, person, _ in rows) and plan == "full":
        assert result["outcome"] == "skipped"


@pytest.mark.parametrize("scenario,component,steps", [
    # hand-read from the "after a fault" column
    ("paper-out", "printer", [1]),          # paper end: test page and cutter not run
    ("no-network", "network", [1, 2, 3, 5]),  # no link: IP reports no_ip, DNS not run, host unreachable
])
def test_after_a_fault_the_later_checks_run_as_the_table_says(scenario: str, component: str,
                                                              steps: list[int]) -> None:
    host = EngineHost(scenario, confirm=True)
    host.hello()
    host.run_self_test(component)
    assert _steps(host, component) == steps
