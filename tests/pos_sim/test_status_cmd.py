"""`pos-sim status`, run as the installed executable against the emulator's scenarios and
against a terminal the test plays on a real pty.

The expected values are written by hand from the scenario files in
pos_sim/emulator/scenarios/ (their comment blocks and tables) and the healthy defaults in
docs/emulator.md ("Writing a scenario"), in the units docs/protocol.md's status blocks give; the
field names of the JSON are copied from docs/protocol.md's "Status blocks" tables.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from protocols.pos import FrameDeframer, MessageType, encode_message
from protocols.pos.codes import FrameFlag
from tests.drivers.ptypeer import PtyPeer

POS_SIM = str(Path(sys.executable).parent / "pos-sim")
#: a hang detector only: far above what any of these runs needs
HANG = 90
ALL = ("system", "magstripe", "chip", "contactless", "printer", "screen", "keypad", "network", "power",
       "scanner", "security")


def emu(scenario: str) -> str:
    return f"emu://{scenario}?speed=inf&baud=115200"


def run(*args: str, lang: str = "en") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    env.pop("LANGUAGE", None)
    extra = ["--lang", lang] if lang else []
    return subprocess.run([POS_SIM, "status", *args, *extra], capture_output=True, text=True, timeout=HANG,
                          check=False, env=env)


def table(stdout: str) -> dict[str, dict[str, str]]:
    """The status section as {component label: {item: value}}."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("=== COMPONENT STATUS")
                 or line.startswith("=== 部件状态"))
    out: dict[str, dict[str, str]] = {}
    current = ""
    for line in lines[start + 2:]:   # past the section title and the column headings
        if not line.strip():
            break
        cells = re.split(r"\s{2,}", line.strip())
        if not line.startswith(" "):
            current = cells.pop(0)
            out[current] = {}
        if len(cells) == 1:
            out[current][""] = cells[0]
        else:
            out[current][cells[0]] = cells[1]
    return out


def info_section(stdout: str) -> dict[str, str]:
    lines = stdout.splitlines()
    start = lines.index("=== TERMINAL INFORMATION ===")
    out: dict[str, str] = {}
    for line in lines[start + 1:]:
        if line.startswith("==="):
            break
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


# -- the scenarios, values by hand ------------------------------------------------------------

#: healthy.toml declares no component table: every value is the healthy default (docs/emulator.md)
HEALTHY = {
    "Main board and system": {"Memory": "18432 KiB free of 65536 KiB", "Board temperature": "41 °C",
                              "Firmware update": "idle", "Last update result": "success",
                              "Last restart": "power-on"},
    "Magnetic stripe reader": {"Magnetic head": "ready", "Last swipe": "track 1: Read; track 2: Read; track 3: Read",
                               "Swipes": "1523 (14 with no track read)"},
    "Chip card reader": {"Card slot": "empty", "Answer to reset": "none", "Insertions": "812"},
    "Contactless reader": {"RF field": "ready", "Cards in the field": "0", "Taps": "950"},
    "Printer": {"Paper": "present", "Printer": "online", "Printer errors": "none",
                "Print head temperature": "38 °C", "Dot lines printed": "482113",
                "ESC/POS status bytes": "DLE EOT 1-4: 12 12 12 12"},
    "Screen": {"Panel": "ok", "Resolution": "320 × 480 px, touch", "Backlight level": "80 %",
               "Dead pixels": "0 pixels"},
    "Keypad": {"Keys on the keypad": "18 keys", "Key presses": "20431", "Stuck keys": "none"},
    "Network": {"Bearer": "LTE-FDD (cellular)", "Signal strength": "-71 dBm", "Link quality": "182 / 255",
                "IPv4 address": "10.64.12.7", "APN": "cmnet", "Cell id": "27441996", "SIM card": "present",
                "Payment host": "reachable, 126 ms round trip"},
    "Power and battery": {"Power source": "USB", "Battery level": "92 %", "Battery status": "charging",
                          "Supply voltage": "5020 mV", "Battery temperature": "29 °C"},
    "QR scanner": {"Scan engine": "ready", "Codes decoded": "311"},
    "Security (tamper protection)": {"Tamper": "armed, nothing detected", "Last trip": "never",
                                     "Payment keys": "loaded"},
}


