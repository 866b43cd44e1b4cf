"""Pilot tests of the device screen against the in-process emulator (emu://, speed inf) with a
registry and a key file in the test's temporary directory."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest
from textual.widgets import Button, Checkbox, DataTable, Input, Static

from drivers.link import LinkTimings
from drivers.terminal import Terminal
from pos_sim.cli.tui import add_parser
from pos_sim.diagnostics.engine import DiagnosticsEngine, exit_status, overall_verdict
from pos_sim.emulator import load_scenario
from pos_sim.registry import Registry
from pos_sim.services.keys import KeyFile
from pos_sim.tui import PosSimApp
from pos_sim.tui.device_screen import DeviceScreen
from pos_sim.tui.lifecycle_dialogs import BackupForm, LifecycleConfirmScreen, OperationForm
from protocols.pos import MessageType
from tests.pos_sim.tui.conftest import make_app, sync, wait_for

PORT = "emu://healthy?speed=inf"
SERIAL = "SP0000123"
MERCHANT = "898310048161234"
SIZE = (120, 40)


@dataclasses.dataclass
class Bench:
    """Where one test's registry, key file and backups live."""

    db: str
    keys: Path
    backups: Path

    def registry(self) -> Registry:
        return Registry.open(self.db)


@pytest.fixture
def bench(tmp_path: Path) -> Bench:
    keys = tmp_path / "keys.toml"
    KeyFile(keys, {SERIAL: load_scenario("healthy").lifecycle.key}).save()
    return Bench(f"sqlite:///{tmp_path / 'registry.db'}", keys, tmp_path / "backups")


def app_on(bench: Bench, *, keys: Path | None = None) -> PosSimApp:
    return make_app(PORT, db=bench.db, keys=str(keys or bench.keys), backup_dir=str(bench.backups))


def record_a_run(bench: Bench) -> None:
    """A quick run on another emulated SP0000123, with the printer turned into a failure."""
    with Terminal.open(PORT, timings=LinkTimings(keepalive_idle=3600)) as term:
        report = DiagnosticsEngine(term, lang="en").run("quick", ["power", "printer"], interactive=False)
    report.results = [dataclasses.replace(f, verdict="fail") if f.component == "printer" else f
                      for f in report.results]
    report.exit_status = exit_status(report)
    report.verdict = overall_verdict(report.exit_status)
    with bench.registry() as reg:
        reg.record_run(report)


async def open_device_screen(pilot: object, app: PosSimApp) -> DeviceScreen:
    await wait_for(pilot, lambda: app.device is not None and app.link_up)
    await pilot.press("d")  # type: ignore[attr-defined]
    await wait_for(pilot, lambda: isinstance(app.screen, DeviceScreen) and app.screen.loaded)
    screen = app.screen
    assert isinstance(screen, DeviceScreen)
    return screen


def header(screen: DeviceScreen) -> str:
    return str(screen.query_one("#dev-header", Static).render())


def rows(screen: DeviceScreen, section: str) -> list[list[str]]:
    table = screen.query_one(f"#table-{section}", DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def finished(pilot: object, screen: DeviceScreen) -> str:
    """Wait for the action under way to end and its reload to land; return the result line."""
    await wait_for(pilot, lambda: not screen.busy and screen.app.screen is screen
                   and not any(w.is_running for w in screen.workers))
    return screen.result_text


async def fill_form(pilot: object, app: PosSimApp, key: str, **fields: str | bool) -> None:
    """Press an operation's key and fill its form; Next."""
    await pilot.press(key)  # type: ignore[attr-defined]
    await wait_for(pilot, lambda: isinstance(app.screen, OperationForm))
    form = app.screen
    for name, value in fields.items():
        if isinstance(value, bool):
            form.query_one(f"#field-{name}", Checkbox).value = value
        else:
            form.query_one(f"#field-{name}", Input).value = value
    await pilot.click("#next")  # type: ignore[attr-defined]


async def confirm_by_typing(pilot: object, app: PosSimApp, serial: str = SERIAL) -> str:
    """Type the serial into the confirmation and press Enter; return what the dialog said."""
    await wait_for(pilot, lambda: isinstance(app.screen, LifecycleConfirmScreen))
    dialog = app.screen
    assert isinstance(dialog, LifecycleConfirmScreen)
    what = str(dialog.query_one("#what", Static).render())
    assert dialog.query_one("#confirm", Button).disabled
    await pilot.press(*serial)  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]
    assert not dialog.query_one("#confirm", Button).disabled
    await pilot.press("enter")  # type: ignore[attr-defined]
    return what


