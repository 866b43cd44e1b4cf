"""Rewrite the snapshot tests' fixed data: ``python -m tests.pos_sim.tui.make_fixtures``.

Runs the full plan on the emulator (healthy and dropped, every confirm answered yes) and saves
each report's JSON; the snapshot app draws from these files, never from a live emulator.
"""

from __future__ import annotations

import json
from pathlib import Path

from drivers.link import LinkTimings
from drivers.terminal import Terminal
from pos_sim.diagnostics.engine import DiagnosticsEngine
from pos_sim.emulator import EmulatorServer, load_scenario

HERE = Path(__file__).parent / "fixtures"


class Yes:
    """Answers every confirm with yes."""

    def show(self, component: str, prompt: str, text: str) -> None:
        """Nothing to show."""

    def confirm(self, component: str, prompt: str, text: str) -> bool:
        """Yes."""
        return True


def write_status() -> None:
    """Write status-dropped.json: every fitted component's STATUS_REPLY block of ``dropped``."""
    with (EmulatorServer(load_scenario("dropped"), speed=50) as server,
          Terminal.open(server.serve_pty(), timings=LinkTimings(keepalive_idle=3600)) as term):
        hello = term.hello
        assert hello is not None
        status = {c: term.status(c) for c in hello.components}
    for block in status.values():   # bytes fields (network ipv4, chip atr) as lists for JSON
        for key, value in block.items():
            if isinstance(value, bytes):
                block[key] = list(value)
    (HERE / "status-dropped.json").write_text(json.dumps(status, indent=1) + "\n", encoding="utf-8")


def main() -> None:
    """Write healthy.json, dropped.json and status-dropped.json."""
    for name in ("healthy", "dropped"):
        with (EmulatorServer(load_scenario(name), speed=50) as server,
              Terminal.open(server.serve_pty(), timings=LinkTimings(keepalive_idle=3600)) as term):
            report = DiagnosticsEngine(term, lang="en", prompter=Yes()).run("full")
        data = report.as_json()
        data["port"] = "/dev/ttyACM0"
        (HERE / f"{name}.json").write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    write_status()


if __name__ == "__main__":
    main()
