"""`pos-sim ticket` and `pos-sim audit` as commands, on a throwaway database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pos_sim.cli", *args], capture_output=True, text=True,
                          timeout=60, check=False)


def test_ticket_life_is_kept_and_audited(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'bench.db'}"
    opened = cli("ticket", "open", "SP0000457", "--fault", "cracked screen", "--have",
                 "owner_identity,photos", "--json", "--db", db)
    assert opened.returncode == 0, opened.stderr
    (ticket,) = json.loads(opened.stdout)["tickets"]
    assert ticket["state"] == "opened" and ticket["materials"]["photos"] is True
    tid = str(ticket["id"])
    assert cli("ticket", "advance", tid, "received", "--note", "at the bench", "--db", db).returncode == 0
    illegal = cli("ticket", "advance", tid, "closed", "--db", db)
    assert illegal.returncode == 1 and len(illegal.stderr.strip().splitlines()) == 1     # refused: docs/cli.md
    shown = cli("ticket", "show", tid, "--db", db)
    assert "opened → received  at the bench" in shown.stdout and "still needed: proof_of_purchase" in shown.stdout
    listed = json.loads(cli("ticket", "list", "--serial", "SP0000457", "--json", "--db", db).stdout)
    assert [t["state"] for t in listed["tickets"]] == ["received"]
    later = cli("ticket", "advance", tid, "diagnosing", "--have", "proof_of_purchase,model_and_serial", "--json",
                "--db", db)
    (ticket,) = json.loads(later.stdout)["tickets"]
    assert ticket["materials"]["proof_of_purchase"] and ticket["materials"]["model_and_serial"]
    assert ticket["materials"]["photos"] and not ticket["materials"]["invoice"]     # earlier ticks kept
    bad = cli("ticket", "advance", tid, "repaired", "--have", "receipt", "--db", db)
    assert bad.returncode == 1 and "unknown material receipt" in bad.stderr
    log = json.loads(cli("audit", "show", "--json", "--db", db).stdout)["entries"]
    assert [e["action"] for e in log] == ["ticket.open", "ticket.advance", "ticket.advance"]
    assert log[-1]["details"]["materials"] == {"model_and_serial": True, "proof_of_purchase": True}
    assert all(e["target"] == f"ticket #{tid} SP0000457" for e in log)
    verified = cli("audit", "verify", "--db", db)
    assert verified.returncode == 0 and "3 records" in verified.stdout


def test_a_tampered_audit_log_fails_verify(tmp_path: Path) -> None:
    import sqlite3

    db_path = tmp_path / "bench.db"
    db = f"sqlite:///{db_path}"
    assert cli("ticket", "open", "SP1", "--fault", "no paper feed", "--db", db).returncode == 0
    assert cli("ticket", "open", "SP2", "--fault", "dead keypad", "--db", db).returncode == 0
    con = sqlite3.connect(db_path)
    triggers = [r[0] for r in con.execute("select name from sqlite_master where type='trigger'")]
    for name in triggers:   # only someone with the database file in hand can do this
        con.execute(f"drop trigger {name}")
    con.execute("update audit_log set actor = 'mallory' where id = 1")
    con.commit()
    con.close()
    r = cli("audit", "verify", "--db", db)
    assert r.returncode == 4 and "record 1" in r.stderr


def test_unknown_material_is_a_usage_error(tmp_path: Path) -> None:
    r = cli("ticket", "open", "SP1", "--fault", "x", "--have", "receipt", "--db", f"sqlite:///{tmp_path / 'b.db'}")
    assert r.returncode == 1 and "unknown material receipt" in r.stderr


def test_devices_serial_shows_backups_lifecycle_and_tickets(tmp_path: Path) -> None:
    from pos_sim.registry import Actor, Registry
    from tests.pos_sim.registry.conftest import device_info

    db = f"sqlite:///{tmp_path / 'bench.db'}"
    with Registry.open(db) as reg:
        reg.record_device(device_info(lifecycle="bound"))
        b = reg.record_backup("SP1000001", "/backups/SP1000001.json", "cd" * 32, 42)
        reg.record_lifecycle("SP1000001", "unbind", "ok", "bound", "unactivated", 8, reason="moving",
                             backup_id=b.id, merchant="", by=Actor("ana", "bench-2"))
        reg.record_lifecycle("SP1000001", "revoke", "bad_auth", "unactivated", "unactivated", 8,
                             reason="x", forced=False, by=Actor("ana", "bench-2"))
        reg.open_ticket("SP1000001", "cracked screen")
    shown = cli("devices", "SP1000001", "--db", db)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("SP1000001") and "unactivated" in lines[0]
    assert any("42 transactions" in x and "cdcdcdcd" in x for x in lines)
    assert any("unbind" in x and "bound → unactivated" in x and "by ana@bench-2" in x and f"backup #{b.id}" in x
               for x in lines)
    assert any("revoke" in x and "bad_auth" in x for x in lines)
    assert any("opened" in x and "cracked screen" in x for x in lines)
    doc = json.loads(cli("devices", "SP1000001", "--json", "--db", db).stdout)
    assert [o["status"] for o in doc["lifecycle"]] == ["ok", "bad_auth"] and doc["backups"][0]["records"] == 42
    missing = cli("devices", "SP404", "--db", db)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "pos-sim devices: no device with serial 'SP404' in the registry"


def test_a_registry_that_cannot_be_opened_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    for url, said in [(str(blocker / "sub" / "r.db"), "cannot create the registry at"),
                      ("nonsense://x", "cannot use nonsense://x"),
                      ("mysql://u:secret@127.0.0.1:1/x", "driver for mysql://u:***@127.0.0.1:1/x is not installed")]:
        for command in (["devices"], ["audit", "show"], ["ticket", "list"]):
            r = cli(*command, "--db", url)
            assert r.returncode == 128 and r.stderr.count("\n") == 1 and said in r.stderr, (command, r.stderr)
            assert "secret" not in r.stderr and "Traceback" not in r.stderr


def _columns(lines: list[str], header: list[str]) -> list[int]:
    """Where each header word starts; every row must have a cell starting there."""
    starts = [lines[0].index(h) for h in header]
    for row in lines[1:]:
        for start in starts[1:]:
            assert row[start - 2:start] == "  " and row[start] != " ", (start, row)
    return starts


def test_devices_and_audit_show_print_aligned_columns_under_a_header(tmp_path: Path) -> None:
    from pos_sim.registry import Registry
    from tests.pos_sim.registry.conftest import device_info

    db = f"sqlite:///{tmp_path / 'bench.db'}"
    with Registry.open(db) as reg:
        reg.record_device(device_info())
        reg.record_device(device_info(serial="SP42", lifecycle="unactivated", firmware="10.0.12-beta"))
        reg.open_ticket("SP42", "cracked screen")
        reg.open_ticket("SP1000001", "no paper feed, motor hums")
    lines = cli("devices", "--db", db).stdout.splitlines()
    assert lines[0].split() == ["SERIAL", "MODEL", "FIRMWARE", "LIFECYCLE", "MERCHANT", "LAST", "SEEN"]
    assert len(lines) == 3 and lines[1].startswith("SP1000001 ") and lines[2].startswith("SP42 ")
    starts = _columns(lines, ["SERIAL", "MODEL", "FIRMWARE", "LIFECYCLE", "MERCHANT", "LAST SEEN"])
    assert lines[2][starts[2]:].startswith("10.0.12-beta") and lines[1][starts[3]:].startswith("activated")
    lines = cli("audit", "show", "--db", db).stdout.splitlines()
    assert lines[0].split() == ["ID", "AT", "(UTC)", "ACTOR", "FROM", "ACTION", "OUTCOME", "TARGET"]
    assert len(lines) == 3
    starts = _columns(lines, ["ID", "AT (UTC)", "ACTOR", "FROM", "ACTION", "OUTCOME", "TARGET"])
    assert lines[1][starts[4]:].startswith("ticket.open") and lines[2][starts[5]:].startswith("ok")
    assert lines[1][starts[6]:] == "ticket #1 SP42" and lines[2][starts[6]:] == "ticket #2 SP1000001"


def test_runs_of_a_terminal_without_any_says_so(tmp_path: Path) -> None:
    from pos_sim.registry import Registry
    from tests.pos_sim.registry.conftest import device_info

    db = f"sqlite:///{tmp_path / 'bench.db'}"
    with Registry.open(db) as reg:
        reg.record_device(device_info())
    r = cli("runs", "SP1000001", "--db", db)
    assert r.returncode == 0 and r.stdout.startswith("no diagnostic runs recorded for SP1000001")
    assert json.loads(cli("runs", "SP1000001", "--json", "--db", db).stdout)["runs"] == []
