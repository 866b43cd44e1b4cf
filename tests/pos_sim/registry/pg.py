"""A throwaway PostgreSQL server for the registry tests.

Debian's server binaries (``/usr/lib/postgresql/N/bin``; ``.ci/postgresql`` installs them when
they are missing) start a fresh cluster: trust authentication, no TCP (a Unix socket in a
directory only the server's user and root can enter), fsync on, UTF-8.

``initdb`` and ``postgres`` refuse to run as root, so as root the cluster belongs to the
``postgres`` system user (which the Debian package creates) and lives, while it runs, in a
private directory of that user's under the system's temporary directory: pytest's own
(``/tmp/pytest-of-root``) is 0700, and every pytest that starts, a test's child one included,
puts it back to 0700, so the other user cannot count on reaching anything inside it.  When the
server has stopped, the cluster (data directory and log) is moved into the pytest temporary
directory given to :func:`start`, like every other test output (and the card-data scan reads it
there).  Run as another user, the cluster is made in that directory directly.
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
CI_POSTGRESQL = REPO / ".ci" / "postgresql"
DEBIAN_ROOT = Path("/usr/lib/postgresql")
#: longest Unix socket path the server accepts, less room for "/.s.PGSQL.NNNNN"
_MAX_SOCKET_DIR = 90
PORT = 5432          # names the socket file only: nothing listens on TCP
DBNAME = "registry"


def find_bindir() -> Path | None:
    """The newest installed server's bin directory (Debian's layout, else initdb on PATH)."""
    found = [p.parent for p in DEBIAN_ROOT.glob("*/bin/initdb") if (p.parent / "pg_ctl").exists()]
    found.sort(key=lambda b: [int(n) for n in re.findall(r"\d+", b.parent.name)] or [0])
    if found:
        return found[-1]
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def ensure_bindir() -> Path:
    """The server binaries, installed by .ci/postgresql when missing. Never skips: CI has them."""
    found = find_bindir()
    if found:
        return found
    try:
        done = subprocess.run(["bash", str(CI_POSTGRESQL)], capture_output=True, text=True, timeout=1200,
                              check=False)
        why = (done.stderr.strip() or done.stdout.strip() or f"exit status {done.returncode}").splitlines()[-1]
    except (OSError, subprocess.TimeoutExpired) as exc:
        why = str(exc)
    found = find_bindir()
    if not found:
        pytest.fail(f"the registry is tested on PostgreSQL, whose server is not installed and "
                    f"{CI_POSTGRESQL.relative_to(REPO)} could not install it: {why}", pytrace=False)
    return found


@dataclass
class PostgresServer:
    """A running throwaway cluster; :meth:`url` names a database on it."""

    bindir: Path
    datadir: Path
    sockdir: Path
    log: Path
    user: str
    as_user: dict[str, Any]
    startup_s: float = 0.0
    #: where the cluster goes when the server has stopped (None: it is there already)
    keep_in: Path | None = None
    _own_sockdir: bool = False
    _created: bool = False

    def url(self, dbname: str) -> str:
        """SQLAlchemy URL of ``dbname`` on this server (psycopg 3, over the Unix socket)."""
        return f"postgresql+psycopg://{self.user}@/{dbname}?host={self.sockdir}&port={PORT}"

    def connect(self, dbname: str = "postgres") -> Any:
        """A psycopg connection in autocommit mode (the caller closes it)."""
        import psycopg

        return psycopg.connect(host=str(self.sockdir), port=PORT, user=self.user, dbname=dbname, autocommit=True)

    def fresh_database(self) -> str:
        """The tests' database, emptied: sessions still on it are ended and its schema is dropped
        and made again (ten times faster than a new database per test); returns its name."""
        with self.connect() as conn:
            if not self._created:
                conn.execute(f'CREATE DATABASE "{DBNAME}"')
                self._created = True
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = %s AND pid <> pg_backend_pid()", (DBNAME,))
        with self.connect(DBNAME) as conn:
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")
        return DBNAME

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False,
                              cwd=self.datadir.parent, **self.as_user)

    def _postmaster_pid(self) -> int | None:
        try:
            return int((self.datadir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def log_tail(self, lines: int = 15) -> str:
        """The end of the server's log, for failure messages."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def stop(self) -> None:
        """Stop the server (fast shutdown: sessions are closed) and move the cluster to ``keep_in``."""
        pid = self._postmaster_pid()
        try:
            if pid is not None:
                done = self._run(str(self.bindir / "pg_ctl"), "stop", "-D", str(self.datadir), "-m", "fast",
                                 "-w", "-t", "60")
                if done.returncode != 0:
                    self._run(str(self.bindir / "pg_ctl"), "stop", "-D", str(self.datadir), "-m", "immediate",
                              "-w", "-t", "60")
                _wait_gone(pid)
        finally:
            if self._own_sockdir:
                shutil.rmtree(self.sockdir, ignore_errors=True)
            if self.keep_in is not None:
                work = self.datadir.parent
                for item in work.iterdir():
                    if item != self.sockdir:
                        shutil.move(item, self.keep_in / item.name)
                shutil.rmtree(work, ignore_errors=True)
                self.datadir, self.log = self.keep_in / self.datadir.name, self.keep_in / self.log.name
                self.keep_in = None


