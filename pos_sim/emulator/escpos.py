"""An emulated ESC/POS receipt printer on a pseudo-terminal or a TCP port.

It answers the real-time status requests ``DLE EOT 1``..``4`` at once, and ``GS r 1`` and
``GS I 65``..``68`` in order with the print data, with the status bytes of one fault (or none);
everything else is print data, kept (``receipt``) but not interpreted.  As a real printer does,
it goes offline for paper out, an open cover, a jammed cutter or when set offline: then print
data and the non-real-time requests are held, unanswered, until the fault is cleared
(:meth:`EscPosPrinter.set_fault`).  The bit values are the Epson reference's (docs/escpos.md);
they are written out here, not taken from :mod:`protocols.escpos`, so that the emulator is a
second reading of the reference and not the decoder's mirror.

:class:`EscPosServer` serves one printer on a line in a thread, as ``pos-sim emulate --device
escpos`` runs it.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
import tty
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

#: the faults the emulated printer can have, as ``--fault`` names them
FAULTS = ("paper-out", "paper-near-end", "cover-open", "cutter-jam", "offline")
#: faults that take the printer offline (print data and GS r / GS I are held)
BLOCKING = frozenset({"paper-out", "cover-open", "cutter-jam", "offline"})

# DLE EOT replies: fixed bits 1 and 4 on (0x12), 0 and 7 off
_FIXED = 0x12
_OFFLINE = 0x08                # DLE EOT 1 bit 3
_COVER_OPEN = 0x04             # DLE EOT 2 bit 2
_PAPER_END_STOP = 0x20         # DLE EOT 2 bit 5
_ERROR_OCCURRED = 0x40         # DLE EOT 2 bit 6
_AUTOCUTTER = 0x08             # DLE EOT 3 bit 3
_ROLL_NEAR_END = 0x0C          # DLE EOT 4 bits 2-3
_ROLL_PAPER_END = 0x60         # DLE EOT 4 bits 5-6
_GSR_NEAR_END = 0x03           # GS r 1 bits 0-1
_GSR_PAPER_END = 0x0C          # GS r 1 bits 2-3

DLE, EOT, ESC, GS = 0x10, 0x04, 0x1B, 0x1D


@dataclass(frozen=True)
class Identity:
    """What the printer says to GS I 65..68."""

    maker: str = "pos-sim"
    model: str = "ESC/POS emulator"
    firmware: str = "1.0"
    #: None: a model without GS I 68 (it ignores the request, as some Epson and Bixolon models do)
    serial: str | None = "EP0000001"


class EscPosPrinter:
    """The printer's logic, without a line: bytes in, reply bytes out.  Not thread-safe."""

    def __init__(self, faults: set[str] | frozenset[str] = frozenset(), identity: Identity | None = None) -> None:
        unknown = set(faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown fault {', '.join(sorted(unknown))}; faults: {', '.join(FAULTS)}")
        self.faults = set(faults)
        self.identity = identity or Identity()
        #: every byte of print data printed (not what is held while offline)
        self.printed = bytearray()
        #: print data and requests received while offline, processed when it comes back online
        self._held = bytearray()
        self._pending = bytearray()   # an incomplete command at the end of the last chunk
        #: what was asked: (request name, reply) for each status or identity request answered
        self.answered: list[tuple[str, bytes]] = []
        #: called with the bytes printed so far whenever more are printed
        self.on_print: Callable[[bytes], None] | None = None

    @property
    def offline(self) -> bool:
        """Whether a fault keeps it from printing."""
        return bool(self.faults & BLOCKING)

    def status(self, n: int) -> int:
        """The reply to DLE EOT ``n`` (1..4)."""
        f = self.faults
        if n == 1:
            return _FIXED | (_OFFLINE if self.offline else 0)
        if n == 2:
            return (_FIXED | (_COVER_OPEN if "cover-open" in f else 0)
                    | (_PAPER_END_STOP if "paper-out" in f else 0)
                    | (_ERROR_OCCURRED if "cutter-jam" in f else 0))
        if n == 3:
            return _FIXED | (_AUTOCUTTER if "cutter-jam" in f else 0)
        if n == 4:
            # the near-end sensor is uncovered too once the roll has run out
            near = "paper-near-end" in f or "paper-out" in f
            return _FIXED | (_ROLL_NEAR_END if near else 0) | (_ROLL_PAPER_END if "paper-out" in f else 0)
        raise ValueError(f"DLE EOT {n}: n is 1 to 4")

    def paper_sensor(self) -> int:
        """The reply to GS r 1."""
        near = "paper-near-end" in self.faults or "paper-out" in self.faults
        return (_GSR_NEAR_END if near else 0) | (_GSR_PAPER_END if "paper-out" in self.faults else 0)

    def set_fault(self, fault: str, active: bool = True) -> bytes:
        """Make a fault appear or go; return what held requests now answer."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; faults: {', '.join(FAULTS)}")
        if active:
            self.faults.add(fault)
        else:
            self.faults.discard(fault)
        if self.offline or not self._held:
            return b""
        held, self._held = bytes(self._held) + bytes(self._pending), bytearray()
        return self._process(held, realtime_only=False)

    def receive(self, data: bytes) -> bytes:
        """Take bytes from the host; return the replies to send."""
        return self._process(bytes(self._pending) + data, realtime_only=self.offline)

    def _process(self, data: bytes, *, realtime_only: bool) -> bytes:
        self._pending = bytearray()
        out = bytearray()
        printed = bytearray()
        i = 0
        while i < len(data):
            b = data[i]
            if b in (DLE, GS) and len(data) - i < 3:
                self._pending = bytearray(data[i:])   # wait for the rest of the command
                break
            cmd = data[i:i + 3]
            if b == DLE and cmd[1] == EOT and 1 <= cmd[2] <= 4:
                reply = bytes([self.status(cmd[2])])
                self.answered.append((f"DLE EOT {cmd[2]}", reply))
                out += reply
                i += 3
                continue
            if self.offline or realtime_only:
                self._held.append(b)   # held as it came: processed in order once back online
                i += 1
                continue
            if b == GS and cmd[1] == 0x72 and cmd[2] in (1, 49):
                reply = bytes([self.paper_sensor()])
                self.answered.append(("GS r 1", reply))
                out += reply
                i += 3
                continue
            if b == GS and cmd[1] == 0x49 and 65 <= cmd[2] <= 68:
                ident = self.identity
                text = {65: ident.firmware, 66: ident.maker, 67: ident.model, 68: ident.serial}[cmd[2]]
                i += 3
                if text is None:
                    continue   # not on this model: no reply
                reply = b"\x5f" + text.encode("ascii", "replace") + b"\x00"
                self.answered.append((f"GS I {cmd[2]}", reply))
                out += reply
                continue
            printed.append(b)
            i += 1
        if printed:
            self.printed += printed
            if self.on_print is not None:
                self.on_print(bytes(printed))
        return bytes(out)


class EscPosServer:
    """One emulated printer served on a pty or TCP 127.0.0.1 in a thread.  Use as a context manager."""

    def __init__(self, printer: EscPosPrinter, *, receipt: str | Path | None = None) -> None:
        self.printer = printer
        self.receipt = Path(receipt) if receipt is not None else None
        if self.receipt is not None:
            self.receipt.write_bytes(b"")   # a new run starts an empty receipt file
            printer.on_print = self._keep
        self.port: str | None = None
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._line: int | None = None         # pty master, or the connected client's socket fd
        self._slave: int | None = None
        self._listener: socket.socket | None = None
        self._client: socket.socket | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _keep(self, data: bytes) -> None:
        assert self.receipt is not None
        with self.receipt.open("ab") as f:
            f.write(data)

    def serve_pty(self) -> str:
        """Serve on a new pseudo-terminal; return the slave's path."""
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._line, self._slave = master, slave   # the slave stays open: no EIO between hosts
        self.port = os.ttyname(slave)
        self._start()
        return self.port

    def serve_tcp(self, port: int = 0) -> str:
        """Serve on TCP 127.0.0.1:``port`` (0: any free one); return ``socket://127.0.0.1:N``."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", port))
            listener.listen(1)
        except OSError:
            listener.close()
            raise
        listener.setblocking(False)
        self._listener = listener
        self.port = f"socket://127.0.0.1:{listener.getsockname()[1]}"
        self._start()
        return self.port

    def set_fault(self, fault: str, active: bool = True) -> None:
        """Make a fault appear or go while serving (what it releases is sent)."""
        with self._lock:
            out = self.printer.set_fault(fault, active)
            if out:
                self._send(out)

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pos-sim-escpos-emulator", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        """Whether the server thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def _send(self, data: bytes) -> None:
        if self._client is not None:
            with contextlib.suppress(OSError):
                self._client.sendall(data)
        elif self._line is not None:
            view = memoryview(data)
            while view:
                try:
                    n = os.write(self._line, view)
                except BlockingIOError:
                    select.select([], [self._line], [], 0.5)
                    continue
                view = view[n:]

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                fds: list[int] = [self._wake_r]
                if self._client is not None:
                    fds.append(self._client.fileno())
                elif self._line is not None:
                    fds.append(self._line)
                if self._listener is not None and self._client is None:
                    fds.append(self._listener.fileno())
                ready, _, _ = select.select(fds, [], [], 0.5)
                if self._wake_r in ready:
                    os.read(self._wake_r, 64)
                if self._listener is not None and self._listener.fileno() in ready:
                    client, _ = self._listener.accept()
                    client.setblocking(True)
                    self._client = client
                    continue
                if self._client is not None and self._client.fileno() in ready:
                    data = self._client.recv(4096)
                    if not data:   # the host hung up: wait for the next one
                        self._client.close()
                        self._client = None
                        continue
                    self._answer(data)
                elif self._line is not None and self._line in ready:
                    try:
                        data = os.read(self._line, 4096)
                    except BlockingIOError:
                        continue
                    except OSError:   # EIO: no host has the pty open just now
                        self._stop.wait(0.05)
                        continue
                    self._answer(data)
        except BaseException as exc:   # reported by the command that runs the server
            self.error = exc

    def _answer(self, data: bytes) -> None:
        with self._lock:
            out = self.printer.receive(data)
            if out:
                self._send(out)

    def stop(self) -> None:
        """Stop serving and close the line."""
        self._stop.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"!")
        if self._thread is not None:
            self._thread.join(5)
        for sock in (self._client, self._listener):
            if sock is not None:
                sock.close()
        for fd in (self._line, self._slave, self._wake_r, self._wake_w):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._line = self._slave = None
        self._client = self._listener = None

    def __enter__(self) -> EscPosServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
