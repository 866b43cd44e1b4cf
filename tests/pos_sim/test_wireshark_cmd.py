"""``pos-sim pcap`` and ``pos-sim wireshark install`` on the command line, and the checked-in
dissector against its generator (a stale plugin fails here, as the spec's tables do)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pos_sim.cli import main
from pos_sim.cli.wireshark import personal_plugin_dir, plugin_text
from tools.dissector import DEFAULT_OUTPUT, render
from tools.dissector import main as dissector_main

REPO = Path(__file__).resolve().parents[2]
HEALTHY = REPO / "fixtures" / "captures" / "healthy.cap"


def test_the_checked_in_dissector_is_current() -> None:
    assert DEFAULT_OUTPUT == REPO / "pos_sim" / "wireshark" / "possim.lua"
    assert DEFAULT_OUTPUT.read_text(encoding="utf-8") == render(), "run: python -m tools.dissector"
    assert dissector_main([str(DEFAULT_OUTPUT), "--check"]) == 0


def test_a_stale_dissector_is_reported_and_left_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "possim.lua"
    stale.write_text(render().replace('"HELLO_REPLY"', '"HELLO_ANSWER"'), encoding="utf-8")
    before = stale.read_text(encoding="utf-8")
    assert dissector_main([str(stale), "--check"]) == 1
    assert "stale" in capsys.readouterr().err and stale.read_text(encoding="utf-8") == before
    assert dissector_main([str(stale)]) == 0 and stale.read_text(encoding="utf-8") == render()


def test_every_message_and_field_has_its_dissector_field() -> None:
    lua = render()
    # hand-picked from docs/protocol.md: one field of each shape
    for name in ("possim.seq", "possim.type", "possim.flags", "possim.crc_ok", "possim.hello.max_payload",
                 "possim.info_reply.lifecycle", "possim.status_reply.power.voltage_mv",
                 "possim.status_reply.keypad.stuck_keys_count", "possim.status_reply.keypad.stuck_keys.key",
                 "possim.selftest_result.measurements.value", "possim.lc_request.mac", "possim.nak.reason"):
        assert f'"{name}"' in lua, name
    assert '[8] = "too_large"' in lua and '[39] = "PONG"' not in lua and '[4] = "PONG"' in lua


def test_the_shipped_plugin_is_the_generated_one() -> None:
    assert plugin_text() == render()


def test_install_puts_the_plugin_in_wiresharks_personal_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    # Wireshark's personal Lua plugin folder on Linux (tshark -G folders: "Personal Lua Plugins")
    assert personal_plugin_dir() == tmp_path / ".local" / "lib" / "wireshark" / "plugins"
    assert main(["wireshark", "install"]) == 0
    target = tmp_path / ".local" / "lib" / "wireshark" / "plugins" / "possim.lua"
    assert target.read_text(encoding="utf-8") == render()
    assert str(target) in capsys.readouterr().out
    assert main(["wireshark", "install"]) == 0 and "already up to date" in capsys.readouterr().out
    target.write_text("old", encoding="utf-8")
    assert main(["wireshark", "install"]) == 0 and target.read_text(encoding="utf-8") == render()


def test_install_into_a_folder_that_cannot_be_written_is_one_line_exit_1(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["wireshark", "install", "--dir", str(blocker / "plugins")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot install the dissector" in err and "Traceback" not in err
    if os.geteuid() != 0:      # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
        assert main(["wireshark", "install", "--dir", str(ro)]) == 1


def test_pcap_writes_the_file_and_says_how_many_packets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "h.pcapng"
    assert main(["pcap", str(HEALTHY), "-o", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"          # a pcapng Section Header Block
    assert "wrote " in capsys.readouterr().err


@pytest.mark.parametrize("args, words", [
    (["pcap", "{tmp}/missing.cap", "-o", "{tmp}/x.pcapng"], "no such file"),
    (["pcap", "{notcap}", "-o", "{tmp}/x.pcapng"], "not a pos-sim capture"),
    (["pcap", "{healthy}", "-o", "{tmp}/no/such/dir/x.pcapng"], "cannot write the pcapng"),
    (["pcap", "{healthy}"], "required"),
])
def test_pcap_failures_are_one_line_exit_1(args: list[str], words: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    notcap = tmp_path / "notes.txt"
    notcap.write_text("hello\n")
    argv = [a.format(tmp=tmp_path, notcap=notcap, healthy=HEALTHY) for a in args]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and "Traceback" not in err


def test_pcap_refuses_to_overwrite_its_capture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cap = tmp_path / "c.cap"
    cap.write_bytes(HEALTHY.read_bytes())
    assert main(["pcap", str(cap), "-o", str(cap)]) == 1
    assert cap.read_bytes() == HEALTHY.read_bytes()
    assert "overwrite" in capsys.readouterr().err
