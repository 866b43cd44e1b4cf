"""The registry: devices, diagnostic runs, backups, repair tickets and the audit log.

``Registry.open()`` uses SQLite in ``platformdirs.user_data_dir("pos-sim")/registry.db`` unless
given a SQLAlchemy URL (or a file path), or ``POS_SIM_DB`` names one.  On SQLite the journal is
WAL with ``synchronous=FULL`` and foreign keys on, and every transaction starts with
``BEGIN IMMEDIATE`` so writers queue instead of failing half-way.  Every write method commits
before it returns: when it returns, the row is on disk.

Audit chain: row *n* stores ``prev_hash`` (row *n-1*'s hash, 64 zeros for the first) and
``hash = sha256(prev_hash + canonical_json(row without hashes))``.  :meth:`Registry.verify_audit`
recomputes it and names the first row that does not match.  A chain cut at its end cannot be
told from a shorter one; anchor the last hash elsewhere (a report, a ticket) to detect that.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import re
import socket
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import platformdirs
from sqlalchemy import Engine, create_engine, event, func, make_url, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from drivers.terminal import DeviceInfo
from pos_sim.diagnostics.engine import DiagnosticReport
from pos_sim.registry.errors import (
    ForeignDatabase,
    IllegalTransition,
    RegistryError,
    RegistryUnavailable,
    UnknownDevice,
    UnknownTicket,
)
from pos_sim.registry.guard import canonical_json, refuse_card_data
from pos_sim.registry.migrations import LATEST as LATEST_SCHEMA
from pos_sim.registry.migrations import migrate
from pos_sim.registry.models import (
    AuditRow,
    Backup,
    Base,
    Device,
    DiagnosticRun,
    LifecycleOpRow,
    RunResult,
    SchemaVersion,
    Ticket,
    TicketEvent,
)

ENV_VAR = "POS_SIM_DB"
GENESIS_HASH = "0" * 64

#: repair ticket states, in order, and where each may go next (diagnosing may skip awaiting_parts
#: when no part is needed)
TICKET_STATES = ("opened", "received", "diagnosing", "awaiting_parts", "repaired", "replaced",
                 "returned", "closed")
TICKET_NEXT: dict[str, tuple[str, ...]] = {
    "opened": ("received",),
    "received": ("diagnosing",),
    "diagnosing": ("awaiting_parts", "repaired", "replaced"),
    "awaiting_parts": ("repaired", "replaced"),
    "repaired": ("returned",),
    "replaced": ("returned",),
    "returned": ("closed",),
    "closed": (),
}
#: what a repair ticket needs (docs/lifecycle.md, "Repair tickets")
MATERIALS = ("owner_identity", "proof_of_purchase", "model_and_serial", "fault_description", "photos",
             "repair_payment", "invoice")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def default_url() -> str:
    """``POS_SIM_DB`` if set, else the SQLite file in the user's data directory."""
    env = os.environ.get(ENV_VAR)
    if env:
        return env
    return f"sqlite:///{Path(platformdirs.user_data_dir('pos-sim')) / 'registry.db'}"


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Actor:
    """Who does something to the registry, and from which bench (for the audit log)."""

    who: str
    origin: str

    @classmethod
    def current(cls) -> Actor:
        """The logged-in user on this host."""
        try:
            who = getpass.getuser()
        except (KeyError, OSError):   # no name for this uid (containers)
            who = f"uid {os.getuid()}"
        return cls(who, socket.gethostname())


# -- what the API returns: plain, immutable values (no live ORM objects) -------------------------

@dataclass(frozen=True)
class DeviceRecord:
    """A registered device."""

    serial: str
    manufacturer: str
    model: str
    firmware: str
    lifecycle: str
    merchant: str
    first_seen: float
    last_seen: float


@dataclass(frozen=True)
class ResultRecord:
    """One stored finding."""

    component: str
    verdict: str
    code: str | None
    category: str | None
    severity: str | None
    message: str
    communication: bool


