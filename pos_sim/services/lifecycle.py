"""Device lifecycle on a connected terminal, with the registry and the audit log.

:class:`DeviceManager` is what ``pos-sim device ...`` and the TUI's device screen call.  For each
operation it reads the terminal's identity, finds that serial's key in the key file, enforces
the host's rules (unbind needs a verified transaction-log backup unless forced with a reason),
challenges, signs, sends, and records the terminal's answer, whatever it is, in the registry
together with its audit record (one transaction).  A request that went out and got no answer
is recorded as ``unconfirmed``: the terminal may have carried it out, so its state must be read
before anything is tried again.

Exit statuses (:attr:`LifecycleFailed.exit_code`, from :mod:`pos_sim.exitcodes`): 1 the host
refused before sending (key file, missing backup, arguments, a counter at its maximum), 4
communication failure, an unconfirmed request, or an authentication refusal (bad_auth, replay,
no_challenge), 8 the terminal refused the operation in its state or its arguments, 32 the
terminal is locked, 128 the terminal answered but the registry could not record it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from drivers.errors import DeadlinePassed, DriverError, RequestRefused, TransferError
from drivers.terminal import DeviceInfo, LifecycleRequest, LifecycleResult, Terminal, verify_txlog_backup
from pos_sim import exitcodes
from pos_sim.registry import Actor, BackupRecord, LifecycleOpRecord, Registry, RegistryError
from pos_sim.registry.guard import contains_card_number, mask_card_numbers
from pos_sim.services.keys import KeyFile, fingerprint

#: the command-line names of the operations and the protocol's
OPERATIONS = {"activate": "activate", "bind": "bind", "unbind": "unbind", "revoke": "revoke",
              "reset": "factory_reset"}
#: statuses meaning the request was not authenticated
AUTH_REFUSALS = ("bad_auth", "replay", "no_challenge")
EXIT_HOST_REFUSED = exitcodes.REFUSED
EXIT_COMMUNICATION = exitcodes.COMMUNICATION
EXIT_TERMINAL_REFUSED = exitcodes.FAILED
EXIT_LOCKED = exitcodes.LOCKED
EXIT_REGISTRY = exitcodes.REGISTRY
#: the largest counter the wire carries (u32, docs/protocol.md LC_REQUEST)
COUNTER_MAX = 0xFFFFFFFF
#: a challenge lives 60 s on the terminal (docs/protocol.md section 11): a request prepared
#: longer ago than this (a person was reading the confirmation) is prepared again before sending
CHALLENGE_FRESH = 45.0


class LifecycleFailed(Exception):
    """A lifecycle operation was not carried out; the message says why and what to do."""

    def __init__(self, message: str, exit_code: int, record: LifecycleOpRecord | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.record = record


class BackupRequired(LifecycleFailed):
    """Unbind without a verified backup of this terminal's transaction log."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_HOST_REFUSED)


class BackupNotRecorded(RegistryError):
    """The backup file was written and verified, but the registry could not record it.

    ``str()`` is the registry's reason; the attributes say what is on disk, so the caller can
    tell the technician exactly what was and was not written.
    """

    exit_code = exitcodes.REGISTRY

    def __init__(self, reason: str, path: Path, sha256: str, records: int) -> None:
        super().__init__(reason)
        self.path, self.sha256, self.records = path, sha256, records


@dataclass(frozen=True)
class LifecycleOutcome:
    """A carried-out lifecycle operation."""

    device: DeviceInfo
    result: LifecycleResult
    record: LifecycleOpRecord
    backup: BackupRecord | None


@dataclass(frozen=True)
class BackupOutcome:
    """A verified backup, on disk and recorded."""

    device: DeviceInfo
    path: Path
    record: BackupRecord
    pages: int


