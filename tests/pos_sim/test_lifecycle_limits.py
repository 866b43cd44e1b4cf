"""The negotiated maximum payload binds every request, and a NAK is a definite refusal.

A terminal that negotiates 128-byte payloads at HELLO cannot take a lifecycle request with a
200-character reason: the host must refuse it before anything goes out (exit 1, the limit in
the message), and when a terminal does answer a lifecycle request with NAK (too_large, or
not_permitted after a restart), the output, the registry and the audit say it was refused,
never "unconfirmed, may have been carried out".

Sizes worked by hand from docs/protocol.md's LC_REQUEST table: operation u8, counter u32, nonce
16 bytes, three str8 (1 + length each) and a 32-byte MAC: 56 + the three texts' bytes.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from drivers.terminal import Terminal
from pos_sim.cli import main
from pos_sim.emulator import EmulatorServer
from pos_sim.emulator.scenario import SCENARIO_DIR, load_scenario
from pos_sim.ports import register_url_schemes
from pos_sim.registry import Registry
from pos_sim.registry.errors import UnknownDevice
from pos_sim.services.keys import KeyFile
from pos_sim.services.lifecycle import DeviceManager, LifecycleFailed

LIMIT = 128
SERIAL = "SP0000123"


@pytest.fixture
def small(tmp_path: Path) -> Path:
    """healthy, but its firmware takes at most 128-byte payloads."""
    text = SCENARIO_DIR.joinpath("healthy.toml").read_text(encoding="utf-8")
    path = tmp_path / "small-payload.toml"
    path.write_text(text.replace('serial = "SP0000123"\n', f'serial = "SP0000123"\nmax_payload = {LIMIT}\n'),
                    encoding="utf-8")
    assert load_scenario(str(path)).device.max_payload == LIMIT
    return path


def _keys(tmp_path: Path) -> Path:
    keys = tmp_path / "keys.toml"
    KeyFile(keys, {SERIAL: load_scenario("healthy").lifecycle.key}).save()
    return keys


def test_lifecycle_request_size_matches_the_spec_table(small: Path) -> None:
    register_url_schemes()
    with Terminal.open(f"emu://{small}?speed=inf&baud=1000000") as term:
        assert term.max_payload == LIMIT
        assert term.lifecycle_request_size("unbind", reason="") == 56
        assert term.lifecycle_request_size("unbind", reason="x" * 72) == 128
        assert term.lifecycle_request_size("activate", activation_code="A" * 10, merchant_id="8" * 15) == 81


def test_a_reason_too_long_for_the_terminal_is_refused_before_anything_is_sent(
        small: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'registry.db'}"
    port = f"emu://{small}?speed=inf&baud=1000000&state={tmp_path / 'terminal.json'}"
    keys = str(_keys(tmp_path))
    code = main(["device", "unbind", port, "--reason", "r" * 200, "--force", "--yes", "--keys", keys, "--db", db])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1
    assert "256 bytes" in err and f"at most {LIMIT}" in err and "shorten the reason by 128 bytes" in err
    assert "nothing was sent" in err and "r" * 20 not in err
    # nothing went out: the terminal is still bound, no lifecycle request in the registry
    assert main(["info", port, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["device"]["lifecycle"] == "bound"
    with Registry.open(db) as reg, pytest.raises(UnknownDevice):
        reg.lifecycle_ops(SERIAL)   # refused before even the identity was asked for
    # one byte shorter than the limit allows goes through (72 bytes of reason: 128 in all)
    code = main(["device", "unbind", port, "--reason", "r" * 72, "--force", "--yes", "--keys", keys, "--db", db])
    assert code == 0, capsys.readouterr().err


def test_nak_too_large_is_a_definite_refusal_everywhere(small: Path, tmp_path: Path) -> None:
    register_url_schemes()
    db = f"sqlite:///{tmp_path / 'registry.db'}"
    with Registry.open(db) as reg, Terminal.open(f"emu://{small}?speed=inf&baud=1000000") as term:
        mgr = DeviceManager(term, reg, KeyFile.load(str(_keys(tmp_path))))
        # a host that forgot the negotiated limit (as a buggy one would) sends it anyway
        term.link.timings = replace(term.link.timings, max_payload=1024)
        with pytest.raises(LifecycleFailed) as caught:
            mgr.run("unbind", reason="r" * 150, force=True)
        exc = caught.value
        assert exc.exit_code == 8
        assert "NAK too_large" in str(exc) and "not carried out" in str(exc) and "may have" not in str(exc)
        assert exc.record is not None and exc.record.status == "nak_too_large"
        [op] = reg.lifecycle_ops(SERIAL)
        assert (op.operation, op.status, op.forced) == ("unbind", "nak_too_large", True)
        audit = reg.audit_log()[-1]
        assert (audit.action, audit.outcome) == ("device.unbind", "nak_too_large")
        assert reg.verify_audit().ok
        assert term.info().lifecycle == "bound"


def test_nak_not_permitted_after_a_restart_is_a_refusal_not_unconfirmed(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'registry.db'}"
    server = EmulatorServer(load_scenario("healthy"), speed=float("inf"), baud=1_000_000)
    try:
        with Registry.open(db) as reg, Terminal.open(server.serve_pty()) as term:
            mgr = DeviceManager(term, reg, KeyFile.load(str(_keys(tmp_path))))
            prepared = mgr.prepare("bind", merchant_id="898310048169999")
            server.restart()   # the signed request now reaches a terminal with no session
            with pytest.raises(LifecycleFailed) as caught:
                mgr.submit(prepared)
            exc = caught.value
            assert exc.exit_code == 8 and "NAK not_permitted" in str(exc)
            assert exc.record is not None and exc.record.status == "nak_not_permitted"
            assert [op.status for op in reg.lifecycle_ops(SERIAL)] == ["nak_not_permitted"]
    finally:
        server.stop()


def _counter_at(tmp_path: Path, counter: int) -> Path:
    text = SCENARIO_DIR.joinpath("healthy.toml").read_text(encoding="utf-8")
    path = tmp_path / f"counter-{counter}.toml"
    path.write_text(text.replace("counter = 7\n", f"counter = {counter}\n"), encoding="utf-8")
    assert load_scenario(str(path)).lifecycle.counter == counter
    return path


def test_a_counter_at_its_maximum_is_one_line_that_says_what_to_do(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """2^32-1 is the top of the u32 counter (docs/protocol.md, LC_CHALLENGE); it never goes back."""
    db = f"sqlite:///{tmp_path / 'registry.db'}"
    port = f"emu://{_counter_at(tmp_path, 2**32 - 1)}?speed=inf&baud=1000000&state={tmp_path / 'terminal.json'}"
    keys = str(_keys(tmp_path))
    code = main(["device", "unbind", port, "--reason", "moving", "--force", "--yes", "--keys", keys, "--db", db])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert f"{SERIAL}'s lifecycle counter is at its maximum (4294967295)" in err
    assert "nothing was sent" in err and "repair centre" in err
    assert main(["info", port, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["device"]["lifecycle"] == "bound"    # still bound
    with Registry.open(db) as reg:
        assert reg.lifecycle_ops(SERIAL) == []
        [entry] = reg.audit_log()
        assert (entry.action, entry.outcome, entry.details["counter"]) == ("device.unbind", "host_refused", 2**32 - 1)


def test_one_below_the_maximum_still_goes_through(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'registry.db'}"
    port = f"emu://{_counter_at(tmp_path, 2**32 - 2)}?speed=inf&baud=1000000&state={tmp_path / 'terminal.json'}"
    code = main(["device", "unbind", port, "--reason", "moving", "--force", "--yes", "--keys", str(_keys(tmp_path)),
                 "--db", db])
    assert code == 0, capsys.readouterr().err
    with Registry.open(db) as reg:
        [op] = reg.lifecycle_ops(SERIAL)
        assert (op.status, op.counter) == ("ok", 2**32 - 1)
