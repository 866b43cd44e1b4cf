"""The registry on PostgreSQL, as a repair centre runs it: every bench on one server by URL.

A throwaway server (pg.py; the ``postgres`` and ``pg_url`` fixtures in conftest.py) gives each
test a fresh database.  The engine-neutral tests of test_registry.py run here again with ``reg``
on PostgreSQL (this module's ``db_url`` overrides the SQLite one); the rest are PostgreSQL's own:
migrations, the append-only trigger, tampering by a superuser, concurrent benches (checked on
SQLite as well) and the command line.
"""

from __future__ import annotations

import itertools
import multiprocessing
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from pos_sim import exitcodes
from pos_sim.cli import main
from pos_sim.registry import SCHEMA_VERSION, Actor, CardDataRefused, Registry, SchemaTooNew
from pos_sim.registry.migrations import MIGRATIONS, POSTGRESQL_AUDIT_TRIGGER
from pos_sim.registry.models import Base
from pos_sim.registry.registry import audit_hash
from tests.pos_sim.registry import test_registry as on_sqlite
from tests.pos_sim.registry.conftest import device_info, report
from tests.pos_sim.registry.pg import PostgresServer


@pytest.fixture
def db_url(pg_url: str) -> str:
    """Every test here, and the ``reg`` fixture, use a fresh PostgreSQL database."""
    return pg_url


# -- the engine-neutral tests of test_registry.py, on PostgreSQL ----------------------------------

test_device_round_trip_and_update = on_sqlite.test_device_round_trip_and_update
test_run_round_trip_keeps_every_finding = on_sqlite.test_run_round_trip_keeps_every_finding
test_run_without_device_identity_is_refused = on_sqlite.test_run_without_device_identity_is_refused
test_backup_round_trip_and_validation = on_sqlite.test_backup_round_trip_and_validation
test_ticket_full_life_with_timeline_and_materials = on_sqlite.test_ticket_full_life_with_timeline_and_materials
test_diagnosing_may_go_straight_to_repaired = on_sqlite.test_diagnosing_may_go_straight_to_repaired
test_illegal_transitions_are_refused_and_change_nothing = (
    on_sqlite.test_illegal_transitions_are_refused_and_change_nothing)
test_ticket_errors = on_sqlite.test_ticket_errors
test_ticket_changes_are_audited_by_the_registry_itself = (
    on_sqlite.test_ticket_changes_are_audited_by_the_registry_itself)
test_audit_round_trip_and_chain = on_sqlite.test_audit_round_trip_and_chain
test_card_numbers_are_refused_and_never_repeated = on_sqlite.test_card_numbers_are_refused_and_never_repeated
test_card_number_in_a_reason_refuses_the_whole_record = on_sqlite.test_card_number_in_a_reason_refuses_the_whole_record
test_lifecycle_record_updates_device_and_audits_in_one_transaction = (
    on_sqlite.test_lifecycle_record_updates_device_and_audits_in_one_transaction)
test_engine_is_a_plain_sqlalchemy_engine = on_sqlite.test_engine_is_a_plain_sqlalchemy_engine
test_record_run_from_an_emulator_session = on_sqlite.test_record_run_from_an_emulator_session


def test_it_really_is_postgresql(reg: Registry) -> None:
    assert reg.engine.dialect.name == "postgresql" and reg.engine.dialect.driver == "psycopg"
    with reg.engine.connect() as conn:
        assert conn.execute(text("SHOW fsync")).scalar() == "on"
        assert conn.execute(text("SHOW server_encoding")).scalar() == "UTF8"
        assert conn.execute(text("SHOW listen_addresses")).scalar() == ""


def test_foreign_keys_are_enforced(reg: Registry) -> None:
    with reg.engine.begin() as conn, pytest.raises(IntegrityError, match="foreign key constraint"):
        conn.execute(text("INSERT INTO backups (device_id, path, sha256, records, created_at) "
                          "VALUES (999, 'p', 'x', 1, 0)"))


