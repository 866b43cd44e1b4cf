"""The diagnostics engine with a person in the loop: prompts reach the prompter, answers reach
the terminal, and a rejected test pattern is a failed screen."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from drivers.link import LinkTimings
from drivers.terminal import Terminal
from pos_sim.diagnostics.engine import DiagnosticsEngine, Update
from pos_sim.emulator import EmulatorServer, load_scenario


class ScriptedTechnician:
    """Answers confirm prompts as told and records what it was shown."""

    def __init__(self, accept: bool) -> None:
        self.accept = accept
        self.shown: list[tuple[str, str]] = []
        self.asked: list[tuple[str, str]] = []

    def show(self, component: str, prompt: str, text: str) -> None:
        assert text and prompt != "none"
        self.shown.append((component, prompt))

    def confirm(self, component: str, prompt: str, text: str) -> bool:
        assert text
        self.asked.append((component, prompt))
        return self.accept


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    with EmulatorServer(load_scenario("healthy"), speed=50) as server:
        term = Terminal.open(server.serve_pty(), timings=LinkTimings(keepalive_idle=3600))
        try:
            yield term
        finally:
            term.close()


def test_prompts_reach_the_technician_and_answers_the_terminal(terminal: Terminal) -> None:
    tech = ScriptedTechnician(accept=True)
    updates: list[Update] = []
    report = DiagnosticsEngine(terminal, lang="zh", prompter=tech, on_update=updates.append).run(
        "full", tests=["screen", "keypad", "magstripe", "printer"])
    assert {f.component: f.verdict for f in report.results} == dict.fromkeys(
        ["screen", "keypad", "magstripe", "printer"], "pass")
    assert ("screen", "confirm_pattern") in tech.asked and ("printer", "confirm_print") in tech.asked
    assert ("magstripe", "swipe_card") in tech.shown and ("keypad", "press_all_keys") in tech.shown
    assert len(tech.asked) == len(set(tech.asked)), "a repeated prompt was asked twice"
    assert any(u.kind == "progress" for u in updates) and any(u.kind == "finished" for u in updates)


def test_rejected_pattern_fails_the_screen(terminal: Terminal) -> None:
    tech = ScriptedTechnician(accept=False)
    report = DiagnosticsEngine(terminal, lang="en", prompter=tech).run("full", tests=["screen"])
    (screen,) = report.results
    assert (screen.verdict, screen.code, screen.category) == ("fail", "pattern_rejected", "hardware")
    assert screen.advice and report.exit_status & 8


def test_without_a_person_nothing_is_asked_and_nothing_passes_unseen(terminal: Terminal) -> None:
    tech = ScriptedTechnician(accept=True)
    report = DiagnosticsEngine(terminal, lang="en", prompter=tech).run("full", interactive=False)
    assert tech.asked == [] and tech.shown == []
    by = {f.component: f for f in report.results}
    for component in ("screen", "keypad", "magstripe"):
        assert by[component].verdict == "skipped", by[component]


def test_abort_ends_a_running_test(terminal: Terminal) -> None:
    run = terminal.start_self_test("printer", "full", interactive=True)
    terminal.abort("printer")
    assert run.wait(timeout=10).outcome == "aborted"