def assert_rows(got: dict[str, dict[str, str]], want: dict[str, dict[str, str]]) -> None:
    for component, items in want.items():
        assert component in got, (component, list(got))
        for item, value in items.items():
            assert got[component].get(item) == value, (component, item, got[component])


def test_healthy_terminal_every_component_in_english() -> None:
    r = run(emu("healthy"))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    info = info_section(r.stdout)
    assert info["Terminal"] == "SimPOS SP-M7" and info["Serial number"] == "SP0000123"
    assert info["Firmware version"] == "3.2.1" and info["Hardware revision"] == "B2"
    assert info["Lifecycle"] == "bound, merchant 898310048161234"
    assert info["Fitted"] == "11 of 11" and "Not fitted" not in info
    rows = table(r.stdout)
    assert list(rows) == list(HEALTHY)   # every component, in the protocol's order
    assert_rows(rows, HEALTHY)
    # charging on USB: the current flows into the battery (docs/protocol.md: negative when discharging)
    assert int(rows["Power and battery"]["Current"].removesuffix(" mA")) > 0
    assert re.fullmatch(r"\d+ s", rows["Main board and system"]["Uptime"])


def test_healthy_terminal_in_chinese() -> None:
    r = run(emu("healthy"), lang="zh")
    assert r.returncode == 0, r.stderr
    rows = table(r.stdout)
    assert_rows(rows, {
        "电源与电池": {"电源": "USB", "电池电量": "92 %", "电池状态": "充电中", "供电电压": "5020 mV"},
        "打印机": {"纸张": "有纸", "打印机": "在线", "打印头温度": "38 ℃"},
        "网络": {"网络类型": "LTE-FDD（蜂窝）", "信号强度": "-71 dBm", "IPv4 地址": "10.64.12.7",
               "支付平台": "可达，往返 126 ms"},
        "安全模块（防拆）": {"防拆": "已布防，未发现异常", "支付密钥": "已加载"},
        "主板与系统": {"内存": "可用 18432 KiB，共 65536 KiB", "主板温度": "41 ℃", "固件升级状态": "空闲"},
    })
    assert "=== 终端信息 ===" in r.stdout and "已绑定，商户 898310048161234" in r.stdout


def test_weak_battery() -> None:
    # weak-battery.toml: on its battery at 8 %, draining; LwM2M battery status low, ~3.37 V, -180 mA
    r = run(emu("weak-battery"))
    assert r.returncode == 0, r.stderr
    power = table(r.stdout)["Power and battery"]
    assert power["Power source"] == "battery"
    assert power["Battery status"] == "low"
    assert power["Battery level"] in ("8 %", "7 %")   # 8 % at boot, already draining; the wire carries whole percent
    assert power["Current"] == "-180 mA"
    volts = int(power["Supply voltage"].removesuffix(" mV"))
    assert 3350 <= volts <= 3390


def test_paper_out() -> None:
    # paper-out.toml: DLE EOT 1 = 0x1A (offline), 2 = 0x32 (stopped at paper end), 4 = 0x7E; 2201877 lines
    r = run(emu("paper-out"))
    assert r.returncode == 0, r.stderr
    printer = table(r.stdout)["Printer"]
    assert printer["Paper"] == "out"
    assert printer["Printer"] == "offline: stopped at paper end"
    assert printer["Printer errors"] == "none"
    assert printer["ESC/POS status bytes"] == "DLE EOT 1-4: 1A 32 12 7E"
    assert printer["Dot lines printed"] == "2201877"


def test_no_network() -> None:
    # no-network.toml: bearer none, ipv4 0.0.0.0, host unreachable, latency 0xFFFF; SIM present
    r = run(emu("no-network"))
    assert r.returncode == 0, r.stderr
    net = table(r.stdout)["Network"]
    assert net["Bearer"] == "none (no link)"
    assert net["Signal strength"] == "-113 dBm"
    assert net["Link quality"] == "0 / 255"
    assert net["IPv4 address"] == "0.0.0.0 (no address)"
    assert net["SIM card"] == "present"
    assert net["Payment host"] == "unreachable"
    assert net["APN"] == "none" and net["Cell id"] == "none"   # no bearer up: not cellular