@dataclass(frozen=True)
class RunRecord:
    """One stored diagnostic run."""

    id: int
    serial: str
    started_at: float
    finished_at: float
    plan: str
    lang: str
    firmware: str
    verdict: str
    exit_status: int
    port: str
    results: tuple[ResultRecord, ...]


@dataclass(frozen=True)
class BackupRecord:
    """One recorded transaction-log backup."""

    id: int
    serial: str
    path: str
    sha256: str
    records: int
    created_at: float


@dataclass(frozen=True)
class LifecycleOpRecord:
    """One recorded lifecycle request and the terminal's answer."""

    id: int
    serial: str
    at: float
    operation: str
    status: str
    state_before: str
    state_after: str
    counter: int
    merchant: str
    actor: str
    origin: str
    reason: str
    forced: bool
    backup_id: int | None
    message: str


@dataclass(frozen=True)
class TicketEventRecord:
    """One step of a ticket's timeline."""

    at: float
    from_state: str | None
    to_state: str
    note: str


@dataclass(frozen=True)
class TicketRecord:
    """A repair ticket with its timeline and materials checklist."""

    id: int
    serial: str
    state: str
    fault: str
    opened_at: float
    updated_at: float
    materials: Mapping[str, bool]
    timeline: tuple[TicketEventRecord, ...]

    @property
    def missing_materials(self) -> tuple[str, ...]:
        """Checklist items not yet provided."""
        return tuple(m for m in MATERIALS if not self.materials[m])


