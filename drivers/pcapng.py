"""Captures as pcapng, so Wireshark and tshark read them (docs/wireshark.md).

One pcapng packet per item :func:`drivers.capture.analyse` finds, in its order:

* an **intact frame**: its bytes, whole even when it came in several reads;
* **dropped bytes** (garbage, a frame with a bad CRC, a partial frame given up): the bytes as
  they came, with a packet comment saying how many, where in that direction's stream and why;
* a **note** (the terminal's identity, a disconnection): an empty packet whose comment is the
  note, so a disconnection shows where it happened.

Direction goes in the packet flags (inbound: terminal to host; outbound: host to terminal);
timestamps have nanosecond resolution (``if_tsresol`` 9): the capture's wall-clock start plus
each record's monotonic offset.  The section comment holds the capture's header.

The link type is Wireshark's upper-PDU (``LINKTYPE_WIRESHARK_UPPER_PDU``, 252): every packet
starts with an exported-PDU tag naming the dissector ``possim``, so Wireshark hands the bytes
to our dissector with no user link-type table to set up (``LINKTYPE_USER0``, 147, would need
one on every machine).

:class:`PcapngWriter` writes the file (through python-pcapng); :func:`export_capture` turns a
capture file into one; :class:`PcapngCaptureWriter` is a :class:`CaptureWriter` that writes
the pcapng while it records, from exactly the (masked) lines it writes to the capture.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import pcapng.blocks as pcapng_blocks
from pcapng import FileWriter

from drivers.capture import (
    DIRECTIONS,
    HOST_TO_TERMINAL,
    TERMINAL_TO_HOST,
    CapturedFrame,
    CaptureError,
    CaptureHeader,
    CaptureReader,
    CaptureWriter,
    Chunk,
    DirectionTrack,
    DroppedBytes,
    Note,
    analyse,
    read_capture,
)
from drivers.masking import mask_bytes, mask_fields, mask_wire_frame
from protocols.pos import timing

#: Wireshark's upper-PDU link type: each packet names its dissector in a tag
LINKTYPE_WIRESHARK_UPPER_PDU = 252
#: exported-PDU tags (Wireshark's exported_pdu_tlvs.h)
EXP_PDU_TAG_END_OF_OPT = 0
EXP_PDU_TAG_DISSECTOR_NAME = 12
#: the dissector our Lua plugin registers
DISSECTOR = "possim"
#: timestamps in nanoseconds: if_tsresol 9 (a power of ten)
TSRESOL_NS = 9
#: packet-flag directions (pcapng epb_flags bits 0-1)
INBOUND, OUTBOUND = 1, 2
#: where a capture's bytes went, in words, for comments
DIRECTION_WORDS = {HOST_TO_TERMINAL: "host to terminal", TERMINAL_TO_HOST: "terminal to host"}


def _tlv(tag: int, value: bytes) -> bytes:
    # values are padded to 32 bits with NULs, which the length includes (allowed for strings)
    padded = value + b"\0" * (-len(value) % 4)
    return tag.to_bytes(2, "big") + len(padded).to_bytes(2, "big") + padded


#: the exported-PDU header every packet starts with: "dissect the rest with possim"
PDU_HEADER = _tlv(EXP_PDU_TAG_DISSECTOR_NAME, DISSECTOR.encode("ascii")) + _tlv(EXP_PDU_TAG_END_OF_OPT, b"")


def started_ns(started: str) -> int:
    """The capture's wall-clock start (ISO 8601) as nanoseconds since the Unix epoch; 0 when
    the header has none or it does not parse (the packets then count from 1970)."""
    try:
        when = datetime.fromisoformat(started)
    except (TypeError, ValueError):
        return 0
    if when.tzinfo is None:
        return 0
    # integer arithmetic: a float of today's epoch nanoseconds loses the last digits
    delta = when - datetime.fromisoformat("1970-01-01T00:00:00+00:00")
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def offset_ns(t: float) -> int:
    """A record's offset (seconds, written with six decimals) in nanoseconds."""
    return round(t * 1_000_000) * 1_000