def test_locked_terminal_still_gives_its_status() -> None:
    # dropped.toml: locked by the shock (tamper_sources bit 2), tripped 1794993600, keys erased;
    # 1873 dead pixels; on battery.  docs/protocol.md section 8: service diagnostics keep working.
    r = run(emu("dropped"))
    assert r.returncode == 0, r.stderr
    assert info_section(r.stdout)["Lifecycle"] == "locked (tamper), merchant 898310048160457"
    rows = table(r.stdout)
    assert rows["Security (tamper protection)"] == {
        "Tamper": "tripped, payment keys erased (shock (drop))",
        "Last trip": "2026-11-18 09:20:00 UTC", "Payment keys": "not loaded"}
    assert rows["Screen"]["Panel"] == "damaged (dead lines or pixels)"
    assert rows["Screen"]["Dead pixels"] == "1873 pixels"
    assert rows["Magnetic stripe reader"]["Swipes"] == "1523 (37 with no track read)"
    assert rows["Power and battery"]["Power source"] == "battery"


#: docs/protocol.md, "Status blocks": every field of every component's block
SPEC_FIELDS = {
    "system": {"free_memory_kb", "total_memory_kb", "uptime_s", "board_temp_c", "firmware_update_state",
               "firmware_update_result", "last_reset"},
    "magstripe": {"state", "track1", "track2", "track3", "swipes", "failed_swipes"},
    "chip": {"slot", "atr", "insertions"},
    "contactless": {"field", "cards_in_field", "taps"},
    "printer": {"printer_status", "offline_cause", "error_cause", "paper_sensor", "head_temp_c", "lines_printed"},
    "screen": {"panel", "width", "height", "touch", "backlight_pct", "dead_pixels"},
    "keypad": {"keys_total", "presses", "stuck_keys"},
    "network": {"bearer", "signal_dbm", "link_quality", "ipv4", "apn", "cell_id", "sim_present", "host_reachable",
                "latency_ms"},
    "power": {"source", "voltage_mv", "current_ma", "battery_pct", "battery_status", "battery_temp_c"},
    "scanner": {"state", "decodes"},
    "security": {"tamper", "tamper_sources", "keys_loaded", "tripped_at"},
}