@dataclass(frozen=True)
class AuditEntry:
    """One audit record as stored."""

    id: int
    at: str
    actor: str
    action: str
    outcome: str
    origin: str
    target: str
    details: Mapping[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class AuditVerification:
    """What :meth:`Registry.verify_audit` found; truthy when the chain is intact."""

    ok: bool
    checked: int
    first_broken: int | None = None
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


def audit_hash(prev_hash: str, row_id: int, at: str, actor: str, action: str, outcome: str,
               origin: str, target: str, details: str) -> str:
    """SHA-256 over the previous hash and the canonical JSON of the row (``details`` as stored)."""
    body = canonical_json({"id": row_id, "at": at, "actor": actor, "action": action, "outcome": outcome,
                           "origin": origin, "target": target, "details": details})
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


class Registry:
    """The registry on one database; see the module docstring.  Use as a context manager."""

    def __init__(self, engine: Engine) -> None:
        """Wrap an engine whose schema is already migrated (use :meth:`open`)."""
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, url: str | None = None) -> Registry:
        """Open (creating and migrating as needed) the registry at ``url``; see the module docstring.

        ``url`` is a SQLAlchemy URL, or a plain path taken as a SQLite file.
        """
        url = url or default_url()
        if "://" not in url:
            url = f"sqlite:///{Path(url).expanduser()}"
        try:
            parsed = make_url(url)
        except SQLAlchemyError:
            raise RegistryUnavailable(f"not a database URL or path: {url!r}") from None
        where = parsed.render_as_string(hide_password=True)
        sqlite = parsed.get_backend_name() == "sqlite"
        if sqlite and parsed.database and parsed.database != ":memory:":
            refuse_foreign_sqlite(Path(parsed.database), where)
        try:
            if sqlite and parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url)
        except OSError as exc:
            raise RegistryUnavailable(f"cannot create the registry at {where}: {exc.strerror or exc}") from None
        except ImportError as exc:
            raise RegistryUnavailable(f"the database driver for {where} is not installed ({exc.name or exc}); "
                                      f"for PostgreSQL: pip install 'pos-sim[postgresql]'") from None
        except SQLAlchemyError as exc:
            raise RegistryUnavailable(f"cannot use {where}: {_first_line(exc)}") from None
        if sqlite:
            _configure_sqlite(engine)
        migrated = False
        try:
            with engine.begin() as conn:
                migrate(conn, where=where)
            migrated = True
        except DBAPIError as exc:
            raise RegistryUnavailable(f"cannot open the registry at {where}: {_first_line(exc)}") from None
        finally:
            if not migrated:   # a refused or broken database leaves no connection open
                engine.dispose()
        return cls(engine)

    def close(self) -> None:
        """Release every connection."""
        self.engine.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        try:
            with self._sessions.begin() as session:
                yield session
        except DBAPIError as exc:
            # the server went away, the disk is full, the file is locked too long: one line, and
            # the transaction was rolled back, so nothing half-written was confirmed
            raise RegistryUnavailable(f"the registry database failed, nothing was saved: {_first_line(exc)}") from exc

    # -- devices ---------------------------------------------------------------------------

    def record_device(self, info: DeviceInfo) -> DeviceRecord:
        """Insert or update a device from what it reported; returns the stored record."""
        with self._tx() as s:
            return _device_record(self._upsert_device(s, info))

    @staticmethod
    def _upsert_device(s: Session, info: DeviceInfo) -> Device:
        now = time.time()
        dev = s.scalars(select(Device).where(Device.serial == info.serial)).one_or_none()
        if dev is None:
            dev = Registry._add_device(s, Device(
                serial=info.serial, first_seen=now, last_seen=now, manufacturer=info.manufacturer, model=info.model,
                firmware=info.firmware_version, lifecycle=info.lifecycle, merchant=info.merchant_id))
        dev.manufacturer = info.manufacturer
        dev.model = info.model
        dev.firmware = info.firmware_version
        dev.lifecycle = info.lifecycle
        dev.merchant = info.merchant_id
        dev.last_seen = now
        s.flush()
        return dev

    @staticmethod
    def _device(s: Session, serial: str, *, create: bool = False) -> Device:
        dev = s.scalars(select(Device).where(Device.serial == serial)).one_or_none()
        if dev is None:
            if not create:
                raise UnknownDevice(f"no device with serial {serial!r} in the registry")
            now = time.time()
            dev = Registry._add_device(s, Device(serial=serial, first_seen=now, last_seen=now, manufacturer="",
                                                 model="", firmware="", lifecycle="unknown", merchant=""))
        return dev

    @staticmethod
    def _add_device(s: Session, dev: Device) -> Device:
        """Insert a new device, or return the row another bench inserted under the same serial
        since this transaction looked (on PostgreSQL writers queue only for the audit log's head,
        not for the whole transaction as with SQLite's BEGIN IMMEDIATE)."""
        try:
            with s.begin_nested():
                s.add(dev)
                s.flush()
        except IntegrityError:
            existing = s.scalars(select(Device).where(Device.serial == dev.serial)).one_or_none()
            if existing is None:
                raise
            return existing
        return dev

    def devices(self) -> list[DeviceRecord]:
        """Every registered device, by serial."""
        with self._tx() as s:
            return [_device_record(d) for d in s.scalars(select(Device).order_by(Device.serial))]

    def device(self, serial: str) -> DeviceRecord:
        """One device; :class:`UnknownDevice` if it is not registered."""
        with self._tx() as s:
            return _device_record(self._device(s, serial))

    # -- diagnostic runs -------------------------------------------------------------------

    def record_run(self, report: DiagnosticReport, by: Actor | None = None) -> RunRecord:
        """Store a diagnostic run and its findings (and update its device) with its audit record;
        committed on return."""
        if report.device is None:
            raise RegistryError("this run has no device identity (the terminal never answered INFO), "
                                "so it cannot be filed under a serial number")
        findings = [(f, False) for f in report.results] + [(f, True) for f in report.communication]
        for f, _ in findings:
            refuse_card_data(f"the {f.component} finding", f.message)
        with self._tx() as s:
            dev = self._upsert_device(s, report.device)
            run = DiagnosticRun(
                device_id=dev.id, started_at=report.started_at, finished_at=report.finished_at,
                plan=report.plan, lang=report.lang, firmware=report.device.firmware_version,
                verdict=report.verdict, exit_status=report.exit_status, port=report.port)
            run.results = [RunResult(component=f.component, verdict=f.verdict, code=f.code, category=f.category,
                                     severity=f.severity, message=f.message, communication=comm)
                           for f, comm in findings]
            s.add(run)
            s.flush()
            self._append_audit(s, by, "diag.run", report.verdict, dev.serial,
                               {"run": run.id, "plan": report.plan, "exit_status": report.exit_status})
            return _run_record(run, dev.serial)

    def runs(self, serial: str) -> list[RunRecord]:
        """Every run on a device, oldest first; :class:`UnknownDevice` if it is not registered."""
        with self._tx() as s:
            dev = self._device(s, serial)
            rows = s.scalars(select(DiagnosticRun).where(DiagnosticRun.device_id == dev.id)
                             .options(selectinload(DiagnosticRun.results))
                             .order_by(DiagnosticRun.started_at, DiagnosticRun.id))
            return [_run_record(r, serial) for r in rows]

    def run_ids(self) -> set[int]:
        """The ids of every stored run (cheap; for checks and tests)."""
        with self._tx() as s:
            return set(s.scalars(select(DiagnosticRun.id)))

    # -- backups ---------------------------------------------------------------------------

    def record_backup(self, serial: str, path: str, sha256: str, records: int,
                      created_at: float | None = None, by: Actor | None = None) -> BackupRecord:
        """Record a verified transaction-log backup of a registered device, with its audit record."""
        digest = sha256.lower()
        if not _SHA256.fullmatch(digest):
            raise RegistryError(f"not a SHA-256 hex digest: {sha256!r}")
        if records < 0:
            raise RegistryError(f"a backup cannot hold {records} records")
        with self._tx() as s:
            dev = self._device(s, serial)
            b = Backup(device_id=dev.id, path=str(path), sha256=digest, records=records,
                       created_at=time.time() if created_at is None else created_at)
            s.add(b)
            s.flush()
            self._append_audit(s, by, "device.backup", "ok", serial,
                               {"backup": b.id, "path": str(path), "sha256": digest, "records": records})
            return _backup_record(b, serial)

    def backups(self, serial: str) -> list[BackupRecord]:
        """A device's backups, oldest first."""
        with self._tx() as s:
            dev = self._device(s, serial)
            rows = s.scalars(select(Backup).where(Backup.device_id == dev.id).order_by(Backup.created_at, Backup.id))
            return [_backup_record(b, serial) for b in rows]

    # -- lifecycle operations --------------------------------------------------------------

    def record_lifecycle(self, serial: str, operation: str, status: str, state_before: str, state_after: str,
                         counter: int, *, reason: str = "", forced: bool = False, backup_id: int | None = None,
                         message: str = "", merchant: str | None = None, merchant_for: str | None = None,
                         by: Actor | None = None) -> LifecycleOpRecord:
        """Record a lifecycle request and the terminal's answer, update the device's state (and
        merchant, if given) and append the audit record, all in one transaction.  ``merchant_for``
        is the merchant an activate or bind asked for (kept with the record, whatever the answer)."""
        refuse_card_data("the reason", reason)
        refuse_card_data("the terminal's message", message)
        actor = by or Actor.current()
        target_merchant = merchant_for or ""
        with self._tx() as s:
            dev = self._device(s, serial, create=True)
            now = time.time()
            row = LifecycleOpRow(device_id=dev.id, at=now, operation=operation, status=status,
                                 state_before=state_before, state_after=state_after, counter=counter,
                                 merchant=target_merchant, actor=actor.who, origin=actor.origin, reason=reason,
                                 forced=forced, backup_id=backup_id, message=message)
            s.add(row)
            if state_after:
                dev.lifecycle = state_after
            if merchant is not None:
                dev.merchant = merchant
            dev.last_seen = now
            s.flush()
            details: dict[str, Any] = {"op": row.id, "counter": counter, "from": state_before, "to": state_after}
            details.update({k: v for k, v in (("merchant", target_merchant), ("reason", reason), ("forced", forced),
                                              ("backup", backup_id), ("message", message)) if v})
            self._append_audit(s, actor, f"device.{operation}", status, serial, details)
            return _lifecycle_record(row, serial)

    def last_counter(self, serial: str) -> int | None:
        """The highest lifecycle counter ``serial`` has answered with (None if it never has):
        a terminal whose counter is lower now had its memory reset, or is another one."""
        with self._tx() as s:
            return s.scalar(select(func.max(LifecycleOpRow.counter)).join(Device, Device.id == LifecycleOpRow.device_id)
                            .where(Device.serial == serial, LifecycleOpRow.status != "unconfirmed"))

    def lifecycle_ops(self, serial: str) -> list[LifecycleOpRecord]:
        """A device's lifecycle requests, oldest first; :class:`UnknownDevice` if not registered."""
        with self._tx() as s:
            dev = self._device(s, serial)
            rows = s.scalars(select(LifecycleOpRow).where(LifecycleOpRow.device_id == dev.id)
                             .order_by(LifecycleOpRow.id))
            return [_lifecycle_record(r, serial) for r in rows]

    # -- repair tickets --------------------------------------------------------------------

    def open_ticket(self, serial: str, fault: str, materials: Mapping[str, bool] | None = None,
                    note: str = "", by: Actor | None = None) -> TicketRecord:
        """Open a repair ticket (state ``opened``).  An unregistered serial is registered as a bare
        record, since a dead terminal cannot report itself; ``materials`` ticks checklist items."""
        if not fault.strip():
            raise RegistryError("a repair ticket needs a fault description")
        refuse_card_data("the fault description", fault)
        refuse_card_data("the ticket note", note)
        ticks = _materials(materials or {})
        with self._tx() as s:
            dev = self._device(s, serial, create=True)
            now = time.time()
            t = Ticket(device_id=dev.id, state="opened", fault=fault, opened_at=now, updated_at=now, **ticks)
            t.events = [TicketEvent(at=now, from_state=None, to_state="opened", note=note)]
            s.add(t)
            s.flush()
            self._append_audit(s, by, "ticket.open", "ok", f"ticket #{t.id} {serial}",
                               {"fault": fault, "have": sorted(k for k, v in ticks.items() if v), "note": note})
            return _ticket_record(t, serial)

    def advance_ticket(self, ticket_id: int, state: str, note: str = "",
                       materials: Mapping[str, bool] | None = None, by: Actor | None = None) -> TicketRecord:
        """Move a ticket to ``state`` (refused with :class:`IllegalTransition` unless allowed
        from where it is), adding a timestamped timeline entry; ``materials`` updates the checklist."""
        if state not in TICKET_STATES:
            raise IllegalTransition(f"unknown ticket state {state!r}; states: {', '.join(TICKET_STATES)}")
        refuse_card_data("the ticket note", note)
        ticks = _materials(materials or {})
        with self._tx() as s:
            t = s.get(Ticket, ticket_id, options=[selectinload(Ticket.events)])
            if t is None:
                raise UnknownTicket(f"no repair ticket #{ticket_id}")
            allowed = TICKET_NEXT[t.state]
            if state not in allowed:
                nxt = ", ".join(allowed) if allowed else "nothing: the ticket is closed"
                raise IllegalTransition(f"ticket #{ticket_id} is {t.state}; it cannot go to {state} "
                                        f"(next: {nxt})")
            now = time.time()
            t.events.append(TicketEvent(at=now, from_state=t.state, to_state=state, note=note))
            t.state = state
            t.updated_at = now
            for k, v in ticks.items():
                setattr(t, k, v)
            s.flush()
            serial = s.scalars(select(Device.serial).where(Device.id == t.device_id)).one()
            self._append_audit(s, by, "ticket.advance", "ok", f"ticket #{t.id} {serial}",
                               {"state": state, "note": note, **({"materials": ticks} if ticks else {})})
            return _ticket_record(t, serial)

    def tickets(self, serial: str | None = None) -> list[TicketRecord]:
        """Every ticket (or one device's), oldest first, with timelines."""
        with self._tx() as s:
            q = (select(Ticket, Device.serial).join(Device, Device.id == Ticket.device_id)
                 .options(selectinload(Ticket.events)).order_by(Ticket.id))
            if serial is not None:
                q = q.where(Device.serial == serial)
            return [_ticket_record(t, ser) for t, ser in s.execute(q).all()]

    def ticket(self, ticket_id: int) -> TicketRecord:
        """One ticket; :class:`UnknownTicket` if there is none."""
        for t in self.tickets():
            if t.id == ticket_id:
                return t
        raise UnknownTicket(f"no repair ticket #{ticket_id}")

    # -- audit -----------------------------------------------------------------------------

    def audit(self, actor: str, action: str, outcome: str, origin: str, target: str,
              details: Mapping[str, Any] | None = None) -> AuditEntry:
        """Append a hash-chained audit record (who, what, outcome, from where, on what); committed
        on return.  Details containing a card number are refused (:class:`CardDataRefused`)."""
        with self._tx() as s:
            return self._append_audit(s, Actor(actor, origin), action, outcome, target, details)

    @staticmethod
    def _append_audit(s: Session, by: Actor | None, action: str, outcome: str, target: str,
                      details: Mapping[str, Any] | None) -> AuditEntry:
        """Chain an audit record onto the log inside the caller's transaction."""
        by = by or Actor.current()
        actor, origin = by.who, by.origin
        details_json = canonical_json(dict(details or {}))
        refuse_card_data("audit details", details_json)
        if s.get_bind().dialect.name == "postgresql":
            # serialise appenders so two cannot chain onto the same head
            s.execute(text("LOCK TABLE audit_log IN EXCLUSIVE MODE"))
        head = s.execute(select(AuditRow.id, AuditRow.hash).order_by(AuditRow.id.desc()).limit(1)).first()
        row_id, prev = (head[0] + 1, head[1]) if head else (1, GENESIS_HASH)
        at = _now_iso()
        digest = audit_hash(prev, row_id, at, actor, action, outcome, origin, target, details_json)
        row = AuditRow(id=row_id, at=at, actor=actor, action=action, outcome=outcome, origin=origin,
                       target=target, details=details_json, prev_hash=prev, hash=digest)
        s.add(row)
        s.flush()
        return _audit_entry(row)

    def audit_log(self, limit: int | None = None) -> list[AuditEntry]:
        """Audit records, oldest first (the last ``limit`` if given)."""
        with self._tx() as s:
            q = select(AuditRow).order_by(AuditRow.id.desc())
            if limit is not None:
                q = q.limit(limit)
            return [_audit_entry(r) for r in reversed(s.scalars(q).all())]

    def verify_audit(self) -> AuditVerification:
        """Walk the chain from the first record; name the first one whose link or hash is wrong."""
        prev, expected_id, checked = GENESIS_HASH, 1, 0
        with self._tx() as s:
            for r in s.scalars(select(AuditRow).order_by(AuditRow.id).execution_options(yield_per=500)):
                if r.id != expected_id:
                    return AuditVerification(False, checked, r.id,
                                             f"audit record {r.id} follows {expected_id - 1}: records are missing")
                if r.prev_hash != prev:
                    return AuditVerification(False, checked, r.id,
                                             f"audit record {r.id} does not link to the record before it")
                if audit_hash(r.prev_hash, r.id, r.at, r.actor, r.action, r.outcome, r.origin, r.target,
                              r.details) != r.hash:
                    return AuditVerification(False, checked, r.id,
                                             f"audit record {r.id} was altered: its hash does not match")
                prev, expected_id, checked = r.hash, expected_id + 1, checked + 1
        return AuditVerification(True, checked)

    # -- database checks -------------------------------------------------------------------

    def pragma(self, name: str) -> Any:
        """The value of a SQLite PRAGMA (for checks: journal_mode, synchronous, foreign_keys)."""
        if not re.fullmatch(r"[a-z_]+", name):
            raise ValueError(f"not a pragma name: {name!r}")
        with self.engine.connect() as conn:
            return conn.exec_driver_sql(f"PRAGMA {name}").scalar()