class DeviceManager:
    """Lifecycle operations and backups on one connected terminal (see the module docstring)."""

    def __init__(self, terminal: Terminal, registry: Registry, keys: KeyFile | None = None,
                 by: Actor | None = None) -> None:
        self.terminal = terminal
        self.registry = registry
        self.keys = keys
        self.by = by or Actor.current()

    # -- backup ----------------------------------------------------------------------------

    def backup(self, out_dir: str | Path, on_progress: Callable[[int, int], None] | None = None) -> BackupOutcome:
        """Export the transaction log into ``out_dir`` (paged, checked, atomic, masked), verify
        the file, and record it with its digest."""
        info = self.terminal.info()
        self.registry.record_device(info)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        try:
            path = Path(out_dir).expanduser() / f"{info.serial}-txlog-{stamp}.json"
            n = 1
            while path.exists():   # two backups in one second: never replace a recorded backup's file
                n += 1
                path = path.with_name(f"{info.serial}-txlog-{stamp}-{n}.json")
        except (OSError, RuntimeError) as exc:   # RuntimeError: ~user that does not exist
            raise TransferError(f"cannot use {out_dir} for the backup: {getattr(exc, 'strerror', None) or exc}"
                                ) from None
        export = self.terminal.export_transaction_log(path, on_progress=on_progress)
        checked = verify_txlog_backup(export.path)           # read back what landed on disk
        if checked.sha256 != export.sha256 or checked.serial != info.serial:
            raise TransferError(f"backup {path} does not read back as written")
        try:
            record = self.registry.record_backup(info.serial, str(path.resolve()), export.sha256, export.records,
                                                 by=self.by)
        except RegistryError as exc:
            raise BackupNotRecorded(str(exc), path, export.sha256, export.records) from exc
        return BackupOutcome(info, path, record, export.pages)

    def verified_backup(self, serial: str, current: tuple[int, str] | None = None
                        ) -> tuple[BackupRecord | None, list[str]]:
        """The newest recorded backup of ``serial`` whose file is there and hashes to the recorded
        digest (and, given the terminal's ``current`` (records, sha256), is of the log as it is
        now), and why each newer one did not count."""
        problems: list[str] = []
        for b in reversed(self.registry.backups(serial)):
            if current is not None and b.sha256 != current[1]:
                problems.append(f"backup #{b.id} holds {b.records} transactions, the terminal's log has changed "
                                f"since ({current[0]} now): back up again")
                continue
            try:
                checked = verify_txlog_backup(b.path)
            except TransferError as exc:
                problems.append(str(exc))
                continue
            if checked.sha256 != b.sha256 or checked.serial != serial:
                problems.append(f"backup {b.path} is not the one recorded (digest or serial differs)")
                continue
            return b, problems
        return None, problems

    # -- lifecycle -------------------------------------------------------------------------

    def prepare(self, operation: str, *, activation_code: str = "", merchant_id: str = "", reason: str = "",
                force: bool = False) -> PreparedOperation:
        """Everything before the request goes out: identity, key, the backup rule, the challenge
        and the signature.  Nothing on the terminal has changed when this returns."""
        op = OPERATIONS.get(operation, operation)
        if op not in OPERATIONS.values():
            raise LifecycleFailed(f"unknown operation {operation!r}; operations: {', '.join(OPERATIONS)}",
                                  EXIT_HOST_REFUSED)
        if self.keys is None:
            raise LifecycleFailed("no key file loaded", EXIT_HOST_REFUSED)
        _check_arguments(activation_code=activation_code, merchant_id=merchant_id, reason=reason)
        self._check_fits(op, activation_code=activation_code, merchant_id=merchant_id, reason=reason)
        info = self.terminal.info()
        self.registry.record_device(info)
        key = self.keys.key_for(info.serial)
        backup: BackupRecord | None = None
        forced = False
        if op == "unbind":
            backup, problems = self.verified_backup(info.serial, self.terminal.transaction_log_info())
            if backup is None:
                if not (force and reason.strip()):
                    why = f" ({'; '.join(problems)})" if problems else ""
                    self.registry.audit(self.by.who, "device.unbind", "host_refused", self.by.origin, info.serial,
                                        {"why": "no verified backup", "problems": problems})
                    raise BackupRequired(
                        f"no verified transaction-log backup of {info.serial} in the registry{why}: run "
                        f"`pos-sim device backup PORT -o DIR` first, or pass --force --reason TEXT (audited)")
                forced = True
        challenge = self.terminal.challenge(op)
        if challenge.serial != info.serial:
            raise LifecycleFailed(f"the terminal answered INFO as {info.serial} and the challenge as "
                                  f"{challenge.serial}: refusing to sign", EXIT_COMMUNICATION)
        if challenge.counter >= COUNTER_MAX:
            # the counter never goes back (not even on factory reset) and must go up: no request
            # this terminal would accept can be signed any more
            self.registry.audit(self.by.who, f"device.{op}", "host_refused", self.by.origin, info.serial,
                                {"why": "lifecycle counter at its maximum", "counter": challenge.counter})
            raise LifecycleFailed(f"{info.serial}'s lifecycle counter is at its maximum ({challenge.counter}), so it "
                                  f"can accept no more lifecycle operations; nothing was sent: send it to the "
                                  f"manufacturer's repair centre to have its key and counter replaced",
                                  EXIT_HOST_REFUSED)
        request = LifecycleRequest.sign(key, challenge, activation_code=activation_code, merchant_id=merchant_id,
                                        reason=reason)
        warnings: list[str] = []
        last = self.registry.last_counter(info.serial)
        if last is not None and challenge.counter < last:
            warnings.append(f"{info.serial}'s lifecycle counter is {challenge.counter}, lower than the {last} it "
                            f"answered with before: its memory was reset or replaced, or this is another terminal "
                            f"with the same serial number; check it before trusting it")
            self.registry.audit(self.by.who, "device.counter_regressed", "warning", self.by.origin, info.serial,
                                {"counter": challenge.counter, "last_seen": last, "operation": op})
        return PreparedOperation(info, request, fingerprint(key), backup, forced, tuple(warnings))

    def _check_fits(self, op: str, **args: str) -> None:
        """Refuse, before anything is sent, a request larger than the payload this terminal
        negotiated at HELLO; the message says how much to cut, never the text."""
        size = self.terminal.lifecycle_request_size(op, **args)
        limit = self.terminal.max_payload
        if size > limit:
            given = [name.replace("_", " ") for name, value in args.items() if value]
            which = " or ".join(given) or "arguments"
            raise LifecycleFailed(f"the {op} request would be {size} bytes and this terminal takes at most {limit} "
                                  f"(negotiated at HELLO): shorten the {which} by {size - limit} bytes; nothing was "
                                  f"sent", EXIT_HOST_REFUSED)

    def submit(self, prepared: PreparedOperation) -> LifecycleOutcome:
        """Send a prepared request, record the answer (or its absence) with its audit record, and
        return the outcome; :class:`LifecycleFailed` unless the terminal carried it out.

        Once the request may have gone out, something is always recorded: the answer, or
        ``unconfirmed`` when the link failed or the wait was interrupted (Ctrl-C)."""
        info, req = prepared.device, prepared.request
        backup_id = prepared.backup.id if prepared.backup else None
        asked = req.merchant_id if req.operation in ("activate", "bind") else ""
        # a sale between the backup check and now would be lost by the unbind
        if prepared.backup is not None and self.terminal.transaction_log_info()[1] != prepared.backup.sha256:
            self.registry.audit(self.by.who, "device.unbind", "host_refused", self.by.origin, info.serial,
                                {"why": "transaction log changed after the backup check"})
            raise BackupRequired(f"{info.serial}'s transaction log changed since the backup was checked: "
                                 f"back up again (`pos-sim device backup PORT -o DIR`); nothing was sent")

        def unconfirmed(why: str) -> LifecycleOpRecord:
            return self.registry.record_lifecycle(
                info.serial, req.operation, "unconfirmed", info.lifecycle, "", req.counter, reason=req.reason,
                forced=prepared.forced, backup_id=backup_id, message=mask_card_numbers(why), merchant_for=asked,
                by=self.by)

        settled = False
        try:
            result = self.terminal.send_lifecycle(req)
            settled = True
        except DeadlinePassed as exc:
            settled = True   # raised before the request was written: nothing went out
            raise LifecycleFailed(f"{req.operation} was not sent to {info.serial}: {exc}; nothing changed, "
                                  f"try again (a longer --timeout?)", EXIT_COMMUNICATION) from exc
        except DriverError as exc:
            settled = True
            refusal = exc if isinstance(exc, RequestRefused) else exc.__cause__
            if isinstance(refusal, RequestRefused) and refusal.definite:
                # a NAK: the terminal refused the frame and carried nothing out (section 5)
                why = f"NAK {refusal.reason}: refused before it was carried out"
                record = self.registry.record_lifecycle(
                    info.serial, req.operation, f"nak_{refusal.reason}", info.lifecycle, "", req.counter - 1,
                    reason=req.reason, forced=prepared.forced, backup_id=backup_id, message=why, merchant_for=asked,
                    by=self.by)
                raise LifecycleFailed(
                    f"{info.serial} refused {req.operation} with NAK {refusal.reason}: it was not carried out and "
                    f"nothing changed ({_nak_advice(str(refusal.reason))})", EXIT_TERMINAL_REFUSED, record) from exc
            record = unconfirmed(str(exc))
            what = (f"an earlier send got no answer and a later one was refused ({exc})"
                    if isinstance(refusal, RequestRefused) else f"no answer came back ({exc})")
            raise LifecycleFailed(
                f"{req.operation} went out to {info.serial} but {what}: the terminal may have carried it out; "
                f"run `pos-sim info PORT` to see its state before trying again",
                EXIT_COMMUNICATION, record) from exc
        finally:
            if not settled:   # interrupted while waiting for the answer: it may have been carried out
                unconfirmed("interrupted while waiting for the answer")
        merchant: str | None = None
        if result.ok:
            merchant = asked
        try:
            record = self.registry.record_lifecycle(
                info.serial, req.operation, result.status, info.lifecycle, result.state, result.counter,
                reason=req.reason, forced=prepared.forced, backup_id=backup_id,
                message=mask_card_numbers(result.message), merchant=merchant, merchant_for=asked, by=self.by)
        except RegistryError as exc:
            raise LifecycleFailed(
                f"{info.serial} answered {result.status} to {req.operation} (now {result.state}, counter "
                f"{result.counter}) but the registry could not record it: {exc}; write this down, and "
                f"record it once the registry works again", EXIT_REGISTRY) from exc
        if result.ok:
            return LifecycleOutcome(info, result, record, prepared.backup)
        raise LifecycleFailed(_refusal_text(prepared, result, self.keys), _refusal_exit(result), record)

    def run(self, operation: str, *, activation_code: str = "", merchant_id: str = "", reason: str = "",
            force: bool = False) -> LifecycleOutcome:
        """:meth:`prepare` then :meth:`submit`."""
        return self.submit(self.prepare(operation, activation_code=activation_code, merchant_id=merchant_id,
                                        reason=reason, force=force))