def test_json_shape_and_values() -> None:
    r = run(emu("no-network"), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert set(doc) == {"schema_version", "tool", "port", "lang", "taken_at", "device", "protocol", "components",
                        "not_fitted", "exit_status"}
    assert doc["schema_version"] == 1 and doc["exit_status"] == 0 and doc["lang"] == "en"
    assert doc["port"] == emu("no-network") and doc["tool"]["name"] == "pos-sim"
    assert doc["device"]["serial"] == "SP0001024" and doc["device"]["lifecycle"] == "bound"
    assert doc["protocol"]["components"] == list(ALL) and doc["not_fitted"] == []
    assert list(doc["components"]) == list(ALL)
    for name, entry in doc["components"].items():
        assert entry["state"] == "ok" and entry["reason"] is None
        assert set(entry["status"]) == SPEC_FIELDS[name], name
    net = doc["components"]["network"]["status"]
    assert net["bearer"] == "none" and net["ipv4"] == "0.0.0.0" and net["host_reachable"] is False
    assert net["latency_ms"] == 0xFFFF and net["signal_dbm"] == -113 and net["sim_present"] is True
    assert doc["components"]["printer"]["status"]["paper_sensor"] == 0x12
    assert doc["components"]["power"]["status"]["source"] == "usb"
    assert abs(doc["taken_at"] - time.time()) < 3600   # a Unix time, not a monotonic one


def test_only_the_fitted_components_are_asked(tmp_path: Path) -> None:
    scenario = tmp_path / "four-parts.toml"
    scenario.write_text(
        "# four-parts: a terminal with only four of the components.\n"
        "[device]\nserial = \"SP0009999\"\ncomponents = [\"system\", \"printer\", \"power\", \"security\"]\n"
        "[lifecycle]\nstate = \"bound\"\nmerchant_id = \"898310048169999\"\nactivated_at = 1767225600\n"
        "key = \"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\"\n", encoding="utf-8")
    port = f"emu://{scenario}?speed=inf&baud=115200"
    r = run(port, "--json")
    assert r.returncode == 0, r.stderr   # an unfitted one asked would be refused (exit 4)
    doc = json.loads(r.stdout)
    assert list(doc["components"]) == ["system", "printer", "power", "security"]
    assert doc["not_fitted"] == ["magstripe", "chip", "contactless", "screen", "keypad", "network", "scanner"]
    r = run(port)
    assert info_section(r.stdout)["Fitted"] == "4 of 11"
    assert info_section(r.stdout)["Not fitted"] == ("Magnetic stripe reader, Chip card reader, Contactless reader, "
                                                    "Screen, Keypad, Network, QR scanner")
    assert list(table(r.stdout)) == ["Main board and system", "Printer", "Power and battery",
                                     "Security (tamper protection)"]


# -- a terminal that refuses one component and ignores another, played on a pty ----------------

RESP = int(FrameFlag.RESPONSE)
# system (bit 1), printer (bit 5), power (bit 9)
HELLO_REPLY = {"protocol_version": 1, "max_payload": 1024, "components": (1 << 1) | (1 << 5) | (1 << 9),
               "serial": "SP7", "boot_id": 11}
INFO = {"manufacturer": "OtherPOS", "model": "X1", "serial": "SP7", "hardware_rev": "A", "firmware_version": "9.9",
        "lifecycle": "bound", "merchant_id": "", "activated_at": 0, "clock": 0}
SYSTEM = {"free_memory_kb": 100, "total_memory_kb": 4096, "uptime_s": 3725, "board_temp_c": -5,
          "firmware_update_state": 1, "firmware_update_result": 5, "last_reset": "none"}


POWER = {"source": "dc", "voltage_mv": 12000, "current_ma": 0, "battery_pct": 100, "battery_status": "not_installed",
         "battery_temp_c": 0}


@pytest.fixture
def awkward_terminal() -> Iterator[PtyPeer]:
    """Answers HELLO, INFO, PING and STATUS for system; NAKs the printer not_permitted; never
    answers for power."""
    yield from _pty_terminal(awkward=True)


@pytest.fixture
def obliging_terminal() -> Iterator[PtyPeer]:
    """Answers HELLO, INFO, PING, and STATUS for all three components (printer: paper near end)."""
    yield from _pty_terminal(awkward=False)


def _pty_terminal(*, awkward: bool) -> Iterator[PtyPeer]:
    peer = PtyPeer()
    stop = threading.Event()
    started = time.monotonic()
    deframer = FrameDeframer()

    def answer(frame_type: int, seq: int, fields: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):   # unplugged by the test meanwhile
            peer.write(encode_message(frame_type, fields, seq=seq, flags=RESP))

    def loop() -> None:
        while not stop.is_set() and peer.master >= 0:
            try:
                r, _, _ = select.select([peer.master], [], [], 0.05)
                data = os.read(peer.master, 4096) if r else b""
            except (OSError, ValueError):   # unplugged by the test
                return
            for frame in deframer.feed(data):
                if frame.type == MessageType.HELLO:
                    answer(MessageType.HELLO_REPLY, frame.seq, HELLO_REPLY)
                elif frame.type == MessageType.INFO_REQUEST:
                    answer(MessageType.INFO_REPLY, frame.seq, INFO)
                elif frame.type == MessageType.PING:
                    # up long before this session, counting in real time
                    answer(MessageType.PONG, frame.seq,
                           {"uptime_ms": 10_000_000 + int((time.monotonic() - started) * 1000)})
                elif frame.type == MessageType.STATUS_REQUEST:
                    component = frame.payload[0]
                    if component == 1:
                        answer(MessageType.STATUS_REPLY, frame.seq, {"component": "system", "status": SYSTEM})
                    elif component == 5 and awkward:
                        answer(MessageType.NAK, frame.seq, {"reason": "not_permitted"})
                    elif component == 5:
                        answer(MessageType.STATUS_REPLY, frame.seq, {"component": "printer", "status": PRINTER})
                    elif component == 9 and not awkward:
                        answer(MessageType.STATUS_REPLY, frame.seq, {"component": "power", "status": POWER})

    t = threading.Thread(target=loop, name="pty terminal")
    t.start()
    yield peer
    stop.set()
    t.join()
    peer.close()


# docs/protocol.md Example 4: the printer with paper near end
PRINTER = {"printer_status": 22, "offline_cause": 18, "error_cause": 18, "paper_sensor": 30, "head_temp_c": 38,
           "lines_printed": 482113}


def test_a_refused_and_a_silent_component_show_in_their_rows(awkward_terminal: PtyPeer) -> None:
    r = run(awkward_terminal.path)
    assert r.returncode == 4, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    errors = r.stderr.strip().splitlines()
    assert len(errors) == 1, errors
    assert "printer refused (not_permitted)" in errors[0] and "power timeout" in errors[0]
    rows = table(r.stdout)
    assert rows["Printer"] == {"": "refused by the terminal (not_permitted)"}
    assert rows["Power and battery"] == {"": "no answer (no STATUS_REPLY after every retransmit)"}
    assert rows["Main board and system"] == {
        "Memory": "100 KiB free of 4096 KiB", "Uptime": "1 h 2 min 5 s", "Board temperature": "-5 °C",
        "Firmware update": "downloading", "Last update result": "integrity check failure",
        "Last restart": "power-on"}


def test_a_refused_and_a_silent_component_in_json(awkward_terminal: PtyPeer) -> None:
    r = run(awkward_terminal.path, "--json")
    assert r.returncode == 4
    doc = json.loads(r.stdout)
    assert doc["exit_status"] == 4
    comps = doc["components"]
    assert list(comps) == ["system", "printer", "power"]
    assert comps["system"]["state"] == "ok" and comps["system"]["status"]["uptime_s"] == 3725
    assert comps["printer"] == {"state": "refused", "reason": "not_permitted", "status": None}
    assert comps["power"]["state"] == "timeout" and comps["power"]["status"] is None
    assert "STATUS_REQUEST" in comps["power"]["reason"]


# -- --watch ----------------------------------------------------------------------------------


def _interruptible(*args: str, **kw: Any) -> subprocess.Popen[bytes]:
    """Start pos-sim with SIGINT at its default, as from an interactive shell (a shell starting a
    job in the background without job control would have it ignored)."""
    # a disposition set to the default survives exec(), so the installed executable gets it
    restore = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
               "os.execv(sys.argv[1], sys.argv[1:])")
    return subprocess.Popen([sys.executable, "-c", restore, POS_SIM, "status", *args, "--lang", "en"], **kw)


