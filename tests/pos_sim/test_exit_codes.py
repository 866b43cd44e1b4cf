"""Every command's failures end with the exit status docs/cli.md gives them.

The table below is written by hand from docs/cli.md ("Each command's failures"), not from
pos_sim/exitcodes.py: if a command drifts from the documented number, or the module's numbers
drift from the document, a row fails.  Each failure must also be one line on stderr, never a
traceback.  Ports are real: a pseudo-terminal nobody answers, the emulator through emu://.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import tty
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pos_sim import exitcodes
from pos_sim.cli import main
from pos_sim.emulator.scenario import SCENARIO_DIR, load_scenario
from pos_sim.registry import Registry
from pos_sim.services.keys import KeyFile
from tests.pos_sim.registry.conftest import device_info

HEALTHY, DROPPED = "SP0000123", load_scenario("dropped").device.serial
FAST = "?speed=inf&baud=1000000"

#: (command line, exit status, a few words the one line on stderr must hold); from docs/cli.md
TABLE: list[tuple[str, int, str]] = [
    ("", 1, ""),                                                       # no command: the help, exit 1
    ("ports --bogus", 1, "unrecognized arguments"),
    ("info", 1, "required"),
    ("protocol NO_SUCH_MESSAGE", 1, "no message"),
    ("info /dev/no-such-port", 2, "no such port"),
    ("diag /dev/no-such-port --non-interactive --no-record", 2, "no such port"),
    ("record /dev/no-such-port -o {tmp}/x.cap", 2, "no such port"),
    ("info emu://no-such-scenario", 2, "unknown scenario"),
    ("info {silent} --timeout 1", 4, "no answer to HELLO"),
    ("diag {silent} --timeout 1 --non-interactive --no-record", 4, "no answer"),
    ("diag emu://healthy --test toaster --non-interactive --no-record", 1, "unknown component toaster"),
    ("decode {tmp}/missing.cap", 1, "no such file"),
    ("decode {notcap}", 1, "not a pos-sim capture"),
    ("replay {tmp}/missing.cap", 1, ""),
    ("replay {cap} --expect {expect}", 4, ""),
    ("emulate --scenario no-such-scenario", 1, "unknown scenario"),
    ("emulate --scenario {wide}", 1, "components.screen.width = 70000"),
    ("devices SP404 --db {db}", 1, "no device with serial 'SP404'"),
    ("runs SP404 --db {db}", 1, "no device with serial 'SP404'"),
    ("ticket show 99 --db {db}", 1, "no repair ticket #99"),
    ("ticket advance 99 received --db {db}", 1, "no repair ticket #99"),
    ("ticket advance {ticket} closed --db {db}", 1, "cannot go to closed"),
    ("ticket open SP1000001 --fault x --have receipt --db {db}", 1, "unknown material receipt"),
    ("audit verify --db {tampered}", 4, "record 1"),
    ("devices --db {foreign}", 128, "not the registry's (customers)"),
    ("runs SP1000001 --db {foreign}", 128, "not the registry's"),
    ("ticket list --db {foreign}", 128, "not the registry's"),
    ("audit show --db {foreign}", 128, "not the registry's"),
    ("devices --db {blocker}/sub/r.db", 128, "cannot create the registry"),
    ("device backup emu://healthy" + FAST + " -o {tmp}/b --db {foreign}", 128, "not the registry's"),
    ("device bind emu://healthy" + FAST + " --merchant M1 --keys {foreign} --db {db}", 1, "key file"),
    ("device bind emu://healthy" + FAST + " --merchant M1 --keys {tmp}/none.toml --db {db}", 1, "no key file"),
    ("device unbind emu://healthy" + FAST + " --reason x --yes --keys {keys} --db {db}", 1,
     "no verified transaction-log backup"),
    ("device revoke emu://healthy" + FAST + " --reason x --yes --keys {keys} --db {db}", 8, "unbind first"),
    ("device bind emu://dropped" + FAST + " --merchant M1 --keys {keys} --db {db}", 32, "locked"),
    ("device bind {silent} --merchant M1 --timeout 1 --keys {keys} --db {db}", 4, "no answer"),
    ("device backup emu://healthy" + FAST + " -o {blocker}/sub --db {db}", 1, "is a file, not a directory"),
    ("conformance /dev/no-such-port", 2, "no such port"),
    ("conformance emu://healthy --only Z9", 1, "no clause Z9"),
    ("conformance {silent}", 4, "no answer to HELLO"),
    ("conformance emu://healthy" + FAST + "&break=bad-page-crc --only P2", 8, ""),
    ("conformance emu://healthy" + FAST + " --allow-lifecycle --keys {tmp}/none.toml --only L6", 1, "no key file"),
]
#: commands that succeed although they had nothing to show (docs/cli.md): (command, said on stdout)
QUIET_SUCCESS: list[tuple[str, str]] = [
    ("runs SP1000001 --db {db}", "no diagnostic runs recorded for SP1000001"),
]


@dataclass
class Bench:
    """The files and ports the table's command lines refer to."""

    values: dict[str, str]

    def argv(self, line: str) -> list[str]:
        return line.format(**self.values).split()


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Bench]:
    db = tmp_path / "bench.db"
    with Registry.open(str(db)) as reg:
        reg.record_device(device_info())
        ticket = reg.open_ticket("SP1000001", "cracked screen")
    foreign = tmp_path / "shop.db"          # another program's database
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    con.commit()
    con.close()
    tampered = tmp_path / "tampered.db"
    with Registry.open(str(tampered)) as reg:
        reg.open_ticket("SP2", "dead keypad")
    con = sqlite3.connect(tampered)
    for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        con.execute(f"DROP TRIGGER {name}")
    con.execute("UPDATE audit_log SET actor = 'mallory' WHERE id = 1")
    con.commit()
    con.close()
    keys = tmp_path / "keys.toml"
    KeyFile(keys, {HEALTHY: load_scenario("healthy").lifecycle.key,
                   DROPPED: load_scenario("dropped").lifecycle.key}).save()
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    notcap = tmp_path / "notes.txt"
    notcap.write_text("not a capture\n")
    wide = tmp_path / "wide.toml"
    wide.write_text(SCENARIO_DIR.joinpath("healthy.toml").read_text(encoding="utf-8")
                    + "\n[components.screen]\nwidth = 70000\n", encoding="utf-8")
    captures = Path(__file__).resolve().parents[2] / "fixtures" / "captures"
    expect = tmp_path / "expect"
    expect.mkdir()
    # a hand-altered expectation: the healthy capture's terminal is bound, not revoked
    (expect / "healthy.json").write_text('{"verdict": "ok", "exit_status": 0, "lifecycle": "revoked"}')
    master, slave = os.openpty()            # a port nobody answers on
    tty.setraw(slave)
    try:
        yield Bench({"tmp": str(tmp_path), "db": str(db), "foreign": str(foreign), "tampered": str(tampered),
                     "keys": str(keys), "blocker": str(blocker), "notcap": str(notcap), "wide": str(wide),
                     "cap": str(captures / "healthy.cap"), "expect": str(expect), "ticket": str(ticket.id),
                     "silent": os.ttyname(slave)})
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.parametrize(("line", "status", "said"), TABLE, ids=[row[0] or "(nothing)" for row in TABLE])
def test_each_failure_ends_with_its_documented_status(bench: Bench, capsys: pytest.CaptureFixture[str],
                                                      line: str, status: int, said: str) -> None:
    code = main(bench.argv(line))
    out, err = capsys.readouterr()
    assert code == status, (line, out, err)
    assert "Traceback" not in err
    if said:
        assert said in err, err
        assert err.count("\n") == 1, err


