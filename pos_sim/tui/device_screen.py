"""The device screen: one terminal's identity, diagnostic history, repair tickets, backups and
lifecycle records, and its lifecycle actions behind a confirmation (docs/tui.md, "The device screen").

Everything that blocks (INFO, the registry, the key file, the lifecycle exchange, the backup) runs
in thread workers that answer with ``post_message``.  A lifecycle operation goes as
``pos-sim device`` does: :meth:`DeviceManager.prepare` first (identity, key, the backup rule, the
challenge and the signature; nothing on the terminal changes), then the confirmation, then
:meth:`DeviceManager.submit`.  Cancelling sends nothing.  The screen uses the app's one
:class:`~drivers.terminal.Terminal`; it is modal, so the main screen's keys do not reach through,
and it cannot be left while an operation is under way.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

from sqlalchemy.exc import SQLAlchemyError
from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, ProgressBar, Static, TabbedContent, TabPane

from drivers.errors import DriverError
from drivers.terminal import DeviceInfo, Terminal
from pos_sim.registry import (
    BackupRecord,
    DeviceRecord,
    LifecycleOpRecord,
    Registry,
    RegistryError,
    RunRecord,
    TicketRecord,
    UnknownDevice,
)
from pos_sim.services.keys import KeyFile, KeyFileError
from pos_sim.services.lifecycle import (
    BackupOutcome,
    BackupRequired,
    DeviceManager,
    LifecycleFailed,
    LifecycleOutcome,
    PreparedOperation,
)
from pos_sim.tui.lifecycle_dialogs import (
    DESTRUCTIVE,
    BackupForm,
    LifecycleConfirmScreen,
    OperationForm,
    OperationInput,
    confirmation_lines,
    op_label,
)
from pos_sim.tui.text import ui_text

#: the sections, in tab order: (pane id, text key)
SECTIONS = (("runs", "tab_runs"), ("tickets", "tab_tickets"), ("backups", "tab_backups"),
            ("lifecycle", "tab_lifecycle"))
#: verdicts that make a component "failing" in the history
FAILING = ("fail", "error")


class DeviceHost(Protocol):
    """What the device screen needs from the app: the shared terminal and the registry."""

    @property
    def lang(self) -> str:
        """``zh-CN`` or ``en``."""

    @property
    def running(self) -> bool:
        """Whether a diagnostic run is using the terminal."""

    def current_terminal(self) -> Terminal | None:
        """The connected terminal, or None while the link is down."""

    def open_registry(self) -> Registry:
        """The registry (opened on first use; called on worker threads)."""

    def device_changed(self, info: DeviceInfo) -> None:
        """The terminal's identity or state as just read (the main header follows it)."""


@dataclass(frozen=True)
class DeviceView:
    """Everything the screen shows about one terminal, read in one go."""

    serial: str
    info: DeviceInfo | None = None
    record: DeviceRecord | None = None
    runs: tuple[RunRecord, ...] = ()
    tickets: tuple[TicketRecord, ...] = ()
    backups: tuple[BackupRecord, ...] = ()
    ops: tuple[LifecycleOpRecord, ...] = ()
    problems: tuple[str, ...] = ()


def load_device_view(terminal: Terminal | None, open_registry: Callable[[], Registry], serial: str) -> DeviceView:
    """Read the terminal's INFO (when connected) and the registry's records of it (blocks)."""
    problems: list[str] = []
    info: DeviceInfo | None = None
    if terminal is not None:
        try:
            info = terminal.info()
        except DriverError as exc:
            problems.append(str(exc))
    if info is not None:
        serial = info.serial
    try:
        reg = open_registry()
        tickets = tuple(reg.tickets(serial))
        try:
            record = reg.device(serial)
        except UnknownDevice:   # never diagnosed nor backed up here: nothing else to read
            return DeviceView(serial, info, None, tickets=tickets, problems=tuple(problems))
        return DeviceView(serial, info, record, tuple(reg.runs(serial)), tickets, tuple(reg.backups(serial)),
                          tuple(reg.lifecycle_ops(serial)), tuple(problems))
    except (RegistryError, SQLAlchemyError, OSError) as exc:
        problems.append(f"registry: {exc}")
        return DeviceView(serial, info, problems=tuple(problems))