#: tables SQLite keeps for itself in any database (AUTOINCREMENT counters, ANALYZE statistics)
_SQLITE_OWN_TABLES = re.compile(r"sqlite_.*")


def refuse_foreign_sqlite(path: Path, where: str) -> None:
    """Refuse, before anything is written, a SQLite file that holds tables the registry does not
    own (another program's database) or that is not a SQLite database at all.

    The file is read through a read-only connection, so its bytes stay as they were; a missing
    or empty file is a new registry.  A database whose schema version is newer than this pos-sim
    is left to the migrations, which say so (a newer pos-sim may have added tables).
    """
    try:
        if not path.is_file() or path.stat().st_size == 0:
            return
    except OSError:
        return   # create_engine reports what is wrong with the place
    ours = set(Base.metadata.tables)
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            version = None
            if SchemaVersion.__tablename__ in names:
                row = con.execute(f"SELECT version FROM {SchemaVersion.__tablename__} WHERE id = 1").fetchone()
                version = row[0] if row else None
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise ForeignDatabase(f"{where} is not a pos-sim registry ({exc}); nothing was written to it: "
                              f"point --db / POS_SIM_DB at a new file") from None
    if isinstance(version, int) and version > LATEST_SCHEMA:
        return
    foreign = sorted(n for n in names if n not in ours and not _SQLITE_OWN_TABLES.fullmatch(n))
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise ForeignDatabase(f"{where} holds tables that are not the registry's ({shown}): another program's "
                              f"database; nothing was written to it: point --db / POS_SIM_DB at a new file")


