"""Port discovery: which serial ports this machine has, and which of them look like terminals.

pyserial's ``comports()`` says what the kernel enumerated (device, USB vendor and product IDs,
serial number, descriptions).  We add two things a technician needs:

- the ``/dev/serial/by-id/...`` name of each USB port, which udev derives from the device's
  own identity, so it survives re-plugging and changes in enumeration order (``/dev/ttyUSB0``
  today may be ``/dev/ttyUSB1`` tomorrow); ``PortInfo.preferred_path`` is the name to use;
- a mark on ports whose VID:PID is in ``drivers/data/known_terminals.toml``: a payment
  terminal under its maker's own IDs, or a generic USB-serial bridge a terminal may sit behind.

USB enumeration is the one thing tests cannot run, so ``list_ports`` takes the enumeration
function and the by-id directory as parameters.
"""

from __future__ import annotations

import functools
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Final, Literal, Protocol

import serial.tools.list_ports

from drivers.errors import DriverError

#: where udev keeps one symlink per USB serial port, named after the device's identity
BY_ID_DIR: Final = Path("/dev/serial/by-id")

KIND_TERMINAL: Final = "terminal"
KIND_ADAPTER: Final = "usb-serial-adapter"
KIND_PRINTER: Final = "receipt-printer"
Kind = Literal["terminal", "usb-serial-adapter", "receipt-printer"]
_KINDS: Final[tuple[Kind, ...]] = ("terminal", "usb-serial-adapter", "receipt-printer")

TABLE_SCHEMA_VERSION: Final = 1
_ENTRY_KEYS: Final = frozenset({"vid", "pid", "vendor", "model", "kind", "source", "notes"})


class KnownTerminalsError(DriverError):
    """The table of known VID:PID pairs cannot be read or does not follow its format."""


@dataclass(frozen=True)
class KnownTerminal:
    """One entry of the VID:PID table: a terminal maker's device, or a USB-serial bridge chip.

    ``pid`` is None for a vendor-wide entry (any product of that vendor); ``model`` is then
    usually None too.
    """

    vid: int
    pid: int | None
    vendor: str
    model: str | None
    kind: Kind
    source: str
    notes: str | None = None

    @property
    def is_terminal(self) -> bool:
        """True for a payment terminal's own IDs, False for a generic USB-serial adapter."""
        return self.kind == KIND_TERMINAL

    @property
    def is_printer(self) -> bool:
        """True for a receipt printer (diagnosed with ``--device escpos``)."""
        return self.kind == KIND_PRINTER

    @property
    def label(self) -> str:
        """Vendor and model for people: ``Verifone Vx810 PIN pad``, ``Ingenico (model not in table)``."""
        return f"{self.vendor} {self.model}" if self.model else f"{self.vendor} (model not in table)"

    def as_dict(self) -> dict[str, Any]:
        """The entry as plain data for JSON."""
        return {"vendor": self.vendor, "model": self.model, "kind": self.kind, "notes": self.notes,
                "source": self.source}


class KnownTerminals:
    """The VID:PID table, indexed: an exact VID:PID entry wins over a vendor-wide one."""

    def __init__(self, entries: Iterable[KnownTerminal] = ()) -> None:
        self.entries: tuple[KnownTerminal, ...] = tuple(entries)
        self._exact: dict[tuple[int, int], KnownTerminal] = {}
        self._vendor: dict[int, KnownTerminal] = {}
        for entry in self.entries:
            if entry.pid is None:
                if entry.vid in self._vendor:
                    raise KnownTerminalsError(f"two vendor-wide entries for VID {entry.vid:04x}")
                self._vendor[entry.vid] = entry
            else:
                if (entry.vid, entry.pid) in self._exact:
                    raise KnownTerminalsError(f"two entries for {entry.vid:04x}:{entry.pid:04x}")
                self._exact[entry.vid, entry.pid] = entry

    def lookup(self, vid: int | None, pid: int | None) -> KnownTerminal | None:
        """The entry for this USB device, or None (also for ports that are not USB)."""
        if vid is None:
            return None
        if pid is not None and (vid, pid) in self._exact:
            return self._exact[vid, pid]
        return self._vendor.get(vid)

    def __len__(self) -> int:
        return len(self.entries)


def default_table_path() -> Traversable:
    """Where the table ships: inside the ``drivers`` package, so it installs with it."""
    return files("drivers") / "data" / "known_terminals.toml"


