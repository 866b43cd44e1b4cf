"""One registry identity per printer, the same online or offline (docs/escpos.md, "Identity").

The keys expected are written out by hand from the rule: a USB printer by its USB VID, PID
and serial number, a network printer by host and port, anything else by the port's name.
The sysfs tree and pyserial's enumeration are played by the test; the printer by the emulator.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from drivers.escpos import ReceiptPrinter, printer_key
from pos_sim.emulator.escpos import EscPosPrinter, EscPosServer, Identity


@dataclass
class Record:
    """One of pyserial's list_ports records, as discovery reads it."""

    device: str
    vid: int | None
    pid: int | None
    serial_number: str | None = None
    description: str | None = None
    hwid: str | None = None
    manufacturer: str | None = None
    product: str | None = None


def test_a_network_printer_is_known_by_host_and_port() -> None:
    assert printer_key("socket://Printer.Example:9100") == "escpos:tcp:printer.example:9100"
    assert printer_key("socket://192.0.2.10:9100/") == "escpos:tcp:192.0.2.10:9100"


def _usb_tree(root: Path, serial_number: str | None) -> Path:
    """sysfs as the kernel lays out lp3: the class link into the interface, ids one folder up."""
    device = root / "devices" / "usb1" / "1-2"
    interface = device / "1-2:1.0"
    interface.mkdir(parents=True)
    (device / "idVendor").write_text("04b8\n")
    (device / "idProduct").write_text("0E28\n")
    if serial_number is not None:
        (device / "serial").write_text(serial_number + "\n")
    usbmisc = root / "class" / "usbmisc" / "lp3"
    usbmisc.mkdir(parents=True)
    os.symlink(interface, usbmisc / "device")
    return root / "class" / "usbmisc"


def test_a_usb_printer_class_device_is_known_by_its_usb_serial_number(tmp_path: Path) -> None:
    sysfs = _usb_tree(tmp_path / "a", "X5ZF012345")
    assert printer_key("/dev/usb/lp3", sysfs=sysfs) == "escpos:usb:04b8:0e28:X5ZF012345"
    bare = _usb_tree(tmp_path / "b", None)   # a descriptor without a serial number: the port's name
    assert printer_key("/dev/usb/lp3", sysfs=bare) == "escpos:/dev/usb/lp3"
    assert printer_key("/dev/usb/lp3", sysfs=tmp_path / "none") == "escpos:/dev/usb/lp3"


def test_a_usb_serial_printer_is_known_by_its_usb_serial_number_on_any_port() -> None:
    first, second = "/dev/nonexistent-ttyACM0", "/dev/nonexistent-ttyACM1"
    today = [Record(first, 0x04B8, 0x0E03, "TM20SN0001"), Record(second, 0x0403, 0x6001)]
    assert printer_key(first, comports=lambda: today) == "escpos:usb:04b8:0e03:TM20SN0001"
    tomorrow = [Record(second, 0x04B8, 0x0E03, "TM20SN0001")]   # re-plugged: another name, the same key
    assert printer_key(second, comports=lambda: tomorrow) == "escpos:usb:04b8:0e03:TM20SN0001"
    # an adapter without a serial number, or a port pyserial does not list: the port's name
    assert printer_key(second, comports=lambda: today) == f"escpos:{second}"
    assert printer_key("/dev/ttyS0", comports=lambda: []) == "escpos:/dev/ttyS0"


def test_the_same_printer_has_the_same_key_online_and_offline() -> None:
    with EscPosServer(EscPosPrinter({"paper-out"})) as server:
        port = server.serve_pty()
        with ReceiptPrinter.open(port) as offline:
            assert offline.identity == {}   # GS I is not answered while offline
            offline_serial = offline.info().serial
        server.set_fault("paper-out", False)
        with ReceiptPrinter.open(port) as online:
            assert online.identity["serial"] == "EP0000001"   # GS I 68 answered now
            info = online.info()
    assert offline_serial == info.serial == f"escpos:{port}"
    assert (info.manufacturer, info.model, info.firmware_version) == ("pos-sim", "ESC/POS emulator", "1.0")


def test_a_model_without_gs_i_68_still_tells_its_firmware() -> None:
    with EscPosServer(EscPosPrinter(identity=Identity(serial=None))) as server, \
            ReceiptPrinter.open(server.serve_pty()) as printer:
        assert printer.identity == {"maker": "pos-sim", "model": "ESC/POS emulator", "firmware": "1.0"}
        assert printer.info().firmware_version == "1.0"