def test_times_and_flags_come_back_exactly(reg: Registry) -> None:
    """Floats are double precision and booleans real booleans, as on SQLite."""
    reg.record_device(device_info())
    b = reg.record_backup("SP1000001", "/b/x", "ab" * 32, 3, created_at=1_700_000_000.123456)
    assert reg.backups("SP1000001")[0].created_at == 1_700_000_000.123456 == b.created_at
    t = reg.open_ticket("SP1000001", "dead", {"photos": True})
    assert reg.ticket(t.id).materials["photos"] is True and reg.ticket(t.id).materials["invoice"] is False


def test_env_var_names_the_postgresql_registry(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POS_SIM_DB", pg_url)
    with Registry.open() as reg:
        reg.record_device(device_info())
        assert reg.engine.dialect.name == "postgresql"
    with Registry.open(pg_url) as reg:
        assert [d.serial for d in reg.devices()] == ["SP1000001"]


# -- migrations ----------------------------------------------------------------------------------


def _catalog(url: str, sql: str) -> set[Any]:
    eng = create_engine(url)
    try:
        with eng.connect() as conn:
            return {r[0] for r in conn.execute(text(sql))}
    finally:
        eng.dispose()


TABLES = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
TRIGGERS = "SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_log'::regclass AND NOT tgisinternal"


def test_empty_database_is_migrated_to_the_latest_version(pg_url: str) -> None:
    assert _catalog(pg_url, TABLES) == set()
    with Registry.open(pg_url) as reg:
        reg.audit("t", "a", "ok", "o", "x")
        with reg.engine.connect() as conn:
            assert conn.execute(text("SELECT id, version FROM schema_version")).all() == [(1, SCHEMA_VERSION)]
    assert _catalog(pg_url, TABLES) == set(Base.metadata.tables)
    assert _catalog(pg_url, TRIGGERS) == {"audit_log_append_only"}
    with Registry.open(pg_url) as reg:                 # reopening migrates nothing and keeps data
        assert len(reg.audit_log()) == 1 and reg.verify_audit().ok
    assert _catalog(pg_url, TRIGGERS) == {"audit_log_append_only"}


def test_migrated_schema_matches_the_models(reg: Registry) -> None:
    """The frozen DDL of every version gives exactly the models' tables, columns, nullability and
    types (PostgreSQL reports the types it was given, unlike SQLite)."""
    insp = inspect(reg.engine)
    assert set(insp.get_table_names()) == set(Base.metadata.tables)
    for table in Base.metadata.sorted_tables:
        db_cols = {c["name"]: (c["nullable"], c["type"]) for c in insp.get_columns(table.name)}
        assert set(db_cols) == {c.name for c in table.columns}, table.name
        for col in table.columns:
            nullable, db_type = db_cols[col.name]
            assert nullable == col.nullable, f"{table.name}.{col.name} nullable"
            assert db_type._type_affinity is col.type._type_affinity, f"{table.name}.{col.name} type"
            assert getattr(db_type, "length", None) == getattr(col.type, "length", None), (
                f"{table.name}.{col.name} length")


def test_newer_schema_is_refused(pg_url: str) -> None:
    with Registry.open(pg_url) as reg, reg.engine.begin() as conn:
        conn.execute(text("UPDATE schema_version SET version = 99"))
    with pytest.raises(SchemaTooNew,
                       match=rf"schema version 99, newer than this pos-sim understands \(up to {SCHEMA_VERSION}\)"):
        Registry.open(pg_url)


def _make_version_1(url: str, *, admin_trigger: bool = False) -> None:
    """A database as a pos-sim of schema version 1 left it (optionally with the trigger an
    administrator applied by hand, as version 1's documentation asked)."""
    eng = create_engine(url)
    try:
        with eng.begin() as conn:
            MIGRATIONS[0](conn)
            conn.exec_driver_sql("CREATE TABLE schema_version (id INTEGER PRIMARY KEY, version INTEGER NOT NULL)")
            conn.exec_driver_sql("INSERT INTO schema_version VALUES (1, 1)")
            if admin_trigger:
                conn.exec_driver_sql("CREATE FUNCTION audit_log_refuse() RETURNS trigger LANGUAGE plpgsql AS "
                                     "$$ BEGIN RAISE EXCEPTION 'refused by the administrator''s trigger'; END $$")
                conn.exec_driver_sql(POSTGRESQL_AUDIT_TRIGGER[2])
    finally:
        eng.dispose()


@pytest.mark.parametrize("admin_trigger", [False, True], ids=["bare", "with-admin-trigger"])
def test_version_1_database_is_migrated_to_2_with_the_trigger(pg_url: str, admin_trigger: bool,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from pos_sim.registry import migrations

    _make_version_1(pg_url, admin_trigger=admin_trigger)
    with monkeypatch.context() as m:                  # fill it the way version 1 did
        m.setattr(migrations, "LATEST", 1)
        with Registry.open(pg_url) as reg:
            reg.record_run(report())
            reg.audit("tech", "x", "ok", "bench", "SP1000001")
    assert "lifecycle_ops" not in _catalog(pg_url, TABLES)
    with Registry.open(pg_url) as reg:
        assert len(reg.runs("SP1000001")) == 1 and reg.verify_audit().ok
        reg.record_lifecycle("SP1000001", "unbind", "ok", "bound", "unactivated", 8, reason="moving shop")
        assert [o.operation for o in reg.lifecycle_ops("SP1000001")] == ["unbind"]
        with reg.engine.begin() as conn, pytest.raises(DBAPIError, match="append-only: DELETE refused"):
            conn.execute(text("DELETE FROM audit_log"))
        assert reg.verify_audit().checked == 3
    assert _catalog(pg_url, TRIGGERS) == {"audit_log_append_only"}
    assert _catalog(pg_url, "SELECT version FROM schema_version") == {SCHEMA_VERSION}


# -- the audit log is append-only ----------------------------------------------------------------


def _fill_audit(reg: Registry, n: int = 5) -> None:
    for i in range(n):
        reg.audit("tech:ana", "device.unbind", "ok" if i % 2 else "refused", "bench-3", f"SP{i}",
                  {"reason": "repair", "i": i, "中文": "解绑"})


@pytest.mark.parametrize(("sql", "op"), [
    ("UPDATE audit_log SET outcome = 'ok' WHERE id = 2", "UPDATE"),
    ("UPDATE audit_log SET outcome = 'ok' WHERE id = 999", "UPDATE"),   # refused even when no row matches
    ("DELETE FROM audit_log WHERE id = 5", "DELETE"),
    ("DELETE FROM audit_log", "DELETE"),
    ("TRUNCATE audit_log", "TRUNCATE"),
])
def test_update_delete_and_truncate_are_refused(reg: Registry, sql: str, op: str) -> None:
    _fill_audit(reg)
    before = reg.audit_log()
    with reg.engine.begin() as conn, pytest.raises(DBAPIError, match=f"audit_log is append-only: {op} refused"):
        conn.execute(text(sql))
    assert reg.audit_log() == before
    v = reg.verify_audit()
    assert v and v.checked == len(before)


def _superuser_tamper(postgres: PostgresServer, url: str, sql: str, *, how: str = "drop") -> None:
    """What an attacker holding the server's superuser can do: drop the trigger (or skip every
    trigger for the session) and edit the log."""
    dbname = url.split("@/", 1)[1].split("?", 1)[0]
    with postgres.connect(dbname) as conn:
        if how == "drop":
            conn.execute("DROP TRIGGER audit_log_append_only ON audit_log")
        else:
            conn.execute("SET session_replication_role = replica")
        conn.execute(sql)


@pytest.mark.parametrize(("sql", "row", "reason"), [
    ("UPDATE audit_log SET outcome = 'ok' WHERE id = 3", 3, "altered"),
    ("UPDATE audit_log SET details = '{\"i\":9}' WHERE id = 4", 4, "altered"),
    ("UPDATE audit_log SET at = '2020-01-01T00:00:00.000000Z' WHERE id = 1", 1, "altered"),
    ("DELETE FROM audit_log WHERE id = 2", 3, "missing"),
    ("DELETE FROM audit_log WHERE id = 1", 2, "missing"),
])
@pytest.mark.parametrize("how", ["drop", "replica"])
def test_tampering_by_a_superuser_is_detected_and_the_row_named(
        reg: Registry, postgres: PostgresServer, pg_url: str, sql: str, row: int, reason: str, how: str) -> None:
    _fill_audit(reg)
    _superuser_tamper(postgres, pg_url, sql, how=how)
    v = reg.verify_audit()
    assert not v and v.first_broken == row and f"record {row}" in v.reason and reason in v.reason


def test_rehashed_row_is_still_caught_by_the_next_link(reg: Registry, postgres: PostgresServer,
                                                       pg_url: str) -> None:
    _fill_audit(reg)
    e = reg.audit_log()[2]
    forged = audit_hash(e.prev_hash, e.id, e.at, e.actor, e.action, "ok", e.origin, e.target,
                        '{"i":2,"reason":"repair","中文":"解绑"}')
    _superuser_tamper(postgres, pg_url, f"UPDATE audit_log SET outcome = 'ok', hash = '{forged}' WHERE id = 3")
    v = reg.verify_audit()
    assert v.first_broken == 4 and "does not link" in v.reason


def test_truncated_and_refilled_log_is_detected(reg: Registry, postgres: PostgresServer, pg_url: str) -> None:
    """Emptied and refilled with a fresh, self-consistent chain: only an anchored hash tells (the
    registry's docstring says so); here the ids restarting is what the anchor would catch."""
    _fill_audit(reg)
    anchor = reg.audit_log()[-1].hash
    _superuser_tamper(postgres, pg_url, "TRUNCATE audit_log", how="replica")
    _fill_audit(reg, 2)
    assert reg.verify_audit().ok                      # a chain of its own...
    assert anchor not in {e.hash for e in reg.audit_log()}   # ...that the anchored hash is not in


# -- concurrent benches --------------------------------------------------------------------------

BENCHES = 4
APPENDS = 25


def _bench(url: str, bench: int, go: Any, ready: Any, open_after_go: bool) -> None:
    """One bench (a child process): wait for the start signal, then append APPENDS records of
    different kinds: plain audit records, runs and lifecycle records on a device every bench
    shares and on its own, each with its audit record."""
    if open_after_go:
        ready.set()
        go.wait(30)
    reg = Registry.open(url)
    try:
        if not open_after_go:
            ready.set()
            go.wait(30)
        for i in range(APPENDS):
            match i % 3:
                case 0:
                    reg.audit(f"tech{bench}", "bench.note", "ok", f"bench-{bench}", f"SP{bench}", {"i": i})
                case 1:
                    reg.record_run(report(serial="SP-SHARED" if i % 2 else f"SP{bench}"), by=Actor("t", f"b{bench}"))
                case _:
                    reg.record_lifecycle("SP-SHARED" if i % 2 else f"SP{bench}", "unbind", "ok", "bound",
                                         "unactivated", i, reason="concurrency", by=Actor("t", f"b{bench}"))
    finally:
        reg.close()


def _run_benches(url: str, *, open_after_go: bool) -> None:
    ctx = multiprocessing.get_context("fork")       # the parent holds no connection: they share only the database
    go = ctx.Event()
    ready = [ctx.Event() for _ in range(BENCHES)]
    procs = [ctx.Process(target=_bench, args=(url, b, go, ready[b], open_after_go), daemon=True)
             for b in range(BENCHES)]
    try:
        for p in procs:
            p.start()
        for r in ready:
            assert r.wait(120), "a bench did not get ready"
        go.set()
        for p in procs:
            p.join(180)
        assert [p.exitcode for p in procs] == [0] * BENCHES, "a bench failed (its traceback is above)"
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join(10)


def _assert_one_unforked_chain(url: str) -> None:
    with Registry.open(url) as reg:
        log = reg.audit_log()
        v = reg.verify_audit()
        assert v.ok, v.reason
        assert [e.id for e in log] == list(range(1, BENCHES * APPENDS + 1))
        assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(log))
        assert len({e.hash for e in log}) == len(log)
        assert {e.origin for e in log} >= {f"b{b}" for b in range(BENCHES)} | {f"bench-{b}" for b in range(BENCHES)}
        shared = reg.runs("SP-SHARED")
        assert len(shared) == BENCHES * len([i for i in range(APPENDS) if i % 3 == 1 and i % 2])
        assert [d.serial for d in reg.devices()] == sorted(["SP-SHARED", *(f"SP{b}" for b in range(BENCHES))])


@pytest.fixture(params=["sqlite", "postgresql"])
def any_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh registry URL on each engine."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX test machine only")
def test_concurrent_appenders_never_fork_the_chain(any_url: str) -> None:
    """Benches appending at once (the registry already migrated) queue on the log's head:
    LOCK TABLE on PostgreSQL, BEGIN IMMEDIATE on SQLite."""
    Registry.open(any_url).close()
    _run_benches(any_url, open_after_go=False)
    _assert_one_unforked_chain(any_url)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX test machine only")
