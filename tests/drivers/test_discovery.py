"""Port discovery and `pos-sim ports`.

USB enumeration cannot run here, so it is the one thing faked: the tests hand `list_ports`
real pyserial `ListPortInfo` objects filled in as the Linux backend fills them. Everything
else is real: by-id names are real symlinks in a temporary directory, the VID:PID table is
the packaged file (or a real broken file), and the command line goes through argparse.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import sys
import types
from collections.abc import Callable, Sequence
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from serial.tools.list_ports_common import ListPortInfo

from drivers.discovery import (
    BY_ID_DIR,
    KIND_ADAPTER,
    KIND_TERMINAL,
    KnownTerminal,
    KnownTerminals,
    KnownTerminalsError,
    PortInfo,
    by_id_links,
    default_table_path,
    list_ports,
    load_known_terminals,
)
from pos_sim.cli import ports as ports_cmd

VERIFONE_LINK = "usb-VeriFone_Vx810_12345678-if00"
FTDI_LINK = "usb-FTDI_FT232R_USB_UART_A10KZX9P-if00-port0"


def usb_port(device: str, vid: int, pid: int, *, serial: str | None = None, manufacturer: str | None = None,
             product: str | None = None, interface: str | None = None) -> ListPortInfo:
    """A ListPortInfo as pyserial's Linux backend leaves it for a USB device."""
    info = ListPortInfo(device, skip_link_detection=True)
    info.vid, info.pid = vid, pid
    info.serial_number = serial
    info.manufacturer = manufacturer
    info.product = product
    info.interface = interface
    info.location = "1-1.2:1.0"
    info.apply_usb_info()
    return info


def plain_port(device: str) -> ListPortInfo:
    """A ListPortInfo for a port with no USB behind it (a UART on the board)."""
    return ListPortInfo(device, skip_link_detection=True)


class Machine:
    """A fake /dev: real device nodes (plain files) and a real by-id directory of symlinks."""

    def __init__(self, root: Path) -> None:
        self.dev = root / "dev"
        self.by_id = root / "dev" / "serial" / "by-id"
        self.by_id.mkdir(parents=True)

    def device(self, name: str) -> str:
        path = self.dev / name
        path.touch()
        return str(path)

    def link(self, name: str, device: str) -> str:
        # udev writes relative links (../../ttyACM0); resolving them must still find the device
        link = self.by_id / name
        link.symlink_to(os.path.relpath(device, self.by_id))
        return str(link)

    def lister(self, records: Sequence[ListPortInfo]) -> ports_cmd.PortLister:
        return functools.partial(list_ports, comports=lambda: list(records), by_id_dir=self.by_id)


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    return Machine(tmp_path)


def ports_command(argv: Sequence[str], lister: ports_cmd.PortLister,
                  scenarios: Callable[[], list[str] | None] = lambda: None) -> tuple[int, str, str]:
    """Run `pos-sim ports ...` through a real argparse parser; return (status, stdout, stderr)."""
    parser = argparse.ArgumentParser(prog="pos-sim")
    ports_cmd.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["ports", *argv])
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = ports_cmd.run(args, lister=lister, scenarios=scenarios)
    return status, out.getvalue(), err.getvalue()


# --- by-id names ------------------------------------------------------------------------------

def test_by_id_name_is_preferred_and_resolves_to_the_device(machine: Machine) -> None:
    acm = machine.device("ttyACM0")
    uart = machine.device("ttyS0")
    link = machine.link(VERIFONE_LINK, acm)
    ports = list_ports(comports=lambda: [plain_port(uart), usb_port(acm, 0x11CA, 0x0207, serial="12345678")],
                       by_id_dir=machine.by_id)
    by_device = {p.device: p for p in ports}
    assert by_device[acm].by_id == link
    assert by_device[acm].preferred_path == link
    assert os.path.realpath(by_device[acm].preferred_path) == os.path.realpath(acm)
    assert by_device[uart].by_id is None
    assert by_device[uart].preferred_path == uart


