"""What an emulated terminal remembers across restarts, and the file that holds it.

The state file is JSON (docs/emulator.md, "The state file"), written atomically (drivers/files.py): a temporary
file in the same directory, flushed and fsync'ed, then ``os.replace`` over the old one and the
directory fsync'ed, so a kill at any moment leaves either the old or the new state, never half.
It holds the lifecycle (state, merchant, counter), the event log, the transaction log, the
battery level and usage counters.  It never holds card data: transaction records carry the
first six and last four digits of the card number, as on the wire, and nothing else of it.
The lifecycle key is not in it either: like a key burned in at manufacture, it comes from the
scenario every time.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivers.files import write_atomically
from pos_sim.emulator.errors import StateFileError
from pos_sim.emulator.scenario import Scenario
from protocols.pos.codes import (
    Component,
    EntryMode,
    FaultCode,
    LifecycleState,
    Severity,
    TxKind,
    TxResult,
)

STATE_FORMAT = "pos-sim-emulator-state"
STATE_VERSION = 1
#: oldest entries are dropped beyond this many, as a ring buffer in flash would
EVENT_LOG_CAPACITY = 4096


@dataclass(frozen=True)
class LogEntry:
    """One event-log entry (EVENTLOG_PAGE item)."""

    time: int
    component: Component
    code: FaultCode
    severity: Severity

    def wire(self) -> dict[str, Any]:
        """The fields as EVENTLOG_PAGE encodes them."""
        return {"time": self.time, "component": int(self.component), "code": int(self.code),
                "severity": int(self.severity)}


@dataclass(frozen=True)
class TxRecord:
    """One transaction-log record: no card data beyond BIN and last four digits."""

    txn_id: int
    time: int
    kind: TxKind
    result: TxResult
    entry: EntryMode
    amount: int
    currency: int
    pan_bin: int
    pan_last4: int
    auth_code: str

    def wire(self) -> dict[str, Any]:
        """The fields as TXLOG_PAGE encodes them."""
        return {"txn_id": self.txn_id, "time": self.time, "kind": int(self.kind), "result": int(self.result),
                "entry": int(self.entry), "amount": self.amount, "currency": self.currency,
                "pan_bin": self.pan_bin, "pan_last4": self.pan_last4,
                "auth_code": self.auth_code.encode("ascii")}


@dataclass
class DeviceState:
    """Everything the terminal keeps in non-volatile memory."""

    scenario: str
    serial: str
    lifecycle: LifecycleState
    merchant_id: str
    activated_at: int
    counter: int
    keys_loaded: bool
    battery_pct: float
    #: the firmware died during the last run: the next boot reports a watchdog reset
    crashed: bool = False
    last_reset: FaultCode = FaultCode.none
    usage: dict[str, int] = field(default_factory=dict)
    event_log: list[LogEntry] = field(default_factory=list)
    txlog: list[TxRecord] = field(default_factory=list)

    def log(self, entry: LogEntry) -> None:
        """Append to the event log, dropping the oldest entries beyond its capacity."""
        self.event_log.append(entry)
        if len(self.event_log) > EVENT_LOG_CAPACITY:
            del self.event_log[: len(self.event_log) - EVENT_LOG_CAPACITY]

    # -- JSON ---------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The state as the JSON object the file holds."""
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "scenario": self.scenario,
            "serial": self.serial,
            "lifecycle": {"state": self.lifecycle.name, "merchant_id": self.merchant_id,
                          "activated_at": self.activated_at, "counter": self.counter},
            "keys_loaded": self.keys_loaded,
            "battery_pct": round(self.battery_pct, 4),
            "crashed": self.crashed,
            "last_reset": self.last_reset.name,
            "usage": dict(sorted(self.usage.items())),
            "event_log": [{"time": e.time, "component": e.component.name, "code": e.code.name,
                           "severity": e.severity.name} for e in self.event_log],
            "txlog": [{"txn_id": r.txn_id, "time": r.time, "kind": r.kind.name, "result": r.result.name,
                       "entry": r.entry.name, "amount": r.amount, "currency": r.currency,
                       "pan_bin": r.pan_bin, "pan_last4": r.pan_last4, "auth_code": r.auth_code}
                      for r in self.txlog],
        }

    @classmethod
    def from_json(cls, data: Any) -> DeviceState:
        """Rebuild the state from the file's JSON (raises KeyError / ValueError / TypeError)."""
        if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
            raise ValueError(f"not a {STATE_FORMAT} file")
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"state file version {data.get('version')!r}, this emulator reads {STATE_VERSION}")
        lc = data["lifecycle"]
        return cls(
            scenario=str(data["scenario"]),
            serial=str(data["serial"]),
            lifecycle=LifecycleState[lc["state"]],
            merchant_id=str(lc["merchant_id"]),
            activated_at=int(lc["activated_at"]),
            counter=int(lc["counter"]),
            keys_loaded=bool(data["keys_loaded"]),
            battery_pct=float(data["battery_pct"]),
            crashed=bool(data.get("crashed", False)),
            last_reset=FaultCode[data.get("last_reset", "none")],
            usage={str(k): int(v) for k, v in data.get("usage", {}).items()},
            event_log=[LogEntry(int(e["time"]), Component[e["component"]], FaultCode[e["code"]],
                                Severity[e["severity"]]) for e in data["event_log"]],
            txlog=[TxRecord(int(r["txn_id"]), int(r["time"]), TxKind[r["kind"]], TxResult[r["result"]],
                            EntryMode[r["entry"]], int(r["amount"]), int(r["currency"]), int(r["pan_bin"]),
                            int(r["pan_last4"]), _auth_code(r["auth_code"])) for r in data["txlog"]],
        )


