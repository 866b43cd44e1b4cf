"""The device screen's dialogs: what a lifecycle operation needs, the confirmation, the backup folder.

Each is a modal that only collects an answer; the device screen does the work in its workers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static

from pos_sim.services.lifecycle import PreparedOperation
from pos_sim.tui.text import ui_text

#: the operations that cannot be undone: the serial number must be typed to confirm them
DESTRUCTIVE = ("unbind", "revoke", "reset")
#: what each operation asks for, in order: (field, text key)
FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "activate": (("code", "field_code"), ("merchant", "field_merchant")),
    "bind": (("merchant", "field_merchant"),),
    "unbind": (("reason", "field_reason"),),
    "revoke": (("reason", "field_reason"),),
    "reset": (("reason", "field_reason"),),
}

_DIALOG_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{ width: 76; height: auto; max-height: 90%; border: thick {colour}; background: $surface;
                    padding: 1 2; }}
{name} Input {{ margin: 0 0 1 0; }}
{name} .error {{ color: $error; height: auto; }}
{name} Horizontal {{ height: auto; align: center middle; margin-top: 1; }}
{name} Button {{ margin: 0 2; }}
"""


@dataclass(frozen=True)
class OperationInput:
    """What the technician typed for one lifecycle operation."""

    operation: str
    activation_code: str = ""
    merchant_id: str = ""
    reason: str = ""
    force: bool = False


def op_label(operation: str, lang: str) -> str:
    """An operation's name on a button or in a title (``backup`` included)."""
    return ui_text(f"op_{operation}", lang)


class OperationForm(ModalScreen[OperationInput | None]):
    """Collects an operation's arguments (code, merchant, reason, force); None when cancelled."""

    DEFAULT_CSS = _DIALOG_CSS.format(name="OperationForm", colour="$accent")
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", show=False)]

    def __init__(self, operation: str, serial: str, lang: str) -> None:
        super().__init__()
        self.operation = operation
        self.serial = serial
        self.lang = lang

    def compose(self) -> ComposeResult:
        """A title, one input per argument (and force for unbind), Next / Cancel."""
        with Vertical():
            title = ui_text("form_title", self.lang, op=op_label(self.operation, self.lang), serial=self.serial)
            yield Label(f"[b]{title}[/b]")
            for name, key in FIELDS[self.operation]:
                yield Label(ui_text(key, self.lang))
                yield Input(id=f"field-{name}")
            if self.operation == "unbind":
                yield Checkbox(ui_text("field_force", self.lang), id="field-force")
            yield Static("", id="form-error", classes="error", markup=False)
            with Horizontal():
                yield Button(ui_text("next", self.lang), id="next", variant="primary")
                yield Button(ui_text("cancel", self.lang), id="cancel")

    def on_mount(self) -> None:
        """The cursor in the first box."""
        self.query(Input).first().focus()

    def _value(self, name: str) -> str:
        found = self.query(f"#field-{name}").results(Input)
        return next((box.value.strip() for box in found), "")

    def submit(self) -> None:
        """Check that nothing is missing, then close with the answer."""
        for name, key in FIELDS[self.operation]:
            if not self._value(name):
                self.query_one("#form-error", Static).update(
                    ui_text("field_required", self.lang, field=ui_text(key, self.lang)))
                self.query_one(f"#field-{name}", Input).focus()
                return
        force = self.operation == "unbind" and self.query_one("#field-force", Checkbox).value
        self.dismiss(OperationInput(self.operation, self._value("code"), self._value("merchant"),
                                    self._value("reason"), force))

    def action_cancel(self) -> None:
        """Close without an answer."""
        self.dismiss(None)

    @on(Input.Submitted)
    def _enter(self, event: Input.Submitted) -> None:
        boxes = list(self.query(Input).results(Input))
        i = boxes.index(event.input)
        if i + 1 < len(boxes):
            boxes[i + 1].focus()
        else:
            self.submit()

    @on(Button.Pressed, "#next")
    def _next(self) -> None:
        self.submit()

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)


