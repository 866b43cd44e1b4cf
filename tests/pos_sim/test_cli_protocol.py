"""`pos-sim protocol` and the command line's basic contract, run as a real process."""

from __future__ import annotations

import json
import subprocess
import sys

from protocols.pos.messages import CATALOGUE


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pos_sim.cli", *args], capture_output=True, text=True,
                          timeout=60, check=False)


def test_protocol_json_lists_every_message() -> None:
    r = run("protocol", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert [(m["type"], m["name"]) for m in data["messages"]] == [(int(t), s.name) for t, s in CATALOGUE.items()]
    info = next(m for m in data["messages"] if m["name"] == "INFO_REPLY")
    assert [f["name"] for f in info["fields"]][:3] == ["manufacturer", "model", "serial"]
    status = next(m for m in data["messages"] if m["name"] == "STATUS_REPLY")
    assert "printer" in status["fields"][1]["cases"]
    assert data["enums"]["Component"]["printer"] == 5


def test_protocol_human_output() -> None:
    r = run("protocol")
    assert r.returncode == 0
    for t, spec in CATALOGUE.items():
        assert f"0x{int(t):02X} {spec.name}" in r.stdout
    assert "CRC-16/CCITT-FALSE" in r.stdout


def test_protocol_one_message_by_name_or_number() -> None:
    by_name, by_number = run("protocol", "selftest_result"), run("protocol", "0x22")
    assert by_name.returncode == by_number.returncode == 0
    assert by_name.stdout == by_number.stdout
    assert "measurements" in by_name.stdout and "Measurement" in by_name.stdout
    assert "INFO_REPLY" not in by_name.stdout


def test_unknown_message_is_one_line_exit_1() -> None:
    r = run("protocol", "NOPE")
    assert r.returncode == 1
    assert r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and "no message 'NOPE'" in r.stderr


def test_bad_command_line_is_exit_1_without_traceback() -> None:
    for args in (["--bogus"], ["protocol", "--nope"], ["no-such-command"]):
        r = run(*args)
        assert r.returncode == 1, args
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_version() -> None:
    r = run("--version")
    assert r.returncode == 0 and r.stdout.startswith("pos-sim ")