def section_comment(header: CaptureHeader) -> str:
    """The capture's header as the section's comment: one ``key: JSON`` line each."""
    lines = [f"pos-sim capture {header.format_version}", f"tool: {json.dumps(header.tool)}",
             f"port: {json.dumps(header.port)}", f"baud: {json.dumps(header.baud)}",
             f"started: {json.dumps(header.started)}"]
    lines += [f"{k}: {json.dumps(v, sort_keys=True)}" for k, v in header.extra.items()]
    return "\n".join(lines)


def dropped_comment(item: DroppedBytes) -> str:
    """The packet comment of a dropped byte range."""
    return (f"dropped {len(item.data)} bytes at offset {item.offset} ({DIRECTION_WORDS[item.direction]}): "
            f"{', '.join(item.reasons)}")


def note_comment(note: Note) -> str:
    """The packet comment of a note (its value masked, as ``pos-sim decode`` shows it)."""
    return f"note {note.key} {json.dumps(mask_fields(note.value), sort_keys=True, ensure_ascii=False)}"


class PcapngWriter:
    """Writes a pcapng file of upper-PDU packets for the ``possim`` dissector.

    Packets are written as they come (constant memory); with ``flush_each`` (live recording)
    the stream is flushed after each packet, so a reader sees every packet written so far.
    """

    def __init__(self, stream: IO[bytes], header: CaptureHeader, *, flush_each: bool = False) -> None:
        self.stream = stream
        self.flush_each = flush_each
        self.base_ns = started_ns(header.started)
        self.packets = 0
        self._shb = pcapng_blocks.SectionHeader(options={
            "shb_userappl": header.tool, "opt_comment": section_comment(header)})
        self._idb = self._shb.new_member(
            pcapng_blocks.InterfaceDescription, link_type=LINKTYPE_WIRESHARK_UPPER_PDU, snaplen=0,
            options={"if_name": header.port or "pos-sim", "if_tsresol": bytes([TSRESOL_NS])})
        with warnings.catch_warnings():
            # python-pcapng 2.1.1 declares its own if_tsresol option without a type, and warns
            # about that when it writes it: nothing this code can change
            warnings.filterwarnings("ignore", message='Field type should not be "None"', category=DeprecationWarning)
            self._writer = FileWriter(stream, self._shb)

    def packet(self, direction: str | None, t: float, data: bytes, comment: str = "") -> None:
        """One packet: ``data`` that went ``direction`` (``>``, ``<``, None: neither) ``t``
        seconds into the capture, with an optional comment."""
        stamp = self.base_ns + offset_ns(t)
        options: dict[str, Any] = {}
        if direction is not None:
            options["epb_flags"] = INBOUND if direction == TERMINAL_TO_HOST else OUTBOUND
        if comment:
            options["opt_comment"] = comment
        body = PDU_HEADER + data
        block = self._shb.new_member(
            pcapng_blocks.EnhancedPacket, interface_id=self._idb.interface_id,
            timestamp_high=stamp >> 32, timestamp_low=stamp & 0xFFFFFFFF,
            packet_data=body, packet_len=len(body), options=options)
        self._writer.write_block(block)
        if self.flush_each:
            self.stream.flush()
        self.packets += 1

    def item(self, item: CapturedFrame | DroppedBytes | Note) -> None:
        """Write what :func:`drivers.capture.analyse` found: a frame, dropped bytes or a note.

        Card data is masked again (a capture made by another tool, or by hand, may hold some;
        ours are masked already, and masking twice changes nothing): a frame whose payload
        changed gets a CRC over the masked bytes, as the capture writer does.
        """
        if isinstance(item, CapturedFrame):
            self.packet(item.direction, item.time, mask_wire_frame(item.frame, item.raw))
        elif isinstance(item, DroppedBytes):
            self.packet(item.direction, item.time, mask_bytes(item.data), dropped_comment(item))
        else:
            self.packet(None, item.time, b"", note_comment(item))


def _open_output(path: Path) -> IO[bytes]:
    try:
        return open(path, "wb")  # closed by the caller
    except OSError as exc:
        raise CaptureError(f"{path}: cannot write the pcapng file: {exc.strerror or exc}") from exc