def test_each_port_gets_its_own_link(machine: Machine) -> None:
    first, second = machine.device("ttyUSB0"), machine.device("ttyUSB1")
    # names chosen so the sorted order of links is the opposite of the devices' order
    link_second = machine.link("usb-A_second", second)
    link_first = machine.link("usb-B_first", first)
    ports = list_ports(comports=lambda: [usb_port(first, 0x0403, 0x6001), usb_port(second, 0x0403, 0x6001)],
                       by_id_dir=machine.by_id)
    assert [(p.device, p.by_id) for p in ports] == [(first, link_first), (second, link_second)]


def test_no_by_id_directory_means_device_paths(tmp_path: Path) -> None:
    device = tmp_path / "ttyACM0"
    device.touch()
    missing = tmp_path / "serial" / "by-id"
    assert by_id_links(missing) == {}
    [port] = list_ports(comports=lambda: [usb_port(str(device), 0x11CA, 0x0207)], by_id_dir=missing)
    assert port.by_id is None and port.preferred_path == str(device)


def test_by_id_path_that_is_a_file_is_no_directory(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "by-id"
    not_a_dir.write_text("")
    assert by_id_links(not_a_dir) == {}


def test_dangling_links_and_plain_files_are_ignored(machine: Machine) -> None:
    acm = machine.device("ttyACM0")
    good = machine.link(VERIFONE_LINK, acm)
    gone = machine.device("ttyACM9")
    machine.link("usb-Unplugged_Thing-if00", gone)
    os.unlink(gone)                              # the device went away, udev has not tidied up yet
    (machine.by_id / "README").write_text("not a link")
    assert by_id_links(machine.by_id) == {os.path.realpath(acm): good}


def test_two_links_to_one_device_choose_the_first_name(machine: Machine) -> None:
    acm = machine.device("ttyACM0")
    machine.link("usb-Zeta-if00", acm)
    first = machine.link("usb-Alpha-if00", acm)
    assert by_id_links(machine.by_id) == {os.path.realpath(acm): first}


def test_device_reported_through_a_symlink_still_finds_its_by_id_name(machine: Machine) -> None:
    acm = machine.device("ttyACM0")
    link = machine.link(VERIFONE_LINK, acm)
    alias = machine.dev / "pinpad"
    alias.symlink_to(acm)
    [port] = list_ports(comports=lambda: [usb_port(str(alias), 0x11CA, 0x0207)], by_id_dir=machine.by_id)
    assert port.by_id == link


def test_default_by_id_directory_is_udevs() -> None:
    assert Path("/dev/serial/by-id") == BY_ID_DIR


# --- the VID:PID table ------------------------------------------------------------------------

def test_known_terminals_are_marked(machine: Machine) -> None:
    records = [
        usb_port(machine.device("ttyACM0"), 0x11CA, 0x0207, product="Vx810"),        # exact entry
        usb_port(machine.device("ttyACM1"), 0x11CA, 0x0999),                          # vendor-wide entry
        usb_port(machine.device("ttyUSB0"), 0x0403, 0x6001, product="FT232R USB UART"),
        usb_port(machine.device("ttyUSB1"), 0x0403, 0x6010),    # FTDI, but a chip not in the table
        usb_port(machine.device("ttyACM2"), 0x2341, 0x0043),    # an Arduino: nobody's terminal
        plain_port(machine.device("ttyS0")),
    ]
    ports = {os.path.basename(p.device): p for p in list_ports(comports=lambda: records, by_id_dir=machine.by_id)}
    vx810 = ports["ttyACM0"].known
    assert vx810 is not None and vx810.kind == KIND_TERMINAL
    assert (vx810.vendor, vx810.model) == ("Verifone", "Vx810 PIN pad")
    assert ports["ttyACM0"].is_terminal
    other = ports["ttyACM1"].known
    assert other is not None and other.pid is None and other.label == "Verifone (model not in table)"
    assert ports["ttyACM1"].is_terminal
    ftdi = ports["ttyUSB0"].known
    assert ftdi is not None and ftdi.kind == KIND_ADAPTER and ftdi.vendor == "FTDI"
    assert not ports["ttyUSB0"].is_terminal
    assert ports["ttyUSB1"].known is None and ports["ttyACM2"].known is None and ports["ttyS0"].known is None


def _entry(vid: int, pid: int | None, model: str) -> KnownTerminal:
    return KnownTerminal(vid=vid, pid=pid, vendor="V", model=model, kind=KIND_TERMINAL, source="test")


@given(vid=st.integers(0, 0xFFFF), pid=st.integers(0, 0xFFFF), other=st.integers(0, 0xFFFF),
       vendor_first=st.booleans())
def test_exact_entry_wins_over_vendor_wide(vid: int, pid: int, other: int, vendor_first: bool) -> None:
    exact, wide = _entry(vid, pid, "exact"), _entry(vid, None, "wide")
    table = KnownTerminals([wide, exact] if vendor_first else [exact, wide])
    assert table.lookup(vid, pid) is exact
    assert table.lookup(vid, (pid + 1) % 0x10000) is wide
    assert table.lookup(vid, None) is wide
    assert table.lookup(None, pid) is None
    if other != vid:
        assert table.lookup(other, pid) is None


def test_packaged_table_ships_in_the_package_and_loads() -> None:
    path = default_table_path()
    assert path.is_file()
    assert Path(str(path)).resolve().parent.parent == Path(sys.modules["drivers"].__file__ or "").resolve().parent
    table = load_known_terminals()
    assert len(table) >= 10
    assert load_known_terminals() is table       # read once, not at every call


@pytest.mark.parametrize(("vid_pid", "vendor"), [
    ("0403:6001", "FTDI"), ("10c4:ea60", "Silicon Labs"), ("1a86:7523", "WCH"), ("067b:2303", "Prolific")])
def test_bridge_chips_are_adapters_not_terminals(vid_pid: str, vendor: str) -> None:
    vid, pid = (int(part, 16) for part in vid_pid.split(":"))
    entry = load_known_terminals().lookup(vid, pid)
    assert entry is not None and entry.vendor == vendor
    assert entry.kind == KIND_ADAPTER and not entry.is_terminal
    assert entry.notes is not None and "terminal may sit behind" in entry.notes


def test_every_packaged_entry_names_its_source() -> None:
    for entry in load_known_terminals().entries:
        assert entry.source.startswith("usb.ids: "), entry
        # the source quotes the ID it vouches for
        expected = f"{entry.vid:04x}" if entry.pid is None else f"{entry.vid:04x}:{entry.pid:04x}"
        assert expected in entry.source, entry


def test_ids_we_could_not_confirm_are_not_in_the_table() -> None:
    table = load_known_terminals()
    # 1234 is registered to Brain Actuated Technologies, not PAX; 079b is Sagem's
    assert table.lookup(0x1234, 0x0101) is None
    assert table.lookup(0x079B, 0x0028) is None


VALID_ENTRY = 'vid = 0x11ca\npid = 0x0207\nvendor = "Verifone"\nkind = "terminal"\nsource = "test"\n'


@pytest.mark.parametrize(("text", "message"), [
    ("schema_version = 1\n[[device]\n", "not valid TOML"),
    ("[[device]]\n" + VALID_ENTRY, "schema_version must be 1, found None"),
    ("schema_version = 2\n", "schema_version must be 1, found 2"),
    ("schema_version = 1\ndevice = 3\n", r"'device' must be an array of tables"),
    ("schema_version = 1\ndevice = [3]\n", r"\[\[device\]\] #1: not a table"),
    ("schema_version = 1\n[[device]]\n" + VALID_ENTRY.replace("0x11ca", '"0x11ca"'),
     r"#1 \(Verifone\): 'vid' must be an integer from 0x0000 to 0xffff \(write it as 0x11ca\), got '0x11ca'"),
    ("schema_version = 1\n[[device]]\n" + VALID_ENTRY.replace("0x0207", "0x10000"), "'pid' must be an integer"),
    ("schema_version = 1\n[[device]]\n" + VALID_ENTRY.replace("0x11ca", "true"), "'vid' must be an integer"),
    ("schema_version = 1\n[[device]]\n" + VALID_ENTRY.replace('"terminal"', '"pinpad"'),
     "'kind' must be one of terminal, usb-serial-adapter, receipt-printer, got 'pinpad'"),
    ("schema_version = 1\n[[device]]\n" + VALID_ENTRY.replace("pid =", "pdi ="), r"unknown key\(s\) pdi"),
    ("schema_version = 1\n[[device]]\n" + VALID_ENTRY.replace('vendor = "Verifone"\n', ""),
     "'vendor' is required and must be a non-empty string, got None"),
    ("schema_version = 1\n[[device]]\n" + VALID_ENTRY.replace('source = "test"', 'source = " "'),
     "'source' is required"),
    ("schema_version = 1\n[[device]]\n" + VALID_ENTRY + 'model = 7\n', "'model' must be a non-empty string"),
    ("schema_version = 1\n[[device]]\n" + VALID_ENTRY + "[[device]]\n" + VALID_ENTRY,
     "two entries for 11ca:0207"),
])
def test_malformed_table_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "known_terminals.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(KnownTerminalsError, match=message) as info:
        load_known_terminals(path)
    assert "known_terminals.toml" in str(info.value)


def test_duplicate_vendor_wide_entries_are_an_error(tmp_path: Path) -> None:
    wide = VALID_ENTRY.replace("pid = 0x0207\n", "")
    path = tmp_path / "known_terminals.toml"
    path.write_text(f"schema_version = 1\n[[device]]\n{wide}[[device]]\n{wide}", encoding="utf-8")
    with pytest.raises(KnownTerminalsError, match="two vendor-wide entries for VID 11ca"):
        load_known_terminals(path)


def test_missing_or_binary_table_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KnownTerminalsError, match=r"nope\.toml: cannot read it"):
        load_known_terminals(tmp_path / "nope.toml")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(KnownTerminalsError, match=r"binary\.toml: cannot read it"):
        load_known_terminals(binary)