@dataclass(frozen=True)
class PreparedOperation:
    """A signed request not yet sent, with what the host checked to allow it."""

    @property
    def stale(self) -> bool:
        """True when the terminal's challenge may have run out (see :data:`CHALLENGE_FRESH`)."""
        return time.monotonic() - self.prepared_at > CHALLENGE_FRESH

    device: DeviceInfo
    request: LifecycleRequest
    key_fingerprint: str
    backup: BackupRecord | None
    forced: bool
    #: what the host noticed and the technician should see before confirming
    warnings: tuple[str, ...] = ()
    #: time.monotonic() when the challenge was answered
    prepared_at: float = field(default_factory=time.monotonic)


#: what the wire can carry in a text argument (str8)
_MAX_ARG_BYTES = 255


def _check_arguments(**args: str) -> None:
    """Refuse, before anything is sent, arguments the wire cannot carry or the registry must not
    keep; the message names the argument, never its value."""
    for name, value in args.items():
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:
            raise LifecycleFailed(f"the {name} is not valid text (UTF-8)", EXIT_HOST_REFUSED) from None
        if size > _MAX_ARG_BYTES:
            raise LifecycleFailed(f"the {name} is {size} bytes; the terminal takes at most {_MAX_ARG_BYTES}",
                                  EXIT_HOST_REFUSED)
        if contains_card_number(value):
            raise LifecycleFailed(f"the {name} looks like it holds a card number: leave it out or mask it to "
                                  f"BIN and last four; nothing was sent", EXIT_HOST_REFUSED)


