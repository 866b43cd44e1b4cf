"""pos_sim/exitcodes.py is the only place an exit status's number is written; everything else reads it or
is checked against it here: docs/cli.md's tables, the report schema, the lower layers' copies, the emulator."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from pos_sim import exitcodes

ROOT = Path(__file__).resolve().parents[2]
CLI_MD = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
#: the public constants of the module: NAME -> number
CODES = {name: value for name, value in vars(exitcodes).items()
         if name.isupper() and isinstance(value, int) and name != "DIAG_MAX"}


def _table(heading: str) -> list[list[str]]:
    """The rows of the first Markdown table after ``heading`` in docs/cli.md, as cells."""
    section = CLI_MD.split(heading, 1)[1]
    rows = []
    for line in section.splitlines():
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip("|").split("|")])
        elif rows:
            break
    return rows[2:]      # past the header and the |---| line


def test_docs_cli_md_lists_exactly_the_module_s_codes() -> None:
    rows = _table("## The table")
    documented = {name.strip("`"): int(number) for number, name, _ in rows}
    assert documented == CODES


def test_every_status_docs_cli_md_gives_a_command_is_one_of_the_codes() -> None:
    rows = _table("## Each command's failures")
    assert len(rows) > 20
    allowed = set(CODES.values())
    for command, failure, status in rows:
        assert int(status) in allowed, (command, failure, status)


def test_the_report_schema_bounds_exit_status_by_the_diagnostic_bits() -> None:
    schema = json.loads((ROOT / "pos_sim" / "diagnostics" / "report.schema.json").read_text(encoding="utf-8"))
    prop = schema["properties"]["exit_status"]
    assert (prop["minimum"], prop["maximum"]) == (exitcodes.OK, exitcodes.DIAG_MAX)
    # the diagnostic bits are distinct powers of two, so their OR is their sum
    assert all(bit & (bit - 1) == 0 for bit in exitcodes.DIAG_BITS)
    assert exitcodes.DIAG_MAX == 127


def test_the_lower_layers_copies_agree() -> None:
    from drivers import errors as driver_errors
    from drivers.capture import CaptureError
    from protocols.pos.errors import ProtocolError

    assert driver_errors.EXIT_USAGE == exitcodes.USAGE
    assert driver_errors.EXIT_OPEN == exitcodes.PORT
    assert driver_errors.EXIT_COMMUNICATION == exitcodes.COMMUNICATION
    assert driver_errors.RequestTooLarge.exit_code == exitcodes.USAGE
    assert CaptureError.exit_code == exitcodes.USAGE
    assert ProtocolError.exit_code == exitcodes.COMMUNICATION


def test_the_emulator_s_errors_map_to_the_table() -> None:
    from pos_sim.cli.emulate import exit_status
    from pos_sim.emulator import EmulatorError, LineError, ScenarioError, StateFileError

    assert exit_status(LineError("x")) == exitcodes.PORT
    for error in (ScenarioError("x"), StateFileError("x"), EmulatorError("x")):
        assert exit_status(error) == exitcodes.USAGE


def test_the_help_says_the_module_s_numbers() -> None:
    from pos_sim.cli import build_parser

    epilog = " ".join((build_parser().epilog or "").split())
    for bit in (*exitcodes.DIAG_BITS, exitcodes.REGISTRY, exitcodes.INTERRUPTED):
        assert re.search(rf"\b{bit} ", epilog), bit


_STATUS_NAMES = re.compile(r"(exit_code|exit_status|EXIT_[A-Z_]+|status)\Z")


def _literal_statuses(path: Path) -> list[str]:
    """``exit_code = 4``, ``EXIT_LOCKED = 32``, ``return 130``-like writes of a number in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id if isinstance(t, ast.Name) else t.attr if isinstance(t, ast.Attribute) else ""
                     for t in targets]
            value = node.value
            if (any(_STATUS_NAMES.match(n) for n in names) and isinstance(value, ast.Constant)
                    and isinstance(value.value, int) and not isinstance(value.value, bool) and value.value != 0):
                found.append(f"{path.name}:{node.lineno}" if ROOT not in path.parents
                             else f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


@pytest.mark.parametrize("package", ["pos_sim", "drivers", "protocols"])
def test_no_other_module_writes_a_number(package: str) -> None:
    """Outside exitcodes.py, only the lower layers' documented copies (checked above) may."""
    copies = {"drivers/errors.py", "protocols/pos/errors.py"}
    found = []
    for f in sorted((ROOT / package).rglob("*.py")):
        rel = str(f.relative_to(ROOT))
        if rel != "pos_sim/exitcodes.py" and rel not in copies:
            found += _literal_statuses(f)
    assert not found, f"exit statuses written as numbers (read pos_sim.exitcodes instead): {found}"


def test_the_scan_would_see_a_number(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("class E(Exception):\n    exit_code = 4\n\nEXIT_LOCKED: int = 32\nOK_NAME = 5\n")
    assert sorted(_literal_statuses(sample)) == ["sample.py:2", "sample.py:4"]
