"""The registry of devices, diagnostic runs, backups, repair tickets and the audit log.

See :mod:`pos_sim.registry.registry` and docs/lifecycle.md ("Registry and audit").
"""

from __future__ import annotations

from pos_sim.registry.errors import (
    CardDataRefused,
    ForeignDatabase,
    IllegalTransition,
    RegistryError,
    RegistryUnavailable,
    SchemaTooNew,
    UnknownDevice,
    UnknownTicket,
)
from pos_sim.registry.migrations import LATEST as SCHEMA_VERSION
from pos_sim.registry.registry import (
    MATERIALS,
    TICKET_NEXT,
    TICKET_STATES,
    Actor,
    AuditEntry,
    AuditVerification,
    BackupRecord,
    DeviceRecord,
    LifecycleOpRecord,
    Registry,
    ResultRecord,
    RunRecord,
    TicketEventRecord,
    TicketRecord,
)

__all__ = [
    "MATERIALS", "SCHEMA_VERSION", "TICKET_NEXT", "TICKET_STATES", "Actor", "AuditEntry", "AuditVerification",
    "BackupRecord", "CardDataRefused", "DeviceRecord", "ForeignDatabase", "IllegalTransition", "LifecycleOpRecord",
    "Registry",
    "RegistryError", "RegistryUnavailable",
    "ResultRecord", "RunRecord", "SchemaTooNew", "TicketEventRecord", "TicketRecord", "UnknownDevice",
    "UnknownTicket",
]