def _nak_advice(reason: str) -> str:
    if reason == "too_large":
        return "the request is larger than the terminal takes: shorten the reason"
    if reason == "not_permitted":
        return "the terminal has no session with this host, it may have restarted: try again"
    if reason == "busy":
        return "the terminal is busy: try again when its self-tests are over"
    return "try again; if it keeps refusing, capture the session (--capture) for the firmware team"


def _refusal_exit(result: LifecycleResult) -> int:
    if result.state == "locked":
        return EXIT_LOCKED
    if result.status in AUTH_REFUSALS:
        return EXIT_COMMUNICATION
    return EXIT_TERMINAL_REFUSED


def _refusal_text(prepared: PreparedOperation, result: LifecycleResult, keys: KeyFile | None) -> str:
    serial, op = prepared.device.serial, result.operation
    where = f" in {keys.path}" if keys else ""
    if result.status == "bad_auth":
        return (f"{serial} refused the signature of {op}: the key for {serial}{where} (fingerprint "
                f"{prepared.key_fingerprint}) is not this terminal's key; get the right key from the manufacturer")
    if result.status == "no_challenge":
        return (f"{serial} had no challenge outstanding for {op} ({result.message}): it expired, the terminal "
                f"restarted, or another host asked for one since; try again")
    if result.status == "replay":
        return (f"{serial} refused {op} as a replay ({result.message}); another host may be talking to it: "
                f"try again")
    if result.state == "locked":
        return f"{serial} is locked ({result.message}); send it to an authorised repair centre"
    return f"{serial} refused {op} ({result.status}): {result.message}"


__all__ = ["OPERATIONS", "BackupNotRecorded", "BackupOutcome", "BackupRequired", "DeviceManager", "LifecycleFailed",
           "LifecycleOutcome", "PreparedOperation"]