def load_known_terminals(source: Traversable | Path | None = None) -> KnownTerminals:
    """Read and check a VID:PID table (the packaged one when ``source`` is None).

    Raises KnownTerminalsError, naming the file and the entry, when the file cannot be read,
    is not TOML, or an entry breaks the format documented at the top of the packaged file.
    """
    if source is None:
        return _packaged_table()
    return _load(source)


@functools.cache
def _packaged_table() -> KnownTerminals:
    return _load(default_table_path())


def _load(source: Traversable | Path) -> KnownTerminals:
    name = source.name
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KnownTerminalsError(f"known-terminals table {name}: cannot read it: {exc}") from exc
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise KnownTerminalsError(f"known-terminals table {name}: not valid TOML: {exc}") from exc
    version = doc.get("schema_version")
    if version != TABLE_SCHEMA_VERSION:
        raise KnownTerminalsError(f"known-terminals table {name}: schema_version must be "
                                  f"{TABLE_SCHEMA_VERSION}, found {version!r}")
    devices = doc.get("device", [])
    if not isinstance(devices, list):
        raise KnownTerminalsError(f"known-terminals table {name}: 'device' must be an array of "
                                  "tables ([[device]])")
    entries = [_entry(name, number, raw) for number, raw in enumerate(devices, start=1)]
    try:
        return KnownTerminals(entries)
    except KnownTerminalsError as exc:
        raise KnownTerminalsError(f"known-terminals table {name}: {exc}") from None


def _entry(name: str, number: int, raw: object) -> KnownTerminal:
    where = f"known-terminals table {name}, [[device]] #{number}"
    if not isinstance(raw, Mapping):
        raise KnownTerminalsError(f"{where}: not a table")
    vendor_hint = raw.get("vendor")
    if isinstance(vendor_hint, str) and vendor_hint:
        where += f" ({vendor_hint})"
    unknown = sorted(set(raw) - _ENTRY_KEYS)
    if unknown:
        raise KnownTerminalsError(f"{where}: unknown key(s) {', '.join(unknown)}; "
                                  f"allowed: {', '.join(sorted(_ENTRY_KEYS))}")
    kind = raw.get("kind")
    if kind not in _KINDS:
        raise KnownTerminalsError(f"{where}: 'kind' must be one of {', '.join(_KINDS)}, got {kind!r}")
    pid = raw.get("pid")
    return KnownTerminal(
        vid=_usb_id(where, "vid", raw.get("vid")),
        pid=None if pid is None else _usb_id(where, "pid", pid),
        vendor=_text(where, "vendor", raw.get("vendor"), required=True) or "",
        model=_text(where, "model", raw.get("model"), required=False),
        kind=next(k for k in _KINDS if k == kind),
        source=_text(where, "source", raw.get("source"), required=True) or "",
        notes=_text(where, "notes", raw.get("notes"), required=False),
    )


def _usb_id(where: str, key: str, value: object) -> int:
    # bool is an int to Python, and `vid = true` is certainly a mistake
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFF:
        raise KnownTerminalsError(f"{where}: {key!r} must be an integer from 0x0000 to 0xffff "
                                  f"(write it as 0x11ca), got {value!r}")
    return value


