"""Suite-wide fixtures: no test may leave a thread behind (pymodbus' conftest habit)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import cardscan


@pytest.fixture(autouse=True, scope="session")
def registry_in_a_temporary_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Runs recorded by `pos-sim diag` (also in subprocesses) go to a throwaway database, never
    to the user's data directory."""
    previous = {name: os.environ.get(name) for name in ("POS_SIM_DB", "POS_SIM_KEYS")}
    os.environ["POS_SIM_DB"] = str(tmp_path_factory.mktemp("registry") / "registry.db")
    # and the key file, never the user's own (a test that needs keys writes its own file)
    os.environ["POS_SIM_KEYS"] = str(tmp_path_factory.mktemp("keys") / "keys.toml")
    yield
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value

#: threads that belong to the test runner or libraries, not to the code under test
_FOREIGN = ("pytest_timeout", "hypothesis", "ThreadPoolExecutor-", "asyncio_")


@pytest.fixture(autouse=True)
def no_thread_left_behind() -> Iterator[None]:
    """Fail a test whose threads outlive it (after a short grace period for joins in progress)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 2.0
    while True:
        extra = [t for t in threading.enumerate()
                 if t not in before and t.is_alive() and not t.name.startswith(_FOREIGN)]
        if not extra or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert not extra, f"threads left behind: {[t.name for t in extra]}"


# -- no card data in anything the suite wrote --------------------------------------------

#: what the card-data scan reads at the end of the session (tests.cardscan)
_CARD_SCAN_ROOTS = pytest.StashKey[list[Path]]()
#: when the first test started: outputs outside the base directory count if written since
_CARD_SCAN_SINCE = pytest.StashKey[float]()
#: written into the rootdir, not the base directory: pytest-textual-snapshot's failure report
_OUTPUTS_IN_ROOTDIR = ("snapshot_report.html",)


@pytest.fixture(autouse=True, scope="session")
def card_data_scan_roots(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                         registry_in_a_temporary_directory: None) -> None:
    """Remember where the suite writes (the pytest base temporary directory and the directory of
    POS_SIM_DB, usually inside it) for the card-data scan at the end of the session."""
    roots = [tmp_path_factory.getbasetemp()]
    db = os.environ.get("POS_SIM_DB", "")
    if db.startswith("sqlite:///"):
        db = db.removeprefix("sqlite:///")
    if db and "://" not in db:
        roots.append(Path(db).parent)
    request.config.stash[_CARD_SCAN_ROOTS] = roots
    request.config.stash[_CARD_SCAN_SINCE] = time.time()


#: the top-level names a venv's site-packages holds of ours (packages and the wheel's metadata)
_OUR_INSTALLED = ("pos_sim", "drivers", "protocols", "pos_sim-")


def _third_party(path: Path) -> bool:
    """Whether ``path`` is another project's file installed into a venv the suite made (the wheel
    test's): its own documentation and binaries are not ours to answer for (python-barcode ships
    an EAN-13 example that passes Luhn, Pillow's libharfbuzz a run of 2s)."""
    parts = path.parts
    if "site-packages" not in parts:
        return False
    top = parts[parts.index("site-packages") + 1:][:1]
    return not (top and top[0].startswith(_OUR_INSTALLED))


#: the scan's outcome, kept from pytest_sessionfinish for the terminal summary
_CARD_SCAN_LINES = pytest.StashKey[list[str]]()


@pytest.hookimpl(wrapper=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> Iterator[None]:
    """Scan every file the suite wrote for card numbers and track data; any finding fails the run.

    A wrapper, so that it runs after the plugins that write at the end of the session
    (pytest-textual-snapshot's report).  Under a tmp_path retention policy other than the
    default "all", pytest deletes passing tests' directories before this scan sees them.
    A finding shows the number masked (BIN six and last four) and never a track-1 name.  The
    lines go into the terminal summary; straight to stderr when there will be no summary.
    """
    yield
    config = session.config
    roots = config.stash.get(_CARD_SCAN_ROOTS, None)
    if roots is None:
        return   # no test ran, so the suite wrote nothing
    since = config.stash.get(_CARD_SCAN_SINCE, 0.0)
    written = [p for p in (config.rootpath / name for name in _OUTPUTS_IN_ROOTDIR)
               if p.is_file() and p.stat().st_mtime >= since]
    result = cardscan.scan([*roots, *written])
    result.findings = [f for f in result.findings if not _third_party(f.path)]
    lines = [f"card data: {finding}" for finding in result.findings]
    lines += [f"card-data scan could not read {path}: {reason}" for path, reason in result.unreadable]
    lines.append(result.summary())
    if result.findings and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    summary_follows = (config.pluginmanager.get_plugin("terminalreporter") is not None
                       and not config.getoption("no_summary", False)
                       and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED,
                                          pytest.ExitCode.INTERRUPTED, pytest.ExitCode.USAGE_ERROR,
                                          pytest.ExitCode.NO_TESTS_COLLECTED))
    if summary_follows:
        config.stash[_CARD_SCAN_LINES] = lines
    else:
        print("\n".join(lines), file=sys.stderr)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Show the card-data scan's findings (masked) and its one-line summary."""
    lines = config.stash.get(_CARD_SCAN_LINES, [])
    failed = len(lines) > 1 and lines[0].startswith("card data: ")
    for line in lines:
        terminalreporter.write_line(line, red=failed, bold=failed)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 KiB tmpfs: the very ENOSPC a full disk gives (needs root to mount; skipped otherwise)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a 4 KiB tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", str(mnt)], capture_output=True, text=True,
                       check=False)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
