"""A component's facts agree across the tree: the wire's ``Component`` (protocols/pos/codes.py) is the
declaration, and every table keyed by component (its status block, its emulator script and scenario
schema, its catalogue entries, its place in the plans, its tile and its status rows) names the same set.

The recipe in docs/architecture.md ("Adding a component") lists these files; a component added to one
table and not the others fails here, naming the table.  The tables that only repeated a declaration
(the plans' orders, the interactive components, the scenario's wire fields, the emulator's and the
status command's blocks) are derived from it: the tests below hold the derivations to today's
hand-written tables, build a throwaway fingerprint reader from declarations alone, and fail when a
component list is written out by hand again.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from construct import Flag, Int8sb, Int16ub, Int32ub, Struct

from pos_sim.cli import status as status_cmd
from pos_sim.diagnostics import engine
from pos_sim.diagnostics.catalogue import load_catalogue
from pos_sim.emulator import scenario, selftests
from pos_sim.tui.text import PHRASES
from protocols.pos.codes import Component, ComponentCode, FaultCode, Prompt, PromptCode, ReaderState
from protocols.pos.messages import STATUS_BY_COMPONENT, block_fields, enum8

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
    # rows of its own, else one row per field of its declared status block
    "pos_sim/cli/status.py _ROWS or declared rows": lambda: set(status_cmd._ROWS) | _status_blocks(),
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


# -- derived, not hand-written ------------------------------------------------------------------

#: the plans as they were written out by hand before they were derived: the oracle
TODAY_NATURAL = ("system", "security", "power", "network", "screen", "keypad", "magstripe", "chip",
                 "contactless", "printer", "scanner")
TODAY_DROP = ("security", "screen", "magstripe", "chip", "contactless", "keypad", "printer", "scanner",
              "power", "network", "system")
TODAY_INTERACTIVE = ("screen", "keypad", "magstripe", "chip", "contactless", "printer", "scanner")


def test_the_plans_derived_from_the_declaration_keep_todays_orders() -> None:
    assert engine.NATURAL_ORDER == TODAY_NATURAL
    assert engine.DROP_ORDER == TODAY_DROP
    assert engine.PLANS == {"full": ("full", TODAY_NATURAL), "quick": ("quick", TODAY_NATURAL),
                            "drop": ("full", TODAY_DROP)}
    for key in ("plan", "drop"):
        ranks = [getattr(c, key) for c in Component]
        assert len(set(ranks)) == len(ranks), f"two components share a {key} rank"


def test_the_interactive_components_follow_the_declared_prompts() -> None:
    assert engine.INTERACTIVE == TODAY_INTERACTIVE
    assert Prompt.none.component is None
    assert all(p.component is not None for p in Prompt if p is not Prompt.none)
    assert set(engine.CONFIRM_PROMPTS) <= set(Prompt.__members__)


def test_the_scenario_numbers_sent_in_a_status_block_are_its_declared_fields() -> None:
    """Each whole-number status parameter is sent in the field of the same name, with its limits."""
    for c, schema in scenario.COMPONENT_SCHEMAS.items():
        declared = {f.name: f for f in block_fields(STATUS_BY_COMPONENT[c.name])}
        for name, spec in schema.params.items():
            if spec.status_field:
                assert name in declared, (c.name, name)
                assert spec.doc, (c.name, name)
                if spec.kind == "int":
                    wf = scenario.WIRE_FIELDS[f"components.{c.name}.{name}"]
                    assert (wf.message, wf.path) == (f"STATUS_REPLY {c.name}", (name,))


#: the scenario numbers sent in a status block, as WIRE_FIELDS listed them by hand before: the oracle
TODAY_STATUS_NUMBERS = {
    "system": ("free_memory_kb", "total_memory_kb", "board_temp_c", "firmware_update_state", "firmware_update_result"),
    "magstripe": ("swipes", "failed_swipes"), "chip": ("insertions",), "contactless": ("taps",),
    "printer": ("lines_printed", "head_temp_c"), "screen": ("width", "height", "backlight_pct", "dead_pixels"),
    "keypad": ("presses",), "network": ("signal_dbm", "link_quality", "cell_id", "latency_ms"),
    "power": ("battery_temp_c",), "scanner": ("decodes",), "security": ("tamper_sources", "tripped_at"),
}


def test_the_derived_wire_fields_are_todays() -> None:
    derived = {k for k, wf in scenario.WIRE_FIELDS.items() if wf.message.startswith("STATUS_REPLY ")}
    assert derived == {f"components.{c}.{k}" for c, keys in TODAY_STATUS_NUMBERS.items() for k in keys}
    from pos_sim.emulator.device import _USAGE_PARAMS

    assert set(_USAGE_PARAMS) == {"swipes", "failed_swipes", "insertions", "taps", "lines_printed", "presses",
                                  "decodes"}   # the usage counters the emulator kept before they were derived
    assert all(name in TODAY_STATUS_NUMBERS[c.name] for name, (c, _) in _USAGE_PARAMS.items())
    head = scenario.WIRE_FIELDS["components.printer.head_temp_c"]          # what a warm, overheating head adds
    assert (head.add, head.limits) == (scenario.HEAD_WARMING_C + scenario.HEAD_OVERHEAT_C, (-128, 88))


# the throwaway component: a fingerprint reader, declared as the recipe says and used by nothing else
FP_BLOCK = Struct(
    "state" / enum8(ReaderState) * "sensor (ReaderState)",
    "templates" / Int16ub * "fingerprints enrolled",
    "matches" / Int32ub * "matches since manufacture",
    "sensor_temp_c" / Int8sb * "sensor temperature, degrees Celsius",
    "finger_present" / Flag * "1 when a finger is on the sensor",
)
# enum's functional API, through Any: mypy reads a call of an enum class as a lookup of a member
_component_code: Any = ComponentCode
_prompt_code: Any = PromptCode
FpComponent: type[ComponentCode] = _component_code(
    "FpComponent", [(c.name, (int(c), c.doc, c.plan, c.drop)) for c in Component]
    + [("fingerprint", (0x0D, "fingerprint reader", 65, 25))])
FpPrompt: type[PromptCode] = _prompt_code(
    "FpPrompt", [(p.name, (int(p), p.doc, p.component)) for p in Prompt]
    + [("place_finger", (9, "place a finger on the sensor", FpComponent["fingerprint"]))])


def test_a_throwaway_fingerprint_reader_finds_its_places_from_its_declarations() -> None:
    """Ranks 65 and 25 put it after the keypad (60) and after the screen (20): by hand, the orders
    below; its prompt makes it interactive."""
    assert engine.plan_order(FpComponent) == (
        "system", "security", "power", "network", "screen", "keypad", "fingerprint", "magstripe", "chip",
        "contactless", "printer", "scanner")
    assert engine.plan_order(FpComponent, "drop") == (
        "security", "screen", "fingerprint", "magstripe", "chip", "contactless", "keypad", "printer",
        "scanner", "power", "network", "system")
    assert engine.interactive(FpComponent, FpPrompt) == (
        "screen", "keypad", "fingerprint", "magstripe", "chip", "contactless", "printer", "scanner")
    assert engine.interactive(FpComponent, Prompt) == TODAY_INTERACTIVE     # no prompt: not interactive


def test_a_throwaway_fingerprint_reader_gets_its_scenario_keys_and_limits_from_its_status_block() -> None:
    fields = block_fields(FP_BLOCK)
    assert [(f.name, f.kind, f.signed) for f in fields] == [
        ("state", "code", False), ("templates", "int", False), ("matches", "int", False),
        ("sensor_temp_c", "int", True), ("finger_present", "bool", False)]
    assert fields[0].codes is ReaderState
    raw = scenario.ComponentSchema({"templates": scenario._s(3), "matches": scenario._s(100),
                                    "sensor_temp_c": scenario._s(31, "at rest"), "finger_present": scenario._s(False),
                                    "match_ms": scenario._p("int", 240, "time to match, ms")}, frozenset())
    schema = scenario.declared_schema("fingerprint", raw, FP_BLOCK)
    assert {k: (p.kind, p.doc) for k, p in schema.params.items()} == {
        "templates": ("int", "fingerprints enrolled"), "matches": ("int", "matches since manufacture"),
        "sensor_temp_c": ("int", "at rest"), "finger_present": ("bool", "1 when a finger is on the sensor"),
        "match_ms": ("int", "time to match, ms")}
    wire = scenario.status_wire_fields("fingerprint", schema, FP_BLOCK)
    # u16, u32 and s8 by hand; match_ms is not in the block, so it is not a status wire field
    assert {k: wf.limits for k, wf in wire.items()} == {
        "components.fingerprint.templates": (0, 65535), "components.fingerprint.matches": (0, 4294967295),
        "components.fingerprint.sensor_temp_c": (-128, 127)}
    with pytest.raises(TypeError, match=r"fingerprint\.enrolled"):
        scenario.declared_schema("fingerprint", scenario.ComponentSchema({"enrolled": scenario._s(1)}, frozenset()),
                                 FP_BLOCK)


def test_a_throwaway_fingerprint_reader_has_status_rows_without_rows_of_its_own() -> None:
    """A block decoded from bytes written by hand: ready, 3 templates, 100 matches, 30 C, a finger."""
    block = dict(FP_BLOCK.parse(bytes([0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x64, 0x1E, 0x01])))
    rows = status_cmd.declared_rows("fingerprint", block_fields(FP_BLOCK), block, load_catalogue(), "en")
    assert rows == [("state", "ready"), ("templates", "3"), ("matches", "100"), ("sensor_temp_c", "30"),
                    ("finger_present", "yes")]
    zh = status_cmd.declared_rows("fingerprint", block_fields(FP_BLOCK), block, load_catalogue(), "zh-CN")
    assert zh[0] == ("state", "就绪") and zh[-1] == ("finger_present", "是")


def test_the_readers_status_rows_are_their_declared_rows() -> None:
    """The chip, contactless and scanner rows have no code of their own: one row per declared field,
    in the phrase book's words (expected rows written out from pos_sim/cli/text.toml by hand)."""
    from drivers.terminal import ComponentStatus
    from pos_sim.emulator import load_scenario
    from pos_sim.emulator.device import Device
    from pos_sim.emulator.state import initial_state
    from protocols.pos.messages import STATUS_CASES

    assert not {"chip", "contactless", "scanner"} & set(status_cmd._ROWS)
    sc = load_scenario("healthy")
    device = Device(sc, initial_state(sc), boot=0.0)
    device.card_in_slot = True

    def rows(c: Component, lang: str) -> list[tuple[str, str]]:
        block = STATUS_CASES[c.name].parse(STATUS_CASES[c.name].build(device.status(c, 10.0)))
        return status_cmd.component_rows(ComponentStatus(c.name, dict(block)), lang)

    assert rows(Component.chip, "en") == [("Card slot", "card present"),
                                          ("Answer to reset", "3B 6E 00 00 00 31 C0 71 D6 64 38 D0 03 00"),
                                          ("Insertions", "812")]
    assert rows(Component.contactless, "zh-CN") == [("射频场", "就绪"), ("感应区内卡片", "0"), ("挥卡次数", "950")]
    assert rows(Component.scanner, "en") == [("Scan engine", "ready"), ("Codes decoded", "311")]


