"""A test-only app for snapshot tests: the real screen, fed from fixed data (no port, no clock)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from drivers.terminal import DeviceInfo
from pos_sim.diagnostics.engine import DiagnosticReport, Finding
from pos_sim.tui import PosSimApp
from pos_sim.tui.completeness import tui_completeness
from pos_sim.tui.model import LinkCounters, format_frame
from pos_sim.tui.widgets import KeypadMap
from protocols.pos import Frame, MessageType
from protocols.pos.messages import encode_payload

FIXTURES = Path(__file__).parent / "fixtures"
#: frames for the log, without time stamps
LOG_FRAMES: tuple[tuple[str, MessageType, int, dict[str, Any]], ...] = (
    ("out", MessageType.HELLO, 1, {"protocol_version": 1, "max_payload": 1024, "host": "pos-sim"}),
    ("out", MessageType.INFO_REQUEST, 2, {}),
    ("out", MessageType.SELFTEST_START, 3, {"component": "screen", "plan": "full", "interactive": True}),
    ("out", MessageType.SELFTEST_CONFIRM, 4, {"component": "screen", "accepted": True}),
    ("out", MessageType.SELFTEST_ABORT, 5, {"component": 0xFF}),
    ("out", MessageType.EVENTLOG_READ, 6, {"page": 0}),
)


def finding(d: dict[str, Any]) -> Finding:
    """A Finding from its JSON."""
    return Finding(**{**d, "advice": tuple(d["advice"])})


def status_blocks() -> dict[str, dict[str, Any]]:
    """The ``dropped`` terminal's STATUS_REPLY blocks (byte fields were saved as lists)."""
    blocks: dict[str, dict[str, Any]] = json.loads((FIXTURES / "status-dropped.json").read_text(encoding="utf-8"))
    return {c: {k: bytes(v) if isinstance(v, list) and k in ("ipv4", "atr") else v for k, v in b.items()}
            for c, b in blocks.items()}


class SnapshotApp(PosSimApp):
    """The main screen showing a saved run (``healthy`` or ``dropped``), or with ``idle`` the
    screen before any test: the ``dropped`` terminal's status on the tiles."""

    def __init__(self, run: str, lang: str = "en", *, idle: bool = False) -> None:
        super().__init__("/dev/ttyACM0", lang=lang, connect=False)
        self.data = json.loads((FIXTURES / f"{run}.json").read_text(encoding="utf-8"))
        self.idle = idle

    def on_mount(self) -> None:
        """Load the run into the tiles, the keypad, the log and the counters."""
        super().on_mount()
        data = self.data
        self.device = DeviceInfo(**data["device"])
        self.serial = self.device.serial
        self.link_up = True
        for component, block in status_blocks().items():
            self.tiles[component].status = block
        findings = [finding(d) for d in data["results"]]
        if not self.idle:
            for f in findings:
                tile = self.tiles[f.component]
                tile.state, tile.finding = f.verdict, f
            self.report = DiagnosticReport(port=data["port"], plan=data["plan"], lang=data["lang"],
                                           started_at=data["started_at"], device=self.device, results=findings,
                                           verdict=data["verdict"], exit_status=data["exit_status"])
            self.completeness = tui_completeness(self.report, [f.component for f in findings])
            self.record_note = ("recorded", {"run": 7, "serial": self.serial})
        stats = data["link"]
        self.counters = LinkCounters(stats["frames_in"], stats["frames_out"], stats["retransmits"],
                                     stats["deframer"]["bad_crc"], stats["deframer"]["bytes_dropped"])
        keypad = self.query_one(KeypadMap)
        for code in (0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x0D):
            keypad.press(code)
        lines = [format_frame(d, Frame(1, 0, seq, int(t), encode_payload(int(t), fields)), hex_mode=False)
                 for d, t, seq, fields in LOG_FRAMES]
        self.query_one("#log").write_lines(lines)  # type: ignore[attr-defined]
        self.render_all()
