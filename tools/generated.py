"""What the generators in tools/ share: write a generated file, or only say whether it is stale."""

from __future__ import annotations

import sys
from pathlib import Path

from drivers.files import write_atomically


def write_or_check(path: Path, new: str, old: str | None, *, check: bool, stale: str) -> int:
    """Compare ``new`` with the file's ``old`` text; with ``check`` only report (exit 1 when stale,
    with ``stale`` as the line), else rewrite the file. Return the exit status."""
    if new == old:
        print(f"{path}: up to date")
        return 0
    if check:
        print(f"{path}: {stale}", file=sys.stderr)
        return 1
    write_atomically(path, new)
    print(f"{path}: regenerated")
    return 0