def test_benches_opening_a_new_registry_at_once_migrate_it_once(any_url: str) -> None:
    """Benches started together on an empty database: one migrates, the others wait for it."""
    _run_benches(any_url, open_after_go=True)
    _assert_one_unforked_chain(any_url)
    if any_url.startswith("postgresql"):
        assert _catalog(any_url, TRIGGERS) == {"audit_log_append_only"}


# -- the command line ----------------------------------------------------------------------------


@pytest.fixture
def filled(pg_url: str) -> Iterator[str]:
    """A PostgreSQL registry with two devices, a ticket and their audit records."""
    with Registry.open(pg_url) as reg:
        reg.record_run(report())
        reg.record_run(report(serial="SP2", verdict="failed"))
        reg.open_ticket("SP2", "printer jams")
    yield pg_url


def test_cli_devices_and_audit_verify_on_postgresql(filled: str, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["devices", "--db", filled]) == 0
    out = capsys.readouterr().out
    assert "SP1000001" in out and "SP2" in out
    assert main(["devices", "--db", filled, "--json"]) == 0
    assert [d["serial"] for d in json.loads(capsys.readouterr().out)["devices"]] == ["SP1000001", "SP2"]
    assert main(["devices", "SP2", "--db", filled]) == 0
    assert "printer jams" in capsys.readouterr().out
    assert main(["audit", "verify", "--db", filled]) == 0
    assert "audit log intact: 3 records" in capsys.readouterr().out
    assert main(["audit", "show", "--db", filled]) == 0
    assert "ticket.open" in capsys.readouterr().out