def lc_requests_sent(app: PosSimApp) -> list[str]:
    """Lifecycle frames that went out since the log was last drawn (the screen keeps them buffered)."""
    items, _ = app.frames.drain()
    return [MessageType(f.type).name for _, d, f in items
            if d == "out" and f.type in (MessageType.LC_REQUEST, MessageType.LC_CHALLENGE_REQUEST)]


@sync
async def test_screen_shows_identity_history_and_tickets(bench: Bench) -> None:
    record_a_run(bench)
    with bench.registry() as reg:
        ticket = reg.open_ticket(SERIAL, "cracked screen", materials={"owner_identity": True})
        reg.advance_ticket(ticket.id, "received", note="at the counter")
    app = app_on(bench)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_device_screen(pilot, app)
        text = header(screen)
        assert SERIAL in text and "SP-M7" in text and "state bound" in text and MERCHANT in text
        assert "registry: first seen" in text
        (run,) = rows(screen, "runs")
        assert run[2:] == ["quick", "needs_repair", "printer"]
        (t,) = rows(screen, "tickets")
        assert t[1:3] == ["received", "cracked screen"]
        assert t[3].endswith("received · at the counter")
        assert "proof_of_purchase" in t[4] and "owner_identity" not in t[4]
        assert rows(screen, "backups") == [] and rows(screen, "lifecycle") == []
        await pilot.press("2")
        assert screen.query_one("#dev-sections").active == "sec-tickets"  # type: ignore[attr-defined]
        titles = [c.title for c in app.get_system_commands(screen)]
        assert "Unbind (u)" in titles and "Back up the transaction log (b)" in titles
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, DeviceScreen))
        assert "Device screen (d)" in [c.title for c in app.get_system_commands(app.screen)]
        await pilot.press("q")


@sync
async def test_backup_then_unbind_then_activate(bench: Bench) -> None:
    app = app_on(bench)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_device_screen(pilot, app)
        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(app.screen, BackupForm))
        assert app.screen.query_one("#backup-dir", Input).value == str(bench.backups)
        await pilot.press("enter")
        result = await finished(pilot, screen)
        assert screen.result_ok, result
        (path,) = bench.backups.glob(f"{SERIAL}-txlog-*.json")
        assert str(path) in result and "120 transactions" in result
        with bench.registry() as reg:
            (backup,) = reg.backups(SERIAL)
        assert backup.path == str(path.resolve()) and backup.records == 120
        assert rows(screen, "backups")[0][2:4] == ["120", backup.sha256[:12] + "…"]

        await fill_form(pilot, app, "u", reason="shop closed")
        what = await confirm_by_typing(pilot, app)
        assert f"Unbind {SERIAL} from merchant {MERCHANT}?" in what and "cannot be undone" in what
        assert str(path.resolve()) in what
        result = await finished(pilot, screen)
        assert screen.result_ok, result
        assert "unbind done, bound → unactivated" in result
        assert "state unactivated" in header(screen)
        with bench.registry() as reg:
            (op,) = reg.lifecycle_ops(SERIAL)
            audit = [e for e in reg.audit_log() if e.action == "device.unbind"]
        assert (op.operation, op.status, op.state_after, op.forced, op.backup_id) == (
            "unbind", "ok", "unactivated", False, backup.id)
        assert [(e.outcome, e.target, e.details["reason"]) for e in audit] == [("ok", SERIAL, "shop closed")]
        assert rows(screen, "lifecycle")[0][2:7] == ["unbind", "ok", "bound → unactivated", str(op.counter), ""]

        # activate asks for the code and the merchant, and a plain confirmation (nothing to type)
        await fill_form(pilot, app, "a", code="A7K2-99QX", merchant="898310048169999")
        await wait_for(pilot, lambda: isinstance(app.screen, LifecycleConfirmScreen))
        assert not app.screen.query("#typed-serial")
        assert not app.screen.query_one("#confirm", Button).disabled
        await pilot.click("#confirm")
        result = await finished(pilot, screen)
        assert screen.result_ok and "activate done, unactivated → activated" in result
        assert "898310048169999" in header(screen)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, DeviceScreen))
        assert app.device is not None and app.device.lifecycle == "activated"
        assert "state activated" in str(app.query_one("#device", Static).render())
        await pilot.press("q")


