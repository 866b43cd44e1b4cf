"""``pos-sim device ...`` and the key file, end to end against the emulator (emu://, in process,
with a state file so the terminal remembers between commands, the way a real one does), and
the README's flow through the installed ``pos-sim`` executable on a pseudo-terminal."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pos_sim.cli import main
from pos_sim.emulator import load_scenario
from pos_sim.registry import Registry
from pos_sim.registry.guard import contains_card_number
from pos_sim.services.keys import KeyFile, KeyFileError, fingerprint


class Bench:
    """A terminal (emu:// + state file), a key file and a registry in one temporary directory."""

    def __init__(self, tmp: Path, scenario: str = "healthy") -> None:
        self.tmp = tmp
        sc = load_scenario(scenario)
        self.serial, self.key = sc.device.serial, sc.lifecycle.key
        self.port = f"emu://{scenario}?speed=inf&baud=1000000&state={tmp / 'terminal.json'}"
        self.db = f"sqlite:///{tmp / 'registry.db'}"
        self.keys = tmp / "keys.toml"
        KeyFile(self.keys, {self.serial: self.key}).save()

    def run(self, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["device", *args[:1], self.port, *args[1:], "--db", self.db, *self._keys(args[0])])
        out, err = capsys.readouterr()
        return code, out, err

    def _keys(self, op: str) -> list[str]:
        return [] if op == "backup" else ["--keys", str(self.keys)]

    def registry(self) -> Registry:
        return Registry.open(self.db)

    def state(self, capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
        capsys.readouterr()
        assert main(["info", self.port, "--json"]) == 0
        dev = json.loads(capsys.readouterr().out)["device"]
        return dev["lifecycle"], dev["merchant_id"]


@pytest.fixture
def bench(tmp_path: Path) -> Bench:
    return Bench(tmp_path)


# -- the key file ----------------------------------------------------------------------------------

def test_key_file_round_trip_is_private(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "keys.toml"
    KeyFile(path, {"SP1": bytes(range(32))}).with_key("SP2", b"\x07" * 32).save()
    assert path.stat().st_mode & 0o777 == 0o600
    keys = KeyFile.load(path)
    assert keys.key_for("SP1") == bytes(range(32)) and keys.key_for("SP2") == b"\x07" * 32
    assert "0001020304" not in repr(keys)


@pytest.mark.parametrize(("content", "mode", "message"), [
    (None, 0o600, r"no key file at .*keys\.toml.*--keys FILE or set POS_SIM_KEYS"),
    ('format = "pos-sim-keys"\nversion = 1\n[keys]\n', 0o644,
     r"can be read by other users \(mode 644\); run: chmod 600"),
    ('format = "pos-sim-keys"\nversion = 1\n[keys]\nSP1 = "00\n', 0o600, r"not valid TOML \(line 4\)"),
    ('version = 1\n[keys]\n', 0o600, r'does not start with format = "pos-sim-keys"'),
    ('format = "pos-sim-keys"\nversion = 2\n', 0o600, r"is not version 1, the one this pos-sim reads"),
    ('format = "pos-sim-keys"\nversion = 1\nmaster = "x"\n', 0o600, r"1 unknown top-level entry: only format"),
    ('format = "pos-sim-keys"\nversion = 1\n[keys]\nSP1 = "abcd"\n', 0o600, r"key of SP1 must be 64 hex digits"),
    ('format = "pos-sim-keys"\nversion = 1\n[keys]\n"SP 1" = "' + "ab" * 32 + '"\n', 0o600,
     r"entry 1 under .keys. is not named"),
])
def test_key_file_problems_are_one_clear_line(tmp_path: Path, content: str | None, mode: int, message: str) -> None:
    path = tmp_path / "keys.toml"
    if content is not None:
        path.write_text(content)
        path.chmod(mode)
    with pytest.raises(KeyFileError, match=message) as info:
        KeyFile.load(path)
    assert "\n" not in str(info.value)


def test_broken_key_file_never_quotes_a_key(tmp_path: Path) -> None:
    secret = "5ed75cad347a476e3f1d92c35a842a52b1c4203fa39bcd0236aac487ffdbb987"
    path = tmp_path / "keys.toml"
    path.write_text(f'format = "pos-sim-keys"\nversion = 1\n[keys]\nSP1 = "{secret}" oops\n')
    path.chmod(0o600)
    with pytest.raises(KeyFileError) as info:
        KeyFile.load(path)
    assert secret[:8] not in str(info.value)


@pytest.mark.parametrize("body", [
    'format = "pos-sim-keys"\nversion = "{s}"\n[keys]\n',                  # a key where the version goes
    'format = "{s}"\nversion = 1\n[keys]\n',                                # ... where the format goes
    'format = "pos-sim-keys"\nversion = 1\n{s} = "SP1"\n',                  # pasted at top level, as a name
    'format = "pos-sim-keys"\nversion = 1\nSP1 = "{s}"\n',                  # ... at top level, as a value
    'format = "pos-sim-keys"\nversion = 1\n[keys]\n{s} = "SP1"\n',         # key and serial swapped
    'format = "pos-sim-keys"\nversion = 1\n[keys]\nSP1 = "{s}0"\n',        # one digit too many
    'format = "pos-sim-keys"\nversion = 1\nkeys = "{s}"\n',                 # [keys] not a table
])
def test_no_key_file_error_echoes_a_value_from_the_file(tmp_path: Path, body: str) -> None:
    secret = "5ed75cad347a476e3f1d92c35a842a52b1c4203fa39bcd0236aac487ffdbb987"
    path = tmp_path / "keys.toml"
    path.write_text(body.format(s=secret))
    path.chmod(0o600)
    with pytest.raises(KeyFileError) as info:
        KeyFile.load(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    assert secret[:6] not in message and secret[-6:] not in message, message


def test_key_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "env-keys.toml"
    KeyFile(path, {"SP9": b"\x01" * 32}).save()
    monkeypatch.setenv("POS_SIM_KEYS", str(path))
    assert KeyFile.load().key_for("SP9") == b"\x01" * 32
    with pytest.raises(KeyFileError, match=r"no key for terminal SP404 in .*env-keys\.toml"):
        KeyFile.load().key_for("SP404")


# -- backup ----------------------------------------------------------------------------------------

def test_backup_is_written_verified_masked_and_recorded(bench: Bench, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = bench.run(capsys, "backup", "-o", str(bench.tmp / "backups"))
    assert code == 0, out
    [path] = (bench.tmp / "backups").iterdir()
    assert re.fullmatch(rf"{bench.serial}-txlog-\d{{8}}T\d{{6}}Z\.json", path.name)
    assert re.search(r"backup SP0000123: 4/4 pages", out)          # progress, a line per step off a TTY
    text = path.read_text()
    doc = json.loads(text)
    assert not contains_card_number(text)
    with bench.registry() as reg:
        [b] = reg.backups(bench.serial)
        assert (b.path, b.sha256, b.records) == (str(path), doc["sha256"], doc["records"])
        assert reg.audit_log()[-1].action == "device.backup" and reg.audit_log()[-1].details["backup"] == b.id
    assert f"recorded as backup #{b.id}" in out


def test_backup_that_cannot_be_written_leaves_no_record(bench: Bench, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = bench.tmp / "a-file"
    blocker.write_text("not a directory")
    code, _, err = bench.run(capsys, "backup", "-o", str(blocker / "sub"))
    assert code == 1     # checked before anything: docs/cli.md, exit 1 for an output directory
    assert err.count("\n") == 1 and f"{blocker} is a file, not a directory" in err
    assert "nothing was read from the terminal" in err
    with bench.registry() as reg:     # the terminal was never asked, so not even its identity is there
        assert reg.devices() == [] and reg.audit_log() == []


# -- unbind and the backup rule --------------------------------------------------------------------

def test_unbind_without_a_backup_sends_nothing_and_is_audited(bench: Bench,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = bench.run(capsys, "unbind", "--reason", "shop closed")
    assert code == 1
    assert "no verified transaction-log backup of SP0000123" in err and "pos-sim device backup" in err
    assert bench.state(capsys) == ("bound", "898310048161234")
    with bench.registry() as reg:
        assert reg.lifecycle_ops(bench.serial) == []
        last = reg.audit_log()[-1]
        assert (last.action, last.outcome, last.target) == ("device.unbind", "host_refused", bench.serial)


def test_unbind_after_a_backup(bench: Bench, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.run(capsys, "backup", "-o", str(bench.tmp / "b"))[0] == 0
    code, out, err = bench.run(capsys, "unbind", "--reason", "shop closed", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["state_before"], doc["state"], doc["forced"], doc["exit_status"]) == ("bound", "unactivated", False, 0)
    assert doc["counter"] == 8 and doc["backup"].startswith(str(bench.tmp / "b"))
    assert bench.state(capsys) == ("unactivated", "")
    with bench.registry() as reg:
        [op] = reg.lifecycle_ops(bench.serial)
        [b] = reg.backups(bench.serial)
        assert (op.operation, op.status, op.backup_id, op.reason, op.counter) == (
            "unbind", "ok", b.id, "shop closed", 8)
        assert reg.device(bench.serial).lifecycle == "unactivated"
        audit = reg.audit_log()[-1]
        assert (audit.action, audit.outcome, audit.details["op"]) == ("device.unbind", "ok", op.id)
        assert reg.verify_audit().ok
    # not twice: the terminal refuses a second unbind, and that is recorded too
    code, _, err = bench.run(capsys, "unbind", "--reason", "again")
    assert code == 8 and "refused unbind (refused_state): not allowed when unactivated" in err


@pytest.mark.parametrize("damage", ["altered", "deleted"])
def test_a_damaged_or_missing_backup_does_not_count(bench: Bench, capsys: pytest.CaptureFixture[str],
                                                    damage: str) -> None:
    assert bench.run(capsys, "backup", "-o", str(bench.tmp / "b"))[0] == 0
    [path] = (bench.tmp / "b").iterdir()
    if damage == "deleted":
        path.unlink()
    else:
        doc = json.loads(path.read_text())
        doc["page_data"][0] = doc["page_data"][1]
        path.write_text(json.dumps(doc))
    code, _, err = bench.run(capsys, "unbind", "--reason", "shop closed")
    assert code == 1
    assert ("is missing" if damage == "deleted" else "is damaged") in err
    assert bench.state(capsys) == ("bound", "898310048161234")


def test_forced_unbind_is_recorded_as_forced(bench: Bench, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = bench.run(capsys, "unbind", "--force", "--reason", "terminal dead, log unreadable")
    assert code == 0 and "WITHOUT a verified backup" in out
    with bench.registry() as reg:
        [op] = reg.lifecycle_ops(bench.serial)
        assert (op.forced, op.backup_id, op.reason) == (True, None, "terminal dead, log unreadable")
        assert reg.audit_log()[-1].details["forced"] is True


def test_force_needs_a_reason(bench: Bench, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = bench.run(capsys, "unbind", "--force")
    assert code == 1 and "--reason" in err


# -- the other operations, refusals and keys -------------------------------------------------------

def test_full_life_activate_bind_reset_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    b = Bench(tmp_path, "unactivated")
    assert b.run(capsys, "activate", "--code", "ACT-42", "--merchant", "M0042")[0] == 0
    assert b.state(capsys) == ("activated", "M0042")
    code, _, err = b.run(capsys, "revoke", "--reason", "bought by mistake")
    assert code == 8 and "unbind first" in err
    assert b.run(capsys, "bind", "--merchant", "M0042")[0] == 0
    assert b.run(capsys, "reset", "--reason", "resale")[0] == 0
    assert b.run(capsys, "revoke", "--reason", "bought by mistake")[0] == 0
    assert b.state(capsys) == ("revoked", "")
    with b.registry() as reg:
        ops = [(o.operation, o.status) for o in reg.lifecycle_ops(b.serial)]
        assert ops == [("activate", "ok"), ("revoke", "refused_state"), ("bind", "ok"), ("factory_reset", "ok"),
                       ("revoke", "ok")]
        counters = [o.counter for o in reg.lifecycle_ops(b.serial)]
        assert counters == sorted(counters) and len(set(counters)) == len(counters)
        assert [e.action for e in reg.audit_log()] == [f"device.{op}" for op, _ in ops]


def test_wrong_key_is_refused_by_the_terminal_and_named_not_shown(bench: Bench,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    wrong = bytes(reversed(bench.key))
    KeyFile(bench.keys, {bench.serial: wrong}).save()
    code, _, err = bench.run(capsys, "unbind", "--force", "--reason", "x")
    assert code == 4
    assert f"fingerprint {fingerprint(wrong)}" in err and "is not this terminal's key" in err
    assert wrong.hex()[:16] not in err and bench.key.hex()[:16] not in err
    assert bench.state(capsys) == ("bound", "898310048161234")
    with bench.registry() as reg:
        [op] = reg.lifecycle_ops(bench.serial)
        assert op.status == "bad_auth" and reg.audit_log()[-1].outcome == "bad_auth"


def test_no_key_for_this_terminal(bench: Bench, capsys: pytest.CaptureFixture[str]) -> None:
    KeyFile(bench.keys, {"SP0009999": bench.key}).save()
    code, _, err = bench.run(capsys, "bind", "--merchant", "M1")
    assert code == 1 and f"no key for terminal {bench.serial} in {bench.keys}" in err


def test_locked_terminal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    b = Bench(tmp_path, "dropped")
    code, out, err = b.run(capsys, "reset", "--reason", "repair", "--json")
    assert code == 32
    assert "locked" in err and json.loads(out)["status"] == "refused_state"


def test_bad_arguments_are_the_terminals_refusal(bench: Bench, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.run(capsys, "reset", "--reason", "x")[0] == 0
    code, _, err = bench.run(capsys, "activate", "--code", "A", "--merchant", "not alnum!")
    assert code == 8 and "merchant_id must be 1-32 letters or digits" in err


def test_port_that_does_not_exist(bench: Bench, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["device", "bind", str(bench.tmp / "ttyNOPE"), "--merchant", "M1", "--keys", str(bench.keys),
                 "--db", bench.db])
    assert code == 2
    assert capsys.readouterr().err.count("\n") == 1


# -- no answer: recorded as unconfirmed ------------------------------------------------------------

def test_request_without_an_answer_is_recorded_unconfirmed(tmp_path: Path) -> None:
    from drivers.terminal import Terminal
    from pos_sim.ports import register_url_schemes
    from pos_sim.services.lifecycle import DeviceManager, LifecycleFailed

    register_url_schemes()
    b = Bench(tmp_path, "unactivated")
    with Registry.open(b.db) as reg, Terminal.open(b.port, timeout=2.0) as term:
        mgr = DeviceManager(term, reg, KeyFile.load(b.keys))
        prepared = mgr.prepare("activate", activation_code="A1", merchant_id="M1")
        term.link.port.emulator.unplug()
        with pytest.raises(LifecycleFailed, match=r"no answer came back.*pos-sim info PORT") as info:
            mgr.submit(prepared)
        assert info.value.exit_code == 4
        [op] = reg.lifecycle_ops(b.serial)
        assert (op.status, op.state_before, op.state_after) == ("unconfirmed", "unactivated", "")
        assert reg.audit_log()[-1].outcome == "unconfirmed"


# -- the README's flow through the installed executable ---------------------------------------------

def test_readme_flow_with_the_executable_on_a_pty(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("pos-sim")
    env = {**os.environ, "POS_SIM_DB": str(tmp_path / "reg.db"), "POS_SIM_KEYS": str(tmp_path / "keys.toml")}
    emu = subprocess.Popen([str(exe), "emulate", "--scenario", "healthy", "--speed", "inf", "--baud", "1000000",
                            "--write-keys", str(tmp_path / "keys.toml")], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert emu.stdout is not None
        port = emu.stdout.readline().split()[1]
        assert (tmp_path / "keys.toml").stat().st_mode & 0o777 == 0o600

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([str(exe), "device", *args], capture_output=True, text=True, env=env, timeout=60,
                                  stdin=subprocess.DEVNULL, check=False)

        refused = run("unbind", port, "--reason", "moving")
        assert refused.returncode == 1 and "pos-sim device backup" in refused.stderr
        assert run("backup", port, "-o", str(tmp_path / "b")).returncode == 0
        done = run("unbind", port, "--reason", "moving")
        assert done.returncode == 0 and "bound → unactivated" in done.stdout, done.stderr
        audit = subprocess.run([str(exe), "audit", "verify"], capture_output=True, text=True, env=env, timeout=60,
                               check=False)
        assert audit.returncode == 0 and "3 records" in audit.stdout
    finally:
        emu.terminate()
        emu.wait(10)
        if emu.stdout:
            emu.stdout.close()


# -- confirmation on a terminal ---------------------------------------------------------------------

def _run_on_a_tty(args: list[str], answer: str, env: dict[str, str]) -> tuple[int, str]:
    """Run ``pos-sim`` with stdin on a real pseudo-terminal; type ``answer`` when it asks."""
    import pty
    import select

    exe = Path(sys.executable).with_name("pos-sim")
    master, slave = pty.openpty()
    proc = subprocess.Popen([str(exe), *args], stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env)
    os.close(slave)
    try:
        assert proc.stderr is not None
        prompt = b""
        while b"Type the serial" not in prompt:     # unbuffered reads: select sees what is left
            ready, _, _ = select.select([proc.stderr], [], [], 30)
            assert ready, f"no confirmation prompt; got {prompt!r}"
            chunk = os.read(proc.stderr.fileno(), 4096)
            assert chunk, f"exited without asking; got {prompt!r}"
            prompt += chunk
        os.write(master, answer.encode() + b"\n")
        _, err = proc.communicate(timeout=60)
        return proc.returncode, (prompt + err).decode()
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_destructive_operation_asks_for_the_serial_on_a_terminal(bench: Bench,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    env = {**os.environ, "POS_SIM_DB": bench.db, "POS_SIM_KEYS": str(bench.keys)}
    code, err = _run_on_a_tty(["device", "reset", bench.port, "--reason", "resale"], "SP0000999", env)
    assert code == 1 and "reset SP0000123, now bound (merchant 898310048161234)" in err
    assert "not confirmed: nothing was sent" in err
    assert bench.state(capsys) == ("bound", "898310048161234")
    with bench.registry() as reg:
        assert reg.lifecycle_ops(bench.serial) == []
    code, err = _run_on_a_tty(["device", "reset", bench.port, "--reason", "resale"], bench.serial, env)
    assert code == 0, err
    assert bench.state(capsys) == ("unactivated", "")


def test_a_backup_of_an_older_log_does_not_count(bench: Bench, capsys: pytest.CaptureFixture[str]) -> None:
    """A sale after the backup would be lost by unbinding: the backup must be of the log as it is."""
    assert bench.run(capsys, "backup", "-o", str(bench.tmp / "b"))[0] == 0
    state_file = bench.tmp / "terminal.json"
    state = json.loads(state_file.read_text())
    sale = dict(state["txlog"][-1], txn_id=state["txlog"][-1]["txn_id"] + 1)
    state["txlog"].append(sale)
    state_file.write_text(json.dumps(state))
    code, _, err = bench.run(capsys, "unbind", "--reason", "shop closed")
    assert code == 1
    assert "holds 120 transactions, the terminal's log has changed since (121 now): back up again" in err
    assert bench.run(capsys, "backup", "-o", str(bench.tmp / "b"))[0] == 0
    assert bench.run(capsys, "unbind", "--reason", "shop closed")[0] == 0


def test_two_backups_in_one_second_keep_both_files(bench: Bench, capsys: pytest.CaptureFixture[str]) -> None:
    for _ in range(3):
        assert bench.run(capsys, "backup", "-o", str(bench.tmp / "b"))[0] == 0
    with bench.registry() as reg:
        paths = [b.path for b in reg.backups(bench.serial)]
    assert len(set(paths)) == 3 and all(Path(p).is_file() for p in paths)


def test_a_counter_lower_than_recorded_is_warned_and_audited(bench: Bench, capsys: pytest.CaptureFixture[str]) -> None:
    """A terminal's counter never goes back: lower than it answered before means its memory was
    reset or replaced, or another terminal carries the same serial number."""
    assert bench.run(capsys, "unbind", "--force", "--reason", "moving")[0] == 0      # counter 8
    code, _, err = bench.run(capsys, "activate", "--code", "A1", "--merchant", "M1")   # counter 9
    assert code == 0 and "warning" not in err
    (bench.tmp / "terminal.json").unlink()     # the same serial, its memory as shipped: counter 7
    code, _, err = bench.run(capsys, "unbind", "--force", "--reason", "again")
    assert code == 0
    assert "warning: SP0000123's lifecycle counter is 7, lower than the 9 it answered with before" in err
    with bench.registry() as reg:
        warned = [e for e in reg.audit_log() if e.action == "device.counter_regressed"]
        assert [(e.outcome, e.details["counter"], e.details["last_seen"]) for e in warned] == [("warning", 7, 9)]


def test_a_slow_confirmation_gets_a_fresh_challenge(bench: Bench, capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The terminal's challenge lives 60 s; a request older than CHALLENGE_FRESH is signed again
    rather than sent to be refused as no_challenge."""
    from pos_sim.services import lifecycle

    prepared: list[lifecycle.PreparedOperation] = []
    original = lifecycle.DeviceManager.prepare

    def spy(self: lifecycle.DeviceManager, *args: object, **kwargs: object) -> lifecycle.PreparedOperation:
        prepared.append(original(self, *args, **kwargs))  # type: ignore[arg-type]
        return prepared[-1]

    monkeypatch.setattr(lifecycle.DeviceManager, "prepare", spy)
    monkeypatch.setattr(lifecycle, "CHALLENGE_FRESH", -1.0)    # every prepared request is already old
    code, out, err = bench.run(capsys, "unbind", "--force", "--reason", "slow reader", "--json")
    assert code == 0, err
    assert len(prepared) == 2 and prepared[0].request.nonce != prepared[1].request.nonce
    assert json.loads(out)["counter"] == prepared[1].request.counter


# -- what the review found: arguments, time, interruptions, a registry that fails ---------------------

@pytest.mark.parametrize(("args", "said"), [
    (["--reason", "customer card 4111 1111 1111 1111 jammed"], "the reason looks like it holds a card number"),
    (["--reason", "x" * 300], "the reason is 300 bytes; the terminal takes at most 255"),
])
def test_arguments_are_checked_before_anything_is_sent(bench: Bench, capsys: pytest.CaptureFixture[str],
                                                       args: list[str], said: str) -> None:
    code, _, err = bench.run(capsys, "reset", *args, "--yes")
    assert code == 1 and said in err and "4111" not in err and err.count("\n") == 1
    assert bench.state(capsys) == ("bound", "898310048161234")
    with bench.registry() as reg:
        assert reg.devices() == [] and reg.audit_log() == []      # checked before the terminal was asked


def test_a_merchant_number_in_a_reason_is_not_a_card(bench: Bench, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = bench.run(capsys, "reset", "--reason", "leaving merchant 898310048161234", "--yes")
    assert code == 0, err


def test_activate_keeps_the_merchant_it_asked_for(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    b = Bench(tmp_path, "unactivated")
    assert b.run(capsys, "activate", "--code", "ACT-1", "--merchant", "M0042")[0] == 0
    with b.registry() as reg:
        [op] = reg.lifecycle_ops(b.serial)
        assert op.merchant == "M0042" and reg.audit_log()[-1].details["merchant"] == "M0042"
        assert "ACT-1" not in json.dumps([e.details for e in reg.audit_log()])   # the code is kept nowhere


@pytest.mark.parametrize("value", ["0", "-1", "nan"])
def test_timeout_must_be_a_positive_number(bench: Bench, capsys: pytest.CaptureFixture[str], value: str) -> None:
    code, _, err = bench.run(capsys, "bind", "--merchant", "M1", "--timeout", value)
    assert code == 1 and "--timeout" in err


def test_backup_into_a_directory_that_cannot_be_named(bench: Bench, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = bench.run(capsys, "backup", "-o", "~no-such-user-here/backups")
    assert code == 1 and err.count("\n") == 1 and "cannot use ~no-such-user-here/backups" in err


def test_backup_with_a_registry_that_cannot_be_opened(bench: Bench, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    code = main(["device", "backup", bench.port, "-o", str(bench.tmp / "b"), "--db", "sqlite:////proc/nope/r.db"])
    err = capsys.readouterr().err
    assert code == 128 and "nothing was read from the terminal" in err     # docs/cli.md: registry failed
    assert not (bench.tmp / "b").exists()


def test_interrupted_while_waiting_is_recorded_unconfirmed(bench: Bench, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Ctrl-C after the request went out: the terminal may have acted, so it is on record."""
    from drivers.terminal import LifecycleRequest, LifecycleResult, Terminal

    original = Terminal.send_lifecycle

    def sent_then_interrupted(self: Terminal, request: LifecycleRequest) -> LifecycleResult:
        original(self, request)
        raise KeyboardInterrupt

    monkeypatch.setattr(Terminal, "send_lifecycle", sent_then_interrupted)
    code, _, err = bench.run(capsys, "unbind", "--force", "--reason", "x")
    assert code == 130 and "interrupted" in err
    monkeypatch.undo()
    assert bench.state(capsys) == ("unactivated", "")          # the terminal did it
    with bench.registry() as reg:
        [op] = reg.lifecycle_ops(bench.serial)
        assert (op.status, op.message) == ("unconfirmed", "interrupted while waiting for the answer")
        assert reg.audit_log()[-1].outcome == "unconfirmed"


def test_an_answer_the_registry_cannot_record_is_said_plainly(bench: Bench, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from pos_sim.registry import RegistryUnavailable

    def down(*args: object, **kwargs: object) -> None:
        raise RegistryUnavailable("the registry database failed, nothing was saved: disk I/O error")

    monkeypatch.setattr(Registry, "record_lifecycle", down)
    code, _, err = bench.run(capsys, "unbind", "--force", "--reason", "x")
    assert code == 128     # docs/cli.md: the registry failed
    assert "SP0000123 answered ok to unbind (now unactivated, counter 8) but the registry could not record it" in err


def test_a_backup_the_registry_cannot_record_says_what_is_on_disk(bench: Bench, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from drivers.terminal import verify_txlog_backup
    from pos_sim.registry import RegistryUnavailable

    def down(*args: object, **kwargs: object) -> None:
        raise RegistryUnavailable("the registry database failed, nothing was saved: disk I/O error")

    monkeypatch.setattr(Registry, "record_backup", down)
    code, _, err = bench.run(capsys, "backup", "-o", str(bench.tmp / "b"))
    assert code == 128 and err.count("\n") == 1          # docs/cli.md: the registry failed
    [path] = (bench.tmp / "b").iterdir()
    checked = verify_txlog_backup(path)                  # the file is whole and verifies
    assert f"{path} was written and verified ({checked.records} transactions, sha256 {checked.sha256})" in err
    assert "is kept" in err and "nothing is in the registry" in err and "disk I/O error" in err
    with bench.registry() as reg:
        assert reg.backups(bench.serial) == []
    capsys.readouterr()
    code = main(["device", "backup", bench.port, "-o", str(bench.tmp / "c"), "--db", bench.db, "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 128 and doc["recorded"] is False and doc["exit_status"] == 128
    assert Path(doc["path"]).is_file() and doc["sha256"] == verify_txlog_backup(doc["path"]).sha256
