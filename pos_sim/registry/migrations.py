"""Schema versions and the ordered migrations that reach them.

``MIGRATIONS[n]`` takes a database from version ``n`` to ``n + 1``; :func:`migrate` runs the
missing ones on open, all in one transaction, so a kill half-way leaves the old version intact.
A database newer than :data:`LATEST` is refused rather than guessed at.

Append-only audit log: on SQLite, triggers refuse UPDATE and DELETE (``RAISE(ABORT)``); on
PostgreSQL, version 2 installs a statement trigger that refuses UPDATE, DELETE and TRUNCATE
(:data:`POSTGRESQL_AUDIT_TRIGGER`; it replaces one an administrator applied by hand to a version-1
database under the same names).
A trigger stops mistakes and the registry's own code, not an attacker who owns the database:
that is what the hash chain is for.  On PostgreSQL the benches' database role should also hold
only INSERT and SELECT on ``audit_log`` (``REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM
bench``), and should not be a superuser (a superuser can drop the trigger, or skip it with
``session_replication_role = replica``).  Other engines: use the engine's trigger or permission
mechanism to the same effect.

Benches that share one PostgreSQL server may start, or be upgraded, at the same moment: there
:func:`migrate` first takes a transaction-scoped advisory lock, so one bench migrates and the
others wait and then find the schema up to date (on SQLite, ``BEGIN IMMEDIATE`` does the same).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
    text,
    update,
)

from pos_sim.registry.errors import SchemaTooNew
from pos_sim.registry.models import Base, SchemaVersion

SQLITE_AUDIT_TRIGGERS = (
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused'); END",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused'); END",
)
#: PostgreSQL's equivalent (schema version 2): one statement trigger, since TRUNCATE has no rows;
#: no ``%`` in the text, so every driver's paramstyle leaves it alone
POSTGRESQL_AUDIT_TRIGGER = (
    "CREATE OR REPLACE FUNCTION audit_log_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "RAISE EXCEPTION USING MESSAGE = 'audit_log is append-only: ' || TG_OP || ' refused', "
    "ERRCODE = 'insufficient_privilege'; END $$",
    "DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log",
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse()",
)
#: key of the advisory lock that serialises migrations on PostgreSQL (any constant will do; this
#: is the first 8 bytes of sha256("pos-sim registry migrate") as a signed 64-bit integer)
POSTGRESQL_MIGRATE_LOCK = int.from_bytes(hashlib.sha256(b"pos-sim registry migrate").digest()[:8], "big",
                                         signed=True)


def _v1_tables(md: MetaData) -> None:
    """Version 1 as it shipped, frozen: these definitions never change (the models may)."""
    Table("devices", md,
          Column("id", Integer, primary_key=True),
          Column("serial", String(64), nullable=False, unique=True),
          Column("manufacturer", String(128), nullable=False),
          Column("model", String(128), nullable=False),
          Column("firmware", String(64), nullable=False),
          Column("lifecycle", String(32), nullable=False),
          Column("merchant", String(64), nullable=False),
          Column("first_seen", Float, nullable=False),
          Column("last_seen", Float, nullable=False))
    Table("diagnostic_runs", md,
          Column("id", Integer, primary_key=True),
          Column("device_id", Integer, ForeignKey("devices.id"), nullable=False, index=True),
          Column("started_at", Float, nullable=False),
          Column("finished_at", Float, nullable=False),
          Column("plan", String(32), nullable=False),
          Column("lang", String(16), nullable=False),
          Column("firmware", String(64), nullable=False),
          Column("verdict", String(16), nullable=False),
          Column("exit_status", Integer, nullable=False),
          Column("port", Text, nullable=False))
    Table("run_results", md,
          Column("id", Integer, primary_key=True),
          Column("run_id", Integer, ForeignKey("diagnostic_runs.id"), nullable=False, index=True),
          Column("component", String(32), nullable=False),
          Column("verdict", String(16), nullable=False),
          Column("code", String(64)),
          Column("category", String(32)),
          Column("severity", String(32)),
          Column("message", Text, nullable=False),
          Column("communication", Boolean, nullable=False))
    Table("backups", md,
          Column("id", Integer, primary_key=True),
          Column("device_id", Integer, ForeignKey("devices.id"), nullable=False, index=True),
          Column("path", Text, nullable=False),
          Column("sha256", String(64), nullable=False),
          Column("records", Integer, nullable=False),
          Column("created_at", Float, nullable=False))
    Table("repair_tickets", md,
          Column("id", Integer, primary_key=True),
          Column("device_id", Integer, ForeignKey("devices.id"), nullable=False, index=True),
          Column("state", String(32), nullable=False),
          Column("fault", Text, nullable=False),
          Column("opened_at", Float, nullable=False),
          Column("updated_at", Float, nullable=False),
          *(Column(m, Boolean, nullable=False) for m in ("owner_identity", "proof_of_purchase", "model_and_serial",
                                                         "fault_description", "photos", "repair_payment",
                                                         "invoice")))
    Table("ticket_events", md,
          Column("id", Integer, primary_key=True),
          Column("ticket_id", Integer, ForeignKey("repair_tickets.id"), nullable=False, index=True),
          Column("at", Float, nullable=False),
          Column("from_state", String(32)),
          Column("to_state", String(32), nullable=False),
          Column("note", Text, nullable=False))
    Table("audit_log", md,
          Column("id", Integer, primary_key=True, autoincrement=False),
          Column("at", String(40), nullable=False),
          Column("actor", Text, nullable=False),
          Column("action", String(64), nullable=False),
          Column("outcome", String(32), nullable=False),
          Column("origin", Text, nullable=False),
          Column("target", Text, nullable=False),
          Column("details", Text, nullable=False),
          Column("prev_hash", String(64), nullable=False),
          Column("hash", String(64), nullable=False, unique=True))


def _v1(conn: Connection) -> None:
    """Version 1: devices, runs and results, backups, tickets and timeline, audit log."""
    md = MetaData()
    _v1_tables(md)
    md.create_all(conn)
    if conn.dialect.name == "sqlite":
        for ddl in SQLITE_AUDIT_TRIGGERS:
            conn.exec_driver_sql(ddl)


def _v2(conn: Connection) -> None:
    """Version 2: lifecycle operations (every attempt, its answer, who and why; frozen), and on
    PostgreSQL the append-only trigger on the audit log."""
    md = MetaData()
    _v1_tables(md)   # for the foreign keys' targets; only the new table is created
    ops = Table("lifecycle_ops", md,
                Column("id", Integer, primary_key=True),
                Column("device_id", Integer, ForeignKey("devices.id"), nullable=False, index=True),
                Column("at", Float, nullable=False),
                Column("operation", String(32), nullable=False),
                Column("status", String(32), nullable=False),
                Column("state_before", String(32), nullable=False),
                Column("state_after", String(32), nullable=False),
                Column("counter", BigInteger, nullable=False),    # u32 on the wire
                Column("merchant", String(64), nullable=False),
                Column("actor", Text, nullable=False),
                Column("origin", Text, nullable=False),
                Column("reason", Text, nullable=False),
                Column("forced", Boolean, nullable=False),
                Column("backup_id", Integer, ForeignKey("backups.id")),
                Column("message", Text, nullable=False))
    ops.create(conn)
    if conn.dialect.name == "postgresql":
        for ddl in POSTGRESQL_AUDIT_TRIGGER:
            conn.exec_driver_sql(ddl)


#: MIGRATIONS[n] migrates version n to n + 1
MIGRATIONS: tuple[Callable[[Connection], None], ...] = (_v1, _v2)
LATEST = len(MIGRATIONS)


def current_version(conn: Connection) -> int:
    """The database's schema version; 0 for an empty database."""
    Base.metadata.create_all(conn, tables=[Base.metadata.tables[SchemaVersion.__tablename__]])
    version = conn.execute(select(SchemaVersion.version).where(SchemaVersion.id == 1)).scalar_one_or_none()
    return version or 0


def migrate(conn: Connection, where: str = "the registry") -> int:
    """Bring the database to :data:`LATEST` inside the caller's transaction; return the version."""
    if conn.dialect.name == "postgresql":
        # one bench migrates at a time; the lock is released when the caller's transaction ends
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": POSTGRESQL_MIGRATE_LOCK})
    version = current_version(conn)
    if version > LATEST:
        raise SchemaTooNew(f"{where} has schema version {version}, newer than this pos-sim understands "
                           f"(up to {LATEST}); upgrade pos-sim, or point --db / POS_SIM_DB elsewhere")
    if version == LATEST:
        return version
    for step in MIGRATIONS[version:]:
        step(conn)
    has_row = conn.execute(select(SchemaVersion.id).where(SchemaVersion.id == 1)).first() is not None
    if not has_row:
        conn.execute(insert(SchemaVersion).values(id=1, version=LATEST))
    else:
        conn.execute(update(SchemaVersion).where(SchemaVersion.id == 1).values(version=LATEST))
    return LATEST