def _read_until(fd: int, done: Callable[[bytes], bool], proc: subprocess.Popen[bytes]) -> bytes:
    got = b""
    give_up = time.monotonic() + HANG
    while not done(got):
        if time.monotonic() > give_up or proc.poll() is not None:
            proc.kill()
            proc.wait()
            raise AssertionError(f"no second snapshot: {got[-500:]!r}")
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            chunk = os.read(fd, 65536)
            got += chunk
    return got


HEADER = b"pos-sim "
LAST_ROW = b"Payment keys"


def test_watch_on_a_pipe_prints_snapshots_until_ctrl_c() -> None:
    proc = _interruptible(emu("healthy"), "--watch", "0.2", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    got = _read_until(proc.stdout.fileno(), lambda b: b.count(LAST_ROW) >= 2, proc)
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=HANG)
    assert proc.returncode == 0, err
    assert b"Traceback" not in err and err == b""
    snapshots = (got + rest).decode().split("\n\n")
    complete = [s for s in snapshots if "Payment keys" in s]
    assert len(complete) >= 2
    for s in complete:
        assert s.lstrip("\n").startswith("pos-sim ") and "\x1b[" not in s
        assert table(s)["Printer"]["Paper"] == "present"


def test_watch_on_a_tty_redraws_in_place() -> None:
    master, slave = os.openpty()
    try:
        proc = _interruptible(emu("healthy"), "--watch", "0.2", stdout=slave, stderr=subprocess.PIPE)
        os.close(slave)
        slave = -1
        got = _read_until(master, lambda b: b.count(b"\x1b[H\x1b[J") >= 2 and b.count(LAST_ROW) >= 2, proc)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=HANG)
        assert proc.returncode == 0, err
        assert b"Traceback" not in err
        frames = got.split(b"\x1b[H\x1b[J")
        assert frames[0] == b""   # every snapshot is drawn from the top left, over the last one
        assert all(f.startswith(HEADER) for f in frames[1:])
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)


