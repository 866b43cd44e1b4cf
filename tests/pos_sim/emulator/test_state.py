"""The state file: a terminal remembers across restarts, and the file is never half written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pos_sim.emulator import StateFileError
from pos_sim.emulator.scenario import load_scenario
from pos_sim.emulator.state import StateStore
from tests.pos_sim.emulator.hosts import EngineHost, T
from tests.pos_sim.emulator.test_lifecycle import lc


def test_a_terminal_remembers_its_life_logs_and_battery_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "terminal.json"
    first = EngineHost("unactivated", store=StateStore(path))
    first.hello()
    lc(first, "activate", 5, activation_code="A1", merchant_id="898310048167777")
    first.engine.save(first.now)

    again = EngineHost("unactivated", store=StateStore(path))
    again.hello()
    info = again.request(T.INFO_REQUEST).fields
    assert info["lifecycle"] == "activated" and info["merchant_id"] == "898310048167777"
    challenge = again.request(T.LC_CHALLENGE_REQUEST, {"operation": "bind"}).fields
    assert challenge["counter"] == 5


def test_event_log_and_battery_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "weak.json"
    first = EngineHost("weak-battery", store=StateStore(path))
    first.hello()
    first.now += 1200  # 20 minutes on battery: 8 % - 4 % = 4 %
    first.engine.save(first.now)
    log_before = len(first.engine.state.event_log)
    assert log_before >= 1

    again = EngineHost("weak-battery", store=StateStore(path))
    again.hello()
    power = again.request(T.STATUS_REQUEST, {"component": "power"}).fields["status"]
    assert power["battery_pct"] == 4
    # the log kept its entries and added what this boot found
    assert len(again.engine.state.event_log) > log_before


def test_usage_counters_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    first = EngineHost("healthy", store=StateStore(path), confirm=True)
    first.hello()
    first.run_self_test("printer")
    first.engine.save(first.now)
    again = EngineHost("healthy", store=StateStore(path))
    again.hello()
    lines = again.request(T.STATUS_REQUEST, {"component": "printer"}).fields["status"]["lines_printed"]
    assert lines == 482113 + 400


def test_the_file_is_json_in_the_documented_format(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    EngineHost("dropped", store=StateStore(path))
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == "pos-sim-emulator-state" and data["version"] == 1
    assert data["serial"] == "SP0000457" and data["lifecycle"]["state"] == "locked"
    assert data["keys_loaded"] is False
    assert "key" not in json.dumps(data["lifecycle"]), "the lifecycle key stays in the scenario"
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"], "no temporary file left behind"


def test_a_failed_write_leaves_the_old_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.json"
    host = EngineHost("healthy", store=StateStore(path))
    before = path.read_text(encoding="utf-8")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    host.engine.state.counter = 99
    with pytest.raises(OSError):
        host.engine.save(host.now)
    assert path.read_text(encoding="utf-8") == before
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]


def test_another_terminals_state_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    EngineHost("healthy", store=StateStore(path))
    with pytest.raises(StateFileError, match="SP0000123"):
        StateStore(path).load(load_scenario("dropped"))


@pytest.mark.parametrize("content", ["{not json", '{"format": "something else"}', '{"format": "pos-sim-emulator-state",'
                                     ' "version": 1}'])
def test_an_unusable_state_file_is_explained(tmp_path: Path, content: str) -> None:
    path = tmp_path / "s.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(StateFileError) as err:
        StateStore(path).load(load_scenario("healthy"))
    assert str(path) in str(err.value)


def test_without_a_path_nothing_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    host = EngineHost("unactivated")
    host.hello()
    lc(host, "revoke", reason="test")
    assert list(tmp_path.iterdir()) == []