@sync
async def test_cancelling_the_confirmation_sends_nothing(bench: Bench) -> None:
    app = app_on(bench)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_device_screen(pilot, app)
        with bench.registry() as reg:
            audit_before = len(reg.audit_log())
        lc_requests_sent(app)
        await fill_form(pilot, app, "x", reason="resale")
        await wait_for(pilot, lambda: isinstance(app.screen, LifecycleConfirmScreen))
        dialog = app.screen
        assert "Factory reset SP0000123?" in str(dialog.query_one("#what", Static).render())
        await pilot.press(*"SP0000124")   # the wrong serial does not unlock Confirm
        await pilot.pause()
        assert dialog.query_one("#confirm", Button).disabled
        await pilot.press("enter")
        assert app.screen is dialog
        await pilot.press("escape")
        result = await finished(pilot, screen)
        assert not screen.result_ok and "not confirmed: nothing was sent" in result
        sent = lc_requests_sent(app)
        assert "LC_CHALLENGE_REQUEST" in sent and "LC_REQUEST" not in sent   # checked and signed, never sent
        with bench.registry() as reg:
            assert reg.lifecycle_ops(SERIAL) == []
            assert len(reg.audit_log()) == audit_before
        assert "state bound" in header(screen)
        await pilot.press("q")


@sync
async def test_unbind_without_a_backup_is_refused_before_anything_is_sent(bench: Bench) -> None:
    app = app_on(bench)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_device_screen(pilot, app)
        lc_requests_sent(app)
        await fill_form(pilot, app, "u", reason="shop closed")
        result = await finished(pilot, screen)
        assert not screen.result_ok
        assert f"no verified transaction-log backup of {SERIAL}" in result and "press b" in result
        assert "-error" in screen.query_one("#dev-result").classes
        assert lc_requests_sent(app) == []
        with bench.registry() as reg:
            assert reg.lifecycle_ops(SERIAL) == []
            refused = [e for e in reg.audit_log() if e.action == "device.unbind"]
        assert [e.outcome for e in refused] == ["host_refused"]
        assert "state bound" in header(screen)
        await pilot.press("q")


@sync
async def test_forced_unbind_says_there_is_no_backup_and_is_recorded_as_forced(bench: Bench) -> None:
    app = app_on(bench)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_device_screen(pilot, app)
        await fill_form(pilot, app, "u", reason="terminal stolen", force=True)
        assert "NO verified backup" in await confirm_by_typing(pilot, app)
        result = await finished(pilot, screen)
        assert screen.result_ok and "WITHOUT a verified backup" in result
        with bench.registry() as reg:
            (op,) = reg.lifecycle_ops(SERIAL)
        assert op.forced and op.status == "ok" and op.backup_id is None
        await pilot.press("q")


@sync
async def test_a_missing_key_file_or_key_is_shown(bench: Bench, tmp_path: Path) -> None:
    app = app_on(bench, keys=tmp_path / "nowhere.toml")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_device_screen(pilot, app)
        lc_requests_sent(app)
        await fill_form(pilot, app, "v", reason="bought by mistake")
        result = await finished(pilot, screen)
        assert not screen.result_ok and f"no key file at {tmp_path / 'nowhere.toml'}" in result
        screen.keys_path = tmp_path / "other.toml"
        KeyFile(tmp_path / "other.toml", {"SP0000999": bytes(32)}).save()
        await fill_form(pilot, app, "v", reason="bought by mistake")
        result = await finished(pilot, screen)
        assert not screen.result_ok and f"no key for terminal {SERIAL}" in result
        assert lc_requests_sent(app) == []
        with bench.registry() as reg:
            assert reg.lifecycle_ops(SERIAL) == []
        await pilot.press("q")


@sync
async def test_form_needs_its_fields_and_escape_leaves_it(bench: Bench) -> None:
    app = app_on(bench)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_device_screen(pilot, app)
        await fill_form(pilot, app, "a", code="X1")
        assert isinstance(app.screen, OperationForm)
        assert "fill in: merchant number" in str(app.screen.query_one("#form-error", Static).render())
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)
        assert not screen.busy and screen.result_text == ""
        await pilot.press("q")


def test_tui_command_takes_keys_db_and_backup_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    p = argparse.ArgumentParser(prog="pos-sim")
    add_parser(p.add_subparsers(dest="command"))
    args = p.parse_args(["tui", PORT, "--keys", "k.toml", "--db", "sqlite:///r.db", "--backup-dir", "/b"])
    made: list[PosSimApp] = []

    def run(self: PosSimApp) -> None:
        made.append(self)

    monkeypatch.setattr(PosSimApp, "run", run)
    assert args.func(args) == 0
    (app,) = made
    assert (app.keys_path, app.db_url, app.backup_dir) == ("k.toml", "sqlite:///r.db", "/b")
    assert PosSimApp(PORT).backup_dir == "~/pos-sim-backups"