def _first_line(exc: BaseException) -> str:
    """The driver's own message, without SQLAlchemy's statement dump and background link."""
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]


def _configure_sqlite(engine: Engine) -> None:
    """WAL, synchronous=FULL, foreign keys, and BEGIN IMMEDIATE for every transaction."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None          # we issue BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        try:
            cur.execute("PRAGMA busy_timeout = 30000")
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = FULL")
            cur.execute("PRAGMA foreign_keys = ON")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _materials(ticks: Mapping[str, bool]) -> dict[str, bool]:
    unknown = sorted(set(ticks) - set(MATERIALS))
    if unknown:
        raise RegistryError(f"unknown checklist item(s) {', '.join(unknown)}; items: {', '.join(MATERIALS)}")
    return {k: bool(v) for k, v in ticks.items()}


def _device_record(d: Device) -> DeviceRecord:
    return DeviceRecord(d.serial, d.manufacturer, d.model, d.firmware, d.lifecycle, d.merchant, d.first_seen,
                        d.last_seen)


def _run_record(r: DiagnosticRun, serial: str) -> RunRecord:
    results = tuple(ResultRecord(x.component, x.verdict, x.code, x.category, x.severity, x.message,
                                 x.communication) for x in r.results)
    return RunRecord(r.id, serial, r.started_at, r.finished_at, r.plan, r.lang, r.firmware, r.verdict,
                     r.exit_status, r.port, results)


def _lifecycle_record(r: LifecycleOpRow, serial: str) -> LifecycleOpRecord:
    return LifecycleOpRecord(r.id, serial, r.at, r.operation, r.status, r.state_before, r.state_after, r.counter,
                             r.merchant, r.actor, r.origin, r.reason, r.forced, r.backup_id, r.message)


def _backup_record(b: Backup, serial: str) -> BackupRecord:
    return BackupRecord(b.id, serial, b.path, b.sha256, b.records, b.created_at)


def _ticket_record(t: Ticket, serial: str) -> TicketRecord:
    return TicketRecord(t.id, serial, t.state, t.fault, t.opened_at, t.updated_at,
                        {m: bool(getattr(t, m)) for m in MATERIALS},
                        tuple(TicketEventRecord(e.at, e.from_state, e.to_state, e.note) for e in t.events))


def _audit_entry(r: AuditRow) -> AuditEntry:
    return AuditEntry(r.id, r.at, r.actor, r.action, r.outcome, r.origin, r.target, json.loads(r.details),
                      r.prev_hash, r.hash)
