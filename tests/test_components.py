"""A component's facts agree across the tree: the wire's ``Component`` (protocols/pos/codes.py) is the
declaration, and every table keyed by component (its status block, its emulator script and scenario
schema, its catalogue entries, its place in the plans, its tile and its status rows) names the same set.

The recipe in docs/architecture.md ("Adding a component") lists these files; a component added to one
table and not the others fails here, naming the table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest

from pos_sim.cli import status as status_cmd
from pos_sim.diagnostics import engine
from pos_sim.diagnostics.catalogue import load_catalogue
from pos_sim.emulator import scenario, selftests
from pos_sim.tui.text import PHRASES
from protocols.pos.codes import Component, FaultCode
from protocols.pos.messages import STATUS_BY_COMPONENT

WIRE = {c.name for c in Component}


def _names(keys: Iterable[object]) -> set[str]:
    return {k.name if isinstance(k, Component) else str(k) for k in keys}


def _status_blocks() -> set[str]:
    return {k if isinstance(k, str) else Component(k).name for k in STATUS_BY_COMPONENT}


TABLES: dict[str, Callable[[], set[str]]] = {
    "protocols/pos/messages.py STATUS_BY_COMPONENT": _status_blocks,
    "pos_sim/emulator/selftests.py SCRIPTS": lambda: _names(selftests.SCRIPTS),
    "pos_sim/emulator/scenario.py COMPONENT_SCHEMAS": lambda: _names(scenario.COMPONENT_SCHEMAS),
    "pos_sim/diagnostics/engine.py NATURAL_ORDER": lambda: set(engine.NATURAL_ORDER),
    "pos_sim/diagnostics/engine.py DROP_ORDER": lambda: set(engine.DROP_ORDER),
    "pos_sim/cli/status.py _ROWS": lambda: set(status_cmd._ROWS),
    "pos_sim/diagnostics/catalogue.toml labels.component": lambda: set(load_catalogue().keys("component"))
    & WIRE,
}


@pytest.mark.parametrize("table", sorted(TABLES))
def test_every_component_table_names_every_wire_component(table: str) -> None:
    names = TABLES[table]()
    assert names == WIRE, f"{table}: missing {sorted(WIRE - names)}, extra {sorted(names - WIRE)}"


def test_the_plans_run_each_component_once() -> None:
    for order in (engine.NATURAL_ORDER, engine.DROP_ORDER):
        assert len(order) == len(set(order)) == len(WIRE)
    assert set(engine.INTERACTIVE) <= WIRE


def test_every_component_has_a_category_and_its_fault_codes_are_its_own() -> None:
    cat = load_catalogue()
    for c in Component:
        cat.category_of_component(c)      # raises nothing, and is not the unknown-part fallback below
        assert c.name in {e.component for e in cat.faults.values()}, f"{c.name}: no fault code in the catalogue"
    for code in FaultCode:
        if code is not FaultCode.none and code >> 8 != 0x0C:
            assert (code >> 8) in {int(c) for c in Component}, f"{code.name}: high byte names no component"


def test_every_component_has_a_named_tile() -> None:
    """The TUI draws a tile per component of the plan (NATURAL_ORDER, checked above), titled from the
    catalogue; a component the catalogue lacked would show its bare key."""
    from pos_sim.tui.model import component_label

    cat = load_catalogue()
    for c in Component:
        for lang in ("zh-CN", "en"):
            assert component_label(c.name, lang, cat) != c.name, (c.name, lang)
    screen = PHRASES.pairs("screen")
    for component in ("magstripe", "contactless", "scanner", "chip"):   # the readers' state words
        assert f"st_{component}" in screen


def test_a_disagreeing_table_is_caught() -> None:
    """The check above would fail on a component missing from one table."""
    names = TABLES["pos_sim/emulator/selftests.py SCRIPTS"]() - {"scanner"}
    assert names != WIRE


def test_every_host_request_has_an_emulator_handler() -> None:
    """A request message (protocols/pos/messages.py, direction host → terminal) is answered by the
    emulator's ``_req_<name>`` method; PING goes either way and is a request too."""
    from pos_sim.emulator.engine import HOST_REQUESTS, TerminalEngine
    from protocols.pos.messages import CATALOGUE, HOST, MessageType

    declared = {s.type for s in CATALOGUE.values() if s.direction == HOST} | {MessageType.PING}
    assert declared == HOST_REQUESTS
    missing = [t.name for t in declared if not callable(getattr(TerminalEngine, f"_req_{t.name.lower()}", None))]
    assert not missing, f"no emulator handler (pos_sim/emulator/engine.py _req_...) for {missing}"
    for t in declared:
        assert CATALOGUE[t].answer not in ("", "—"), f"{t.name}: a request needs its answer rule"
