"""Every subcommand explains itself in ``--help``: a walk over the whole parser."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from pos_sim.cli import build_parser, main


def _subcommands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
                 ) -> Iterator[tuple[tuple[str, ...], str | None, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            listed = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield (*path, name), listed.get(name), sub
                yield from _subcommands(sub, (*path, name))


SUBCOMMANDS = [path for path, _, _ in _subcommands(build_parser())]


def test_the_walk_finds_the_nested_commands() -> None:
    assert {("diag",), ("ticket", "open"), ("audit", "verify"), ("device", "backup")} <= set(SUBCOMMANDS)


@pytest.mark.parametrize("path", SUBCOMMANDS, ids=" ".join)
def test_each_subcommand_has_a_summary_and_a_description(path: tuple[str, ...]) -> None:
    found = {p: (listed, sub) for p, listed, sub in _subcommands(build_parser())}
    listed, sub = found[path]
    assert listed and listed.strip(), f"`pos-sim {' '.join(path[:-1])} --help` lists {path[-1]} without a summary"
    where = f"pos-sim {' '.join(path)} --help"
    assert sub.description and len(sub.description.split()) >= 5, f"`{where}` has no description"


@pytest.mark.parametrize("path", SUBCOMMANDS, ids=" ".join)
def test_help_prints_the_description(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main([*path, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    found = {p: sub for p, _, sub in _subcommands(build_parser())}
    description = found[path].description or ""
    assert " ".join(description.split()[:4]) in " ".join(out.split())