def test_cli_audit_verify_reports_tampering_on_postgresql(filled: str, postgres: PostgresServer,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    _superuser_tamper(postgres, filled, "UPDATE audit_log SET outcome = 'ok' WHERE id = 2")
    assert main(["audit", "verify", "--db", filled]) == 4
    assert "record 2 is broken" in capsys.readouterr().err


def test_cli_refuses_a_newer_postgresql_schema(filled: str, capsys: pytest.CaptureFixture[str]) -> None:
    eng = create_engine(filled)
    with eng.begin() as conn:
        conn.execute(text("UPDATE schema_version SET version = 99"))
    eng.dispose()
    assert main(["devices", "--db", filled]) == exitcodes.REGISTRY  # docs/cli.md: a registry failure
    err = capsys.readouterr().err
    assert "schema version 99" in err


# -- card data ------------------------------------------------------------------------------------


def test_card_number_never_reaches_the_server(reg: Registry, postgres: PostgresServer, pg_url: str) -> None:
    """Refused before any SQL is sent: not in a row, not in the server's log of failed statements."""
    with pytest.raises(CardDataRefused):
        reg.audit("tech", "backup", "ok", "bench", "SP1", {"pan": "4111 1111 1111 1111"})
    with pytest.raises(CardDataRefused):
        reg.open_ticket("SP1", "card 5500-0000-0000-0004 stuck")
    dbname = pg_url.split("@/", 1)[1].split("?", 1)[0]
    with postgres.connect(dbname) as conn:
        assert conn.execute("SELECT count(*) FROM audit_log").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM repair_tickets").fetchone() == (0,)
    log = postgres.log.read_text(errors="replace")
    assert "4111" not in log and "5500" not in log
