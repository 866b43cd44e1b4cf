"""The remote bench: the emulated terminal on a pty behind Debian's ser2net, driven by the real CLI.

One emulated terminal (the ``dropped`` scenario: failures, a lock and an event log with errors,
so a verdict cannot come out right by accident) is served on a pseudo-terminal.  ser2net 4
offers that pty twice, as a technician's bench PC would offer a USB terminal: as RFC 2217
(``accepter: telnet(rfc2217),tcp,...``) and as raw TCP (``accepter: tcp,...``).  ``pos-sim
info``, ``pos-sim diag`` and ``pos-sim device backup`` run as subprocesses, first on the pty
directly, then through ``rfc2217://...?ign_set_control`` and through ``socket://``: the
terminal, every component's verdict and the backup's SHA-256 must be the same each way.

Expected values come from outside the code under test: the scenario's description in
docs/emulator.md for the direct run, the direct run for the runs through ser2net, and the
digest rule of docs/protocol.md (SHA-256 over every page's records in page order) for each
backup file.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import serial

from pos_sim.emulator import EmulatorServer

REPO = Path(__file__).resolve().parents[2]
CI_SER2NET = REPO / ".ci" / "ser2net"
SCENARIO = "dropped"
#: component durations / 50, as in the other integration tests; the line stays at 115200
SPEED = 50.0
#: how long ser2net may take to listen, or to let go of the pty after a client left; only a
#: guard against waiting forever, never a measure of speed
SETTLE_S = 30.0
#: guard against a CLI run that never ends
RUN_TIMEOUT_S = 600.0

#: the dropped scenario as docs/emulator.md describes it, for a diagnosis with nobody at the
#: terminal (the swipe test needs a person, so magstripe is skipped): component -> verdict, code
DROPPED_FAILS = {"screen": ("fail", "panel_damaged"), "security": ("fail", "tamper_tripped")}
DROPPED_SERIAL = "SP0000457"
DROPPED_TXLOG_RECORDS = 260
#: exit bits: 8 a component failed, 32 terminal locked (tamper), 64 the event log holds errors
DROPPED_EXIT = 8 | 32 | 64


# -- ser2net ------------------------------------------------------------------------------------

def find_ser2net() -> str | None:
    """The ser2net program (Debian puts it in /usr/sbin, which a non-root PATH may lack)."""
    found = shutil.which("ser2net")
    if found:
        return found
    return "/usr/sbin/ser2net" if os.access("/usr/sbin/ser2net", os.X_OK) else None


def ensure_ser2net() -> str:
    """ser2net 4 (YAML configuration), installed by .ci/ser2net when missing. Never skips."""
    found = find_ser2net()
    if not found:
        try:
            done = subprocess.run(["bash", str(CI_SER2NET)], capture_output=True, text=True, timeout=1200,
                                  check=False)
            why = (done.stderr.strip() or done.stdout.strip() or f"exit status {done.returncode}").splitlines()[-1]
        except (OSError, subprocess.TimeoutExpired) as exc:
            why = str(exc)
        found = find_ser2net()
        if not found:
            pytest.fail(f"the remote bench is tested through Debian's ser2net, which is not installed and "
                        f"{CI_SER2NET.relative_to(REPO)} could not install it: {why}", pytrace=False)
    version = subprocess.run([found, "-v"], capture_output=True, text=True, timeout=60, check=False)
    m = re.search(r"version (\d+)\.", version.stdout + version.stderr)
    if not m or int(m.group(1)) < 4:
        pytest.fail(f"{found} is not ser2net 4 (it said {(version.stdout + version.stderr).strip()!r}); the "
                    "test writes ser2net 4's YAML configuration", pytrace=False)
    return found


def free_tcp_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def listening(port: int) -> bool:
    """Whether something listens on 127.0.0.1:``port`` (from /proc/net/tcp: no connection made)."""
    local = f"0100007F:{port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[3] == "0A":   # 0A: TCP_LISTEN
            return True
    return False


def config_yaml(pty: str, rfc2217_port: int, raw_port: int) -> str:
    """ser2net 4 configuration: the pty as RFC 2217 on one port and as raw TCP on another."""
    return (
        "%YAML 1.1\n"
        "---\n"
        "connection: &bench-rfc2217\n"
        f"    accepter: telnet(rfc2217),tcp,127.0.0.1,{rfc2217_port}\n"
        f"    connector: serialdev,{pty},115200n81,local\n"
        "connection: &bench-raw\n"
        f"    accepter: tcp,127.0.0.1,{raw_port}\n"
        f"    connector: serialdev,{pty},115200n81,local\n"
    )


@dataclass
class Ser2net:
    """A running ser2net in the foreground, serving one pty on two TCP ports."""

    proc: subprocess.Popen[bytes]
    pty: str
    rfc2217_port: int
    raw_port: int
    log: Path

    @classmethod
    def start(cls, exe: str, pty: str, workdir: Path) -> Ser2net:
        """Start ser2net on free ports and wait until it listens on both (three tries at ports)."""
        why = ""
        for attempt in range(3):
            ports = free_tcp_port(), free_tcp_port()
            if ports[0] == ports[1]:
                continue
            conf = workdir / f"ser2net-{attempt}.yaml"
            conf.write_text(config_yaml(pty, *ports))
            log = workdir / f"ser2net-{attempt}.log"
            # -d: stay in the foreground, errors to the log; -u: no UUCP lock files in /var/lock
            with log.open("wb") as out:
                proc = subprocess.Popen([exe, "-d", "-u", "-P", str(workdir / "ser2net.pid"), "-c", str(conf)],
                                        stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
            server = cls(proc, pty, ports[0], ports[1], log)
            deadline = time.monotonic() + SETTLE_S
            while proc.poll() is None and time.monotonic() < deadline:
                if all(listening(p) for p in ports):
                    return server
                time.sleep(0.05)
            server.stop()
            why = f"exit status {proc.returncode}: {server.log_tail()}"
        pytest.fail(f"ser2net never listened on its two ports ({why})", pytrace=False)

    def log_tail(self, lines: int = 5) -> str:
        """The end of ser2net's output, on one line."""
        with contextlib.suppress(OSError):
            return " | ".join(self.log.read_text(errors="replace").strip().splitlines()[-lines:])
        return ""

    def holds_pty(self) -> bool:
        """Whether ser2net has the pty open (it opens it for a client and closes it after)."""
        fd_dir = Path(f"/proc/{self.proc.pid}/fd")
        for fd in fd_dir.iterdir() if fd_dir.exists() else ():
            with contextlib.suppress(OSError):
                if os.readlink(fd) == self.pty:
                    return True
        return False

    def wait_released(self) -> None:
        """Wait until ser2net has closed the pty, so that two hosts never read it at once."""
        deadline = time.monotonic() + SETTLE_S
        while self.holds_pty():
            if time.monotonic() > deadline:
                pytest.fail(f"ser2net still holds {self.pty} {SETTLE_S:.0f} s after its client left",
                            pytrace=False)
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop ser2net (SIGTERM, then SIGKILL)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


