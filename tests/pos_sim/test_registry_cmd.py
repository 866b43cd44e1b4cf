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
    assert illegal.returncode == 4 and len(illegal.stderr.strip().splitlines()) == 1
    shown = cli("ticket", "show", tid, "--db", db)
    assert "opened → received  at the bench" in shown.stdout and "still needed: proof_of_purchase" in shown.stdout
    listed = json.loads(cli("ticket", "list", "--serial", "SP0000457", "--json", "--db", db).stdout)
    assert [t["state"] for t in listed["tickets"]] == ["received"]
    log = json.loads(cli("audit", "show", "--json", "--db", db).stdout)["entries"]
    assert [e["action"] for e in log] == ["ticket.open", "ticket.advance"]
    assert all(e["target"] == f"ticket #{tid} SP0000457" for e in log)
    verified = cli("audit", "verify", "--db", db)
    assert verified.returncode == 0 and "2 records" in verified.stdout


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
