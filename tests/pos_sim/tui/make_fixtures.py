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


def main() -> None:
    """Write healthy.json and dropped.json."""
    for name in ("healthy", "dropped"):
        with (EmulatorServer(load_scenario(name), speed=50) as server,
              Terminal.open(server.serve_pty(), timings=LinkTimings(keepalive_idle=3600)) as term):
            report = DiagnosticsEngine(term, lang="en", prompter=Yes()).run("full")
        data = report.as_json()
        data["port"] = "/dev/ttyACM0"
        (HERE / f"{name}.json").write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
