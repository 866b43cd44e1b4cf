"""``pos-sim emulate`` as a user runs it: a subprocess, its first line, its signals, its errors."""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import serial

from pos_sim.cli import _Parser
from pos_sim.cli.emulate import add_parser
from pos_sim.errors import UsageError
from tests.pos_sim.emulator.hosts import PortHost, T, hello_fields

ROOT = Path(__file__).resolve().parents[3]


@contextmanager
def emulate(*args: str) -> Iterator[subprocess.Popen[str]]:
    """``python -m pos_sim.cli emulate ARGS`` as a child process, killed if the test leaves it running."""
    proc = subprocess.Popen([sys.executable, "-m", "pos_sim.cli", "emulate", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def finish(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """Wait for the end; the rest of stdout and all of stderr.

    (Not ``communicate``: it reads the pipes' descriptors and would miss lines ``readline``
    has already buffered.)
    """
    proc.wait(10)
    assert proc.stdout is not None and proc.stderr is not None
    return proc.stdout.read(), proc.stderr.read()


def first_line(proc: subprocess.Popen[str], timeout: float = 15.0) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "the emulator printed nothing"
    return proc.stdout.readline().rstrip("\n")


def test_pty_transport_prints_the_port_first_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with emulate("--scenario", "weak-battery", "--speed", "50", "--state", str(state)) as proc:
        line = first_line(proc)
        assert line.startswith("PORT /dev/pts/")
        path = line.split(" ", 1)[1]
        with serial.Serial(path, 115200, timeout=0.05) as port:
            host = PortHost(port)
            assert host.request(T.HELLO, hello_fields()).fields["serial"] == "SP0001311"
        proc.send_signal(signal.SIGTERM)
        out, err = finish(proc)
        assert proc.returncode == 0
        assert "Traceback" not in err and err == ""
        assert "weak-battery" in out and "stopped" in out
    data = json.loads(state.read_text(encoding="utf-8"))
    assert data["serial"] == "SP0001311", "state saved on the way out"
    assert not os.path.exists(path)


def test_tcp_transport_and_sigint() -> None:
    with emulate("--transport", "tcp", "--speed", "inf") as proc:
        line = first_line(proc)
        assert line.startswith("PORT socket://127.0.0.1:")
        with serial.serial_for_url(line.split(" ", 1)[1], timeout=0.05) as port:
            assert PortHost(port).request(T.HELLO, hello_fields()).type == T.HELLO_REPLY
        proc.send_signal(signal.SIGINT)
        _, err = finish(proc)
        assert proc.returncode == 0 and "Traceback" not in err and "KeyboardInterrupt" not in err


def _fails(args: list[str], status: int) -> str:
    with emulate(*args) as proc:
        out, err = proc.communicate(timeout=15)
        assert proc.returncode == status, (out, err)
        assert out == "" and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1, err
        return err


def test_unknown_scenario_is_exit_1_with_the_known_names() -> None:
    err = _fails(["--scenario", "exploded"], 1)
    assert "exploded" in err and "healthy" in err


def test_bad_toml_is_exit_1_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[device\n", encoding="utf-8")
    err = _fails(["--scenario", str(bad)], 1)
    assert str(bad) in err and "invalid TOML" in err


def test_bad_option_is_exit_1() -> None:
    err = _fails(["--transport", "carrier-pigeon"], 1)
    assert "--transport" in err


def test_port_in_use_is_exit_2() -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    try:
        err = _fails(["--transport", f"tcp:{holder.getsockname()[1]}"], 2)
        assert "cannot listen" in err
    finally:
        holder.close()


def test_add_parser_plugs_into_a_pos_sim_parser() -> None:
    parser = _Parser(prog="pos-sim")
    add_parser(parser.add_subparsers(dest="command", parser_class=_Parser))
    args = parser.parse_args(["emulate"])
    assert (args.scenario, args.transport, args.baud, args.speed, args.state) == ("healthy", ("pty", 0), 115200,
                                                                                   1.0, None)
    args = parser.parse_args(["emulate", "--scenario", "dropped", "--transport", "tcp:5020", "--baud", "9600",
                              "--speed", "inf", "--state", "x.json"])
    assert args.transport == ("tcp", 5020) and args.baud == 9600 and args.speed == float("inf")
    assert callable(args.func)
    for bad in (["--baud", "0"], ["--speed", "-2"], ["--speed", "nan"], ["--transport", "tcp:99999"]):
        with pytest.raises(UsageError):
            parser.parse_args(["emulate", *bad])


def test_help_describes_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="pos-sim")
    add_parser(parser.add_subparsers())
    with pytest.raises(SystemExit) as done:
        parser.parse_args(["emulate", "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for word in ("--scenario", "--transport", "--baud", "--speed", "--state", "PORT", "SIGTERM", "flaky-link"):
        assert word in text


def test_a_signal_right_after_start_still_stops_cleanly() -> None:
    with emulate("--speed", "inf") as proc:
        first_line(proc)
        proc.send_signal(signal.SIGTERM)
        out, err = finish(proc)
        assert proc.returncode == 0 and err == ""
        assert out.splitlines()[-1] == "stopped"


def test_the_pos_sim_command_runs_emulate() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "from pos_sim.cli import main; raise SystemExit(main())",
                             "emulate", "--transport", "tcp", "--speed", "inf"],
                            cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = first_line(proc)
        assert line.startswith("PORT socket://127.0.0.1:")
        proc.send_signal(signal.SIGTERM)
        _, err = finish(proc)
        assert proc.returncode == 0 and err == ""
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
