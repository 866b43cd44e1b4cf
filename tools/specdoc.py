"""Keeps docs/protocol.md's generated sections in step with the declarations.

``python -m tools.specdoc`` rewrites every ``<!-- BEGIN GENERATED: name -->`` ...
``<!-- END GENERATED: name -->`` block from :mod:`protocols.pos.spec`; ``--check`` only reports
(exit 1) when a block is stale.  The prose around the blocks is never touched.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from protocols.pos.spec import SECTIONS
from tools.generated import write_or_check

DEFAULT_SPEC = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"
_BLOCK = re.compile(r"(<!-- BEGIN GENERATED: (?P<name>[a-z_]+) -->\n)(?P<body>.*?)(<!-- END GENERATED: (?P=name) -->)",
                    re.DOTALL)


class SpecError(Exception):
    """The spec file is missing a section or names one that does not exist."""


def regenerate(text: str) -> str:
    """The spec text with every generated block rendered anew."""
    seen: set[str] = set()

    def repl(m: re.Match[str]) -> str:
        name = m.group("name")
        if name not in SECTIONS:
            raise SpecError(f"unknown generated section {name!r}")
        seen.add(name)
        return m.group(1) + SECTIONS[name]().rstrip("\n") + "\n" + m.group(4)

    out = _BLOCK.sub(repl, text)
    missing = set(SECTIONS) - seen
    if missing:
        raise SpecError(f"sections missing from the spec: {', '.join(sorted(missing))}")
    return out


def main(argv: list[str] | None = None) -> int:
    """Entry point: regenerate (default) or check the spec's generated sections."""
    ap = argparse.ArgumentParser(prog="python -m tools.specdoc", description=__doc__)
    ap.add_argument("path", nargs="?", type=Path, default=DEFAULT_SPEC)
    ap.add_argument("--check", action="store_true", help="report stale sections, change nothing")
    args = ap.parse_args(argv)
    try:
        old = args.path.read_text(encoding="utf-8")
        new = regenerate(old)
    except (OSError, SpecError) as exc:
        print(f"specdoc: {exc}", file=sys.stderr)
        return 1
    return write_or_check(args.path, new, old, check=args.check,
                          stale="generated sections are stale; run python -m tools.specdoc")


if __name__ == "__main__":
    sys.exit(main())