# -- the bench ----------------------------------------------------------------------------------

def pos_sim(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the real command line, as a technician would (the venv's interpreter)."""
    return subprocess.run([sys.executable, "-m", "pos_sim.cli", *args], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S, check=False, cwd=cwd)


@dataclass
class RemoteBench:
    """The emulated terminal on a pty, and ser2net in front of it."""

    pty: str
    ser2net: Ser2net
    workdir: Path

    @property
    def rfc2217_url(self) -> str:
        """The pty through ser2net's RFC 2217 port, as the technician must write it for a pty."""
        return f"rfc2217://127.0.0.1:{self.ser2net.rfc2217_port}?ign_set_control"

    @property
    def socket_url(self) -> str:
        """The pty through ser2net's raw TCP port."""
        return f"socket://127.0.0.1:{self.ser2net.raw_port}"

    def url(self, transport: str) -> str:
        """The port to give pos-sim: ``direct`` (the pty), ``rfc2217`` or ``socket``."""
        return {"direct": self.pty, "rfc2217": self.rfc2217_url, "socket": self.socket_url}[transport]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run pos-sim with the terminal to itself: ser2net has let go of the pty before and after."""
        self.ser2net.wait_released()
        done = pos_sim(*args, cwd=self.workdir)
        self.ser2net.wait_released()
        return done

    def info(self, transport: str) -> dict[str, Any]:
        """`pos-sim info --json` through ``transport``."""
        done = self.run("info", "--json", self.url(transport))
        assert done.returncode == 0, f"pos-sim info via {transport}: {done.returncode} {done.stderr.strip()}"
        out: dict[str, Any] = json.loads(done.stdout)
        return out

    def diag(self, transport: str) -> dict[str, Any]:
        """`pos-sim diag --non-interactive --json --no-record` through ``transport``."""
        done = self.run("diag", "--non-interactive", "--json", "--no-record", "--lang", "en", self.url(transport))
        assert done.stdout, f"pos-sim diag via {transport} printed nothing: {done.returncode} {done.stderr.strip()}"
        out: dict[str, Any] = json.loads(done.stdout)
        assert done.returncode == out["exit_status"], (done.returncode, out["exit_status"])
        return out

    def backup(self, transport: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """`pos-sim device backup` through ``transport`` into its own directory and registry;
        returns what it printed and the backup file."""
        out_dir = self.workdir / f"backup-{transport}"
        out_dir.mkdir()
        db = f"sqlite:///{self.workdir / f'registry-{transport}.db'}"
        done = self.run("device", "backup", self.url(transport), "-o", str(out_dir), "--json", "--db", db)
        assert done.returncode == 0, f"pos-sim device backup via {transport}: {done.returncode} {done.stderr.strip()}"
        printed: dict[str, Any] = json.loads(done.stdout)
        files = list(out_dir.iterdir())
        assert [f.name for f in files] == [Path(printed["path"]).name]
        saved: dict[str, Any] = json.loads(files[0].read_text())
        return printed, saved


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteBench]:
    exe = ensure_ser2net()
    workdir = tmp_path_factory.mktemp("remote-bench")
    server = EmulatorServer(SCENARIO, speed=SPEED)
    try:
        pty = server.serve_pty()
        s2n = Ser2net.start(exe, pty, workdir)
        try:
            yield RemoteBench(pty, s2n, workdir)
        finally:
            s2n.stop()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def direct(bench: RemoteBench) -> dict[str, Any]:
    """info, diag and backup straight on the pty: what the runs through ser2net must equal."""
    return {"info": bench.info("direct"), "diag": bench.diag("direct"), "backup": bench.backup("direct")}


def _verdicts(diag: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [(r["component"], r["verdict"], r["code"]) for r in diag["results"]]


def _digest_of_pages(saved: dict[str, Any]) -> str:
    """docs/protocol.md: the SHA-256 of every page's records field, as encoded, in page order."""
    return hashlib.sha256(b"".join(base64.b64decode(page) for page in saved["page_data"])).hexdigest()


# -- the tests ----------------------------------------------------------------------------------

def test_the_direct_run_is_the_scenario_docs_emulator_md_describes(direct: dict[str, Any]) -> None:
    assert direct["info"]["device"]["serial"] == DROPPED_SERIAL
    assert direct["info"]["device"]["lifecycle"] == "locked"
    verdicts = {c: (v, code) for c, v, code in _verdicts(direct["diag"])}
    for component, expected in DROPPED_FAILS.items():
        assert verdicts[component] == expected
    assert verdicts["magstripe"][0] == "skipped"   # the swipe test needs a person
    assert direct["diag"]["exit_status"] == DROPPED_EXIT
    printed, saved = direct["backup"]
    assert printed["records"] == saved["records"] == DROPPED_TXLOG_RECORDS
    assert printed["sha256"] == saved["sha256"] == _digest_of_pages(saved)


@pytest.mark.parametrize("transport", ["rfc2217", "socket"])
def test_info_through_ser2net_names_the_same_terminal(bench: RemoteBench, direct: dict[str, Any],
                                                      transport: str) -> None:
    got = bench.info(transport)
    assert got["port"] == bench.url(transport)
    clockless = {k: v for k, v in got["device"].items() if k != "clock"}
    assert clockless == {k: v for k, v in direct["info"]["device"].items() if k != "clock"}
    # the same boot id: the same terminal, not restarted by the telnet bytes or the reconnects
    assert got["protocol"] == direct["info"]["protocol"]


@pytest.mark.parametrize("transport", ["rfc2217", "socket"])
def test_diag_through_ser2net_gives_the_direct_verdicts(bench: RemoteBench, direct: dict[str, Any],
                                                        transport: str) -> None:
    got = bench.diag(transport)
    assert _verdicts(got) == _verdicts(direct["diag"])
    assert (got["verdict"], got["exit_status"]) == (direct["diag"]["verdict"], direct["diag"]["exit_status"])


@pytest.mark.parametrize("transport", ["rfc2217", "socket"])
def test_backup_through_ser2net_has_the_direct_digest(bench: RemoteBench, direct: dict[str, Any],
                                                      transport: str) -> None:
    printed, saved = bench.backup(transport)
    direct_printed, direct_saved = direct["backup"]
    assert printed["sha256"] == saved["sha256"] == direct_printed["sha256"]
    assert _digest_of_pages(saved) == direct_printed["sha256"]
    assert saved["page_data"] == direct_saved["page_data"]
    assert (printed["serial"], printed["records"], printed["pages"]) == (
        direct_printed["serial"], direct_printed["records"], direct_printed["pages"])


@pytest.mark.parametrize("command", [["info"], ["diag", "--non-interactive", "--no-record", "--json"]])
def test_rfc2217_to_a_pty_without_ign_set_control_says_to_add_it(bench: RemoteBench, command: list[str]) -> None:
    # ser2net 4.3 never answers the DTR change pyserial sends at open: the pty has no modem lines
    url = f"rfc2217://127.0.0.1:{bench.ser2net.rfc2217_port}"
    hint = f"add ?ign_set_control to the URL: {url}?ign_set_control"
    done = bench.run(*command, url)
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith(f"pos-sim {command[0]}: {url}: could not open: "), lines[0]
    assert lines[0].endswith(hint), lines[0]
    if "--json" in command:
        printed = json.loads(done.stdout)
        assert printed["exit_status"] == 2 and printed["error"].endswith(hint)


def test_a_port_another_client_has_is_one_line(bench: RemoteBench) -> None:
    # ser2net offers the device to one client at a time: the next one hears "Port already in
    # use" and is hung up on, which pyserial's RFC 2217 reader thread met with a traceback
    bench.ser2net.wait_released()
    holder = serial.serial_for_url(bench.socket_url, timeout=0.1)
    try:
        deadline = time.monotonic() + SETTLE_S
        while not bench.ser2net.holds_pty():
            assert time.monotonic() < deadline, "ser2net never opened the pty for the first client"
            time.sleep(0.02)
        taken = pos_sim("info", bench.rfc2217_url, cwd=bench.workdir)
        raw = pos_sim("info", bench.socket_url, cwd=bench.workdir)
    finally:
        holder.close()
    bench.ser2net.wait_released()
    assert taken.returncode == 2, (taken.returncode, taken.stderr)
    assert taken.stderr.count("\n") == 1 and "Traceback" not in taken.stderr, taken.stderr
    assert taken.stderr.startswith(f"pos-sim info: {bench.rfc2217_url}: could not open: the server hung up")
    assert "another client" in taken.stderr
    # socket:// cannot tell at open: the line is taken when the first read finds the hang-up
    assert raw.returncode != 0 and not raw.stdout
    assert raw.stderr.count("\n") == 1 and "Traceback" not in raw.stderr, raw.stderr