def test_watch_json_is_one_object_per_line() -> None:
    proc = _interruptible(emu("weak-battery"), "--watch", "0.2", "--json", stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
    assert proc.stdout is not None
    got = _read_until(proc.stdout.fileno(), lambda b: b.count(b"\n") >= 2, proc)
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=HANG)
    assert proc.returncode == 0, err
    lines = [line for line in (got + rest).decode().splitlines() if line.strip()]
    docs = [json.loads(line) for line in lines[:2]]
    assert all(d["components"]["power"]["status"]["battery_status"] == "low" for d in docs)
    assert docs[1]["taken_at"] >= docs[0]["taken_at"]


def test_watch_ends_with_one_line_and_exit_4_when_the_terminal_goes_away(obliging_terminal: PtyPeer) -> None:
    proc = _interruptible(obliging_terminal.path, "--watch", "0.2", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    got = _read_until(proc.stdout.fileno(), lambda b: b.count(b"Battery temperature") >= 1, proc)
    assert table(got.decode())["Printer"]["Paper"] == "near end"
    assert table(got.decode())["Power and battery"]["Battery status"] == "not installed"
    obliging_terminal.unplug()   # the cable pulled: the host's reads fail
    _, err = proc.communicate(timeout=HANG)
    assert proc.returncode == 4, err
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pos-sim status: ") and "disconnected" in lines[0], lines


# -- errors -----------------------------------------------------------------------------------


def test_a_missing_port_is_one_line_and_exit_2() -> None:
    r = run("/dev/ttyNOSUCH0")
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pos-sim status: ") and "no such port" in lines[0]
    r = run("/dev/ttyNOSUCH0", "--json")
    assert r.returncode == 2
    doc = json.loads(r.stdout)
    assert doc["exit_status"] == 2 and doc["device"] is None and "no such port" in doc["error"]


def test_a_silent_port_is_one_line_and_exit_4() -> None:
    peer = PtyPeer()
    try:
        r = run(peer.path)
    finally:
        peer.close()
    assert r.returncode == 4
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "HELLO" in lines[0] and "Traceback" not in r.stderr


def test_bad_arguments_are_exit_1() -> None:
    r = run(emu("healthy"), lang="fr")
    assert r.returncode == 1 and "unknown language 'fr'" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run(emu("healthy"), "--watch", "0")
    assert r.returncode == 1 and "--watch" in r.stderr


def test_the_command_loads_neither_sqlalchemy_nor_textual() -> None:
    code = ("import sys, pos_sim.cli.status; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'textual')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=HANG, check=True)
    assert r.stdout.strip() == "[]"


# -- the rows the TUI's tiles can show too ----------------------------------------------------


def test_component_rows_show_values_outside_the_tables_as_codes() -> None:
    from drivers.terminal import ComponentStatus
    from pos_sim.cli.status import component_rows

    # a newer firmware's codes: battery status 9 and power source 3 are in no table of docs/protocol.md
    block = {**POWER, "source": 3, "battery_status": 9}
    rows = dict(component_rows(ComponentStatus("power", block), "en"))
    assert rows["Power source"] == "code 3" and rows["Battery status"] == "code 9"
    assert dict(component_rows(ComponentStatus("power", block), "zh"))["电池状态"] == "代码 9"


def test_component_rows_for_no_status_and_a_short_block() -> None:
    from drivers.terminal import ComponentStatus
    from pos_sim.cli.status import component_rows

    assert component_rows(ComponentStatus("printer", None, "refused", "busy"), "zh") == [
        ("", "终端拒绝提供状态（busy）")]
    short = {k: v for k, v in POWER.items() if k != "battery_pct"}
    [(label, value)] = component_rows(ComponentStatus("power", short), "en")
    assert label == "" and value.startswith("bad answer: unexpected status block") and "battery_pct" in value
