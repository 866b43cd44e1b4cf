"""`pos-sim diag` at a [y/n] prompt, through the real executable on a pseudo-terminal: anything
but yes/no asks again, and end of input or Ctrl-C ends the run with nothing recorded (exit 130)."""

from __future__ import annotations

import fcntl
import os
import re
import select
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

POS_SIM = str(Path(sys.executable).with_name("pos-sim"))
PROMPT = b"[y/n] "
#: a generous bound on waiting for the emulator's next prompt (not a timing assertion)
PATIENCE = 120.0


class Session:
    """``pos-sim diag`` with a pty as its controlling terminal (stdin and stdout), stderr a pipe."""

    def __init__(self, *args: str, db: Path) -> None:
        self.master, slave = os.openpty()

        def controlling_tty() -> None:   # so that ^C on the pty is SIGINT to the command
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(
            [POS_SIM, "diag", "emu://healthy?speed=50", "--lang", "en", "--db", f"sqlite:///{db}", *args],
            stdin=slave, stdout=slave, stderr=subprocess.PIPE, preexec_fn=controlling_tty,  # noqa: PLW1509 (no thread of ours runs yet)
            env={**os.environ, "NO_COLOR": "1"})
        os.close(slave)
        self.seen = b""

    def read_until(self, marker: bytes, count: int = 1) -> bytes:
        """Everything the terminal showed until ``marker`` has appeared ``count`` times."""
        deadline = time.monotonic() + PATIENCE
        while self.seen.count(marker) < count:
            assert time.monotonic() < deadline, f"no {marker!r} in {self.seen[-400:]!r}"
            ready, _, _ = select.select([self.master], [], [], 1.0)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:   # EIO: the command has gone
                    break
                self.seen += chunk
        return self.seen

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def finish(self) -> tuple[int, str, str]:
        """Exit status, everything shown on the terminal, and stderr."""
        _, err = self.proc.communicate(timeout=PATIENCE)
        while True:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if not ready:
                break
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                break
            if not chunk:
                break
            self.seen += chunk
        os.close(self.master)
        return self.proc.returncode, self.seen.decode("utf-8", "replace"), err.decode("utf-8", "replace")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "registry.db"


def runs_recorded(db: Path) -> int:
    """How many runs the registry holds (0 when it was never created)."""
    if not db.exists():
        return 0
    import sqlite3

    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
        return conn.execute("select count(*) from diagnostic_runs").fetchone()[0] if "diagnostic_runs" in tables else 0


def test_anything_but_yes_or_no_asks_again(db: Path) -> None:
    s = Session("--tests", "printer", db=db)
    s.read_until(PROMPT)
    s.send(b"x\n")
    s.read_until(PROMPT, 2)
    s.send(b"maybe\n")
    s.read_until(PROMPT, 3)
    s.send(b"y\n")
    status, shown, err = s.finish()
    assert status == 0, (shown, err)
    assert shown.count("Please answer y (yes) or n (no).") == 2
    assert re.search(r"^  Printer +Pass", shown, re.MULTILINE), shown
    assert runs_recorded(db) == 1


@pytest.mark.parametrize(("answer", "status"), [("是", 0), ("否", 8), ("no", 8), ("YES", 0)])
def test_chinese_and_english_answers_count(db: Path, answer: str, status: int) -> None:
    s = Session("--tests", "printer", db=db)
    s.read_until(PROMPT)
    s.send(answer.encode() + b"\n")
    got, shown, err = s.finish()
    assert got & 8 == status & 8 and shown.count("?? ") == 1, (shown, err)


@pytest.mark.parametrize("key", [b"\x04", b"\x03"], ids=["ctrl-d", "ctrl-c"])
def test_end_of_input_or_ctrl_c_at_a_prompt_aborts_with_nothing_recorded(db: Path, key: bytes) -> None:
    s = Session("--tests", "printer", db=db)
    before = s.read_until(PROMPT)
    s.send(key)
    status, shown, err = s.finish()
    assert status == 130, (shown, err)
    after = shown[len(before.decode("utf-8", "replace")):]
    assert "\n" in after, "the prompt's line was not ended before the message"
    assert "Fail" not in shown and "Overall verdict" not in shown     # no verdict at all
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == ["pos-sim diag: the run was ended at a prompt; nothing was recorded as failed. "
                     "Run diag again to test."], err
    assert "Traceback" not in err and runs_recorded(db) == 0