def _auth_code(value: Any) -> str:
    text = str(value)
    if len(text) != 6 or not text.isascii():
        raise ValueError(f"auth_code {text!r} is not 6 ASCII characters")
    return text


# -- first boot -------------------------------------------------------------------------------

#: plausible issuer BINs (first six digits) for generated records; never a whole card number
_BINS = (622848, 621700, 622202, 625912, 436742, 518710, 622588, 621483, 623058, 628288)
_AUTH_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"


def _weighted(rng: random.Random, table: tuple[tuple[Any, float], ...]) -> Any:
    values, weights = zip(*table, strict=True)
    return rng.choices(values, weights)[0]


def generate_txlog(scenario: Scenario) -> list[TxRecord]:
    """The scenario's transaction log, the same for the same scenario every time (seeded)."""
    cfg = scenario.txlog
    rng = random.Random(f"txlog:{scenario.seed}:{scenario.device.serial}")
    start = cfg.until - cfg.days * 86400
    times = sorted(rng.randint(start, cfg.until) for _ in range(cfg.records))
    records = []
    for i, t in enumerate(times):
        kind = _weighted(rng, ((TxKind.sale, 85), (TxKind.refund, 5), (TxKind.void, 5), (TxKind.pre_auth, 5)))
        result = _weighted(rng, ((TxResult.approved, 92), (TxResult.declined, 5), (TxResult.timeout, 2),
                                 (TxResult.unconfirmed, 1)))
        entry = _weighted(rng, ((EntryMode.chip, 40), (EntryMode.contactless, 30), (EntryMode.qr, 20),
                                (EntryMode.swipe, 8), (EntryMode.manual, 2)))
        amount = round(10 ** rng.uniform(2, 5.5))  # 1 yuan to ~3,000 yuan, in fen
        card = entry != EntryMode.qr
        approved = result == TxResult.approved
        records.append(TxRecord(
            txn_id=100001 + i, time=t, kind=kind, result=result, entry=entry, amount=amount, currency=156,
            pan_bin=rng.choice(_BINS) if card else 0,
            pan_last4=rng.randrange(10000) if card else 0,
            auth_code="".join(rng.choice(_AUTH_ALPHABET) for _ in range(6)) if approved else "000000",
        ))
    return records


def initial_state(scenario: Scenario) -> DeviceState:
    """The state of a terminal booted for the first time: as the scenario describes it."""
    lc = scenario.lifecycle
    security = scenario.component(Component.security)
    keys_loaded = not (security.has(FaultCode.keys_erased) or security.has(FaultCode.keys_missing))
    state = DeviceState(
        scenario=scenario.name, serial=scenario.device.serial, lifecycle=lc.state, merchant_id=lc.merchant_id,
        activated_at=lc.activated_at, counter=lc.counter, keys_loaded=keys_loaded,
        battery_pct=scenario.component(Component.power).get_float("battery_pct"),
        txlog=generate_txlog(scenario),
    )
    for e in sorted(scenario.event_log, key=lambda e: e.time):
        state.log(LogEntry(e.time, e.component, e.code, e.severity))
    return state


# -- the file ---------------------------------------------------------------------------------

class StateStore:
    """Loads and saves a :class:`DeviceState`; with ``path=None`` it only keeps it in memory."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = Path(path) if path is not None else None
        #: how many times the state was written (tests use it to check what was saved when)
        self.saves = 0

    def load(self, scenario: Scenario) -> DeviceState:
        """The saved state, or the scenario's first-boot state when there is no file yet."""
        if self.path is None or not self.path.exists():
            return initial_state(scenario)
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            state = DeviceState.from_json(data)
        except OSError as exc:
            raise StateFileError(f"{self.path}: cannot read state file: {exc.strerror or exc}") from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise StateFileError(f"{self.path}: not a usable emulator state file: {exc}") from exc
        if state.serial != scenario.device.serial:
            raise StateFileError(f"{self.path}: belongs to terminal {state.serial}, but scenario "
                                 f"{scenario.name!r} is terminal {scenario.device.serial}; use another "
                                 "--state file")
        return state

    def save(self, state: DeviceState) -> None:
        """Write the state atomically (temp file, fsync, rename, fsync the directory)."""
        self.saves += 1
        if self.path is None:
            return
        text = json.dumps(state.to_json(), indent=1, ensure_ascii=False) + "\n"
        write_atomically(self.path, text, mode=0o600)
