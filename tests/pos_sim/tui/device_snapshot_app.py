"""A test-only app for the device screen's snapshot: the real screen fed a fixed view (no port,
no registry, no clock; the test pins the time zone)."""

from __future__ import annotations

from drivers.terminal import DeviceInfo
from pos_sim.registry import (
    MATERIALS,
    BackupRecord,
    DeviceRecord,
    LifecycleOpRecord,
    ResultRecord,
    RunRecord,
    TicketEventRecord,
    TicketRecord,
)
from pos_sim.tui import PosSimApp
from pos_sim.tui.device_screen import DeviceScreen, DeviceView

SERIAL = "SP0000123"
T0 = 1767225600.0   # 2026-01-01 00:00 UTC
DAY = 86400.0
INFO = DeviceInfo("SimPOS", "SP-M7", SERIAL, "B2", "3.2.1", "unactivated", "", 1767225600, int(T0 + 9 * DAY))


def _run(run_id: int, at: float, plan: str, verdict: str, failing: tuple[str, ...]) -> RunRecord:
    results = tuple(ResultRecord(c, "fail" if c in failing else "pass", None, None, None, "", False)
                    for c in ("power", "printer", "security"))
    return RunRecord(run_id, SERIAL, at, at + 60, plan, "en", "3.2.1", verdict, 0, "/dev/ttyACM0", results)


VIEW = DeviceView(
    serial=SERIAL,
    info=INFO,
    record=DeviceRecord(SERIAL, "SimPOS", "SP-M7", "3.2.1", "unactivated", "", T0, T0 + 9 * DAY),
    runs=(_run(1, T0 + DAY, "full", "needs_repair", ("printer", "security")),
          _run(2, T0 + 8 * DAY, "quick", "ok", ())),
    tickets=(TicketRecord(4, SERIAL, "diagnosing", "cracked screen after a fall", T0 + 2 * DAY, T0 + 3 * DAY,
                          {m: m in ("owner_identity", "model_and_serial", "fault_description") for m in MATERIALS},
                          (TicketEventRecord(T0 + 2 * DAY, None, "opened", ""),
                           TicketEventRecord(T0 + 3 * DAY, "opened", "diagnosing", "bench 2"))),),
    backups=(BackupRecord(7, SERIAL, f"/srv/backups/{SERIAL}-txlog-20260109T100000Z.json", "ab" * 32, 120,
                          T0 + 9 * DAY + 36000),),
    ops=(LifecycleOpRecord(3, SERIAL, T0 + 9 * DAY + 36060, "unbind", "ok", "bound", "unactivated", 8,
                           "", "tech", "bench-2", "shop closed", False, 7, ""),),
)


class FixedDeviceScreen(DeviceScreen):
    """The device screen showing :data:`VIEW` and the result of the unbind it records."""

    def reload(self) -> None:
        """No worker: the fixed view."""
        self.show_view(VIEW)
        self.show_result(f"{SERIAL}: unbind done, bound → unactivated (counter 8); recorded in the registry "
                         "(lifecycle record #3) and the audit log", ok=True)

    def link_changed(self) -> None:
        """Connected, as far as the picture goes."""


class DeviceSnapshotApp(PosSimApp):
    """The main app with the device screen open on the fixed view."""

    def __init__(self) -> None:
        super().__init__("/dev/ttyACM0", lang="en", connect=False)

    def on_mount(self) -> None:
        """The device as connected, then the screen."""
        super().on_mount()
        self.device, self.serial, self.link_up = INFO, SERIAL, True
        self.push_screen(FixedDeviceScreen(self, SERIAL))