def when(t: float) -> str:
    """A registry time stamp as local date and time."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def run_rows(runs: tuple[RunRecord, ...]) -> list[tuple[str, ...]]:
    """History rows, newest first: id, date, plan, verdict, failing components."""
    return [(str(r.id), when(r.started_at), r.plan, r.verdict,
             ", ".join(x.component for x in r.results if x.verdict in FAILING and not x.communication) or "–")
            for r in reversed(runs)]


def ticket_rows(tickets: tuple[TicketRecord, ...], lang: str) -> list[tuple[str, ...]]:
    """Ticket rows, newest first: id, state, fault, last timeline step, missing materials."""
    rows: list[tuple[str, ...]] = []
    for t in reversed(tickets):
        last = t.timeline[-1] if t.timeline else None
        step = f"{when(last.at)} {last.to_state}{' · ' + last.note if last.note else ''}" if last else "–"
        missing = ", ".join(t.missing_materials) or ui_text("none", lang)
        rows.append((str(t.id), t.state, t.fault, step, missing))
    return rows


def backup_rows(backups: tuple[BackupRecord, ...]) -> list[tuple[str, ...]]:
    """Backup rows, newest first: id, date, records, digest prefix, file name."""
    return [(str(b.id), when(b.created_at), str(b.records), b.sha256[:12] + "…", Path(b.path).name)
            for b in reversed(backups)]


def lifecycle_rows(ops: tuple[LifecycleOpRecord, ...], lang: str) -> list[tuple[str, ...]]:
    """Lifecycle rows, newest first: id, date, operation, status, state change, counter, forced, by, reason."""
    return [(str(o.id), when(o.at), o.operation, o.status, f"{o.state_before} → {o.state_after or '?'}",
             str(o.counter), ui_text("forced_yes", lang) if o.forced else "", o.actor, o.reason)
            for o in reversed(ops)]


COLUMNS: dict[str, tuple[str, ...]] = {
    "runs": ("#", "col_date", "col_plan", "col_verdict", "col_failing"),
    "tickets": ("#", "col_state", "col_fault", "col_last_step", "col_missing"),
    "backups": ("#", "col_date", "col_records", "col_digest", "col_file"),
    "lifecycle": ("#", "col_date", "col_op", "col_status", "col_states", "col_counter", "col_forced", "col_by",
                  "col_reason"),
}


# -- messages from the workers ------------------------------------------------------------------


class DeviceLoaded(Message):
    """The terminal and the registry were read."""

    def __init__(self, view: DeviceView) -> None:
        super().__init__()
        self.view = view


class OperationPrepared(Message):
    """A lifecycle request is checked and signed; it waits for the confirmation."""

    def __init__(self, given: OperationInput, manager: DeviceManager, prepared: PreparedOperation) -> None:
        super().__init__()
        self.given = given
        self.manager = manager
        self.prepared = prepared


class OperationFinished(Message):
    """An operation (or a backup) ended: carried out, refused, or failed."""

    def __init__(self, operation: str, ok: bool, text: str) -> None:
        super().__init__()
        self.operation = operation
        self.ok = ok
        self.text = text


class BackupProgress(Message):
    """Pages of the transaction log read so far (mergeable)."""

    def __init__(self, done: int, total: int) -> None:
        super().__init__()
        self.done = done
        self.total = total

    def can_replace(self, message: Message) -> bool:
        """Only the latest count matters."""
        return isinstance(message, BackupProgress)


# -- the screen ---------------------------------------------------------------------------------


class DeviceScreen(ModalScreen[None]):
    """One terminal's records and lifecycle actions; see the module docstring."""

    DEFAULT_CSS = """
    DeviceScreen { background: $background; }
    DeviceScreen #dev-header { height: auto; background: $primary-background; padding: 0 1; }
    DeviceScreen #dev-banner { height: auto; background: $error; color: $text; padding: 0 1; text-style: bold;
                               display: none; }
    DeviceScreen #dev-banner.-shown { display: block; }
    DeviceScreen #dev-result { height: auto; padding: 0 1; display: none; }
    DeviceScreen #dev-result.-shown { display: block; }
    DeviceScreen #dev-result.-ok { background: $success-darken-2; color: $text; }
    DeviceScreen #dev-result.-error { background: $error-darken-1; color: $text; text-style: bold; }
    DeviceScreen #dev-result.-busy { background: $warning-darken-2; color: $text; }
    DeviceScreen #dev-progress { display: none; height: 1; padding: 0 1; }
    DeviceScreen #dev-progress.-shown { display: block; }
    DeviceScreen TabbedContent { height: 1fr; }
    DeviceScreen TabPane { padding: 0; }
    DeviceScreen DataTable { height: 1fr; }
    DeviceScreen #dev-buttons { height: 1; }
    DeviceScreen #dev-buttons Button { margin: 0 1 0 0; min-width: 4; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("r", "refresh", "Refresh"),
        Binding("b", "backup", "Backup"),
        Binding("a", "lifecycle('activate')", "Activate"),
        Binding("m", "lifecycle('bind')", "Bind"),
        Binding("u", "lifecycle('unbind')", "Unbind"),
        Binding("v", "lifecycle('revoke')", "Revoke"),
        Binding("x", "lifecycle('reset')", "Reset"),
        *(Binding(str(n), f"section({n})", f"Section {n}", show=False) for n in range(1, len(SECTIONS) + 1)),
        Binding("q", "app.quit", "Quit"),
    ]
    #: (button id, key, action) in the button row
    BUTTONS = (("backup", "b", "backup"), ("activate", "a", "lifecycle('activate')"),
               ("bind", "m", "lifecycle('bind')"), ("unbind", "u", "lifecycle('unbind')"),
               ("revoke", "v", "lifecycle('revoke')"), ("reset", "x", "lifecycle('reset')"),
               ("refresh", "r", "refresh"), ("back", "Esc", "back"))

    def __init__(self, host: DeviceHost, serial: str, *, keys: str | Path | None = None,
                 backup_dir: str | Path = "~/pos-sim-backups") -> None:
        super().__init__()
        self.host = host
        self.serial = serial
        self.keys_path = keys
        self.backup_dir = str(backup_dir)
        self.lang = host.lang
        self.view = DeviceView(serial)
        self.loaded = False
        #: the operation under way ("" when none)
        self.busy = ""
        self.result_text = ""
        self.result_ok = True

    # -- layout -----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        """Header, banner, the result of the last action, progress, the four sections, buttons."""
        yield Static(ui_text("loading", self.lang), id="dev-header", markup=False)
        yield Static(ui_text("device_link_down", self.lang), id="dev-banner", markup=False)
        yield Static("", id="dev-result", markup=False)
        yield ProgressBar(id="dev-progress", show_eta=False)
        with TabbedContent(id="dev-sections"):
            for pane, key in SECTIONS:
                with TabPane(ui_text(key, self.lang, n=0), id=f"sec-{pane}"):
                    yield DataTable(id=f"table-{pane}", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="dev-buttons"):
            for name, key, action in self.BUTTONS:
                label = ui_text(name if name in ("refresh", "back") else f"op_{name}", self.lang)
                yield Button(f"{label} ({key})", id=f"dev-btn-{name}", compact=True, name=action)

    def on_mount(self) -> None:
        """Column headers, then read the terminal and the registry."""
        for pane, columns in COLUMNS.items():
            table = self.query_one(f"#table-{pane}", DataTable)
            table.add_columns(*(c if c == "#" else ui_text(c, self.lang) for c in columns))
        self.link_changed()
        self.reload()

    # -- loading ----------------------------------------------------------------------------

    def reload(self) -> None:
        """Read everything again in a worker."""
        self._load(self.host.current_terminal())

    @work(thread=True, exclusive=True, group="device-load", exit_on_error=False)
    def _load(self, terminal: Terminal | None) -> None:
        self.post_message(DeviceLoaded(load_device_view(terminal, self.host.open_registry, self.serial)))

    def on_device_loaded(self, message: DeviceLoaded) -> None:
        """Show what was read; the main header follows the terminal's state."""
        self.show_view(message.view)
        if message.view.info is not None:
            self.host.device_changed(message.view.info)

    def show_view(self, view: DeviceView) -> None:
        """Draw a :class:`DeviceView` (also what the snapshot test feeds in)."""
        self.view = view
        self.serial = view.serial
        self.loaded = True
        with contextlib.suppress(NoMatches):   # a late message while the screen goes
            self.query_one("#dev-header", Static).update(self.header_text())
            tabs = self.query_one(TabbedContent)
            lang = self.lang
            for (pane, key), rows in zip(SECTIONS, (run_rows(view.runs), ticket_rows(view.tickets, lang),
                                                    backup_rows(view.backups), lifecycle_rows(view.ops, lang)),
                                         strict=True):
                table = self.query_one(f"#table-{pane}", DataTable)
                table.clear()
                table.add_rows(rows)
                tabs.get_tab(f"sec-{pane}").label = ui_text(key, lang, n=len(rows))

    def header_text(self) -> str:
        """Identity and state (the terminal's own word when connected, else the registry's), then
        the registry line and anything that could not be read."""
        v, lang = self.view, self.lang
        rec = v.record
        if v.info is not None:
            d = v.info
            who, firmware, state, merchant = f"{d.manufacturer} {d.model}", d.firmware_version, d.lifecycle, \
                d.merchant_id
        elif rec is not None:
            who, firmware, state, merchant = f"{rec.manufacturer} {rec.model}", rec.firmware, rec.lifecycle, \
                rec.merchant
        else:
            who, firmware, state, merchant = "?", "?", "?", ""
        lines = [f"{who} │ {ui_text('serial', lang)} {v.serial} │ {ui_text('firmware', lang)} {firmware} │ "
                 f"{ui_text('state', lang)} {state} │ {ui_text('merchant', lang)} "
                 f"{merchant or ui_text('no_merchant', lang)}"]
        if rec is not None:
            lines.append(ui_text("registry_line", lang, first=when(rec.first_seen), last=when(rec.last_seen)))
        else:
            lines.append(ui_text("not_registered", lang))
        lines += [f"⚠ {p}" for p in v.problems]
        return "\n".join(lines)

    def link_changed(self) -> None:
        """The app's link went down or came back: the banner follows."""
        with contextlib.suppress(NoMatches):
            self.query_one("#dev-banner").set_class(self.host.current_terminal() is None, "-shown")

    # -- results ----------------------------------------------------------------------------

    def show_result(self, text: str, *, ok: bool, busy: bool = False) -> None:
        """The line under the header: the outcome of the last action (or what is under way)."""
        self.result_text, self.result_ok = text, ok
        line = self.query_one("#dev-result", Static)
        line.update(text)
        line.add_class("-shown")
        line.set_class(busy, "-busy")
        line.set_class(ok and not busy, "-ok")
        line.set_class(not ok and not busy, "-error")

    def on_operation_finished(self, message: OperationFinished) -> None:
        """Say how it went, and read everything again."""
        self.busy = ""
        self.query_one("#dev-progress").remove_class("-shown")
        self.show_result(message.text, ok=message.ok)
        self.notify(message.text, severity="information" if message.ok else "error", timeout=8)
        self.reload()

    # -- actions ----------------------------------------------------------------------------

    def _ready(self) -> Terminal | None:
        """The terminal, if an action may start now (else say why and return None)."""
        if self.busy:
            self.notify(ui_text("op_busy", self.lang, op=op_label(self.busy, self.lang)), severity="warning")
            return None
        if self.host.running:
            self.notify(ui_text("busy", self.lang), severity="warning")
            return None
        term = self.host.current_terminal()
        if term is None:
            self.notify(ui_text("not_connected", self.lang), severity="warning")
        return term

    def action_back(self) -> None:
        """Back to the main screen (not while an operation is under way)."""
        if self.busy:
            self.notify(ui_text("op_busy", self.lang, op=op_label(self.busy, self.lang)), severity="warning")
            return
        self.dismiss(None)

    def action_refresh(self) -> None:
        """Read the terminal and the registry again."""
        self.reload()

    def action_section(self, n: int) -> None:
        """Show the Nth section."""
        if 1 <= n <= len(SECTIONS):
            self.query_one(TabbedContent).active = f"sec-{SECTIONS[n - 1][0]}"

    def system_commands(self) -> Iterable[SystemCommand]:
        """This screen's actions for the command palette."""
        yield SystemCommand("Back to the main screen (Esc)", "Leave the device screen", self.action_back)
        yield SystemCommand("Refresh (r)", "Read the terminal and the registry again", self.action_refresh)
        yield SystemCommand("Back up the transaction log (b)", "Verified, masked, recorded in the registry",
                            self.action_backup)
        for op, key, text in (("activate", "a", "Activate with a code for a merchant"),
                              ("bind", "m", "Bind to a merchant account"),
                              ("unbind", "u", "Unbind from the merchant (needs a verified backup, or force)"),
                              ("revoke", "v", "Revoke an un-activated terminal"),
                              ("reset", "x", "Factory reset: erase configuration and binding")):
            yield SystemCommand(f"{op.capitalize()} ({key})", text,
                                lambda op=op: self.action_lifecycle(op))

    @on(Button.Pressed, "#dev-buttons Button")
    async def _button(self, event: Button.Pressed) -> None:
        if event.button.name:
            await self.run_action(event.button.name)

    # backup

    def action_backup(self) -> None:
        """Ask for the folder, then back the transaction log up with progress."""
        term = self._ready()
        if term is None:
            return

        def chosen(directory: str | None) -> None:
            if directory and not self.busy:
                self.busy = "backup"
                self.show_result(ui_text("backup_running", self.lang, serial=self.serial), ok=True, busy=True)
                bar = self.query_one("#dev-progress", ProgressBar)
                bar.update(total=None, progress=0)
                bar.add_class("-shown")
                self._backup(term, directory)

        self.app.push_screen(BackupForm(self.serial, self.backup_dir, self.lang), chosen)

    @work(thread=True, group="device-op", exit_on_error=False)
    def _backup(self, term: Terminal, directory: str) -> None:
        lang = self.lang
        ok, text = False, ""
        try:
            out = Path(directory).expanduser()
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.post_message(OperationFinished("backup", False, ui_text("backup_bad_dir", lang, path=directory,
                                                                         why=exc.strerror or exc)))
            return
        try:
            registry = self.host.open_registry()

            def progress(done: int, total: int) -> None:
                self.post_message(BackupProgress(done, total))

            done: BackupOutcome = DeviceManager(term, registry).backup(out, on_progress=progress)
            ok, text = True, ui_text("backup_done", lang, serial=done.device.serial, records=done.record.records,
                                     pages=done.pages, path=done.path, digest=done.record.sha256[:16],
                                     record=done.record.id)
        except DriverError as exc:
            text = ui_text("backup_not_recorded", lang, why=exc)
        except (RegistryError, SQLAlchemyError) as exc:
            text = ui_text("backup_unrecorded", lang, why=exc)
        except OSError as exc:
            text = ui_text("backup_bad_dir", lang, path=directory, why=exc.strerror or exc)
        self.post_message(OperationFinished("backup", ok, text))

    def on_backup_progress(self, message: BackupProgress) -> None:
        """Move the bar."""
        with contextlib.suppress(NoMatches):
            self.query_one("#dev-progress", ProgressBar).update(total=message.total, progress=message.done)

    # lifecycle

    def action_lifecycle(self, operation: str) -> None:
        """Ask for the operation's arguments, check and sign (worker), confirm, send (worker)."""
        term = self._ready()
        if term is None:
            return

        def given(answer: OperationInput | None) -> None:
            if answer is None or self.busy:
                return
            self.busy = operation
            self.show_result(ui_text("op_preparing", self.lang, op=op_label(operation, self.lang)), ok=True,
                             busy=True)
            self._prepare(term, answer)

        self.app.push_screen(OperationForm(operation, self.serial, self.lang), given)

    def _manager(self, term: Terminal) -> DeviceManager:
        """A manager with the key file (read now: it may have changed) and the registry."""
        return DeviceManager(term, self.host.open_registry(), KeyFile.load(self.keys_path))

    @work(thread=True, group="device-op", exit_on_error=False)
    def _prepare(self, term: Terminal, given: OperationInput) -> None:
        answered = False
        try:
            manager = self._manager(term)
            prepared = manager.prepare(given.operation, activation_code=given.activation_code,
                                       merchant_id=given.merchant_id, reason=given.reason, force=given.force)
            self.post_message(OperationPrepared(given, manager, prepared))
            answered = True
        except _EXPECTED as exc:   # every expected failure is shown on the screen (see failure_text)
            self.post_message(OperationFinished(given.operation, False, self.failure_text(exc)))
            answered = True
        finally:
            if not answered:       # a bug: the worker's error is logged; the screen must not stay busy
                self.post_message(OperationFinished(given.operation, False, ui_text("op_crashed", self.lang)))

    def on_operation_prepared(self, message: OperationPrepared) -> None:
        """Ask: what will happen, and for unbind, revoke and reset the serial number typed."""
        given, prepared = message.given, message.prepared
        op = given.operation

        def answered(yes: bool | None) -> None:
            if yes:
                self.show_result(ui_text("op_sending", self.lang, op=op_label(op, self.lang)), ok=True, busy=True)
                self._submit(message)
            else:
                self.post_message(OperationFinished(op, False, ui_text("op_cancelled", self.lang,
                                                                       op=op_label(op, self.lang))))

        title = ui_text("form_title", self.lang, op=op_label(op, self.lang), serial=prepared.device.serial)
        self.app.push_screen(LifecycleConfirmScreen(title, confirmation_lines(prepared, given, self.lang),
                                                    prepared.device.serial, typed=op in DESTRUCTIVE,
                                                    lang=self.lang), answered)

    @work(thread=True, group="device-op", exit_on_error=False)
    def _submit(self, message: OperationPrepared) -> None:
        given, manager, prepared = message.given, message.manager, message.prepared
        answered = False
        try:
            if prepared.stale:   # the terminal's challenge may have run out: sign a fresh one
                prepared = manager.prepare(given.operation, activation_code=given.activation_code,
                                           merchant_id=given.merchant_id, reason=given.reason, force=given.force)
            outcome = manager.submit(prepared)
            self.post_message(OperationFinished(given.operation, True, self.done_text(outcome)))
            answered = True
        except _EXPECTED as exc:   # every expected failure is shown on the screen (see failure_text)
            self.post_message(OperationFinished(given.operation, False, self.failure_text(exc)))
            answered = True
        finally:
            if not answered:       # a bug: the worker's error is logged; the screen must not stay busy
                self.post_message(OperationFinished(given.operation, False, ui_text("op_crashed", self.lang)))

    def done_text(self, outcome: LifecycleOutcome) -> str:
        """What ``pos-sim device`` prints when an operation was carried out."""
        r, dev, lang = outcome.result, outcome.device, self.lang
        lines = [ui_text("op_done", lang, serial=dev.serial, op=r.operation, before=dev.lifecycle, after=r.state,
                         counter=r.counter, record=outcome.record.id)]
        if outcome.backup:
            lines.append(ui_text("op_done_backup", lang, path=outcome.backup.path))
        elif outcome.record.forced:
            lines.append(ui_text("op_done_forced", lang))
        return "\n".join(lines)

    def failure_text(self, exc: Exception) -> str:
        """The message of a refusal or failure, as ``pos-sim device`` words it."""
        if isinstance(exc, BackupRequired):
            return f"{exc}\n{ui_text('backup_hint', self.lang)}"
        if isinstance(exc, (RegistryError, SQLAlchemyError)):
            return ui_text("registry_error", self.lang, why=exc)
        return str(exc)


#: what a lifecycle operation can fail with and the screen reports
_EXPECTED = (LifecycleFailed, KeyFileError, DriverError, RegistryError, SQLAlchemyError, OSError)


__all__ = ["DeviceHost", "DeviceLoaded", "DeviceScreen", "DeviceView", "OperationFinished", "OperationPrepared",
           "load_device_view"]