def test_todays_components_would_show_declared_rows_too() -> None:
    """Every declared field of every block renders (what a component without rows of its own gets)."""
    from pos_sim.emulator import load_scenario
    from pos_sim.emulator.device import Device
    from pos_sim.emulator.state import initial_state
    from protocols.pos.messages import STATUS_CASES, status_fields

    sc = load_scenario("healthy")
    device = Device(sc, initial_state(sc), boot=0.0)
    for c in Component:
        block = dict(STATUS_CASES[c.name].parse(STATUS_CASES[c.name].build(device.status(c, 10.0))))
        for lang in ("en", "zh-CN"):
            rows = status_cmd.declared_rows(c.name, status_fields(c.name), block, load_catalogue(), lang)
            assert [label for label, _ in rows if label] and len(rows) == len(status_fields(c.name))


# -- a component list written out by hand again ---------------------------------------------------

#: the files whose component tables are derived now (docs/architecture.md, "Adding a component")
DERIVED_IN = ("pos_sim/diagnostics/engine.py", "pos_sim/emulator/scenario.py", "pos_sim/emulator/device.py")
ROOT = Path(__file__).resolve().parents[1]


def _hand_lists(source: str) -> list[int]:
    """Lines of tuple, list, set or dict literals that name three components or more as strings."""
    out = []
    for node in ast.walk(ast.parse(source)):
        items: list[ast.expr | None] = []
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            items = list(node.elts)
        elif isinstance(node, ast.Dict):
            items = list(node.keys)
        names = {i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)} & WIRE
        if len(names) >= 3 and isinstance(node, ast.expr):
            out.append(node.lineno)
    return out


@pytest.mark.parametrize("path", DERIVED_IN)
def test_no_component_table_is_written_out_by_hand_again(path: str) -> None:
    lines = _hand_lists((ROOT / path).read_text(encoding="utf-8"))
    assert not lines, f"{path}, lines {lines}: derive the components from protocols/pos (codes.py, messages.py)"


def test_a_hand_written_component_table_is_caught() -> None:
    """The check above finds the tables as they were written before they were derived."""
    before = """
NATURAL_ORDER = ("system", "security", "power", "network", "screen")
FIELDS = {"system": ("free_memory_kb",), "magstripe": ("swipes",), "chip": ("insertions",)}
"""
    assert _hand_lists(before) == [2, 3]
