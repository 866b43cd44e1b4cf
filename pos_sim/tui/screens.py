"""Modal screens: the confirm prompt, the help, and the port picker."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Label, OptionList, Static
from textual.widgets.option_list import Option

from pos_sim.tui.text import help_text, ui_text

#: how often the picker lists the ports again
PICKER_REFRESH = 2.0


class ConfirmScreen(ModalScreen[bool | None]):
    """A yes/no question from a running test (does the test pattern look right?): yes or no
    answer it; Escape (or Abort) answers nothing and dismisses with None: the app aborts the run,
    so the check is not tested rather than failed."""

    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical { width: 60; height: auto; border: thick $warning; background: $surface;
                               padding: 1 2; }
    ConfirmScreen Horizontal { height: auto; align: center middle; margin-top: 1; }
    ConfirmScreen Button { margin: 0 2; }
    ConfirmScreen #confirm-hint { color: $text-muted; margin-top: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("y", "answer(True)", "Yes"), Binding("n", "answer(False)", "No"),
                Binding("escape", "abort_run", "Abort", show=False),
                # a modal screen stops the app's keys: quitting must still work from here
                Binding("q", "app.quit", "Quit", show=False)]

    def __init__(self, component: str, text: str, lang: str) -> None:
        super().__init__()
        self.component = component
        self.text = text
        self.lang = lang

    def compose(self) -> ComposeResult:
        """A title, the question and Yes / No."""
        with Vertical():
            yield Label(f"[b]{ui_text('confirm_title', self.lang)}[/b] · {self.component}")
            yield Static(self.text, id="question")
            yield Static(ui_text("confirm_hint", self.lang), id="confirm-hint")
            with Horizontal():
                yield Button(ui_text("yes", self.lang), id="yes", variant="success")
                yield Button(ui_text("no", self.lang), id="no", variant="error")
                yield Button(ui_text("abort_run", self.lang), id="abort")

    def action_answer(self, accepted: bool) -> None:
        """Close with the answer."""
        self.dismiss(accepted)

    def action_abort_run(self) -> None:
        """Close without an answer: the run is aborted."""
        self.dismiss(None)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "abort" else event.button.id == "yes")


class QuitScreen(ModalScreen[bool]):
    """Quit while a run is going? ``y`` or ``q`` quits, ``n`` or Escape stays."""

    DEFAULT_CSS = """
    QuitScreen { align: center middle; }
    QuitScreen > Vertical { width: 60; height: auto; border: thick $error; background: $surface; padding: 1 2; }
    QuitScreen Horizontal { height: auto; align: center middle; margin-top: 1; }
    QuitScreen Button { margin: 0 2; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("y,q", "leave(True)", "Quit"),
                                             Binding("n,escape", "leave(False)", "Stay")]

    def __init__(self, lang: str) -> None:
        super().__init__()
        self.lang = lang

    def compose(self) -> ComposeResult:
        """The question and Quit / Stay."""
        with Vertical():
            yield Label(f"[b]{ui_text('quit_title', self.lang)}[/b]")
            yield Static(ui_text("quit_question", self.lang))
            with Horizontal():
                yield Button(ui_text("quit_yes", self.lang), id="quit-yes", variant="error")
                yield Button(ui_text("quit_no", self.lang), id="quit-no")

    def action_leave(self, leave: bool) -> None:
        """Close with the decision."""
        self.dismiss(leave)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "quit-yes")


class HelpScreen(ModalScreen[None]):
    """The keys."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical { width: 70; height: auto; border: thick $accent; background: $surface; padding: 1 2; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def __init__(self, lang: str) -> None:
        super().__init__()
        self.lang = lang

    def compose(self) -> ComposeResult:
        """The key table."""
        with Vertical():
            yield Label(f"[b]{ui_text('help_title', self.lang)}[/b]", id="help-title")
            yield Static(help_text(self.lang), id="help-body")


@dataclass(frozen=True)
class PortEntry:
    """One line of the picker."""

    port: str
    label: str


#: where the kernel's USB printer class puts receipt printers (not serial ports: discovery misses them)
USB_LP_DIR = Path("/dev/usb")


def discover_entries(lp_dir: Path = USB_LP_DIR) -> list[PortEntry]:
    """Discovered serial ports (terminals and receipt printers first), the USB printer-class
    devices (``/dev/usb/lp*``), then the emulator's scenarios as emu:// ports."""
    from drivers import discovery
    from drivers.errors import DriverError
    from pos_sim.emulator import scenario_names

    entries: list[PortEntry] = []
    try:
        ports = discovery.list_ports()
    except DriverError:  # a broken VID:PID table must not take the picker down
        ports = []
    for p in ports:
        what = p.known.label if p.known is not None else (p.description or p.kind)
        entries.append(PortEntry(p.preferred_path, f"{p.preferred_path}  [{p.kind}] {what}"))
    with contextlib.suppress(OSError):
        lps = sorted(lp_dir.glob("lp[0-9]*"), key=lambda p: (len(p.name), p.name))
        entries += [PortEntry(str(p), f"{p}  [receipt-printer] USB printer class (--device escpos)") for p in lps]
    entries += [PortEntry(f"emu://{name}", f"emu://{name}  [emulator]") for name in scenario_names()]
    return entries


class PickerScreen(ModalScreen[str]):
    """Lists the ports, refreshed every ~2 s; dismisses with the chosen one."""

    DEFAULT_CSS = """
    PickerScreen { align: center middle; }
    PickerScreen > Vertical { width: 90%; height: 80%; border: thick $accent; background: $surface; }
    PickerScreen OptionList { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("q,escape", "app.quit", "Quit")]

    class Listed(Message):
        """A fresh list of ports from the discovery worker."""

        def __init__(self, entries: list[PortEntry]) -> None:
            super().__init__()
            self.entries = entries

    def __init__(self, lang: str) -> None:
        super().__init__()
        self.lang = lang
        self.entries: list[PortEntry] = []

    def compose(self) -> ComposeResult:
        """The title and the list."""
        with Vertical():
            yield Label(f"[b]{ui_text('picker_title', self.lang)}[/b]")
            yield OptionList(id="ports")

    def on_mount(self) -> None:
        """List now, then every ~2 s."""
        self.query_one(OptionList).focus()
        self._discover()
        self.set_interval(PICKER_REFRESH, self._discover)

    @work(thread=True, exclusive=True, group="discover", exit_on_error=False)
    def _discover(self) -> None:
        self.post_message(self.Listed(discover_entries()))

    def on_picker_screen_listed(self, message: Listed) -> None:
        """Show the list, keeping the highlighted port where it still exists."""
        if message.entries == self.entries:
            return
        options = self.query_one(OptionList)
        current = None
        if options.highlighted is not None and options.highlighted < len(self.entries):
            current = self.entries[options.highlighted].port
        self.entries = message.entries
        options.clear_options()
        options.add_options([Option(e.label, id=e.port) for e in self.entries])
        ports = [e.port for e in self.entries]
        options.highlighted = ports.index(current) if current in ports else (0 if ports else None)

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.dismiss(event.option.id)
