"""The registry: round trips, ticket lifecycle, audit chain and its tamper-evidence, migrations,
SQLite settings, the card-number guard, and a run recorded from a real emulator session."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from drivers.link import LinkTimings
from drivers.terminal import Terminal
from pos_sim.diagnostics.engine import DiagnosticReport, DiagnosticsEngine
from pos_sim.emulator import EmulatorServer, load_scenario
from pos_sim.registry import (
    SCHEMA_VERSION,
    CardDataRefused,
    IllegalTransition,
    Registry,
    RegistryError,
    SchemaTooNew,
    UnknownDevice,
    UnknownTicket,
)
from pos_sim.registry.guard import contains_card_number, luhn_valid
from tests.pos_sim.registry.conftest import device_info, report

# -- devices, runs, backups ----------------------------------------------------------------------


def test_device_round_trip_and_update(reg: Registry) -> None:
    first = reg.record_device(device_info(lifecycle="unactivated", firmware="1.0"))
    again = reg.record_device(device_info(lifecycle="activated", firmware="2.0"))
    [dev] = reg.devices()
    assert (dev.serial, dev.model, dev.manufacturer, dev.merchant) == ("SP1000001", "P10", "Acme", "M-42")
    assert (dev.lifecycle, dev.firmware) == ("activated", "2.0")
    assert dev.first_seen == first.first_seen and again.last_seen >= first.last_seen
    with pytest.raises(UnknownDevice, match="SP404"):
        reg.device("SP404")


def test_run_round_trip_keeps_every_finding(reg: Registry) -> None:
    rep = report(verdict="failed")
    saved = reg.record_run(rep)
    reg.record_run(report())
    reg.record_run(report(serial="SP2"))
    runs = reg.runs("SP1000001")
    assert [r.id for r in runs] == [saved.id, saved.id + 1]
    r = runs[0]
    assert (r.plan, r.verdict, r.exit_status, r.port, r.firmware) == ("full", "failed", 8, "/dev/ttyUSB0", "2.4.1")
    assert r.started_at == pytest.approx(rep.started_at) and r.finished_at == pytest.approx(rep.finished_at)
    assert [(x.component, x.verdict, x.code, x.category, x.severity, x.message, x.communication)
            for x in r.results] == [
        ("screen", "pass", None, None, None, "ok", False),
        ("printer", "fail", "PAPER_OUT", "hardware", "major", "Printer: out of paper", False),
        ("link", "error", "crc", "hardware", "major", "3 frames were resent", True)]
    assert [d.serial for d in reg.devices()] == ["SP1000001", "SP2"]
    assert reg.runs("SP2")[0].results == runs[1].results


def test_run_without_device_identity_is_refused(reg: Registry) -> None:
    rep = DiagnosticReport(port="emu://x", plan="full", lang="en", started_at=0.0)
    with pytest.raises(RegistryError, match="no device identity"):
        reg.record_run(rep)
    assert reg.devices() == []


def test_backup_round_trip_and_validation(reg: Registry) -> None:
    with pytest.raises(UnknownDevice):
        reg.record_backup("SP1000001", "/b/x.jsonl", "a" * 64, 10)
    reg.record_device(device_info())
    b = reg.record_backup("SP1000001", "/b/x.jsonl", "AB" * 32, 120, created_at=5.0)
    assert reg.backups("SP1000001") == [b]
    assert (b.sha256, b.records, b.created_at, b.path) == ("ab" * 32, 120, 5.0, "/b/x.jsonl")
    with pytest.raises(RegistryError, match="SHA-256"):
        reg.record_backup("SP1000001", "/b/y", "abc", 1)


def test_foreign_keys_are_enforced(reg: Registry) -> None:
    with reg.engine.begin() as conn, pytest.raises(DBAPIError, match="FOREIGN KEY"):
        conn.execute(text("INSERT INTO backups (device_id, path, sha256, records, created_at) "
                          "VALUES (999, 'p', 'x', 1, 0)"))


# -- repair tickets ------------------------------------------------------------------------------


def test_ticket_full_life_with_timeline_and_materials(reg: Registry) -> None:
    t = reg.open_ticket("SP9", "screen cracked after a fall", {"photos": True, "owner_identity": True})
    assert t.state == "opened" and t.serial == "SP9"
    assert reg.device("SP9").lifecycle == "unknown"       # a dead terminal gets a bare record
    assert set(t.missing_materials) == {"proof_of_purchase", "model_and_serial", "fault_description",
                                        "repair_payment", "invoice"}
    path = ["received", "diagnosing", "awaiting_parts", "replaced", "returned", "closed"]
    for state in path:
        t = reg.advance_ticket(t.id, state, note=f"now {state}",
                               materials={"invoice": True} if state == "returned" else None)
    assert t.state == "closed" and t.materials["invoice"] and t.materials["photos"]
    assert [(e.from_state, e.to_state) for e in t.timeline] == list(zip([None, "opened", *path[:-1]],
                                                                        ["opened", *path], strict=True))
    assert [e.note for e in t.timeline][1:] == [f"now {s}" for s in path]
    times = [e.at for e in t.timeline]
    assert times == sorted(times)
    assert reg.tickets() == [t] == reg.tickets("SP9") and reg.tickets("SP1") == []
    assert reg.ticket(t.id) == t


def test_diagnosing_may_go_straight_to_repaired(reg: Registry) -> None:
    t = reg.open_ticket("SP9", "keypad dead")
    for s in ("received", "diagnosing", "repaired"):
        t = reg.advance_ticket(t.id, s)
    assert t.state == "repaired"


@pytest.mark.parametrize(("path", "bad"), [
    ([], "diagnosing"),                                        # skipping received
    ([], "closed"),
    (["received", "diagnosing"], "returned"),                  # returned before repair
    (["received", "diagnosing", "repaired"], "replaced"),
    (["received", "diagnosing", "repaired", "returned", "closed"], "opened"),
    (["received"], "opened"),                                  # no going back
])
def test_illegal_transitions_are_refused_and_change_nothing(reg: Registry, path: list[str], bad: str) -> None:
    t = reg.open_ticket("SP9", "printer jams")
    for s in path:
        t = reg.advance_ticket(t.id, s)
    with pytest.raises(IllegalTransition, match=f"is {t.state}; it cannot go to {bad}"):
        reg.advance_ticket(t.id, bad)
    assert reg.ticket(t.id) == t


def test_ticket_errors(reg: Registry) -> None:
    t = reg.open_ticket("SP9", "no power")
    with pytest.raises(IllegalTransition, match="unknown ticket state 'fixed'"):
        reg.advance_ticket(t.id, "fixed")
    with pytest.raises(UnknownTicket, match="#77"):
        reg.advance_ticket(77, "received")
    with pytest.raises(RegistryError, match="unknown checklist item"):
        reg.open_ticket("SP9", "x", {"selfie": True})
    with pytest.raises(RegistryError, match="fault description"):
        reg.open_ticket("SP9", "  ")
    assert len(reg.tickets()) == 1


# -- audit log -----------------------------------------------------------------------------------


def _fill_audit(reg: Registry, n: int = 5) -> None:
    for i in range(n):
        reg.audit("tech:ana", "device.unbind", "ok" if i % 2 else "refused", "bench-3", f"SP{i}",
                  {"reason": "repair", "i": i, "中文": "解绑"})


def test_audit_round_trip_and_chain(reg: Registry) -> None:
    assert reg.verify_audit().ok and reg.verify_audit().checked == 0
    _fill_audit(reg)
    log = reg.audit_log()
    assert [e.id for e in log] == [1, 2, 3, 4, 5]
    assert log[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(log))
    assert (log[2].actor, log[2].action, log[2].outcome, log[2].origin, log[2].target) == (
        "tech:ana", "device.unbind", "refused", "bench-3", "SP2")
    assert log[2].details == {"reason": "repair", "i": 2, "中文": "解绑"}
    assert reg.audit_log(limit=2) == log[-2:]
    v = reg.verify_audit()
    assert v and v.checked == 5 and v.first_broken is None


@pytest.mark.parametrize("sql", ["UPDATE audit_log SET outcome = 'ok' WHERE id = 2",
                                 "DELETE FROM audit_log WHERE id = 5", "DELETE FROM audit_log"])
def test_update_and_delete_are_refused_by_the_database(reg: Registry, sql: str) -> None:
    _fill_audit(reg)
    before = reg.audit_log()
    with reg.engine.begin() as conn, pytest.raises(DBAPIError, match="append-only"):
        conn.execute(text(sql))
    assert reg.audit_log() == before
    assert reg.verify_audit().ok


def _tamper(path: Path, sql: str) -> None:
    """Drop the guard triggers (as an attacker with file access could) and run ``sql``."""
    con = sqlite3.connect(path)
    try:
        con.execute("DROP TRIGGER audit_log_no_update")
        con.execute("DROP TRIGGER audit_log_no_delete")
        con.execute(sql)
        con.commit()
    finally:
        con.close()


@pytest.mark.parametrize(("sql", "row", "reason"), [
    ("UPDATE audit_log SET outcome = 'ok' WHERE id = 3", 3, "altered"),
    ("UPDATE audit_log SET details = '{\"i\":9}' WHERE id = 4", 4, "altered"),
    ("UPDATE audit_log SET at = '2020-01-01T00:00:00.000000Z' WHERE id = 1", 1, "altered"),
    ("DELETE FROM audit_log WHERE id = 2", 3, "missing"),
    ("DELETE FROM audit_log WHERE id = 1", 2, "missing"),
])
def test_tampering_is_detected_and_the_row_named(tmp_path: Path, sql: str, row: int, reason: str) -> None:
    db = tmp_path / "r.db"
    with Registry.open(str(db)) as reg:
        _fill_audit(reg)
    _tamper(db, sql)
    with Registry.open(str(db)) as reg:
        v = reg.verify_audit()
    assert not v and v.first_broken == row and f"record {row}" in v.reason and reason in v.reason


def test_rehashed_row_is_still_caught_by_the_next_link(tmp_path: Path) -> None:
    """An attacker who recomputes the edited row's hash breaks the next row's prev_hash."""
    from pos_sim.registry.registry import audit_hash

    db = tmp_path / "r.db"
    with Registry.open(str(db)) as reg:
        _fill_audit(reg)
        e = reg.audit_log()[2]
    forged = audit_hash(e.prev_hash, e.id, e.at, e.actor, e.action, "ok", e.origin, e.target,
                        '{"i":2,"reason":"repair","中文":"解绑"}')
    _tamper(db, f"UPDATE audit_log SET outcome = 'ok', hash = '{forged}' WHERE id = 3")
    with Registry.open(str(db)) as reg:
        v = reg.verify_audit()
    assert v.first_broken == 4 and "does not link" in v.reason


# -- card data guard -----------------------------------------------------------------------------


def test_luhn() -> None:
    assert luhn_valid("4111111111111111") and luhn_valid("79927398713")
    assert not luhn_valid("4111111111111112")
    assert contains_card_number("pan=4111 1111 1111 1111;")
    assert contains_card_number("x-5500-0000-0000-0004-y")
    assert not contains_card_number("4111111111111112")          # fails Luhn
    assert not contains_card_number("411111111111")              # 12 digits
    assert not contains_card_number("41111111111111111111111")   # part of a longer number
    assert not contains_card_number("411111******1111")          # masked


def test_card_numbers_are_refused_and_never_repeated(reg: Registry) -> None:
    with pytest.raises(CardDataRefused) as exc:
        reg.audit("tech", "backup", "ok", "bench", "SP1", {"last_txn": {"pan": "4111111111111111"}})
    assert "4111" not in str(exc.value)
    with pytest.raises(CardDataRefused):
        reg.audit("tech", "backup", "ok", "bench", "SP1", {"n": 4111111111111111})
    with pytest.raises(CardDataRefused):
        reg.open_ticket("SP1", "customer card 5500 0000 0000 0004 stuck in reader")
    assert reg.audit_log() == [] and reg.tickets() == []
    reg.audit("tech", "backup", "ok", "bench", "SP1", {"pan": "411111******1111"})   # masked is fine


# -- schema and SQLite settings ------------------------------------------------------------------


def test_sqlite_is_wal_full_sync_with_foreign_keys(reg: Registry, tmp_path: Path) -> None:
    assert reg.pragma("journal_mode") == "wal"
    assert reg.pragma("synchronous") == 2           # FULL
    assert reg.pragma("foreign_keys") == 1
    assert (tmp_path / "registry.db-wal").exists()


def test_empty_database_is_migrated_to_the_latest_version(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    sqlite3.connect(db).close()                      # an existing, empty (version 0) file
    with Registry.open(str(db)) as reg:
        reg.audit("t", "a", "ok", "o", "x")
    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        triggers = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='trigger'")}
    finally:
        con.close()
    assert {"devices", "diagnostic_runs", "run_results", "backups", "repair_tickets", "ticket_events",
            "audit_log", "schema_version"} <= tables
    assert triggers == {"audit_log_no_update", "audit_log_no_delete"}
    with Registry.open(str(db)) as reg:              # reopening migrates nothing and keeps data
        assert len(reg.audit_log()) == 1


def test_version_zero_row_is_migrated(tmp_path: Path) -> None:
    db = tmp_path / "v0.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE schema_version (id INTEGER PRIMARY KEY, version INTEGER NOT NULL)")
    con.execute("INSERT INTO schema_version VALUES (1, 0)")
    con.commit()
    con.close()
    with Registry.open(str(db)) as reg:
        assert reg.devices() == []
    con = sqlite3.connect(db)
    assert con.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    con.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    with Registry.open(str(db)):
        pass
    con = sqlite3.connect(db)
    con.execute("UPDATE schema_version SET version = 99")
    con.commit()
    con.close()
    with pytest.raises(SchemaTooNew,
                       match=rf"schema version 99, newer than this pos-sim understands \(up to {SCHEMA_VERSION}\)"):
        Registry.open(str(db))


def test_url_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POS_SIM_DB", f"sqlite:///{tmp_path / 'env.db'}")
    with Registry.open() as reg:
        reg.record_device(device_info())
    assert (tmp_path / "env.db").exists()
    monkeypatch.delenv("POS_SIM_DB")
    monkeypatch.setattr("platformdirs.user_data_dir", lambda app: str(tmp_path / "data" / app))
    with Registry.open() as reg:
        assert reg.devices() == []
    assert (tmp_path / "data" / "pos-sim" / "registry.db").exists()


def test_any_engine_by_url_in_memory() -> None:
    with Registry.open("sqlite://") as reg:
        reg.record_run(report())
        assert len(reg.runs("SP1000001")) == 1


def test_engine_is_a_plain_sqlalchemy_engine(db_url: str) -> None:
    with Registry.open(db_url) as reg:
        reg.record_device(device_info())
    eng = create_engine(db_url)
    with eng.connect() as conn:
        assert conn.execute(text("SELECT serial FROM devices")).scalars().all() == ["SP1000001"]
    eng.dispose()


# -- a real run ----------------------------------------------------------------------------------


def test_record_run_from_an_emulator_session(reg: Registry) -> None:
    with EmulatorServer(load_scenario("paper-out"), speed=50) as server:
        term = Terminal.open(server.serve_pty(), timings=LinkTimings(keepalive_idle=3600))
        try:
            rep = DiagnosticsEngine(term, lang="en").run("quick", interactive=False)
        finally:
            term.close()
    assert rep.device is not None
    saved = reg.record_run(rep)
    [run] = reg.runs(rep.device.serial)
    assert run == saved
    assert (run.verdict, run.exit_status, run.plan) == (rep.verdict, rep.exit_status, "quick")
    assert [(r.component, r.verdict, r.code) for r in run.results if not r.communication] == [
        (f.component, f.verdict, f.code) for f in rep.results]
    assert any(r.component == "printer" and r.verdict != "pass" for r in run.results)
    [dev] = reg.devices()
    assert (dev.serial, dev.model, dev.firmware) == (rep.device.serial, rep.device.model,
                                                      rep.device.firmware_version)


# -- schema versions and lifecycle records -----------------------------------------------------------


def test_version_1_database_with_data_is_migrated_to_2(tmp_path: Path) -> None:
    """A registry written by a pos-sim of schema version 1 (frozen DDL) keeps its rows and its
    audit chain, and gains the lifecycle_ops table."""
    from pos_sim.registry.migrations import MIGRATIONS

    db = tmp_path / "v1.db"
    eng = create_engine(f"sqlite:///{db}")
    with eng.begin() as conn:
        MIGRATIONS[0](conn)
        conn.exec_driver_sql("CREATE TABLE schema_version (id INTEGER PRIMARY KEY, version INTEGER NOT NULL)")
        conn.exec_driver_sql("INSERT INTO schema_version VALUES (1, 1)")
    eng.dispose()
    con = sqlite3.connect(db)
    assert "lifecycle_ops" not in {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
    con.close()
    # fill it the way version 1 did: through the same public calls (which do not touch lifecycle_ops)
    from pos_sim.registry import migrations
    orig = migrations.LATEST
    try:
        migrations.LATEST = 1
        with Registry.open(str(db)) as reg:
            reg.record_run(report())
            reg.audit("tech", "x", "ok", "bench", "SP1000001")
    finally:
        migrations.LATEST = orig
    with Registry.open(str(db)) as reg:
        assert len(reg.runs("SP1000001")) == 1 and reg.verify_audit().ok
        reg.record_lifecycle("SP1000001", "unbind", "ok", "bound", "unactivated", 8, reason="moving shop")
        assert [o.operation for o in reg.lifecycle_ops("SP1000001")] == ["unbind"]
    con = sqlite3.connect(db)
    assert con.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    con.close()


def test_migrated_schema_matches_the_models(tmp_path: Path) -> None:
    """The frozen DDL of every version, run in order, gives exactly the tables and columns the
    ORM models use now (a model changed without a migration fails here)."""
    from sqlalchemy import inspect

    from pos_sim.registry.models import Base

    with Registry.open(str(tmp_path / "m.db")) as reg:
        insp = inspect(reg.engine)
        for table in Base.metadata.sorted_tables:
            db_cols = {c["name"]: (c["nullable"], type(c["type"]).__name__) for c in insp.get_columns(table.name)}
            model_cols = {c.name: (c.nullable, type(c.type).__name__) for c in table.columns}
            # SQLite reports what it stored: compare names and nullability, and the type family
            assert set(db_cols) == set(model_cols), table.name
            for name, (nullable, _) in model_cols.items():
                assert db_cols[name][0] == nullable, f"{table.name}.{name} nullable"
        assert set(insp.get_table_names()) == set(Base.metadata.tables)


def test_lifecycle_record_updates_device_and_audits_in_one_transaction(reg: Registry) -> None:
    reg.record_device(device_info(lifecycle="bound"))
    b = reg.record_backup("SP1000001", "/backups/SP1000001.json", "ab" * 32, 120)
    op = reg.record_lifecycle("SP1000001", "unbind", "ok", "bound", "unactivated", 8, reason="shop closed",
                              backup_id=b.id, merchant="")
    dev = reg.device("SP1000001")
    assert (dev.lifecycle, dev.merchant) == ("unactivated", "")
    assert (op.status, op.counter, op.backup_id, op.forced) == ("ok", 8, b.id, False)
    refused = reg.record_lifecycle("SP1000001", "revoke", "bad_auth", "unactivated", "unactivated", 8,
                                   reason="x", message="MAC does not verify")
    assert reg.device("SP1000001").lifecycle == "unactivated"
    log = reg.audit_log()
    assert [(e.action, e.outcome, e.target) for e in log[-3:]] == [
        ("device.backup", "ok", "SP1000001"), ("device.unbind", "ok", "SP1000001"),
        ("device.revoke", "bad_auth", "SP1000001")]
    assert log[-2].details["op"] == op.id and log[-1].details["op"] == refused.id
    assert log[-2].details["backup"] == b.id and log[-2].details["reason"] == "shop closed"
    assert reg.verify_audit().ok


def test_card_number_in_a_reason_refuses_the_whole_record(reg: Registry) -> None:
    reg.record_device(device_info(lifecycle="bound"))
    before = (reg.lifecycle_ops("SP1000001"), reg.audit_log())
    with pytest.raises(CardDataRefused):
        reg.record_lifecycle("SP1000001", "unbind", "ok", "bound", "unactivated", 9,
                             reason="customer card 4111 1111 1111 1111 stuck")
    assert (reg.lifecycle_ops("SP1000001"), reg.audit_log()) == before
    assert reg.device("SP1000001").lifecycle == "bound"


def test_ticket_changes_are_audited_by_the_registry_itself(reg: Registry) -> None:
    from pos_sim.registry import Actor

    t = reg.open_ticket("SP9", "screen cracked", {"photos": True}, by=Actor("ana", "bench-2"))
    reg.advance_ticket(t.id, "received", "at the counter", by=Actor("ana", "bench-2"))
    assert [(e.actor, e.origin, e.action, e.target) for e in reg.audit_log()] == [
        ("ana", "bench-2", "ticket.open", f"ticket #{t.id} SP9"),
        ("ana", "bench-2", "ticket.advance", f"ticket #{t.id} SP9")]


# -- somebody else's database ----------------------------------------------------------------------

def _sqlite_file(path: Path, *ddl: str) -> bytes:
    con = sqlite3.connect(path)
    for statement in ddl:
        con.execute(statement)
    con.commit()
    con.close()
    return path.read_bytes()


def test_another_programs_sqlite_file_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    from pos_sim.registry import ForeignDatabase

    db = tmp_path / "inventory.db"
    before = _sqlite_file(db, "CREATE TABLE items (sku TEXT PRIMARY KEY, qty INTEGER)",
                          "INSERT INTO items VALUES ('A-1', 3)", "CREATE TABLE devices (x INTEGER)")
    with pytest.raises(ForeignDatabase, match=r"holds tables that are not the registry's \(items\)") as err:
        Registry.open(str(db))
    assert err.value.exit_code == 128 and "\n" not in str(err.value)
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inventory.db"]    # no -wal, no -journal either


def test_a_file_that_is_not_sqlite_is_refused_unchanged(tmp_path: Path) -> None:
    from pos_sim.registry import ForeignDatabase

    db = tmp_path / "notes.db"
    db.write_bytes(b"shopping list: paper rolls\n" * 40)
    with pytest.raises(ForeignDatabase, match="is not a pos-sim registry"):
        Registry.open(str(db))
    assert db.read_bytes() == b"shopping list: paper rolls\n" * 40


def test_an_empty_file_and_our_own_database_open(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    with Registry.open(str(empty)) as reg:
        reg.record_device(device_info())
    with Registry.open(str(empty)) as reg:        # reopened: every table is ours
        assert [d.serial for d in reg.devices()] == ["SP1000001"]


def test_a_newer_registry_with_tables_we_do_not_know_is_too_new_not_foreign(tmp_path: Path) -> None:
    db = tmp_path / "newer.db"
    with Registry.open(str(db)):
        pass
    _sqlite_file(db, "CREATE TABLE firmware_images (id INTEGER PRIMARY KEY)", "UPDATE schema_version SET version = 99")
    with pytest.raises(SchemaTooNew):
        Registry.open(str(db))
