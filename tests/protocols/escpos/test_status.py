"""ESC/POS status bytes against a table written by hand from the Epson reference.

The oracle is the bit tables of the Epson TM-T88III specification (STANDARD, rev. B, "DLE EOT n"
and "GS r n") and the TM-U220 command reference, copied here bit by bit; none of it is computed
by the code under test.  Each row: the request, the reply byte, and the flags that byte sets.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.escpos import DLE_EOT, GS_R_PAPER, IDENTITY_REQUESTS, PrinterStatus, faults_of, outcome_of
from protocols.escpos.status import FLAGS, StatusError, decode
from protocols.pos.codes import FaultCode, Outcome

# The requests as the reference writes them in hex.
REQUEST_BYTES = {
    "DLE EOT 1": "10 04 01",
    "DLE EOT 2": "10 04 02",
    "DLE EOT 3": "10 04 03",
    "DLE EOT 4": "10 04 04",
    "GS r 1": "1D 72 01",
    "GS I 65": "1D 49 41",
    "GS I 66": "1D 49 42",
    "GS I 67": "1D 49 43",
    "GS I 68": "1D 49 44",
}


def test_the_requests_are_the_references_bytes() -> None:
    sent = {r.name: r.command.hex(" ").upper() for r in (*DLE_EOT.values(), GS_R_PAPER, *IDENTITY_REQUESTS.values())}
    assert sent == REQUEST_BYTES


# (status byte, reply, the flags set); every flag not listed must be clear.
# "Fixed" bits: DLE EOT replies have bit 1 and bit 4 on (0x12), bits 0 and 7 off.
TABLE: list[tuple[str, int, set[str]]] = [
    # DLE EOT 1, printer status
    ("printer", 0x12, set()),                                  # online, drawer pin 3 low
    ("printer", 0x16, {"drawer_pin3_high"}),                   # bit 2 on: 04
    ("printer", 0x1A, {"offline"}),                            # bit 3 on: 08
    ("printer", 0x32, {"waiting_online_recovery"}),            # bit 5 on: 20
    ("printer", 0x52, {"feed_button_pressed"}),                # bit 6 on: 40
    ("printer", 0x7E, {"drawer_pin3_high", "offline", "waiting_online_recovery", "feed_button_pressed"}),
    # DLE EOT 2, offline cause
    ("offline_cause", 0x12, set()),
    ("offline_cause", 0x16, {"cover_open"}),                   # bit 2: cover is open
    ("offline_cause", 0x1A, {"paper_being_fed"}),              # bit 3: paper fed by the FEED button
    ("offline_cause", 0x32, {"paper_end_stop"}),               # bit 5: printing stops due to paper end
    ("offline_cause", 0x52, {"error_occurred"}),               # bit 6: error occurred
    ("offline_cause", 0x76, {"cover_open", "paper_end_stop", "error_occurred"}),
    # DLE EOT 3, error cause
    ("error_cause", 0x12, set()),
    ("error_cause", 0x16, {"recoverable_error"}),              # bit 2 (undefined on the TM-T88III)
    ("error_cause", 0x1A, {"autocutter_error"}),               # bit 3: autocutter error occurs
    ("error_cause", 0x32, {"unrecoverable_error"}),            # bit 5: unrecoverable error occurs
    ("error_cause", 0x52, {"auto_recoverable_error"}),         # bit 6: auto-recoverable error occurs
    ("error_cause", 0x7A, {"autocutter_error", "unrecoverable_error", "auto_recoverable_error"}),
    # DLE EOT 4, roll paper sensor: bits 2-3 near end (0C), bits 5-6 paper end (60)
    ("roll_paper", 0x12, set()),
    ("roll_paper", 0x1E, {"near_end"}),
    ("roll_paper", 0x72, {"paper_end"}),
    ("roll_paper", 0x7E, {"near_end", "paper_end"}),
    # GS r 1, paper sensor: bits 0-1 near end (03), bits 2-3 paper end (0C); bits 4 and 7 off
    ("paper_sensor", 0x00, set()),
    ("paper_sensor", 0x03, {"near_end"}),
    ("paper_sensor", 0x0C, {"paper_end"}),
    ("paper_sensor", 0x0F, {"near_end", "paper_end"}),
    ("paper_sensor", 0x60, set()),                             # bits 5-6 reserved: ignored
]


@pytest.mark.parametrize(("key", "byte", "expected"), TABLE, ids=lambda v: f"{v:02X}" if isinstance(v, int) else None)
def test_every_bit_decodes_as_the_reference_says(key: str, byte: int, expected: set[str]) -> None:
    flags = decode(key, byte)
    assert set(flags) == set(FLAGS[key])
    assert {name for name, on in flags.items() if on} == expected


# bytes whose fixed bits are wrong for the reply
NOT_REPLIES = [("printer", 0x00), ("printer", 0x13), ("printer", 0x92), ("printer", 0x10), ("printer", 0x02),
               ("roll_paper", 0xFF), ("paper_sensor", 0x10), ("paper_sensor", 0x80), ("paper_sensor", 0x12)]


@pytest.mark.parametrize(("key", "byte"), NOT_REPLIES)
def test_a_byte_with_the_wrong_fixed_bits_is_refused(key: str, byte: int) -> None:
    with pytest.raises(StatusError):
        decode(key, byte)


@given(st.integers(0, 255))
def test_dle_eot_replies_are_recognised_by_their_fixed_bits_alone(byte: int) -> None:
    fixed_ok = (byte & 0b1001_0011) == 0b0001_0010   # bits 7..0: 0xx1xx10
    for request in DLE_EOT.values():
        assert request.recognises(byte) == fixed_ok
    assert GS_R_PAPER.recognises(byte) == ((byte & 0x90) == 0)
    if fixed_ok:
        decode("printer", byte)   # and decode without complaint
    else:
        with pytest.raises(StatusError):
            decode("printer", byte)


# -- status -> faults: the hand table of docs/escpos.md ---------------------------------------------

OK = PrinterStatus(0x12, 0x12, 0x12, 0x12, 0x00)
FAULTS: list[tuple[str, PrinterStatus, list[FaultCode], Outcome]] = [
    ("healthy", OK, [], Outcome.passed),
    ("paper out", PrinterStatus(0x1A, 0x32, 0x12, 0x7E), [FaultCode.paper_end], Outcome.warning),
    ("paper out, GS r only", PrinterStatus(paper_sensor=0x0C), [FaultCode.paper_end], Outcome.warning),
    ("near end", PrinterStatus(0x12, 0x12, 0x12, 0x1E, 0x03), [FaultCode.paper_near_end], Outcome.warning),
    ("cover open", PrinterStatus(0x1A, 0x16, 0x12, 0x12), [FaultCode.cover_open], Outcome.warning),
    ("offline, no cause", PrinterStatus(0x1A, 0x12, 0x12, 0x12), [FaultCode.printer_offline], Outcome.warning),
    ("offline while feeding", PrinterStatus(0x1A, 0x1A, 0x12, 0x12), [], Outcome.passed),
    ("cutter jam", PrinterStatus(0x1A, 0x52, 0x1A, 0x12), [FaultCode.cutter_error], Outcome.failed),
    ("unrecoverable", PrinterStatus(0x1A, 0x52, 0x32, 0x12), [FaultCode.printer_unrecoverable], Outcome.failed),
    ("head too hot", PrinterStatus(0x1A, 0x52, 0x52, 0x12), [FaultCode.head_overheat], Outcome.warning),
    ("error, no cause", PrinterStatus(0x1A, 0x52, 0x12, 0x12), [FaultCode.printer_error], Outcome.failed),
    ("cutter and paper out", PrinterStatus(0x1A, 0x72, 0x1A, 0x7E),
     [FaultCode.cutter_error, FaultCode.paper_end], Outcome.failed),
    ("cover open, near end", PrinterStatus(0x1A, 0x16, 0x12, 0x1E),
     [FaultCode.cover_open, FaultCode.paper_near_end], Outcome.warning),
]


@pytest.mark.parametrize(("name", "status", "codes", "outcome"), FAULTS, ids=[f[0] for f in FAULTS])
def test_status_maps_to_the_faults_of_the_table(name: str, status: PrinterStatus, codes: list[FaultCode],
                                               outcome: Outcome) -> None:
    found = faults_of(status)
    assert [c for c, _ in found] == codes
    assert outcome_of([c for c, _ in found]) is outcome
    for _, detail in found:
        assert "0x" in detail   # the bytes that show it, for the technician


def test_a_missing_byte_sets_no_flag() -> None:
    s = PrinterStatus(printer=0x12)
    assert s.answered == ("printer",)
    assert not s.paper_end and not s.cover_open and not s.autocutter_error
    assert s.raw() == "DLE EOT 1-4 12 -- -- --, GS r 1 --"


def test_the_status_block_has_each_byte_the_hex_line_and_the_flags() -> None:
    # by hand: 0x1A = 0001 1010 (bit 3: offline); 0x16 = 0001 0110 (bit 2: cover open);
    # 0x1E = 0001 1110 (bits 2-3: near end); GS r 1 not asked
    b = PrinterStatus(printer=0x1A, offline_cause=0x16, error_cause=0x12, roll_paper=0x1E).block()
    assert b["protocol"] == "escpos" and b["raw"] == "DLE EOT 1-4 1A 16 12 1E, GS r 1 --"
    assert (b["printer_status"], b["offline_cause"], b["error_cause"], b["roll_paper"], b["paper_sensor"]) == \
        (0x1A, 0x16, 0x12, 0x1E, None)
    assert b["flags"]["printer"]["offline"] and b["flags"]["offline_cause"]["cover_open"]
    assert b["flags"]["roll_paper"] == {"near_end": True, "paper_end": False}
    assert "paper_sensor" not in b["flags"]
