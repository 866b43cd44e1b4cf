"""The noisy-line bench, shortened: `pos-sim diag` runs in a row against one long-running
``flaky-link`` emulator (its line faults come from the scenario's fixed seed).

The full check is ``python bench/noisy_line.py`` (20 runs, at least 19 clean, no component
error); this runs four at five times the emulator's speed.  The oracle is the same terminal on a
clean line in the same run (the scenario with its ``[link]`` table removed), so the expected
verdicts come from a run the noise never touched, not from the code under test's own output.
"""

from __future__ import annotations

from pathlib import Path

from bench.noisy_line import clean_copy, run_bench
from pos_sim.emulator.scenario import load_scenario


def test_a_noisy_line_costs_retransmits_not_verdicts() -> None:
    outcomes = run_bench(4, 5.0)
    for o in outcomes:
        # nothing damaged is ever taken for a fault of the terminal
        assert "fail" not in o.verdicts.values() and "warn" not in o.verdicts.values(), o
        assert not o.exit_status & 8
    clean = [o for o in outcomes if o.clean]
    assert len(clean) >= 3, [(o.exit_status, o.errors, o.communication) for o in outcomes]
    # the cable got its warning: it was noisy, and the report says so
    assert all("link_crc_errors" in o.communication for o in clean)


def test_the_clean_line_reference_has_no_line_faults(tmp_path: Path) -> None:
    path = clean_copy(tmp_path)
    clean, noisy = load_scenario(str(path)), load_scenario("flaky-link")
    assert noisy.link.active and not clean.link.active
    assert clean.device == noisy.device and clean.lifecycle == noisy.lifecycle
