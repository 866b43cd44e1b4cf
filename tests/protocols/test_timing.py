"""The timers follow the line rate and the negotiated payload (docs/protocol.md section 5).

Expected figures are worked by hand from the spec's formulas (10 bits a byte, F = payload + 11),
not taken from the code; the spec's own table is then checked against the same functions so the
document and the code cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from drivers.link import LinkTimings
from protocols.pos import timing

SPEC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"

#: baud -> (line time of 1035 bytes, T_ib, T_resp, T_sched, T_lost), by hand:
#: line = 10350 / baud; T_resp = 0.5 + 2 line; T_sched = 4 (line + T_resp); T_lost = 1 + line + T_sched
HAND: dict[int, tuple[float, float, float, float, float]] = {
    1200: (8.625, 0.2, 17.75, 105.5, 115.125),
    9600: (1.078125, 0.1, 2.65625, 14.9375, 17.015625),
    115200: (0.08984375, 0.1, 0.6796875, 3.078125, 4.16796875),
}


@pytest.mark.parametrize("baud", sorted(HAND))
def test_timers_worked_by_hand(baud: int) -> None:
    line, t_ib, t_resp, t_sched, t_lost = HAND[baud]
    assert timing.line_time(1035, baud) == pytest.approx(line)
    assert timing.inter_byte_timeout(baud) == pytest.approx(t_ib)
    assert timing.response_timeout(baud) == pytest.approx(t_resp)
    assert timing.send_schedule(baud) == pytest.approx(t_sched)
    assert timing.selftest_lost_after(baud) == pytest.approx(t_lost)


def test_a_smaller_negotiated_payload_shortens_every_line_term() -> None:
    # 128-byte payload: F = 139 bytes, 12.065 ms at 115200
    line = 1390 / 115200
    assert timing.response_timeout(115200, 128) == pytest.approx(0.5 + 2 * line)
    assert timing.selftest_lost_after(115200, 128) == pytest.approx(1 + line + 4 * (line + 0.5 + 2 * line))
    assert timing.selftest_lost_after(115200, 128) < timing.selftest_lost_after(115200, 1024)


def test_the_host_waits_out_the_terminals_whole_event_schedule() -> None:
    # the terminal may send an event four times, T_resp apart after each send has crossed the
    # line; the host's lost timer must outlast the last copy after a full progress interval
    for baud in (1200, 2400, 9600, 19200, 38400, 57600, 115200, 230400, 921600):
        for payload in (128, 512, 1024):
            f = timing.max_frame(payload)
            last_copy = timing.PROGRESS_INTERVAL + 4 * timing.line_time(f, baud) + 3 * timing.response_timeout(
                baud, payload)
            assert timing.selftest_lost_after(baud, payload) > last_copy


def test_link_timings_follow_the_same_formulas() -> None:
    t = LinkTimings(baud=9600)
    assert t.response_timeout == pytest.approx(timing.response_timeout(9600))
    assert t.selftest_lost_after == pytest.approx(timing.selftest_lost_after(9600))
    assert t.inter_byte_timeout == pytest.approx(0.1)
    slow = LinkTimings(baud=1200, max_payload=128)
    assert slow.response_timeout == pytest.approx(timing.response_timeout(1200, 128))
    assert slow.inter_byte_timeout == pytest.approx(0.2)


def test_the_spec_table_matches_the_formulas() -> None:
    text = SPEC.read_text(encoding="utf-8")
    header = re.search(r"^\| timer \| formula \| (.+) \|$", text, re.M)
    assert header, "docs/protocol.md section 5 lost its timer table"
    rates = [int(c.strip()) for c in header.group(1).split("|")]
    rows: dict[str, Callable[[int], float]] = {
        "line time of a maximal frame": lambda b: timing.line_time(1035, b),
        "inter-byte timeout": timing.inter_byte_timeout,
        "response timeout": timing.response_timeout,
        "one frame's whole schedule": timing.send_schedule,
        "self-test lost without progress": timing.selftest_lost_after,
        "terminal drops the session after silence": timing.session_timeout,
    }
    for name, formula in rows.items():
        row = re.search(rf"^\| {re.escape(name)}[^|]*\|[^|]*\|(.+)\|$", text, re.M)
        assert row, name
        cells = [c.strip() for c in row.group(1).split("|")]
        for rate, cell in zip(rates, cells, strict=True):
            value, unit = re.fullmatch(r"([\d.]+) (ms|s)", cell).groups()  # type: ignore[union-attr]
            seconds = float(value) / (1000 if unit == "ms" else 1)
            digits = len(value.split(".")[1]) if "." in value else 0
            tolerance = 0.5 * 10 ** -digits / (1000 if unit == "ms" else 1) + 1e-9
            assert abs(formula(rate) - seconds) <= tolerance, (name, rate, cell, formula(rate))


def test_the_terminal_keeps_a_session_through_a_whole_retransmit_schedule() -> None:
    # by hand, F = 1035: 2400 baud: line 4.3125 s, T_resp 9.125 s, T_sched 4 x 13.4375 = 53.75 s,
    # T_session = 53.75 + 9.125 = 62.875 s; 1200: 105.5 + 17.75; 9600: 14.9375 + 2.65625
    assert timing.session_timeout(2400) == pytest.approx(62.875)
    assert timing.session_timeout(1200) == pytest.approx(123.25)
    assert timing.session_timeout(9600) == pytest.approx(17.59375)
    assert timing.session_timeout(19200) == pytest.approx(10.05, abs=0.01)
    assert timing.session_timeout(38400) == timing.session_timeout(921600) == 10.0
    for baud in (1200, 2400, 4800, 9600, 115200):
        # the host may be silent from its first send until its last one has waited T_resp
        longest_silence = 3 * (timing.line_time(1035, baud) + timing.response_timeout(baud)) + \
            timing.response_timeout(baud)
        assert timing.session_timeout(baud) > longest_silence


def test_an_overall_limit_leaves_room_for_answers_still_arriving() -> None:
    # T_sched plus one maximal frame a send: 115200 -> 3.078125 + 4 x 0.08984375
    assert timing.request_budget(115200) == pytest.approx(3.4375)
    assert LinkTimings(baud=115200).request_budget == pytest.approx(3.4375)