def export_capture(capture: str | Path, output: str | Path) -> tuple[int, CaptureReader]:
    """Write ``capture`` as pcapng to ``output``; return the packets written and the reader
    (for its ``problem`` and ``complete``).  Raises :class:`CaptureError` (unreadable capture,
    unwritable output)."""
    out_path = Path(output)
    reader = read_capture(capture)
    with reader:
        stream = _open_output(out_path)
        try:
            writer = PcapngWriter(stream, reader.header)
            for item in analyse(reader):
                writer.item(item)
        except (OSError, CaptureError) as exc:
            stream.close()
            out_path.unlink(missing_ok=True)   # half a file would look like a short session
            if isinstance(exc, CaptureError):
                raise
            raise CaptureError(f"{out_path}: cannot write the pcapng file: {exc.strerror or exc}") from exc
        stream.close()
    return writer.packets, reader


class PcapngCaptureWriter(CaptureWriter):
    """A :class:`CaptureWriter` that also writes a pcapng file as it records.

    The pcapng is made from the lines the capture gets, after masking, and deframed as
    :func:`drivers.capture.analyse` would deframe the finished capture: ``pos-sim pcap`` of the
    capture gives the same packets.  A pcapng that cannot be written any more stops (see
    :attr:`pcapng_problem`); the capture carries on.
    """

    def __init__(self, path: str | Path, pcapng_path: str | Path, *, port: str = "", baud: int = 0,
                 tool: str | None = None, extra: dict[str, Any] | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        self.pcapng_path = Path(pcapng_path)
        self._pcap_stream: IO[bytes] | None = _open_output(self.pcapng_path)
        self._pcap: PcapngWriter | None = None
        self._tracks: dict[str, DirectionTrack] = {}
        #: why the pcapng stopped early, one line ("" when it did not)
        self.pcapng_problem = ""
        kwargs: dict[str, Any] = {} if clock is None else {"clock": clock}
        try:
            super().__init__(path, port=port, baud=baud, tool=tool, extra=extra, **kwargs)
        except BaseException as exc:    # an interrupt too: no half-open pcapng is left behind
            self._close_pcapng()
            raise exc

    def close(self) -> None:
        """Close the capture, then finish the pcapng (the partial frames still held)."""
        super().close()
        with self._lock:
            if self._pcap is not None:
                for track in self._tracks.values():
                    self._pcap_items(track.finish())
            self._close_pcapng()

    def _close_pcapng(self) -> None:
        stream, self._pcap_stream, self._pcap = self._pcap_stream, None, None
        if stream is not None:
            try:
                stream.close()
            except OSError as exc:
                self.pcapng_problem = self.pcapng_problem or self._pcap_failed(exc)

    def _pcap_failed(self, exc: OSError) -> str:
        return f"{self.pcapng_path}: the pcapng stopped: cannot write ({exc.strerror or exc})"

    def _pcap_items(self, items: list[CapturedFrame | DroppedBytes] | list[Note]) -> None:
        if self._pcap is None:
            return
        try:
            for item in items:
                self._pcap.item(item)
        except OSError as exc:
            self.pcapng_problem = self._pcap_failed(exc)
            self._pcap = None

    def _write_lines(self, lines: list[str]) -> None:
        # called inside the writer's lock with the exact lines the capture gets
        super()._write_lines(lines)
        if self._pcap_stream is None or not lines:
            return
        if self._pcap is None and not self._tracks:
            if not lines[0].startswith("# pos-sim capture"):
                return
            baud = self.header.baud if self.header.baud > 0 else timing.DEFAULT_BAUD
            inter_byte = timing.inter_byte_timeout(baud)
            self._tracks = {d: DirectionTrack(d, inter_byte) for d in DIRECTIONS}
            try:
                self._pcap = PcapngWriter(self._pcap_stream, self.header, flush_each=True)
            except OSError as exc:
                self.pcapng_problem = self._pcap_failed(exc)
            return
        for line in lines:
            record = _parse_line(line)
            if isinstance(record, Chunk):
                self._pcap_items(self._tracks[record.direction].feed(record.time, record.data))
            elif isinstance(record, Note):
                self._pcap_items([record])


def _parse_line(line: str) -> Chunk | Note | None:
    """A chunk or note line as the capture writer writes it (None for the end line)."""
    head = line[:1]
    if head in DIRECTIONS:
        _, t, data = line.split(" ")
        return Chunk(head, float(t), bytes.fromhex(data))
    if head == "@":
        _, t, key, value = line.split(" ", 3)
        return Note(float(t), key, json.loads(value))
    return None
