"""The registry's tables (SQLAlchemy 2 typed ORM).

Times are Unix seconds (floats) except the audit log's ``at``, an ISO-8601 UTC string, so the
text that is hashed is exactly the text that is stored.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    """Declarative base of every registry table."""


class SchemaVersion(Base):
    """One row: the schema version the migrations have brought this database to."""

    __tablename__ = "schema_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)


class Device(Base):
    """A terminal, by serial number, as last seen."""

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    serial: Mapped[str] = mapped_column(String(64), unique=True)
    manufacturer: Mapped[str] = mapped_column(String(128), default="")
    model: Mapped[str] = mapped_column(String(128), default="")
    firmware: Mapped[str] = mapped_column(String(64), default="")
    lifecycle: Mapped[str] = mapped_column(String(32), default="unknown")
    merchant: Mapped[str] = mapped_column(String(64), default="")
    first_seen: Mapped[float] = mapped_column(Float)
    last_seen: Mapped[float] = mapped_column(Float)


class DiagnosticRun(Base):
    """One diagnostic run on a device."""

    __tablename__ = "diagnostic_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    started_at: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[float] = mapped_column(Float)
    plan: Mapped[str] = mapped_column(String(32))
    lang: Mapped[str] = mapped_column(String(16), default="")
    firmware: Mapped[str] = mapped_column(String(64), default="")
    verdict: Mapped[str] = mapped_column(String(16))
    exit_status: Mapped[int] = mapped_column(Integer)
    port: Mapped[str] = mapped_column(Text)
    results: Mapped[list[RunResult]] = relationship(
        back_populates="run", order_by="RunResult.id", cascade="all, delete-orphan")


class RunResult(Base):
    """One finding of a run: a component's verdict, or a communication finding."""

    __tablename__ = "run_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("diagnostic_runs.id"), index=True)
    component: Mapped[str] = mapped_column(String(32))
    verdict: Mapped[str] = mapped_column(String(16))
    code: Mapped[str | None] = mapped_column(String(64))
    category: Mapped[str | None] = mapped_column(String(32))
    severity: Mapped[str | None] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text, default="")
    communication: Mapped[bool] = mapped_column(Boolean, default=False)
    run: Mapped[DiagnosticRun] = relationship(back_populates="results")


class Backup(Base):
    """A transaction-log backup taken from a device."""

    __tablename__ = "backups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    records: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[float] = mapped_column(Float)


class Ticket(Base):
    """A repair ticket, with the materials checklist of docs/lifecycle.md as booleans."""

    __tablename__ = "repair_tickets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    state: Mapped[str] = mapped_column(String(32))
    fault: Mapped[str] = mapped_column(Text)
    opened_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    owner_identity: Mapped[bool] = mapped_column(Boolean, default=False)
    proof_of_purchase: Mapped[bool] = mapped_column(Boolean, default=False)
    model_and_serial: Mapped[bool] = mapped_column(Boolean, default=False)
    fault_description: Mapped[bool] = mapped_column(Boolean, default=False)
    photos: Mapped[bool] = mapped_column(Boolean, default=False)
    repair_payment: Mapped[bool] = mapped_column(Boolean, default=False)
    invoice: Mapped[bool] = mapped_column(Boolean, default=False)
    events: Mapped[list[TicketEvent]] = relationship(
        back_populates="ticket", order_by="TicketEvent.id", cascade="all, delete-orphan")


class TicketEvent(Base):
    """One step of a ticket's timeline (the opening has ``from_state`` None)."""

    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("repair_tickets.id"), index=True)
    at: Mapped[float] = mapped_column(Float)
    from_state: Mapped[str | None] = mapped_column(String(32))
    to_state: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text, default="")
    ticket: Mapped[Ticket] = relationship(back_populates="events")


class AuditRow(Base):
    """One audit record; ``hash`` = SHA-256(prev_hash + canonical JSON of the other fields)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(32))
    origin: Mapped[str] = mapped_column(Text)
    target: Mapped[str] = mapped_column(Text)
    details: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class LifecycleOpRow(Base):
    """One lifecycle request sent to a terminal and its answer (schema version 2).

    ``status`` is the terminal's answer (ok, refused_state, bad_auth, replay, ...), or
    ``unconfirmed`` when the request went out and no answer came back (the terminal may or may
    not have carried it out: read its state before trying again).
    """

    __tablename__ = "lifecycle_ops"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    at: Mapped[float] = mapped_column(Float)
    operation: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    state_before: Mapped[str] = mapped_column(String(32))
    state_after: Mapped[str] = mapped_column(String(32))
    counter: Mapped[int] = mapped_column(BigInteger)
    #: the merchant an activate or bind was for ("" for the other operations)
    merchant: Mapped[str] = mapped_column(String(64), default="")
    actor: Mapped[str] = mapped_column(Text)
    origin: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text, default="")
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    backup_id: Mapped[int | None] = mapped_column(ForeignKey("backups.id"))
    message: Mapped[str] = mapped_column(Text, default="")
