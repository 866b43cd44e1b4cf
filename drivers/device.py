"""What the diagnostics engine needs of a device, whatever protocol it speaks.

:class:`Device` is the interface :class:`pos_sim.diagnostics.engine.DiagnosticsEngine` and the
commands that run it use; :class:`drivers.terminal.Terminal` (the pos-sim terminal protocol) and
:class:`drivers.escpos.ReceiptPrinter` (an ESC/POS receipt printer) both have it, and mypy checks
that they do (the assignments at the end of this module).  A device has components (``hello``),
an identity (``info``), self-tests that report progress and may ask the technician to confirm
something, and a link whose counters go into the report.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from drivers.errors import DriverError, ProtocolViolation, ResponseTimeout

if TYPE_CHECKING:
    from drivers.link import LinkTimings
    from drivers.terminal import DeviceInfo, HelloInfo, SelfTestProgress, SelfTestResult


class Counters(Protocol):
    """A set of counters that goes into the report as plain data."""

    def as_dict(self) -> dict[str, int]:
        """The counters by name."""


class LinkCounters(Counters, Protocol):
    """The link's counters; ``retransmits`` is named in the report's notes."""

    @property
    def retransmits(self) -> int:
        """Requests sent again."""


class ReceiveCounters(Counters, Protocol):
    """What the receiving side dropped; ``bad_crc`` makes a warning about the cable."""

    @property
    def bad_crc(self) -> int:
        """Frames that failed their check."""


class Receiver(Protocol):
    """The receiving side of a link (a deframer, a status parser)."""

    @property
    def stats(self) -> ReceiveCounters:
        """Its counters."""


class DeviceLink(Protocol):
    """The line a device is on."""

    @property
    def name(self) -> str:
        """The port as the technician gave it."""

    @property
    def error(self) -> DriverError | None:
        """Why the link is down, or None while it is up."""

    @property
    def stats(self) -> LinkCounters:
        """What went over the line."""

    @property
    def deframer(self) -> Receiver:
        """What was received, and dropped."""

    @property
    def port(self) -> Any:
        """The open port (a capture tap or replay player may hang off it)."""


class SelfTestHandle(Protocol):
    """A self-test in flight."""

    @property
    def result(self) -> SelfTestResult | None:
        """The result once it is in."""

    def poll(self) -> SelfTestResult | None:
        """The result if it is in, None while the test runs; raises a :class:`DriverError` when
        the link broke or the device went silent mid-test."""

    def on_progress(self, callback: Callable[[SelfTestProgress], None]) -> None:
        """Call ``callback`` for each progress report (a prompt for the technician comes in one)."""


class Device(Protocol):
    """A device the diagnostics engine can run a plan on."""

    @property
    def hello(self) -> HelloInfo | None:
        """What the device said when connected: its components above all (None: unknown)."""

    @property
    def link(self) -> DeviceLink:
        """The line it is on."""

    def info(self) -> DeviceInfo:
        """Identity: maker, model, serial number, firmware."""

    def ping(self) -> int:
        """Whether it answers at all (raises :class:`DriverError` when it does not)."""

    def start_self_test(self, component: str, plan: str = "full", interactive: bool = False) -> SelfTestHandle:
        """Start one component's self-test."""

    def watch_self_test(self, component: str) -> SelfTestHandle:
        """Follow a self-test already running without starting it."""

    def abort(self, component: str | int = 0xFF) -> None:
        """Abort a running self-test (0xFF: every one)."""

    def confirm(self, component: str, accepted: bool) -> None:
        """Answer a confirm prompt (test pattern, test page) for the technician."""

    def read_event_log(self) -> list[dict[str, Any]]:
        """Every entry of the device's event log, oldest first."""

    def set_deadline(self, seconds: float | None) -> None:
        """Let requests from now on fail at once after ``seconds`` (None: no overall limit)."""

    def close(self) -> None:
        """End the session and close the port."""

    def __enter__(self) -> Device:
        """Use as a context manager: the port is closed at the end."""

    def __exit__(self, *exc: object) -> None:
        """Close the port."""


def protocol_of(device: object) -> str:
    """What ``device`` speaks: ``escpos`` for a receipt printer, ``pos`` for a terminal.  A
    receipt printer's one component is all it can have, so a report lists no terminal
    component as "not fitted" on it."""
    from drivers.escpos import ReceiptPrinter

    return "escpos" if isinstance(device, ReceiptPrinter) else "pos"


#: what ``--device`` takes
KINDS = ("auto", "terminal", "escpos")


class NotADevice(ResponseTimeout):
    """Neither a terminal nor a receipt printer answered on the port (auto-detection)."""


def open_device(port: str, kind: str = "auto", *, baud: int | None = None, timeout: float | None = None,
                wrap: Callable[[Any], Any] | None = None, timings: LinkTimings | None = None,
                on_frame: Callable[..., None] | None = None) -> Device:
    """Open ``port`` as a ``terminal``, an ``escpos`` printer, or (``auto``) whichever answers.

    ``auto`` asks ``DLE EOT 1`` first, with a short wait (:meth:`ReceiptPrinter.probe`): a
    printer answers it at once and is sent nothing else, where a HELLO frame would be print
    data (or, worse, ESC/GS commands) to it; a terminal takes the 3 bytes for line noise and
    drops them.  Then HELLO.  When nothing answers HELLO either, ``DLE EOT 1`` is asked once
    more with the full wait, for a printer slower than the probe (that one may have printed
    the HELLO frame's bytes; the driver clears the half line with ``ESC @``).  ``wrap`` (a
    capture tap), ``timings`` and ``on_frame`` are the terminal's (:meth:`Terminal.open`).
    """
    from drivers.escpos import ReceiptPrinter
    from drivers.terminal import Terminal

    if kind not in KINDS:
        raise ValueError(f"unknown device kind {kind!r}; kinds: {', '.join(KINDS)}")
    if kind == "escpos":
        return ReceiptPrinter.open(port, baud=baud)

    def terminal() -> Terminal:
        return Terminal.open(port, baud=baud, timeout=timeout, wrap=wrap, timings=timings, on_frame=on_frame)

    if kind == "terminal":
        return terminal()
    printer = ReceiptPrinter.probe(port, baud=baud)
    if printer is not None:
        return printer
    try:
        return terminal()
    except ResponseTimeout as hello_error:
        if hello_error.noisy or "echoes" in str(hello_error) or "not frames" in str(hello_error):
            raise   # something talks there, and not our protocol: a printer is silent to a HELLO
        try:
            return ReceiptPrinter.open(port, baud=baud, strict=True)
        except (ResponseTimeout, ProtocolViolation):
            raise NotADevice(f"{hello_error}; nor to DLE EOT 1: neither a pos-sim terminal nor an ESC/POS "
                             f"receipt printer answers on {port}") from hello_error


if TYPE_CHECKING:   # mypy proves that both drivers are devices
    from drivers.escpos import ReceiptPrinter
    from drivers.terminal import Terminal

    def _terminal_is_a_device(t: Terminal) -> Device:
        return t

    def _printer_is_a_device(p: ReceiptPrinter) -> Device:
        return p