def _text(where: str, key: str, value: object, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        need = "is required and must be" if required else "must be"
        raise KnownTerminalsError(f"{where}: {key!r} {need} a non-empty string, got {value!r}")
    return value


class PortRecord(Protocol):
    """What ``list_ports`` reads from each of pyserial's ``ListPortInfo`` objects."""

    @property
    def device(self) -> str: ...
    @property
    def description(self) -> str | None: ...
    @property
    def hwid(self) -> str | None: ...
    @property
    def vid(self) -> int | None: ...
    @property
    def pid(self) -> int | None: ...
    @property
    def serial_number(self) -> str | None: ...
    @property
    def manufacturer(self) -> str | None: ...
    @property
    def product(self) -> str | None: ...


@dataclass(frozen=True)
class PortInfo:
    """One serial port as discovery found it."""

    device: str
    """The kernel's device path, ``/dev/ttyACM0``."""
    by_id: str | None = None
    """The ``/dev/serial/by-id/...`` symlink that resolves to ``device``, if udev made one."""
    vid: int | None = None
    pid: int | None = None
    serial_number: str | None = None
    description: str | None = None
    manufacturer: str | None = None
    product: str | None = None
    hwid: str | None = None
    known: KnownTerminal | None = None
    """The VID:PID table's entry for this device, if any."""

    @property
    def preferred_path(self) -> str:
        """The name to open the port by: the by-id name when there is one (it survives re-plugging)."""
        return self.by_id or self.device

    @property
    def is_usb(self) -> bool:
        """True when the port belongs to a USB device."""
        return self.vid is not None

    @property
    def is_terminal(self) -> bool:
        """True when the VID:PID is a terminal maker's (not a generic adapter's)."""
        return self.known is not None and self.known.is_terminal

    @property
    def is_printer(self) -> bool:
        """True when the VID:PID is a receipt printer's."""
        return self.known is not None and self.known.is_printer

    @property
    def vid_pid(self) -> str | None:
        """``11ca:0207``, as ``lsusb`` writes it; None for a port that is not USB."""
        if self.vid is None:
            return None
        return f"{self.vid:04x}:{self.pid or 0:04x}"

    @property
    def kind(self) -> str:
        """``terminal``, ``receipt-printer``, ``usb`` (any other USB port, adapters included) or ``serial``."""
        if self.is_terminal:
            return "terminal"
        if self.is_printer:
            return KIND_PRINTER
        return "usb" if self.is_usb else "serial"

    def as_dict(self) -> dict[str, Any]:
        """The port as plain data for JSON."""
        return {
            "device": self.device, "by_id": self.by_id, "preferred_path": self.preferred_path,
            "kind": self.kind, "vid": self.vid, "pid": self.pid, "vid_pid": self.vid_pid,
            "serial_number": self.serial_number, "description": self.description,
            "manufacturer": self.manufacturer, "product": self.product, "hwid": self.hwid,
            "known": self.known.as_dict() if self.known else None,
        }


def by_id_links(directory: Path = BY_ID_DIR) -> dict[str, str]:
    """Map each device's real path to the by-id symlink naming it.

    The directory exists only while udev has USB serial devices to name, so a missing (or
    unreadable) directory means no names, not an error.  Links whose device is gone are
    skipped; when two links name one device the first in sorted order wins, so output is stable.
    """
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return {}
    links: dict[str, str] = {}
    for name in names:
        link = os.path.join(directory, name)
        if not os.path.islink(link):
            continue
        target = os.path.realpath(link)
        if os.path.exists(target):
            links.setdefault(target, link)
    return links


def list_ports(*, comports: Callable[[], Iterable[PortRecord]] = serial.tools.list_ports.comports,
               by_id_dir: Path = BY_ID_DIR, known: KnownTerminals | None = None) -> list[PortInfo]:
    """List the machine's serial ports: known terminals first, then other USB ports, then the rest.

    ``comports`` and ``by_id_dir`` default to pyserial's enumeration and udev's directory;
    ``known`` defaults to the packaged VID:PID table (KnownTerminalsError if it is broken).
    """
    table = load_known_terminals() if known is None else known
    links = by_id_links(by_id_dir)
    ports = [_port_info(record, links, table) for record in comports()]
    return sorted(ports, key=_sort_key)


def _port_info(record: PortRecord, links: Mapping[str, str], table: KnownTerminals) -> PortInfo:
    return PortInfo(
        device=record.device,
        by_id=links.get(os.path.realpath(record.device)),
        vid=record.vid,
        pid=record.pid,
        serial_number=_given(record.serial_number),
        description=_given(record.description),
        manufacturer=_given(record.manufacturer),
        product=_given(record.product),
        hwid=_given(record.hwid),
        known=table.lookup(record.vid, record.pid),
    )


def _given(value: str | None) -> str | None:
    # pyserial says "n/a" where it knows nothing; JSON readers are better served by null
    return None if value is None or value in ("", "n/a") else value


def _sort_key(port: PortInfo) -> tuple[int, tuple[tuple[int, int, str], ...]]:
    rank = 0 if port.is_terminal or port.is_printer else 1 if port.is_usb else 2
    return rank, _natural(port.device)


def _natural(text: str) -> tuple[tuple[int, int, str], ...]:
    """Sort key that puts ttyUSB2 before ttyUSB10."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part)
                 for part in re.split(r"(\d+)", text) if part)