@pytest.mark.parametrize(("line", "said"), QUIET_SUCCESS)
def test_nothing_to_show_is_said_and_is_success(bench: Bench, capsys: pytest.CaptureFixture[str],
                                               line: str, said: str) -> None:
    assert main(bench.argv(line)) == 0
    assert said in capsys.readouterr().out


def test_foreign_database_bytes_are_unchanged(bench: Bench, capsys: pytest.CaptureFixture[str]) -> None:
    """Refused before anything is written: not a byte of the other program's file moves."""
    foreign = Path(bench.values["foreign"])
    before = foreign.read_bytes()
    for line in ("devices --db {foreign}", "ticket open SP1 --fault x --db {foreign}"):
        assert main(bench.argv(line)) == 128
    assert foreign.read_bytes() == before
    assert not Path(f"{foreign}-wal").exists() and not Path(f"{foreign}-journal").exists()
    con = sqlite3.connect(f"{foreign.as_uri()}?mode=ro", uri=True)
    assert [r[0] for r in con.execute("SELECT name FROM sqlite_master")] == ["customers"]
    con.close()
    capsys.readouterr()


def test_ticket_open_for_an_unseen_serial_warns(bench: Bench, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(bench.argv("ticket open SP7777777 --fault dead --db {db}")) == 0
    err = capsys.readouterr().err
    assert "warning: SP7777777 has never been seen by this registry" in err
    assert main(bench.argv("ticket open SP1000001 --fault again --db {db}")) == 0
    assert "warning" not in capsys.readouterr().err          # a serial it knows: no warning


def test_ctrl_c_is_130_and_one_line(bench: Bench) -> None:
    """SIGINT while the command waits for a terminal that never answers."""
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "pos_sim.cli", "info", os.ttyname(slave), "--timeout", "60"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        os.read(master, 1)                   # the HELLO's first byte: the command is waiting now
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        os.close(master)
        os.close(slave)
    assert proc.returncode == 130
    assert err.strip().splitlines() == ["pos-sim: interrupted"]


def test_the_module_says_what_docs_cli_md_says() -> None:
    """The numbers of the table, by name (docs/cli.md's first table, written out by hand)."""
    documented = {"OK": 0, "USAGE": 1, "NOT_FOUND": 1, "REFUSED": 1, "PORT": 2, "COMMUNICATION": 4, "DIFFERS": 4,
                  "FAILED": 8, "WARNING": 16, "LOCKED": 32, "EVENT_LOG": 64, "REGISTRY": 128, "INTERRUPTED": 130}
    assert {name: getattr(exitcodes, name) for name in documented} == documented
    text = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")
    for name, value in documented.items():
        assert f"| {value} | `{name}` |" in text, name


def test_the_driver_layer_uses_the_same_numbers() -> None:
    """drivers/ cannot import the application, so it keeps copies: they must agree."""
    from drivers import errors
    from drivers.capture import CaptureError

    assert (errors.EXIT_OPEN, errors.EXIT_COMMUNICATION) == (exitcodes.PORT, exitcodes.COMMUNICATION)
    assert CaptureError.exit_code == exitcodes.USAGE
