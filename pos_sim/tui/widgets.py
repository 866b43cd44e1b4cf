"""The main screen's widgets: component tiles, the keypad map and the button bar."""

from __future__ import annotations

from textual import events
from textual.message import Message
from textual.widgets import Static

from protocols.pos.codes import KeyCode

#: the keypad map's layout: digits, then the function keys (three rows fit the smallest tile)
KEY_ROWS: tuple[tuple[KeyCode, ...], ...] = (
    (KeyCode.k1, KeyCode.k2, KeyCode.k3, KeyCode.k4, KeyCode.k5, KeyCode.k6),
    (KeyCode.k7, KeyCode.k8, KeyCode.k9, KeyCode.k0, KeyCode.dot, KeyCode.func),
    (KeyCode.cancel, KeyCode.clear, KeyCode.enter, KeyCode.up, KeyCode.down, KeyCode.power),
)
KEY_FACES: dict[KeyCode, str] = {
    KeyCode.cancel: "✕", KeyCode.clear: "←", KeyCode.enter: "↵", KeyCode.dot: ".", KeyCode.func: "F",
    KeyCode.up: "↑", KeyCode.down: "↓", KeyCode.power: "⏻",
}


def key_face(code: KeyCode) -> str:
    """The character a key shows on the map."""
    return KEY_FACES.get(code, code.name[1:])


class Tile(Static):
    """One component: name in the border, state, measurements, finding and first advice step."""

    DEFAULT_CSS = """
    Tile { border: round $panel-lighten-2; height: 1fr; padding: 0 1; overflow: hidden; }
    Tile.-idle { border: round $panel-lighten-2; }
    Tile.-running { border: round $accent; }
    Tile.-pass { border: round $success; }
    Tile.-warn { border: round $warning; }
    Tile.-fail { border: round $error; }
    Tile.-error { border: round magenta; }
    Tile.-skipped { border: round $panel; color: $text-muted; }
    Tile:hover { background: $boost; }
    """
    STATES = ("idle", "running", "pass", "warn", "fail", "skipped", "error")

    class Clicked(Message):
        """The technician clicked a tile: run that component."""

        def __init__(self, component: str) -> None:
            super().__init__()
            self.component = component

    def __init__(self, component: str, index: int) -> None:
        super().__init__("", id=f"tile-{component}", markup=False)
        self.component = component
        self.index = index

    def show(self, title: str, state: str, state_text: str, lines: list[str]) -> None:
        """Draw the tile."""
        self.border_title = title
        for s in self.STATES:
            self.set_class(s == state, f"-{s}")
        self.update("\n".join([state_text, *lines]))

    def on_click(self, event: events.Click) -> None:
        """Run this tile's test."""
        event.stop()
        self.post_message(self.Clicked(self.component))


class KeypadMap(Static):
    """The terminal's keys; each lights up when a key_pressed event reports it."""

    DEFAULT_CSS = """
    KeypadMap { border: round $panel-lighten-2; height: 1fr; padding: 0 1; overflow: hidden; }
    """

    def __init__(self) -> None:
        super().__init__("", id="keypad")
        self.seen: set[int] = set()
        self.last: int | None = None

    def press(self, code: int) -> None:
        """Light a key."""
        self.seen.add(code)
        self.last = code
        self.redraw()

    def reset(self) -> None:
        """All keys dark again (a new keypad test)."""
        self.seen.clear()
        self.last = None
        self.redraw()

    def redraw(self, title: str | None = None) -> None:
        """Draw the map: pressed keys reversed, the latest in bold."""
        if title is not None:
            self.border_title = title
        rows = []
        for row in KEY_ROWS:
            cells = []
            for code in row:
                face = key_face(code)
                if int(code) == self.last:
                    cells.append(f"[b reverse $success]{face}[/]")
                elif int(code) in self.seen:
                    cells.append(f"[reverse]{face}[/]")
                else:
                    cells.append(face)
            rows.append(" ".join(cells))
        self.update("\n".join(rows))
