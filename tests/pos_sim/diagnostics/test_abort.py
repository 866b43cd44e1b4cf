"""A technician who ends the run at a prompt: the engine aborts the terminal's tests and makes
no report (RunAborted goes through), so nothing is recorded as failed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from drivers.errors import RequestRefused
from drivers.link import LinkTimings
from drivers.terminal import Terminal
from pos_sim.diagnostics.engine import DiagnosticsEngine, RunAborted
from pos_sim.emulator import EmulatorServer, load_scenario


class WalksAway:
    """Ends the run at the first yes/no question."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def show(self, component: str, prompt: str, text: str) -> None:
        pass

    def confirm(self, component: str, prompt: str, text: str) -> bool:
        self.asked.append(component)
        raise RunAborted("end of input")


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    with EmulatorServer(load_scenario("healthy"), speed=50) as server:
        term = Terminal.open(server.serve_pty(), timings=LinkTimings(keepalive_idle=3600))
        try:
            yield term
        finally:
            term.close()


def test_ending_the_run_at_a_prompt_aborts_the_terminals_test(terminal: Terminal) -> None:
    tech = WalksAway()
    with pytest.raises(RunAborted):
        DiagnosticsEngine(terminal, lang="en", prompter=tech).run("full", ["printer"])
    assert tech.asked == ["printer"]
    # the printer test was aborted on the terminal, so a new one is ACKed: a running one is
    # NAK busy (docs/protocol.md section 8), which start_self_test raises as RequestRefused
    try:
        run = terminal.start_self_test("printer", "quick", interactive=False)
    except RequestRefused as exc:
        pytest.fail(f"the printer test was still running on the terminal: {exc}")
    # (its first result may be the aborted one's, still on its way: not what this test is about)
    assert run.wait(timeout=60).outcome in ("aborted", "passed")
