"""Schema versions and the ordered migrations that reach them.

``MIGRATIONS[n]`` takes a database from version ``n`` to ``n + 1``; :func:`migrate` runs the
missing ones on open, all in one transaction, so a kill half-way leaves the old version intact.
A database newer than :data:`LATEST` is refused rather than guessed at.

Append-only audit log: on SQLite, triggers refuse UPDATE and DELETE (``RAISE(ABORT)``).  On
PostgreSQL the equivalent, to be applied by the administrator (the registry does not yet do it
itself), is::

    CREATE FUNCTION audit_log_refuse() RETURNS trigger LANGUAGE plpgsql AS
      $$ BEGIN RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP; END $$;
    CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
      FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse();

and the benches' database role should hold only INSERT and SELECT on ``audit_log``
(``REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM bench``).  Other engines: use the
engine's trigger or permission mechanism to the same effect.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, insert, select, update

from pos_sim.registry.errors import SchemaTooNew
from pos_sim.registry.models import Base, SchemaVersion

SQLITE_AUDIT_TRIGGERS = (
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused'); END",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused'); END",
)


def _v1(conn: Connection) -> None:
    """Version 1: devices, runs and results, backups, tickets and timeline, audit log.

    When version 2 is written, freeze this function to explicit DDL: ``create_all`` creates
    whatever the models say *now*.
    """
    tables = [t for t in Base.metadata.sorted_tables if t.name != SchemaVersion.__tablename__]
    Base.metadata.create_all(conn, tables=tables)
    if conn.dialect.name == "sqlite":
        for ddl in SQLITE_AUDIT_TRIGGERS:
            conn.exec_driver_sql(ddl)


#: MIGRATIONS[n] migrates version n to n + 1
MIGRATIONS: tuple[Callable[[Connection], None], ...] = (_v1,)
LATEST = len(MIGRATIONS)


def current_version(conn: Connection) -> int:
    """The database's schema version; 0 for an empty database."""
    Base.metadata.create_all(conn, tables=[Base.metadata.tables[SchemaVersion.__tablename__]])
    version = conn.execute(select(SchemaVersion.version).where(SchemaVersion.id == 1)).scalar_one_or_none()
    return version or 0


def migrate(conn: Connection, where: str = "the registry") -> int:
    """Bring the database to :data:`LATEST` inside the caller's transaction; return the version."""
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