def confirmation_lines(prepared: PreparedOperation, given: OperationInput, lang: str) -> list[str]:
    """What will happen, in words: the question, the backup (or that there is none), the reason."""
    dev = prepared.device
    merchant = dev.merchant_id or ui_text("no_merchant", lang)
    op = given.operation
    if op in ("activate", "bind"):
        merchant = given.merchant_id
    lines = [ui_text(f"ask_{op}", lang, serial=dev.serial, merchant=merchant, code=given.activation_code,
                     state=dev.lifecycle)]
    if op == "unbind":
        b = prepared.backup
        if b is not None:
            lines.append(ui_text("ask_backup_ok", lang, path=b.path, record=b.id,
                                 date=time.strftime("%Y-%m-%d %H:%M", time.localtime(b.created_at))))
        elif prepared.forced:
            lines.append(ui_text("ask_forced", lang))
    if given.reason:
        lines.append(ui_text("ask_reason", lang, reason=given.reason))
    lines += [f"⚠ {w}" for w in prepared.warnings]
    if op in DESTRUCTIVE:
        lines.append(ui_text("ask_final", lang))
    return lines


class LifecycleConfirmScreen(ModalScreen[bool]):
    """States what an operation will do; unbind, revoke and reset need the serial number typed."""

    DEFAULT_CSS = _DIALOG_CSS.format(name="LifecycleConfirmScreen", colour="$error")
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", show=False)]

    def __init__(self, title: str, lines: list[str], serial: str, *, typed: bool, lang: str) -> None:
        super().__init__()
        self.title_text = title
        self.lines = lines
        self.serial = serial
        self.typed = typed
        self.lang = lang

    def compose(self) -> ComposeResult:
        """The question, the serial box when needed, Confirm / Cancel."""
        with Vertical():
            yield Label(f"[b]{ui_text('confirm_title', self.lang)}[/b] · {self.title_text}")
            yield Static("\n".join(self.lines), id="what", markup=False)
            if self.typed:
                yield Label(ui_text("ask_type_serial", self.lang, serial=self.serial))
                yield Input(id="typed-serial")
            with Horizontal():
                yield Button(ui_text("confirm", self.lang), id="confirm", variant="error" if self.typed else "primary",
                             disabled=self.typed)
                yield Button(ui_text("cancel", self.lang), id="cancel")

    def on_mount(self) -> None:
        """The cursor where the answer goes."""
        if self.typed:
            self.query_one("#typed-serial", Input).focus()
        else:
            self.query_one("#confirm", Button).focus()

    @on(Input.Changed, "#typed-serial")
    def _typed(self, event: Input.Changed) -> None:
        self.query_one("#confirm", Button).disabled = event.value.strip() != self.serial

    @on(Input.Submitted, "#typed-serial")
    def _typed_enter(self, event: Input.Submitted) -> None:
        if event.value.strip() == self.serial:
            self.dismiss(True)

    @on(Button.Pressed, "#confirm")
    def _confirm(self) -> None:
        if not self.typed or self.query_one("#typed-serial", Input).value.strip() == self.serial:
            self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(False)

    def action_cancel(self) -> None:
        """Escape: no."""
        self.dismiss(False)


class BackupForm(ModalScreen[str | None]):
    """Asks where the transaction-log backup goes (the configured folder filled in); None to cancel."""

    DEFAULT_CSS = _DIALOG_CSS.format(name="BackupForm", colour="$accent")
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", show=False)]

    def __init__(self, serial: str, directory: str, lang: str) -> None:
        super().__init__()
        self.serial = serial
        self.directory = directory
        self.lang = lang

    def compose(self) -> ComposeResult:
        """What a backup does, the folder, Start / Cancel."""
        with Vertical():
            yield Label(f"[b]{ui_text('backup_title', self.lang, serial=self.serial)}[/b]")
            yield Static(ui_text("backup_body", self.lang), markup=False)
            yield Input(self.directory, id="backup-dir")
            with Horizontal():
                yield Button(ui_text("start", self.lang), id="start", variant="primary")
                yield Button(ui_text("cancel", self.lang), id="cancel")

    def on_mount(self) -> None:
        """The cursor in the folder box."""
        self.query_one("#backup-dir", Input).focus()

    def _start(self) -> None:
        value = self.query_one("#backup-dir", Input).value.strip()
        if value:
            self.dismiss(value)

    @on(Input.Submitted, "#backup-dir")
    def _enter(self) -> None:
        self._start()

    @on(Button.Pressed, "#start")
    def _pressed_start(self) -> None:
        self._start()

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    def action_cancel(self) -> None:
        """Escape: no backup."""
        self.dismiss(None)


__all__ = ["DESTRUCTIVE", "BackupForm", "LifecycleConfirmScreen", "OperationForm", "OperationInput",
           "confirmation_lines", "op_label"]
