"""Every number a scenario gives is checked at load against the wire field it is sent in.

The limits below are written by hand from docs/protocol.md's tables (STATUS_REPLY's blocks,
SELFTEST_RESULT's measurements, EVENTLOG_PAGE, LC_CHALLENGE, INFO_REPLY, the transaction
record), not read from the code: u8 0..255, s8 -128..127, u16 0..65535, s16 -32768..32767,
u32 0..4294967295.  The print head is the one number the emulator raises before sending it
(9 C while printing, 30 more when it overheats: docs/emulator.md), so its limit is 127 - 39.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pos_sim.emulator import ScenarioError, load_scenario
from pos_sim.emulator.scenario import COMPONENT_SCHEMAS, WIRE_FIELDS
from pos_sim.ports import register_url_schemes

_KEY = 'key = "' + "ab" * 32 + '"'
U32 = 4294967295

#: (TOML table, key as the message names it, the key in the table, lowest, highest accepted)
LIMITS = [
    ("components.screen", "components.screen.width", "width", 0, 65535),
    ("components.screen", "components.screen.height", "height", 0, 65535),
    ("components.screen", "components.screen.dead_pixels", "dead_pixels", 0, 65535),
    ("components.printer", "components.printer.head_temp_c", "head_temp_c", -128, 127 - 39),
    ("components.printer", "components.printer.lines_printed", "lines_printed", 0, U32),
    ("components.system", "components.system.board_temp_c", "board_temp_c", -128, 127),
    ("components.system", "components.system.free_memory_kb", "free_memory_kb", 0, U32),
    ("components.system", "components.system.firmware_update_state", "firmware_update_state", 0, 255),
    ("components.network", "components.network.signal_dbm", "signal_dbm", -32768, 32767),
    ("components.network", "components.network.link_quality", "link_quality", 0, 255),
    ("components.network", "components.network.latency_ms", "latency_ms", 0, 65535),
    ("components.network", "components.network.cell_id", "cell_id", 0, U32),
    ("components.power", "components.power.battery_temp_c", "battery_temp_c", -128, 127),
    ("components.security", "components.security.tamper_sources", "tamper_sources", 0, 255),
    ("components.security", "components.security.tripped_at", "tripped_at", 0, U32),
    ("components.magstripe", "components.magstripe.swipes", "swipes", 0, U32),
    ("components.scanner", "components.scanner.decode_ms", "decode_ms", 0, 2147483647),
    ("lifecycle", "lifecycle.counter", "counter", 0, U32),
    ("lifecycle", "lifecycle.activated_at", "activated_at", 0, U32),
]


def _scenario(tmp_path: Path, table: str, line: str) -> Path:
    path = tmp_path / "numbers.toml"
    header = "" if table == "lifecycle" else f"[{table}]\n"
    path.write_text(f"[lifecycle]\n{_KEY}\n{header}{line}\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(("table", "name", "key", "lo", "hi"), LIMITS)
def test_a_number_outside_its_wire_field_is_refused_at_load(tmp_path: Path, table: str, name: str, key: str,
                                                            lo: int, hi: int) -> None:
    for bad in (lo - 1, hi + 1):
        path = _scenario(tmp_path, table, f"{key} = {bad}")
        with pytest.raises(ScenarioError) as err:
            load_scenario(path)
        message = str(err.value)
        assert "\n" not in message
        assert message.startswith(f"{path}: {name} = {bad} does not fit on the wire")
        assert f"{lo}..{hi}" in message
    for good in (lo, hi):
        if name == "lifecycle.activated_at" and good == 0:
            continue
        load_scenario(_scenario(tmp_path, table, f"{key} = {good}"))


def test_an_event_log_time_before_1970_names_its_entry(tmp_path: Path) -> None:
    path = tmp_path / "history.toml"
    path.write_text(f"[lifecycle]\n{_KEY}\n[[event_log]]\ntime = 1767225600\ncomponent = 'printer'\n"
                    f"code = 'paper_end'\nseverity = 'error'\n[[event_log]]\ntime = -1\ncomponent = 'printer'\n"
                    f"code = 'paper_end'\nseverity = 'error'\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"history\.toml: event_log\[1\]\.time = -1 does not fit.*0\.\.4294967295"):
        load_scenario(path)


def test_the_transaction_log_end_must_be_a_32_bit_time(tmp_path: Path) -> None:
    path = tmp_path / "txlog.toml"
    path.write_text(f"[lifecycle]\n{_KEY}\n[txlog]\nuntil = {U32 + 1}\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"txlog\.until = 4294967296 does not fit"):
        load_scenario(path)


def test_every_whole_number_a_component_takes_has_its_wire_field() -> None:
    """A parameter added later without a wire field would escape the check: refuse that here."""
    ints = {f"components.{c.name}.{k}" for c, schema in COMPONENT_SCHEMAS.items()
            for k, spec in schema.params.items() if spec.kind == "int"}
    assert ints - set(WIRE_FIELDS) == set()


def test_the_largest_head_temperature_is_served_overheated(tmp_path: Path) -> None:
    """At its limit, an overheating head is served as 88 + 30 (127 while it prints: still an s8)."""
    from drivers.terminal import Terminal

    path = tmp_path / "hot.toml"
    path.write_text(f"[lifecycle]\n{_KEY}\n[components.printer]\nhead_temp_c = 88\n"
                    f"faults = ['head_overheat']\n", encoding="utf-8")
    load_scenario(path)
    register_url_schemes()
    with Terminal.open(f"emu://{path}?speed=inf&baud=1000000") as term:
        assert term.status("printer")["head_temp_c"] == 88 + 30