def test_a_valid_custom_table_is_used(machine: Machine, tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text("schema_version = 1\n[[device]]\n" + VALID_ENTRY.replace("0x0207", "0x0999")
                    + 'model = "Bench unit"\n', encoding="utf-8")
    table = load_known_terminals(path)
    [port] = list_ports(comports=lambda: [usb_port(machine.device("ttyACM0"), 0x11CA, 0x0999)],
                        by_id_dir=machine.by_id, known=table)
    assert port.known is not None and port.known.label == "Verifone Bench unit"


# --- order ------------------------------------------------------------------------------------

def test_terminals_first_then_usb_then_the_rest_in_natural_order(machine: Machine) -> None:
    records = [
        plain_port(machine.device("ttyS10")),
        usb_port(machine.device("ttyUSB10"), 0x0403, 0x6001),         # an adapter is a USB port, not a terminal
        plain_port(machine.device("ttyS2")),
        usb_port(machine.device("ttyACM3"), 0x2341, 0x0043),
        usb_port(machine.device("ttyACM7"), 0x11CA, 0x0220),
        usb_port(machine.device("ttyUSB2"), 0x1A86, 0x7523),
        usb_port(machine.device("ttyACM1"), 0x0B00, 0x3070),
    ]
    ports = list_ports(comports=lambda: records, by_id_dir=machine.by_id)
    assert [os.path.basename(p.device) for p in ports] == [
        "ttyACM1", "ttyACM7",                   # terminals
        "ttyACM3", "ttyUSB2", "ttyUSB10",       # other USB ports (ttyUSB2 before ttyUSB10)
        "ttyS2", "ttyS10",                      # the rest
    ]
    assert [p.kind for p in ports] == ["terminal"] * 2 + ["usb"] * 3 + ["serial"] * 2


def test_real_enumeration_runs() -> None:
    # whatever this machine has (often nothing): pyserial's own comports() and /dev/serial/by-id
    ports = list_ports()
    assert all(isinstance(p, PortInfo) and p.device.startswith("/dev/") for p in ports)
    ranks = [0 if p.is_terminal else 1 if p.is_usb else 2 for p in ports]
    assert ranks == sorted(ranks)


# --- pos-sim ports ----------------------------------------------------------------------------

@pytest.fixture
def bench(machine: Machine) -> tuple[Machine, list[ListPortInfo]]:
    """A bench with a Verifone PIN pad, a terminal behind an FTDI cable, and the board's UART."""
    acm, usb, uart = machine.device("ttyACM0"), machine.device("ttyUSB0"), machine.device("ttyS0")
    machine.link(VERIFONE_LINK, acm)
    machine.link(FTDI_LINK, usb)
    records = [plain_port(uart),
               usb_port(usb, 0x0403, 0x6001, serial="A10KZX9P", manufacturer="FTDI", product="FT232R USB UART"),
               usb_port(acm, 0x11CA, 0x0207, serial="12345678", manufacturer="VeriFone", product="Vx810")]
    return machine, records


PORT_KEYS = {"device", "by_id", "preferred_path", "kind", "vid", "pid", "vid_pid", "serial_number",
             "description", "manufacturer", "product", "hwid", "known"}


def test_json_shape(bench: tuple[Machine, list[ListPortInfo]]) -> None:
    machine, records = bench
    status, out, err = ports_command(["--json"], machine.lister(records))
    assert (status, err) == (0, "")
    doc = json.loads(out)
    assert set(doc) == {"schema_version", "ports"} and doc["schema_version"] == 1
    assert [set(p) for p in doc["ports"]] == [PORT_KEYS] * 3
    vx, ftdi, uart = doc["ports"]
    assert vx["preferred_path"] == str(machine.by_id / VERIFONE_LINK)
    assert vx["device"] == str(machine.dev / "ttyACM0")
    assert (vx["vid"], vx["pid"], vx["vid_pid"], vx["serial_number"]) == (0x11CA, 0x0207, "11ca:0207", "12345678")
    assert vx["kind"] == "terminal"
    assert vx["known"] == {"vendor": "Verifone", "model": "Vx810 PIN pad", "kind": "terminal", "notes": None,
                           "source": "usb.ids: 11ca:0207 PIN Pad VX 810"}
    assert vx["hwid"] == "USB VID:PID=11CA:0207 SER=12345678 LOCATION=1-1.2:1.0"
    assert ftdi["kind"] == "usb" and ftdi["known"]["kind"] == "usb-serial-adapter"
    assert uart == {**dict.fromkeys(PORT_KEYS), "device": str(machine.dev / "ttyS0"),
                    "preferred_path": str(machine.dev / "ttyS0"), "kind": "serial"}


def test_json_with_emulated_ports(bench: tuple[Machine, list[ListPortInfo]]) -> None:
    machine, records = bench
    _, out, _ = ports_command(["--json", "--all"], machine.lister(records), lambda: ["healthy", "paper-out"])
    ports = json.loads(out)["ports"]
    assert [p["preferred_path"] for p in ports[3:]] == ["emu://healthy", "emu://paper-out"]
    assert all(set(p) == PORT_KEYS and p["kind"] == "emulator" for p in ports[3:])
    _, out, _ = ports_command(["--json"], machine.lister(records), lambda: ["healthy"])
    assert len(json.loads(out)["ports"]) == 3          # scenarios only with --all


def test_human_output(bench: tuple[Machine, list[ListPortInfo]]) -> None:
    machine, records = bench
    status, out, _ = ports_command([], machine.lister(records))
    assert status == 0
    lines = out.splitlines()
    header, vx, ftdi, uart = lines[:4]
    assert header.split() == ["PORT", "VID:PID", "SERIAL", "DESCRIPTION", "IDENTIFIED", "AS"]
    assert vx.startswith(str(machine.by_id / VERIFONE_LINK) + " ")
    assert vx.split()[1:4] == ["11ca:0207", "12345678", "Vx810"]
    assert vx.endswith("terminal: Verifone Vx810 PIN pad")
    assert ftdi.startswith(str(machine.by_id / FTDI_LINK) + " ")
    assert "0403:6001" in ftdi and "A10KZX9P" in ftdi and "FT232R USB UART" in ftdi
    assert ftdi.endswith("adapter: FTDI FT232R USB-serial bridge; a terminal may sit behind it")
    assert uart.split() == [str(machine.dev / "ttyS0"), "-", "-", "-"]
    # aligned: every column starts at the same offset on every row
    for column in ("VID:PID", "SERIAL", "DESCRIPTION", "IDENTIFIED AS"):
        start = header.index(column)
        for row in (vx, ftdi):
            assert row[start - 2:start] == "  " and row[start] != " ", (column, row)
    assert lines[-1] == "3 ports, 1 known terminal. Connect with `pos-sim info PORT`."
    assert ports_cmd.NONE_FOUND not in out


def test_human_output_with_emulated_ports(bench: tuple[Machine, list[ListPortInfo]]) -> None:
    machine, records = bench
    _, out, _ = ports_command(["--all"], machine.lister(records), lambda: ["healthy"])
    [row] = [line for line in out.splitlines() if line.startswith("emu://")]
    assert row.split() == ["emu://healthy", "-", "-", "emulated", "terminal,", "scenario", "healthy", "emulator"]
    # the count says what was listed: the three ports and the emulated one
    assert out.splitlines()[-1] == ("3 ports, 1 known terminal, 1 emulated terminal (emu://). "
                                    "Connect with `pos-sim info PORT`.")
    _, out, _ = ports_command(["--all"], machine.lister(records), lambda: ["healthy", "paper-out"])
    assert out.splitlines()[-1].startswith("3 ports, 1 known terminal, 2 emulated terminals (emu://).")
    _, out, _ = ports_command(["--all"], machine.lister(records), lambda: None)
    assert "emu://" not in out.splitlines()[3] and "this build has no emulator" in out
    _, out, _ = ports_command(["--all"], machine.lister(records), list)
    assert "emu://" not in out.splitlines()[3] and "the emulator has no scenarios" in out
    _, out, _ = ports_command([], machine.lister(records), lambda: None)
    assert "emu://" not in out and "emulator" not in out     # without --all it is not mentioned


def test_no_ports(machine: Machine) -> None:
    status, out, err = ports_command([], machine.lister([]))
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "No serial ports found."
    assert "dmesg" in lines[1] and "pos-sim emulate" in lines[1] and "Plug in the terminal" in lines[1]
    assert "PORT" not in out                    # no empty table
    status, out, _ = ports_command(["--json"], machine.lister([]))
    assert status == 0 and json.loads(out) == {"schema_version": 1, "ports": []}


def test_no_ports_but_emulated_ones(machine: Machine) -> None:
    status, out, _ = ports_command(["--all"], machine.lister([]), lambda: ["healthy"])
    lines = out.splitlines()
    assert status == 0 and lines[0] == "No serial ports found."
    assert lines[3].split()[0] == "PORT" and lines[4].startswith("emu://healthy ")
    assert lines[-1] == "0 serial ports, 1 emulated terminal (emu://). Connect with `pos-sim info PORT`."


def test_broken_table_still_lists_ports_unmarked(bench: tuple[Machine, list[ListPortInfo]], tmp_path: Path) -> None:
    machine, records = bench
    broken = tmp_path / "known_terminals.toml"
    broken.write_text("schema_version = [\n", encoding="utf-8")

    def lister(*, known: KnownTerminals | None = None) -> list[PortInfo]:
        table = load_known_terminals(broken) if known is None else known
        return list_ports(comports=lambda: records, by_id_dir=machine.by_id, known=table)

    status, out, err = ports_command([], lister)
    assert status == 0
    assert err.startswith("pos-sim ports: warning: known-terminals table known_terminals.toml: not valid TOML")
    assert err.rstrip().endswith("terminals are not marked")
    assert str(machine.by_id / VERIFONE_LINK) in out and "terminal:" not in out


def test_help_explains_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="pos-sim")
    ports_cmd.add_parser(parser.add_subparsers(dest="command"))
    with pytest.raises(SystemExit) as info:
        parser.parse_args(["ports", "--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "/dev/serial/by-id" in text and "--json" in text and "schema_version" in text
    assert "--all" in text and "emu://NAME" in text and "pos-sim info PORT" in text


def test_emulator_scenarios_when_the_emulator_is_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pos_sim.emulator", None)     # makes the import fail as if missing
    assert ports_cmd.emulator_scenarios() is None


def test_emulator_scenarios_when_the_emulator_has_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pos_sim.emulator", types.ModuleType("pos_sim.emulator"))
    assert ports_cmd.emulator_scenarios() is None


@pytest.mark.parametrize("as_function", [True, False])
def test_emulator_scenarios_are_read_from_the_emulator(monkeypatch: pytest.MonkeyPatch, as_function: bool) -> None:
    module = types.ModuleType("pos_sim.emulator")
    names = ("weak-battery", "healthy")
    module.scenario_names = (lambda: list(names)) if as_function else names  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pos_sim.emulator", module)
    assert ports_cmd.emulator_scenarios() == ["healthy", "weak-battery"]