def _wait_gone(pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        except PermissionError:   # exists, owned by another user: still running
            pass
        time.sleep(0.02)
    raise AssertionError(f"the PostgreSQL server (pid {pid}) is still running after pg_ctl stop")


def start(base: Path) -> PostgresServer:
    """Create and start a cluster under ``base`` (an empty directory); see the module docstring."""
    t0 = time.monotonic()
    bindir = ensure_bindir()
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail("running as root, and there is no `postgres` system user to own the test cluster "
                        "(initdb refuses root; Debian's postgresql package creates that user)", pytrace=False)
        user = "postgres"
        as_user: dict[str, Any] = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": [],
                                   "env": {**_clean_env(), "HOME": owner.pw_dir, "USER": "postgres",
                                           "LOGNAME": "postgres"}}
        work, keep_in = Path(tempfile.mkdtemp(prefix="pos-sim-pg-")), base   # mode 0700
        os.chown(work, owner.pw_uid, owner.pw_gid)
    else:
        owner = pwd.getpwuid(os.getuid())
        user = owner.pw_name
        as_user = {"env": _clean_env()}
        work, keep_in = base, None
    sockdir = work / "sock"
    own_sockdir = len(str(sockdir)) > _MAX_SOCKET_DIR
    if own_sockdir:
        sockdir = Path(tempfile.mkdtemp(prefix="pos-sim-pg-sock-"))
    else:
        sockdir.mkdir(mode=0o700)
    os.chown(sockdir, owner.pw_uid, owner.pw_gid)
    server = PostgresServer(bindir=bindir, datadir=work / "data", sockdir=sockdir, log=work / "postgresql.log",
                            user=user, as_user=as_user, keep_in=keep_in, _own_sockdir=own_sockdir)
    try:
        # --no-sync: initdb's own files need not survive a crash of this machine; the server
        # itself runs with fsync on, like a real one
        done = server._run(str(bindir / "initdb"), "-D", str(server.datadir), "-U", user, "-A", "trust",
                           "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
        if done.returncode != 0:
            pytest.fail(f"initdb failed ({done.returncode}): {done.stderr.strip()[-1500:]}", pytrace=False)
        # pg_ctl hands these to the shell
        options = (f"-c listen_addresses='' -k {shlex.quote(str(sockdir))} -p {PORT} -c unix_socket_permissions=0700 "
                   "-c fsync=on -c synchronous_commit=on -c full_page_writes=on -c max_connections=200 "
                   "-c shared_buffers=32MB")
        done = server._run(str(bindir / "pg_ctl"), "start", "-D", str(server.datadir), "-l", str(server.log),
                           "-w", "-t", "60", "-o", options)
        if done.returncode != 0:
            pytest.fail(f"the PostgreSQL server did not start ({done.returncode}): {done.stderr.strip()[-500:]}\n"
                        f"{server.log_tail()}", pytrace=False)
    except BaseException:
        server.stop()
        raise
    server.startup_s = time.monotonic() - t0
    return server


def _clean_env() -> dict[str, str]:
    """The environment without PG* variables (a developer's PGHOST must not redirect the tests)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env
