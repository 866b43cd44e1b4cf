"""drivers/pcapng.py: the pcapng export, read back by a parser written here from the pcapng spec.

The parser below knows only the pcapng block layout (Section Header, Interface Description and
Enhanced Packet blocks, options as code/length/value padded to 32 bits) and Wireshark's
exported-PDU tags; it shares no code with the writer.  The frames come from the spec's example
(docs/capture-format.md), built by hand, not by our encoder.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from drivers.capture import CaptureError
from drivers.pcapng import PcapngCaptureWriter, export_capture, started_ns
from tests.cardscan import scan

HELLO = bytes.fromhex("a55a0100148201000b01040007706f732d73696db6bc")       # docs/capture-format.md
_ACK = bytes.fromhex("0101148206" "0000")                                   # version 1, RESPONSE, seq, ACK, no payload
REPLY = b"\xa5\x5a" + _ACK + binascii.crc_hqx(_ACK, 0xFFFF).to_bytes(2, "big")   # CRC-16/CCITT-FALSE
STARTED = "2026-11-23T14:58:39.866+00:00"
STARTED_NS = 1795445919_866_000_000                                        # date -d ... +%s, by hand


@dataclass
class Packet:
    """One Enhanced Packet Block as the spec lays it out."""

    interface: int
    ns: int
    data: bytes
    options: dict[int, list[bytes]] = field(default_factory=dict)


def _options(raw: bytes) -> dict[int, list[bytes]]:
    out: dict[int, list[bytes]] = {}
    pos = 0
    while pos + 4 <= len(raw):
        code, length = struct.unpack_from("<HH", raw, pos)
        pos += 4
        if code == 0:
            break
        out.setdefault(code, []).append(raw[pos: pos + length])
        pos += length + (-length % 4)
    return out


def parse(path: Path) -> tuple[dict[int, list[bytes]], tuple[int, dict[int, list[bytes]]], list[Packet]]:
    """(section options, (link type, interface options), packets) of a little-endian pcapng."""
    data = path.read_bytes()
    pos = 0
    section: dict[int, list[bytes]] = {}
    interface: tuple[int, dict[int, list[bytes]]] = (-1, {})
    packets: list[Packet] = []
    while pos < len(data):
        kind, total = struct.unpack_from("<II", data, pos)
        body = data[pos + 8: pos + total - 4]
        assert struct.unpack_from("<I", data, pos + total - 4)[0] == total     # trailing length
        if kind == 0x0A0D0D0A:
            magic, major, minor = struct.unpack_from("<IHH", body)
            assert (magic, major, minor) == (0x1A2B3C4D, 1, 0)
            section = _options(body[16:])
        elif kind == 1:
            link, _, _snap = struct.unpack_from("<HHI", body)
            interface = (link, _options(body[8:]))
        elif kind == 6:
            iface, high, low, cap, orig = struct.unpack_from("<IIIII", body)
            assert cap == orig
            options = _options(body[20 + cap + (-cap % 4):])
            packets.append(Packet(iface, (high << 32) | low, body[20: 20 + cap], options))
        pos += total
    return section, interface, packets


def write_capture(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(["# pos-sim capture 1", '# tool: "pos-sim test"', '# port: "emu://healthy"',
                               "# baud: 115200", f'# started: "{STARTED}"', '# plan: "full"', *lines]) + "\n")


#: the exported-PDU header: tag 12 (dissector name) "possim" padded to 8, then end of options
PDU = b"\x00\x0c\x00\x08possim\x00\x00" + b"\x00\x00\x00\x00"


def test_started_is_nanoseconds_since_the_epoch() -> None:
    assert started_ns(STARTED) == STARTED_NS
    assert started_ns("not a time") == 0 and started_ns("2026-11-23T14:58:39") == 0   # no zone: unknown


def test_one_packet_per_frame_dropped_range_and_note(tmp_path: Path) -> None:
    cap = tmp_path / "s.cap"
    # the reply comes in two reads; 3 garbage bytes before it; a note in between
    write_capture(cap, [f"> 0.010170 {HELLO.hex()}", "< 0.015164 00ff11" + REPLY[:5].hex(),
                        f"< 0.015334 {REPLY[5:].hex()}",
                        '@ 0.025185 device {"model": "SP-M7"}', "= 3.045269 end"])
    packets, reader = export_capture(cap, tmp_path / "s.pcapng")
    assert packets == 4 and reader.complete
    section, (link, iface), got = parse(tmp_path / "s.pcapng")
    assert link == 252                                        # LINKTYPE_WIRESHARK_UPPER_PDU
    assert iface[9] == [b"\x09"]                              # if_tsresol: 10^-9 s
    assert iface[2] == [b"emu://healthy"]
    comment = section[1][0].decode()
    assert comment.splitlines()[0] == "pos-sim capture 1"
    assert 'port: "emu://healthy"' in comment and f'started: "{STARTED}"' in comment and 'plan: "full"' in comment
    assert [p.data[:len(PDU)] for p in got] == [PDU] * 4
    hello, garbage, reply, note = got
    assert hello.data[len(PDU):] == HELLO and hello.options[2] == [struct.pack("<I", 2)]    # outbound
    assert hello.ns == STARTED_NS + 10_170_000 and 1 not in hello.options
    assert garbage.data[len(PDU):] == b"\x00\xff\x11"
    assert garbage.options[2] == [struct.pack("<I", 1)]                                      # inbound
    assert garbage.options[1] == [b"dropped 3 bytes at offset 0 (terminal to host): garbage"]
    assert garbage.ns == STARTED_NS + 15_164_000
    # the frame split over two reads is one packet, stamped when it was complete
    assert reply.data[len(PDU):] == REPLY and reply.ns == STARTED_NS + 15_334_000
    assert note.data == PDU and 2 not in note.options
    assert note.options[1] == [b'note device {"model": "SP-M7"}']


def test_a_partial_frame_given_up_is_dropped_with_its_reason(tmp_path: Path) -> None:
    cap = tmp_path / "p.cap"
    write_capture(cap, [f"< 0.100000 {REPLY[:9].hex()}", f"< 0.900000 {REPLY.hex()}", "= 1.000000 end"])
    export_capture(cap, tmp_path / "p.pcapng")
    _, _, (partial, frame) = parse(tmp_path / "p.pcapng")
    assert partial.options[1] == [b"dropped 9 bytes at offset 0 (terminal to host): partial dropped"]
    assert frame.data[len(PDU):] == REPLY


def test_an_unreadable_capture_leaves_no_pcapng(tmp_path: Path) -> None:
    bad = tmp_path / "bad.cap"
    write_capture(bad, ["< 0.1 zz"])
    with pytest.raises(CaptureError):
        export_capture(bad, tmp_path / "bad.pcapng")
    assert not (tmp_path / "bad.pcapng").exists()
    with pytest.raises(CaptureError, match="no such file"):
        export_capture(tmp_path / "missing.cap", tmp_path / "m.pcapng")


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_live_pcapng_equals_the_export_of_the_capture_it_recorded(tmp_path: Path) -> None:
    clock = FakeClock()
    writer = PcapngCaptureWriter(tmp_path / "live.cap", tmp_path / "live.pcapng", port="emu://healthy",
                                 baud=115200, clock=clock)
    clock.now += 0.01
    writer.record(">", HELLO)
    clock.now += 0.005
    writer.record("<", b"\x00\xff" + REPLY[:4])
    clock.now += 0.0002
    writer.record("<", REPLY[4:])
    writer.note("device", {"model": "SP-M7"})
    clock.now += 0.5
    writer.record("<", REPLY[:6])     # never completed: given up at close
    writer.close()
    live = parse(tmp_path / "live.pcapng")
    export_capture(tmp_path / "live.cap", tmp_path / "after.pcapng")
    assert live == parse(tmp_path / "after.pcapng")
    assert [p.data[len(PDU):] for p in live[2]] == [HELLO, b"\x00\xff", REPLY, b"", REPLY[:6]]
    assert live[2][-1].options[1] == [b"dropped 6 bytes at offset 13 (terminal to host): partial dropped"]


def _luhn_number(prefix: str, length: int) -> str:
    """A number that passes the Luhn check, made here so that none is written in the source."""
    body = prefix + "0" * (length - len(prefix) - 1)
    for check in "0123456789":
        digits = [int(d) for d in body + check][::-1]
        total = sum(d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2) for i, d in enumerate(digits))
        if total % 10 == 0:
            return body + check
    raise AssertionError("unreachable")


def test_card_numbers_are_masked_in_the_live_pcapng(tmp_path: Path) -> None:
    pan = _luhn_number("4", 16).encode()
    clock = FakeClock()
    writer = PcapngCaptureWriter(tmp_path / "c.cap", tmp_path / "c.pcapng", baud=115200, clock=clock)
    writer.record("<", b"garbage " + pan + b" more")
    writer.close()
    data = (tmp_path / "c.pcapng").read_bytes()
    assert pan not in data and pan[:6] + b"******" + pan[-4:] in data
    assert scan([tmp_path / "c.pcapng"]).findings == []


def test_a_pcapng_that_cannot_be_created_is_a_capture_error(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="cannot write the pcapng"):
        PcapngCaptureWriter(tmp_path / "x.cap", tmp_path / "no" / "such" / "x.pcapng")
