"""The live TUI: ``pos-sim tui [PORT]``.

The app never touches a port.  Thread workers own every blocking call (opening the port, HELLO,
the diagnostics engine, abort) and talk to the UI only with ``post_message``; the link's own
thread hands frames to a :class:`~pos_sim.tui.model.FrameBuffer`, which a 10 Hz timer drains
into the log in one ``Log.write_lines`` call (at most 40 lines a tick), so a flood of frames
costs the UI a bounded amount of work.  docs/tui.md is the manual.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Input, Log, Static
from textual.worker import Worker, WorkerState, get_current_worker

from drivers.capture import CaptureError, CaptureTap, CaptureWriter
from drivers.device import Device, open_device
from drivers.errors import DriverError, SessionLost
from drivers.escpos import ReceiptPrinter
from drivers.link import LinkTimings
from drivers.terminal import DeviceInfo, Terminal
from pos_sim.diagnostics.catalogue import Catalogue, default_language, load_catalogue, normalize_language
from pos_sim.diagnostics.engine import (
    NATURAL_ORDER,
    DiagnosticReport,
    DiagnosticsEngine,
    Update,
    exit_status,
    overall_verdict,
)
from pos_sim.ports import register_url_schemes
from pos_sim.registry import Registry, RegistryError
from pos_sim.tui.completeness import Completeness, tui_completeness, verdict_text
from pos_sim.tui.device_screen import DeviceScreen
from pos_sim.tui.model import (
    IDLE,
    RUNNING,
    FrameBuffer,
    LinkCounters,
    TileState,
    component_label,
    frame_lines,
    localize,
    parse_filter,
    status_text,
    tile_lines,
    wrap_fields,
)
from pos_sim.tui.screens import ConfirmScreen, HelpScreen, PickerScreen, QuitScreen
from pos_sim.tui.text import ui_text
from pos_sim.tui.widgets import KeypadMap, Tile
from protocols.pos import Message as WireMessage
from protocols.pos import MessageType
from protocols.pos.codes import EventKind

#: how often a lost terminal is looked for again
RETRY_EVERY = 0.5
#: how often the frame log and the status bar are refreshed
TICK = 0.1
#: the log keeps this many lines
LOG_LINES = 2000
#: where the device screen puts transaction-log backups unless told (--backup-dir)
DEFAULT_BACKUP_DIR = "~/pos-sim-backups"
#: how often the tiles' status (STATUS_REQUEST of every fitted component) is read while idle
STATUS_EVERY = 5.0


# -- messages from the workers ------------------------------------------------------------------


class Connected(Message):
    """A terminal answered HELLO and INFO."""

    def __init__(self, terminal: Terminal, info: DeviceInfo) -> None:
        super().__init__()
        self.terminal = terminal
        self.info = info


class PrinterConnected(Message):
    """An ESC/POS receipt printer answered DLE EOT 1 (``--device escpos|auto``)."""

    def __init__(self, printer: ReceiptPrinter, info: DeviceInfo) -> None:
        super().__init__()
        self.printer = printer
        self.info = info


class PrinterDown(Message):
    """The printer's port broke (noticed by a request: the printer's link has no thread)."""

    def __init__(self, printer: ReceiptPrinter, why: str) -> None:
        super().__init__()
        self.printer = printer
        self.why = why


class ConnectFailed(Message):
    """Opening the port (or HELLO) failed; the worker tries again."""

    def __init__(self, why: str) -> None:
        super().__init__()
        self.why = why

    def can_replace(self, message: Message) -> bool:
        """Only the latest failure matters."""
        return isinstance(message, ConnectFailed)


class WrongTerminal(Message):
    """A terminal with another serial number answered on the port."""

    def __init__(self, serial: str) -> None:
        super().__init__()
        self.serial = serial


class LinkDown(Message):
    """The link broke (cable pulled, device gone)."""

    def __init__(self, terminal: Terminal, why: str) -> None:
        super().__init__()
        self.terminal = terminal
        self.why = why


class TerminalRestarted(Message):
    """The terminal restarted mid-session (noticed on the link's thread)."""

    def __init__(self, terminal: Terminal, cause: str) -> None:
        super().__init__()
        self.terminal = terminal
        self.cause = cause


class WorkerFailed(Message):
    """A worker stopped on an exception nobody expected: said on the banner in one line."""

    def __init__(self, task: str, why: str) -> None:
        super().__init__()
        self.task = task
        self.why = why


def one_line(exc: BaseException) -> str:
    """An exception as one line for the banner: its type and the first line of its text."""
    # the message itself (KeyError's str() is a repr, with its newlines escaped)
    arg = exc.args[0] if len(exc.args) == 1 and isinstance(exc.args[0], str) else str(exc)
    text = arg.strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class EngineUpdate(Message):
    """The diagnostics engine's progress; progress of one component is mergeable."""

    def __init__(self, update: Update) -> None:
        super().__init__()
        self.update = update

    def can_replace(self, message: Message) -> bool:
        """A newer progress report of the same component replaces an older unhandled one."""
        return (isinstance(message, EngineUpdate) and message.update.kind == "progress"
                and self.update.kind == "progress" and message.update.component == self.update.component
                and message.update.prompt == self.update.prompt)


class RunFinished(Message):
    """A run ended (report None when it could not start); ``record`` says how the registry took
    it: a key of text.py and its values (``recorded``, ``not_recorded_flag`` ...)."""

    def __init__(self, report: DiagnosticReport | None, error: str = "",
                 record: tuple[str, dict[str, object]] = ("", {})) -> None:
        super().__init__()
        self.report = report
        self.error = error
        self.record = record


class StatusRead(Message):
    """A component's STATUS_REPLY block, read while idle."""

    def __init__(self, terminal: Terminal | ReceiptPrinter, component: str, status: dict[str, Any]) -> None:
        super().__init__()
        self.terminal = terminal
        self.component = component
        self.status = status


class KeyPressed(Message):
    """The terminal reported a key press."""

    def __init__(self, code: int) -> None:
        super().__init__()
        self.code = code


class ConfirmRequest(Message):
    """A test asks the technician yes or no; the worker waits on ``answered``."""

    def __init__(self, component: str, prompt: str, text: str) -> None:
        super().__init__()
        self.component = component
        self.prompt = prompt
        self.text = text
        self.answer = False
        self.answered = threading.Event()


class TuiPrompter:
    """The engine's :class:`~pos_sim.diagnostics.engine.Prompter` for the TUI (runs on the worker)."""

    def __init__(self, app: PosSimApp) -> None:
        self.app = app
        self.worker = get_current_worker()

    def show(self, component: str, prompt: str, text: str) -> None:
        """Shown on the tile through the engine's ``prompt`` update: nothing to do here."""

    def confirm(self, component: str, prompt: str, text: str) -> bool:
        """Post the question to the app and wait for the modal's answer (no on cancel or exit)."""
        request = ConfirmRequest(component, prompt, text)
        self.app.pending_confirms.append(request)
        self.app.post_message(request)
        while not request.answered.wait(0.1):
            if self.worker.is_cancelled or self.app.closing.is_set():
                return False
        return request.answer


# -- the app ------------------------------------------------------------------------------------


class PosSimApp(App[int]):
    """The bench TUI for one terminal; see the module docstring."""

    TITLE = "pos-sim"
    AUTO_FOCUS = None
    CSS = """
    #device { height: 1; background: $primary-background; padding: 0 1; }
    #banner { height: auto; background: $error; color: $text; padding: 0 1; text-style: bold; display: none; }
    #banner.-shown { display: block; }
    #banner.-note { background: $warning; }
    #device { height: auto; }
    #tiles { grid-size: 4; grid-gutter: 0 0; height: 2fr; min-height: 12; }
    #verdict { height: auto; padding: 0 1; text-style: bold; display: none; }
    #verdict.-shown { display: block; }
    #verdict.-ok { background: $success-muted; }
    #verdict.-needs_attention { background: $warning-muted; }
    #verdict.-needs_repair, #verdict.-locked { background: $error-muted; }
    #verdict.-running, #verdict.-incomplete { background: $panel; }
    #logpanel { height: 1fr; min-height: 4; border-top: solid $panel-lighten-2; border-title-align: left; }
    #logpanel.-hidden { display: none; }
    #filter { display: none; height: 1; border: none; }
    #filter.-shown { display: block; }
    #log { height: 1fr; }
    #status { height: 1; background: $panel; padding: 0 1; }
    #buttons { height: 1; }
    #buttons Button { margin: 0; min-width: 4; }
    #actions { width: 1fr; height: 1; overflow: hidden hidden; }
    #always { width: auto; height: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "run_all", "Run all"),
        *(Binding(str(n % 10), f"run_one({n})", f"Run tile {n}", show=False) for n in range(1, 11)),
        Binding("a", "abort", "Abort"),
        Binding("e", "export", "Export"),
        Binding("c", "capture", "Capture"),
        Binding("l", "toggle_log", "Log"),
        Binding("x", "toggle_hex", "Hex"),
        Binding("p", "pause", "Pause"),
        Binding("f", "filter", "Filter"),
        Binding("g", "language", "Language"),
        Binding("d", "device", "Device"),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, port: str | None = None, *, lang: str | None = None, plan: str = "full",
                 interactive: bool = True, timings: LinkTimings | None = None,
                 catalogue: Catalogue | None = None, connect: bool = True,
                 report_dir: str | Path | None = None, autorun: bool = False,
                 keys: str | Path | None = None, db: str | None = None,
                 backup_dir: str | Path | None = None, record: bool = True,
                 status_every: float = STATUS_EVERY, device_kind: str = "terminal",
                 baud: int | None = None) -> None:
        super().__init__()
        self.port = port
        #: what is on the port: ``terminal``, ``escpos`` or ``auto`` (drivers.device.open_device)
        self.device_kind = device_kind
        #: a printer's line rate (None: the driver's default); a terminal's is in ``timings``
        self.baud = baud
        #: the connected receipt printer (then ``terminal`` is None), and the lock that keeps its
        #: synchronous requests (the status refresh, a run) one at a time
        self.printer: ReceiptPrinter | None = None
        self._printer_lock = threading.Lock()
        self.lang = normalize_language(lang) if lang else default_language()
        self.plan = plan
        self.interactive = interactive
        self.timings = timings or LinkTimings()
        self.catalogue = catalogue or load_catalogue()
        self.auto_connect = connect
        self.autorun = autorun
        self.report_dir = Path(report_dir) if report_dir is not None else None
        self.tiles: dict[str, TileState] = {c: TileState(c) for c in NATURAL_ORDER}
        self.terminal: Terminal | None = None
        self.device: DeviceInfo | None = None
        self.serial: str | None = None
        self.report: DiagnosticReport | None = None
        self.running = False
        self.link_up = False
        self.frames = FrameBuffer()
        self.counters = LinkCounters()
        self.hex_mode = False
        self.paused = False
        #: a move of the log to its end waits for the layout (see _follow_log)
        self._follow_pending = False
        self.log_filter: tuple[str, ...] = ()
        self.closing = threading.Event()
        self.pending_confirms: list[ConfirmRequest] = []
        self.last_export: Path | None = None
        #: the tap on the current port (recording or not) and the capture running, if any
        self.tap: CaptureTap | None = None
        self.capture: CaptureWriter | None = None
        #: the device screen's key file (None: POS_SIM_KEYS, else the config directory's),
        #: registry URL (None: POS_SIM_DB, else the data directory's) and backup folder
        self.keys_path = keys
        self.db_url = db
        self.backup_dir = str(backup_dir) if backup_dir is not None else DEFAULT_BACKUP_DIR
        self._device_registry: Registry | None = None
        self._device_registry_lock = threading.Lock()
        self._status_shown = ""
        self._banner_key = ""
        #: the terminal restarted and has not said HELLO again yet (runs wait for it)
        self.restarting = False
        self._restart_how = ""
        #: the boot id of the terminal's last HELLO (a reconnect with another one: it restarted)
        self.boot_id: int | None = None
        #: a restart noticed during a run: HELLO again once the run has ended
        self._rehello_after_run: Terminal | None = None
        #: record every run in the registry (``--db``) as ``pos-sim diag`` does; False: --no-record
        self.record = record
        self.status_every = status_every
        #: the technician aborted the run in progress (each test it still starts is aborted too)
        self.abort_requested = False
        #: the components of the run in progress (None: the whole plan)
        self._run_tests: list[str] | None = None
        #: the last run's completeness and how the registry took it, for the verdict line
        self.completeness: Completeness | None = None
        self.record_note: tuple[str, dict[str, object]] = ("", {})
        self._verdict_state = ""
        self._status_worker: Worker[None] | None = None

    # -- layout ---------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        """Header, banner, tiles with the keypad map, the frame log, the status bar, the buttons."""
        yield Static("", id="device", markup=False)
        yield Static("", id="banner", markup=False)
        with Grid(id="tiles"):
            for i, component in enumerate(NATURAL_ORDER, 1):
                yield Tile(component, i)
            yield KeypadMap()
        yield Static("", id="verdict", markup=False)
        with Vertical(id="logpanel"):
            yield Input(placeholder="SELFTEST EVENT …", id="filter", disabled=True)
            yield Log(id="log", max_lines=LOG_LINES, auto_scroll=True)
        yield Static("", id="status", markup=False)
        with Horizontal(id="buttons"):
            # Help and Quit stay in sight however narrow the terminal; the others clip first
            with Horizontal(id="actions"):
                for action in ("run_all", "abort", "export", "capture", "device", "toggle_log", "toggle_hex",
                               "pause", "language"):
                    yield Button("", id=f"btn-{action}", compact=True, name=action)
            with Horizontal(id="always"):
                for action in ("help", "quit"):
                    yield Button("", id=f"btn-{action}", compact=True, name=action)

    def on_mount(self) -> None:
        """Draw everything, start the log tick, connect (or open the picker)."""
        self.render_all()
        self.set_interval(TICK, self.tick)
        self.set_interval(self.status_every, self.refresh_status)
        register_url_schemes()
        if not self.auto_connect:
            return
        if self.port is None:
            self.push_screen(PickerScreen(self.lang), self._picked)
        else:
            self.start_connect()

    def _picked(self, port: str | None) -> None:
        if port:
            self.port = port
            self.start_connect()

    # -- rendering ------------------------------------------------------------------------------

    def render_all(self) -> None:
        """Every label in the current language (after a language switch, among others)."""
        with contextlib.suppress(NoMatches):   # NoMatches: a late message during teardown
            self._render_all()

    def _render_all(self) -> None:
        self.render_device()
        for tile in self.tiles:
            self.render_tile(tile)
        self.query_one(KeypadMap).redraw(ui_text("keypad", self.lang))
        for button in self.query("#buttons Button").results(Button):
            button.label = ui_text(button.name or "", self.lang)
        self.query_one("#logpanel").border_title = ui_text("log", self.lang)
        self.render_banner()
        self.render_verdict()
        self.render_status(force=True)

    def render_device(self) -> None:
        """The header line."""
        if not self.query("#device"):
            return
        d = self.device
        if d is None:
            text = ui_text("connecting", self.lang, port=self.port or "…")
        else:
            merchant = d.merchant_id or ui_text("no_merchant", self.lang)
            fields = [f"{d.manufacturer} {d.model}", f"{ui_text('serial', self.lang)} {d.serial}",
                      f"{ui_text('firmware', self.lang)} {d.firmware_version or '-'}",
                      f"{ui_text('state', self.lang)} {d.lifecycle}", f"{ui_text('merchant', self.lang)} {merchant}"]
            if self.printer is not None:   # a receipt printer has no lifecycle and no merchant
                fields = [*fields[:3], "ESC/POS"]
            # on a narrow terminal the header takes a second line rather than losing a value
            text = "\n".join(wrap_fields(fields, max(20, self.size.width - 2)))
        self.query_one("#device", Static).update(text)

    def on_resize(self) -> None:
        """The header wraps to the new width."""
        with contextlib.suppress(NoMatches):
            self.render_device()

    def render_verdict(self) -> None:
        """The verdict line: while a run goes, that it goes; after it, the overall verdict, what it
        covers (completeness) and whether the registry has it."""
        try:
            widget = self.query_one("#verdict", Static)
        except NoMatches:
            return
        state, text = "", ""
        if self.running:
            state, text = "running", ui_text("run_running", self.lang)
        elif self.report is not None and self.completeness is not None:
            report = self.report
            state = report.verdict if self.completeness.ran else "incomplete"
            text = (f"{ui_text('verdict_heading', self.lang)}{'：' if self.lang == 'zh-CN' else ': '}"
                    f"{verdict_text(report, self.completeness, self.lang, self.catalogue)}")
            key, values = self.record_note
            if key:
                text += f" · {ui_text(key, self.lang, **values)}"
        widget.set_class(bool(text), "-shown")
        if self._verdict_state:
            widget.remove_class(f"-{self._verdict_state}")
        if state:
            widget.add_class(f"-{state}")
        self._verdict_state = state
        widget.update(text)

    @property
    def verdict_line(self) -> str:
        """What the verdict line says now ("" when hidden)."""
        with contextlib.suppress(NoMatches):
            widget = self.query_one("#verdict", Static)
            return str(widget.render()) if widget.has_class("-shown") else ""
        return ""

    def render_tile(self, component: str) -> None:
        """One tile."""
        tile = self.tiles[component]
        try:
            widget = self.query_one(f"#tile-{component}", Tile)
        except NoMatches:   # a late message while the app is being taken down
            return
        state, text, lines = tile_lines(tile, self.lang, self.catalogue)
        idx = str(widget.index % 10) if widget.index <= 10 else "·"
        widget.show(f"{idx} {component_label(component, self.lang, self.catalogue)}", state, text, lines)

    def set_banner(self, key: str, note: bool = False, **values: object) -> None:
        """Show a banner (``key`` in text.py) or hide it (key "")."""
        self._banner_key = key
        self._banner_values = values
        self._banner_note = note
        self.render_banner()

    def render_banner(self) -> None:
        """The banner in the current language."""
        try:
            banner = self.query_one("#banner", Static)
        except NoMatches:
            return
        key = self._banner_key
        banner.set_class(bool(key), "-shown")
        banner.set_class(bool(key) and self._banner_note, "-note")
        banner.update(ui_text(key, self.lang, **self._banner_values) if key else "")

    @property
    def banner_text(self) -> str:
        """What the banner says now ("" when hidden)."""
        return ui_text(self._banner_key, self.lang, **self._banner_values) if self._banner_key else ""

    def current_counters(self) -> LinkCounters:
        """The link's counters (the last known ones while disconnected)."""
        if self.terminal is not None:
            self.counters = LinkCounters.of(self.terminal.link)
        elif self.printer is not None:   # requests and their replies stand for frames
            s = self.printer.link.stats
            self.counters = LinkCounters(frames_in=s.requests - s.timeouts, frames_out=s.requests,
                                         bytes_dropped=self.printer.link.parser.stats.garbage)
        return self.counters

    def render_status(self, force: bool = False) -> None:
        """The status bar (only redrawn when it changed)."""
        text = status_text(self.current_counters(), self.lang, paused=self.paused, hex_mode=self.hex_mode,
                           log_filter=" ".join(self.log_filter))
        if self.capture is not None:
            text = f"{ui_text('recording', self.lang)} │ {text}"
        if force or text != self._status_shown:
            self._status_shown = text
            self.query_one("#status", Static).update(text)

    def tick(self) -> None:
        """Every 100 ms: the buffered frames into the log in one batch, and the status bar."""
        with contextlib.suppress(NoMatches):   # NoMatches: a last tick during teardown
            self._tick()

    def _tick(self) -> None:
        if any(isinstance(s, DeviceScreen) for s in self.screen_stack):   # frames wait in the buffer
            return                                                          # until the log is back
        if not self.paused:
            items, lost = self.frames.drain()
            if items or lost:
                log = self.query_one("#log", Log)
                if log.display:
                    log.write_lines(frame_lines(items, lost, hex_mode=self.hex_mode, type_filter=self.log_filter,
                                                lang=self.lang), scroll_end=self._log_following(log))
        self.render_status()

    def _log_following(self, log: Log) -> bool:
        """Whether the log follows new lines: at its end, or within the line the filter box
        took from it (showing the box shortens the log, which would otherwise stop following), or
        while a move to the end waits for the layout to settle (lines written before it lands
        must not leave the log behind for good)."""
        return self._follow_pending or log.max_scroll_y - log.scroll_y <= 1

    # -- the tiles' status while idle -------------------------------------------------------------

    def refresh_status(self) -> None:
        """Read every fitted component's status (STATUS_REQUEST) in a worker, unless a run, a
        reconnect or the device screen has the terminal."""
        if self.printer is not None and self.link_up and not self.running and not self.closing.is_set():
            previous = self._status_worker
            if previous is None or previous.state not in (WorkerState.PENDING, WorkerState.RUNNING):
                self._status_worker = self._read_printer_status(self.printer)
            return
        term = self.terminal
        if (term is None or not self.link_up or self.running or self.restarting or self.closing.is_set()
                or any(isinstance(s, DeviceScreen) for s in self.screen_stack)):
            return
        previous = self._status_worker
        if previous is not None and previous.state in (WorkerState.PENDING, WorkerState.RUNNING):
            return   # a slow line still reads the last round: let it finish rather than start over
        self._status_worker = self._read_status(term, self.visible_components())

    @work(thread=True, group="status", exit_on_error=False)
    def _read_status(self, term: Terminal, components: list[str]) -> None:
        worker = get_current_worker()
        try:
            for component in components:
                if worker.is_cancelled or self.closing.is_set() or self.running or term.link.error is not None:
                    return
                try:
                    status = term.status(component)
                except DriverError:   # not answered: the tile keeps its last status; a broken
                    continue          # link or a restart is the link's callbacks' to report
                self.post_message(StatusRead(term, component, status))
        except Exception as exc:   # a bug must end on the banner, never in a silent hang
            self.post_message(WorkerFailed("task_status", one_line(exc)))

    @work(thread=True, group="status", exit_on_error=False)
    def _read_printer_status(self, printer: ReceiptPrinter) -> None:
        try:
            with self._printer_lock:
                if self.running or self.closing.is_set():
                    return
                try:
                    block = printer.status().block()
                except DriverError as exc:   # a silent printer keeps its last status; a broken port is down
                    if printer.link.error is not None:
                        self.post_message(PrinterDown(printer, str(exc)))
                    return
            self.post_message(StatusRead(printer, "printer", block))
        except Exception as exc:   # a bug must end on the banner, never in a silent hang
            self.post_message(WorkerFailed("task_status", one_line(exc)))

    @property
    def active(self) -> Device | None:
        """The connected device: the terminal or the receipt printer (None while there is none)."""
        return self.terminal if self.terminal is not None else self.printer

    def on_status_read(self, message: StatusRead) -> None:
        """A tile shows its component's status."""
        if message.terminal is not self.active or self.closing.is_set() or message.component not in self.tiles:
            return
        self.tiles[message.component].status = message.status
        self.render_tile(message.component)

    # -- connecting -----------------------------------------------------------------------------

    def start_connect(self, close_first: Device | None = None) -> None:
        """Open the port in a worker; retry every 0.5 s until a terminal (the same one) answers."""
        self.render_device()
        self._connect(close_first)

    @work(thread=True, exclusive=True, group="connect", exit_on_error=False)
    def _connect(self, close_first: Device | None) -> None:
        try:
            self._connect_loop(close_first)
        except Exception as exc:   # a bug must end on the banner, never in a silent hang
            self.post_message(WorkerFailed("task_connect", one_line(exc)))

    def _open(self) -> Terminal | ReceiptPrinter:
        """Open the port as ``--device`` says (auto: a printer's DLE EOT 1 first, then HELLO)."""
        assert self.port is not None
        if self.device_kind == "terminal":
            return Terminal.open(self.port, timings=self.timings, on_frame=self.frames.push, timeout=5.0,
                                 wrap=self._tap)
        device = open_device(self.port, self.device_kind, baud=self.baud, timings=self.timings,
                             on_frame=self.frames.push, timeout=5.0, wrap=self._tap)
        assert isinstance(device, Terminal | ReceiptPrinter)
        return device

    def _connect_loop(self, close_first: Device | None) -> None:
        worker = get_current_worker()
        if close_first is not None:
            close_first.close()
        assert self.port is not None
        while not worker.is_cancelled and not self.closing.is_set():
            try:
                opened = self._open()
            except DriverError as exc:
                self.post_message(ConnectFailed(str(exc)))
                self._sleep(worker)
                continue
            if isinstance(opened, ReceiptPrinter):
                if self._printer_found(opened, worker):
                    return
                self._sleep(worker)
                continue
            term = opened
            try:
                info = term.info()
                term.set_deadline(None)
            except DriverError as exc:
                term.close()
                self.post_message(ConnectFailed(str(exc)))
                self._sleep(worker)
                continue
            if self.serial is not None and info.serial != self.serial:
                term.close()
                self.post_message(WrongTerminal(info.serial))
                self._sleep(worker)
                continue
            if worker.is_cancelled or self.closing.is_set():
                term.close()
                return
            self._watch(term)
            self.post_message(Connected(term, info))
            return

    def _printer_found(self, printer: ReceiptPrinter, worker: Any) -> bool:
        """A printer answered: use it (True), or close it when it is not the one of this session."""
        info = printer.info()
        if self.serial is not None and info.serial != self.serial:
            printer.close()
            self.post_message(WrongTerminal(info.serial))
            return False
        if worker.is_cancelled or self.closing.is_set():
            printer.close()
            return True
        self.post_message(PrinterConnected(printer, info))
        return True

    def _sleep(self, worker: Any) -> None:
        end = time.monotonic() + RETRY_EVERY
        while time.monotonic() < end and not worker.is_cancelled and not self.closing.is_set():
            time.sleep(0.05)

    def _watch(self, term: Terminal) -> None:
        """Hear about the link going down and about key presses (callbacks on the link's thread)."""
        previous = term.link.on_down
        reported = threading.Event()

        def down(err: DriverError) -> None:
            if previous is not None:
                previous(err)
            if not reported.is_set():
                reported.set()
                self.post_message(LinkDown(term, str(err)))

        term.link.on_down = down
        if term.link.error is not None:
            down(term.link.error)

        def restarted(err: SessionLost) -> None:
            self.post_message(TerminalRestarted(term, err.cause))

        term.on_restart = restarted
        if term.session_lost is not None:
            restarted(term.session_lost)

        def on_event(msg: WireMessage) -> None:
            if msg.type == MessageType.EVENT and str(msg.fields.get("event")) in (
                    "key_pressed", str(int(EventKind.key_pressed))):
                self.post_message(KeyPressed(int(msg.fields["value"])))

        term.subscribe(on_event)

    def on_connect_failed(self, message: ConnectFailed) -> None:
        """Say why, while the worker retries."""
        if not self.link_up:
            key = "link_down" if self.serial else "cannot_open"
            if key == "cannot_open":
                self.set_banner(key, port=self.port, why=message.why)

    def on_wrong_terminal(self, message: WrongTerminal) -> None:
        """Another terminal on the port: say so, mix nothing."""
        self.set_banner("wrong_terminal", port=self.port, got=message.serial, want=self.serial)

    def _show_device_kind(self, printer: bool) -> None:
        """A printer has one tile and no keypad, lifecycle or frames: the rest is hidden."""
        for widget in self.query(Tile).results(Tile):
            widget.display = not printer or widget.component == "printer"
        self.query_one(KeypadMap).display = not printer
        for action in ("device", "capture", "toggle_hex"):
            for button in self.query(f"#btn-{action}").results(Button):
                button.display = not printer

    def on_printer_connected(self, message: PrinterConnected) -> None:
        """A receipt printer (the same one, after a replug) is here: its one tile, its status."""
        if self.closing.is_set():
            message.printer.close()
            return
        again = self.serial is not None
        self.printer, self.terminal, self.tap = message.printer, None, None
        self.device = message.info
        self.serial = message.info.serial
        self.link_up = True
        hello = message.printer.hello
        fitted = set(hello.components) if hello else {"printer"}
        for component, tile in self.tiles.items():
            tile.fitted = component in fitted
        self.boot_id = None
        self.set_banner("")
        self._show_device_kind(True)
        if again:
            self.notify(ui_text("reconnected", self.lang, serial=self.serial))
        self.render_all()
        if self.autorun and not again:
            self.start_run(None)
        else:
            self.refresh_status()

    def on_printer_down(self, message: PrinterDown) -> None:
        """The printer's port broke: banner at once, results kept, look for the same printer again."""
        if message.printer is not self.printer or self.closing.is_set():
            return
        self.link_up = False
        self.current_counters()
        self.printer = None
        self.set_banner("link_down", why=message.why, serial=self.serial)
        self.start_connect(close_first=message.printer)

    def on_connected(self, message: Connected) -> None:
        """A terminal (the same one, after a replug) is here."""
        if self.closing.is_set():
            message.terminal.close()
            return
        again = self.serial is not None
        self._show_device_kind(False)
        self.printer = None
        self.terminal = message.terminal
        self.device = message.info
        self.serial = message.info.serial
        self.link_up = True
        hello = message.terminal.hello
        fitted = set(hello.components) if hello else set(NATURAL_ORDER)
        for component, tile in self.tiles.items():
            tile.fitted = component in fitted
        rebooted_away = (again and not self.restarting and hello is not None and self.boot_id is not None
                         and hello.boot_id != self.boot_id)
        self.boot_id = hello.boot_id if hello else None
        if self.restarting:   # HELLO again after a restart: say so until the next run starts
            self.restarting = False
            self.set_banner("restarted_ready", note=True, how=self._how(), serial=self.serial)
        else:
            self.set_banner("")
        if message.terminal.link.error is not None:   # it went down before we heard of it
            self.post_message(LinkDown(message.terminal, str(message.terminal.link.error)))
        if rebooted_away:
            self.notify(ui_text("restarted_away", self.lang, serial=self.serial), severity="warning", timeout=8)
        elif again and self._banner_key != "restarted_ready":
            self.notify(ui_text("reconnected", self.lang, serial=self.serial))
        self._tell_device_screens()
        self.render_all()
        if self.autorun and not again:
            self.start_run(None)
        else:
            self.refresh_status()

    def on_link_down(self, message: LinkDown) -> None:
        """The cable came out: banner at once, keep results, look for the same terminal again."""
        if message.terminal is not self.terminal or self.closing.is_set():
            return
        self.link_up = False
        self.restarting = False
        self._rehello_after_run = None
        self.current_counters()
        self.terminal = None
        self.set_banner("link_down", why=message.why, serial=self.serial)
        self._tell_device_screens()
        self.start_connect(close_first=message.terminal)

    def _how(self) -> str:
        key = f"how_{self._restart_how}"
        return ui_text(key if key in ("how_uptime", "how_boot_id", "how_not_permitted") else "how_uptime", self.lang)

    def on_terminal_restarted(self, message: TerminalRestarted) -> None:
        """The terminal restarted: banner at once, results kept, HELLO again (after the run)."""
        if message.terminal is not self.terminal or self.closing.is_set():
            return
        self.restarting = True
        self._restart_how = message.cause
        self.set_banner("restarted", how=self._how())
        # a question of a test that is gone has no one to answer it
        for request in list(self.pending_confirms):
            request.answered.set()
        if isinstance(self.screen, ConfirmScreen):
            self.screen.dismiss(False)
        if self.running:
            self._rehello_after_run = message.terminal   # the run is ending on its own: SessionLost
        else:
            self._rehello(message.terminal)

    @work(thread=True, exclusive=True, group="rehello", exit_on_error=False)
    def _rehello(self, term: Terminal) -> None:
        """HELLO again on the same line; the same serial, or the terminal is not used."""
        try:
            self._rehello_loop(term)
        except Exception as exc:   # a bug must end on the banner, never in a silent hang
            self.post_message(WorkerFailed("task_rehello", one_line(exc)))

    def _rehello_loop(self, term: Terminal) -> None:
        worker = get_current_worker()
        while not worker.is_cancelled and not self.closing.is_set() and term.link.error is None:
            try:
                term.connect()
                info = term.info()
            except DriverError:
                self._sleep(worker)   # a link that went down is the connect worker's now
                continue
            if self.serial is not None and info.serial != self.serial:
                self.post_message(WrongTerminal(info.serial))
                self.post_message(LinkDown(term, ui_text("wrong_terminal", self.lang, port=self.port,
                                                         got=info.serial, want=self.serial)))
                return
            self.post_message(Connected(term, info))
            return

    def on_worker_failed(self, message: WorkerFailed) -> None:
        """A worker's unexpected exception: one line on the banner."""
        if not self.closing.is_set():
            self.set_banner("worker_failed", what=ui_text(message.task, self.lang), why=message.why)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The last net under every worker of the app: one that ended in error says so."""
        if event.state != WorkerState.ERROR or self.closing.is_set():
            return
        task = {"connect": "task_connect", "run": "task_run", "abort": "task_abort",
                "rehello": "task_rehello", "status": "task_status"}.get(event.worker.group, "task_other")
        error = event.worker.error
        self.set_banner("worker_failed", what=ui_text(task, self.lang),
                        why=one_line(error) if error is not None else "?")
        if event.worker.group == "run" and self.running:
            self.post_message(RunFinished(None, ""))

    def _tell_device_screens(self) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, DeviceScreen):
                screen.link_changed()

    # -- running --------------------------------------------------------------------------------

    def visible_components(self) -> list[str]:
        """The fitted components, in tile order."""
        return [c for c, t in self.tiles.items() if t.fitted]

    def start_run(self, tests: list[str] | None) -> None:
        """Run the plan (or some components of it) in a worker."""
        device = self.active
        if device is None or not self.link_up:
            self.notify(ui_text("not_connected", self.lang), severity="warning")
            return
        if self.running:
            self.notify(ui_text("busy", self.lang), severity="warning")
            return
        if self.restarting:
            self.notify(ui_text("restarting", self.lang), severity="warning")
            return
        if self._banner_key in ("restarted_ready", "worker_failed"):
            self.set_banner("")
        self.running = True
        self.abort_requested = False
        self._run_tests = tests
        # a re-run starts from clean tiles: the previous results of what runs now are gone
        for component in tests or self.visible_components():
            tile = self.tiles[component]
            tile.state, tile.percent, tile.prompt, tile.finding = IDLE, 0, "", None
            self.render_tile(component)
        if tests is None or "keypad" in tests:
            self.query_one(KeypadMap).reset()
        self.render_verdict()
        self._run(device, tests)

    @work(thread=True, group="run", exit_on_error=False)
    def _run(self, term: Device, tests: list[str] | None) -> None:
        def on_update(update: Update) -> None:   # the engine's thread
            if update.kind == "started" and self.abort_requested:
                # aborted: a test the engine still starts (the next one alone) is stopped at once
                with contextlib.suppress(DriverError):
                    term.abort()
            self._post_update(update)

        worker = get_current_worker()
        try:
            engine = DiagnosticsEngine(term, lang=self.lang, catalogue=self.catalogue, prompter=TuiPrompter(self),
                                       on_update=on_update, port=self.port or "")
            if isinstance(term, ReceiptPrinter):   # one request at a time on its synchronous port
                with self._printer_lock:
                    report = engine.run(self.plan, tests, interactive=self.interactive)
            else:
                report = engine.run(self.plan, tests, interactive=self.interactive)
            if worker.is_cancelled or self.closing.is_set():
                return   # quit mid-run: what the closing did to the tests is no finding to file
            self.post_message(RunFinished(report, record=self._record_run(report)))
        except (ValueError, DriverError) as exc:
            self.post_message(RunFinished(None, str(exc)))
            if isinstance(term, ReceiptPrinter) and term.link.error is not None:
                self.post_message(PrinterDown(term, str(term.link.error)))
        except Exception as exc:   # a bug must end on the banner, never in a silent hang
            self.post_message(WorkerFailed("task_run", one_line(exc)))
            self.post_message(RunFinished(None, ""))

    def _record_run(self, report: DiagnosticReport) -> tuple[str, dict[str, object]]:
        """File the run in the registry as ``pos-sim diag`` does (``Registry.open`` at ``--db``,
        ``record_run``; committed on return, never failing the run); say how it went."""
        if not self.record:
            return "not_recorded_flag", {}
        if report.device is None:
            return "not_recorded_no_device", {}
        try:
            with Registry.open(self.db_url) as reg:
                saved = reg.record_run(report)
        except (RegistryError, OSError) as exc:
            return "not_recorded_error", {"why": (str(exc).strip().splitlines() or [type(exc).__name__])[0]}
        return "recorded", {"run": saved.id, "serial": saved.serial}

    def _post_update(self, update: Update) -> None:
        """The engine's callback (its thread): hand the update to the UI."""
        self.post_message(EngineUpdate(update))

    def on_engine_update(self, message: EngineUpdate) -> None:
        """A tile changes."""
        u = message.update
        if self.closing.is_set() or u.component not in self.tiles:
            return
        tile = self.tiles[u.component]
        if u.kind in ("started", "progress", "prompt"):
            tile.state = RUNNING
            tile.percent = u.percent
            if u.kind == "prompt" or (u.prompt and u.prompt != "none"):
                tile.prompt = u.prompt if u.prompt != "none" else ""
            elif u.kind == "started":
                tile.prompt = ""
        elif u.kind == "finished" and u.finding is not None:
            tile.state, tile.finding, tile.prompt, tile.percent = u.finding.verdict, u.finding, "", 100
        self.render_tile(u.component)

    def on_run_finished(self, message: RunFinished) -> None:
        """Keep the report; every tile still running shows its final state."""
        self.running = False
        if self.closing.is_set():
            return
        term, self._rehello_after_run = self._rehello_after_run, None
        if term is not None and term is self.terminal:
            self._rehello(term)
        if message.report is None:
            for component, tile in self.tiles.items():
                if tile.state == RUNNING:   # no verdict came: the tile is as before the run
                    tile.state, tile.percent, tile.prompt = IDLE, 0, ""
                    self.render_tile(component)
            if message.error:
                self.notify(message.error, severity="error")
            self.render_verdict()
            return
        self.report = message.report
        for f in message.report.results:
            if f.component in self.tiles:
                tile = self.tiles[f.component]
                tile.state, tile.finding, tile.prompt = f.verdict, f, ""
                self.render_tile(f.component)
        active = self.active
        hello = active.hello if active is not None else None
        self.completeness = tui_completeness(message.report, hello.components if hello else None,
                                             aborted=self.abort_requested, whole_plan=self._run_tests is None)
        self.record_note = message.record
        self.render_verdict()
        self.refresh_status()

    def on_key_pressed(self, message: KeyPressed) -> None:
        """Light the key."""
        if not self.closing.is_set():
            with contextlib.suppress(NoMatches):
                self.query_one(KeypadMap).press(message.code)

    def on_confirm_request(self, message: ConfirmRequest) -> None:
        """Ask in a modal; the worker waits for the answer."""
        if self.closing.is_set():
            message.answered.set()
            return

        def answered(accepted: bool | None) -> None:
            if accepted is None:   # Escape / Abort: no answer; the run is aborted, nothing fails
                self.action_abort()
                return
            message.answer = accepted
            message.answered.set()
            with contextlib.suppress(ValueError):
                self.pending_confirms.remove(message)

        self.push_screen(ConfirmScreen(component_label(message.component, self.lang, self.catalogue),
                                       message.text, self.lang), answered)

    @on(Tile.Clicked)
    def _tile_clicked(self, event: Tile.Clicked) -> None:
        if self.tiles[event.component].fitted:
            self.start_run([event.component])

    @on(Button.Pressed, "#buttons Button")
    async def _button(self, event: Button.Pressed) -> None:
        if event.button.name:
            await self.run_action(event.button.name)

    # -- actions --------------------------------------------------------------------------------

    def action_run_all(self) -> None:
        """Run the whole plan."""
        self.start_run(None)

    def action_run_one(self, n: int) -> None:
        """Run the Nth tile's component (1-9, 0 for the tenth)."""
        components = list(self.tiles)
        if 1 <= n <= len(components) and self.tiles[components[n - 1]].fitted:
            self.start_run([components[n - 1]])

    def action_abort(self) -> None:
        """Abort every running self-test."""
        device = self.active
        if device is None or not self.running:
            return
        self.abort_requested = True
        self.notify(ui_text("aborting", self.lang))
        self._abort(device)

    @work(thread=True, group="abort", exit_on_error=False)
    def _abort(self, term: Device) -> None:
        try:
            with contextlib.suppress(DriverError):
                term.abort()
        except Exception as exc:   # a bug must end on the banner, never in a silent hang
            self.post_message(WorkerFailed("task_abort", one_line(exc)))
        finally:
            for request in list(self.pending_confirms):
                request.answered.set()

    def build_report(self) -> DiagnosticReport | None:
        """Every result on the tiles as one report, in the current language."""
        results = [localize(t.finding, self.lang, self.catalogue) for t in self.tiles.values() if t.finding]
        if self.device is None and not results:
            return None
        base = self.report
        report = DiagnosticReport(port=self.port or "", plan=base.plan if base else self.plan, lang=self.lang,
                                  started_at=base.started_at if base else time.time(), device=self.device)
        report.results = results
        if base is not None:
            report.communication = [localize(f, self.lang, self.catalogue) for f in base.communication]
            report.event_log = base.event_log
        report.link = {"frames_in": self.counters.frames_in, "frames_out": self.counters.frames_out,
                       "retransmits": self.counters.retransmits, "crc_errors": self.counters.crc_errors,
                       "bytes_dropped": self.counters.bytes_dropped}
        report.finished_at = time.time()
        report.exit_status = exit_status(report)
        report.verdict = overall_verdict(report.exit_status)
        return report

    def action_export(self) -> None:
        """Write an HTML report into the current directory and say where."""
        from pos_sim.reports import ReportError, write_report

        report = self.build_report()
        if report is None:
            self.notify(ui_text("nothing_to_export", self.lang), severity="warning")
            return
        stamp = time.strftime("%Y%m%d-%H%M%S")
        directory = self.report_dir or Path.cwd()
        path = directory / f"pos-sim-report-{self.serial or 'unknown'}-{stamp}.html"
        try:
            self.last_export = write_report(report, path, catalogue=self.catalogue)
        except (ReportError, OSError) as exc:
            self.notify(ui_text("export_failed", self.lang, why=exc), severity="error")
            return
        self.notify(ui_text("exported", self.lang, path=self.last_export), timeout=8)

    def _tap(self, port: Any) -> CaptureTap:
        """Every port goes through a tap, so a capture can start and stop at any moment; a
        capture running when the cable came out goes on on the new port after a replug."""
        self.tap = CaptureTap(port, None)
        if self.capture is not None and not self.capture.closed:
            self.tap.start(self.capture)
        return self.tap

    def action_capture(self) -> None:
        """Start recording every byte to a capture file in the report directory, or stop."""
        if self.capture is not None:
            writer, self.capture = self.capture, None
            if self.tap is not None and self.tap.writer is writer:
                self.tap.stop()
            else:
                writer.close()
            self.notify(ui_text("capture_stopped", self.lang, path=writer.path), timeout=8)
            self.render_status()
            return
        if self.printer is not None:
            self.notify(ui_text("not_on_printer", self.lang), severity="warning")
            return
        if self.tap is None or self.terminal is None:
            self.notify(ui_text("capture_no_port", self.lang), severity="warning")
            return
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = (self.report_dir or Path.cwd()) / f"pos-sim-capture-{self.serial or 'unknown'}-{stamp}.cap"
        try:
            writer = CaptureWriter(path, port=self.port or "", baud=self.terminal.link.timings.baud)
        except (OSError, CaptureError) as exc:
            self.notify(ui_text("capture_failed", self.lang, why=exc), severity="error")
            return
        if self.device is not None:
            writer.note("device", self.device.as_dict())
        self.capture = writer
        self.tap.start(writer)
        self.notify(ui_text("capture_started", self.lang, path=path), timeout=8)
        self.render_status()

    def action_toggle_log(self) -> None:
        """Show or hide the frame log."""
        panel = self.query_one("#logpanel")
        panel.set_class(not panel.has_class("-hidden"), "-hidden")

    def action_toggle_hex(self) -> None:
        """Decoded lines or raw hex."""
        self.hex_mode = not self.hex_mode
        self.render_status()

    def action_pause(self) -> None:
        """Stop (or resume) writing the log; frames keep being counted."""
        self.paused = not self.paused
        self.render_status()

    def action_filter(self) -> None:
        """Type message-type names to show only those (empty: all)."""
        box = self.query_one("#filter", Input)
        box.add_class("-shown")
        box.disabled = False
        box.value = " ".join(self.log_filter)
        box.focus()
        self._follow_log()

    def _follow_log(self) -> None:
        """After the layout settles (the filter box shown or hidden), the log is at its end again."""
        log = self.query_one("#log", Log)
        self._follow_pending = True

        def to_the_end() -> None:
            log.scroll_end(animate=False, immediate=True)
            self._follow_pending = False

        self.call_after_refresh(to_the_end)

    @on(Input.Submitted, "#filter")
    def _filter_set(self, event: Input.Submitted) -> None:
        self.log_filter = parse_filter(event.value)
        event.input.remove_class("-shown")
        event.input.disabled = True
        self.set_focus(None)
        self._follow_log()
        self.render_status()

    def action_language(self) -> None:
        """zh-CN ⇄ en; every label is drawn again."""
        self.lang = "en" if self.lang == "zh-CN" else "zh-CN"
        self.render_all()

    def action_help(self) -> None:
        """The keys."""
        self.push_screen(HelpScreen(self.lang))

    def action_device(self) -> None:
        """Open the device screen: history, tickets, backups, lifecycle records and actions."""
        if self.serial is None:
            self.notify(ui_text("not_connected", self.lang), severity="warning")
            return
        if self.printer is not None:
            self.notify(ui_text("not_on_printer", self.lang), severity="warning")
            return
        if self.running:
            self.notify(ui_text("busy", self.lang), severity="warning")
            return
        self.push_screen(DeviceScreen(self, self.serial, keys=self.keys_path, backup_dir=self.backup_dir),
                         lambda _: self.render_all())

    # -- what the device screen uses (pos_sim.tui.device_screen.DeviceHost) ---------------------

    def current_terminal(self) -> Terminal | None:
        """The connected terminal (None while the link is down)."""
        return self.terminal if self.link_up else None

    def open_registry(self) -> Registry:
        """The registry at ``--db`` (opened on first use, on the worker's thread; closed on exit)."""
        with self._device_registry_lock:
            if self._device_registry is None:
                self._device_registry = Registry.open(self.db_url)
            return self._device_registry

    def device_changed(self, info: DeviceInfo) -> None:
        """The device screen read the terminal's identity (a lifecycle operation changes its state)."""
        if info.serial == self.serial:
            self.device = info
            self.render_device()

    async def action_quit(self) -> None:
        """Exit; while a run is going, ask first (``q`` again or ``y`` quits).  Works with a
        question of a test open too: its dialog stays until the answer to this one."""
        if self.running and not isinstance(self.screen, QuitScreen):
            def decided(leave: bool | None) -> None:
                if leave:
                    self.quit_now()
            self.push_screen(QuitScreen(self.lang), decided)
            return
        self.quit_now()

    def quit_now(self) -> None:
        """Stop the workers, close the port, exit."""
        self.shutdown()
        self.exit(0)

    def deliver_screenshot(self, filename: str | None = None, path: str | None = None,
                           time_format: str | None = None) -> str | None:
        """Textual's screenshot (palette: "Save screenshot") goes to the Downloads folder, or to
        the current folder when there is none (Textual would fail on the missing folder)."""
        if path is None:
            from platformdirs import user_downloads_path

            downloads = user_downloads_path()
            path = str(downloads) if downloads.is_dir() else str(Path.cwd())
        return super().deliver_screenshot(filename, path, time_format)

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The palette lists every action of the keys (of the device screen, when it is open)."""
        yield from super().get_system_commands(screen)
        if isinstance(screen, DeviceScreen):
            yield from screen.system_commands()
            return
        yield SystemCommand("Device screen (d)", "History, tickets, backups and lifecycle actions of this terminal",
                            self.action_device)
        yield SystemCommand("Run all tests (r)", "Run the full plan on every fitted component", self.action_run_all)
        for i, component in enumerate(self.tiles, 1):
            yield SystemCommand(f"Run {component} ({i % 10})", f"Run the {component} self-test",
                                lambda n=i: self.action_run_one(n))
        yield SystemCommand("Abort (a)", "Abort the running self-tests", self.action_abort)
        yield SystemCommand("Export report (e)", "Write an HTML report into the current directory", self.action_export)
        yield SystemCommand("Start or stop a capture (c)", "Record every byte on the line to a capture file",
                            self.action_capture)
        yield SystemCommand("Toggle frame log (l)", "Show or hide the frame log", self.action_toggle_log)
        yield SystemCommand("Toggle raw hex (x)", "Frame log: decoded or raw hex", self.action_toggle_hex)
        yield SystemCommand("Pause frame log (p)", "Pause or resume the frame log", self.action_pause)
        yield SystemCommand("Filter frame log (f)", "Show only some message types", self.action_filter)
        yield SystemCommand("Switch language (g)", "zh-CN / en", self.action_language)
        yield SystemCommand("Help (?)", "Show the keys", self.action_help)

    # -- leaving --------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Cancel the workers, answer pending questions with no, close the terminal (idempotent)."""
        self.closing.set()
        self.workers.cancel_all()
        for request in list(self.pending_confirms):
            request.answered.set()
        term, self.terminal = self.terminal, None
        if term is not None:
            term.close()
        printer, self.printer = self.printer, None
        if printer is not None:
            printer.close()
        if self.capture is not None:   # the file is finished even when the port was already gone
            self.capture.close()
            self.capture = None

    async def on_unmount(self) -> None:
        """Make sure no worker (and so no link thread) outlives the app."""
        self.shutdown()
        with contextlib.suppress(Exception):
            await self.workers.wait_for_complete()
        with self._device_registry_lock:
            registry, self._device_registry = self._device_registry, None
        if registry is not None:
            registry.close()


__all__ = ["ConfirmRequest", "Connected", "EngineUpdate", "KeyPressed", "LinkDown", "PosSimApp", "PrinterConnected",
           "PrinterDown", "RunFinished", "TerminalRestarted", "TuiPrompter", "WorkerFailed"]
