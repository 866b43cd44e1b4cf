"""The line model: bytes cross at the baud rate, never earlier; faults are seeded and repeatable."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from pos_sim.emulator.line import SLICE, LineDirection
from pos_sim.emulator.scenario import LinkFaults


def drain(line: LineDirection) -> bytes:
    """Read the line every slice, as the server does, until it is empty."""
    out = bytearray()
    t = 0.0
    while line.pending:
        t += SLICE
        out += line.take(t)
    return bytes(out)


def test_bytes_cross_one_after_another_at_ten_bits_each() -> None:
    line = LineDirection(9600)
    line.push(bytes(1000), now=10.0)
    bt = 10 / 9600
    assert line.take(10.0) == b""
    assert line.take(10.0 + bt * 0.99) == b"", "not even the first byte before its line time"
    got = b""
    t = 10.0
    while len(got) < 1000:
        t += SLICE
        chunk = line.take(t)
        assert len(chunk) <= int(SLICE / bt) + 1, "small slices, not a burst"
        got += chunk
        assert len(got) <= (t - 10.0) / bt + 1e-6, "never ahead of the line"
    assert t >= 10.0 + 1000 * bt


@settings(max_examples=60, deadline=None)
@given(baud=st.sampled_from([1200, 9600, 115200, 921600]),
       sizes=st.lists(st.integers(1, 400), min_size=1, max_size=6),
       steps=st.lists(st.floats(0.0, 0.05), min_size=1, max_size=80))
def test_the_receiver_is_never_ahead_of_a_real_line(baud: int, sizes: list[int], steps: list[float]) -> None:
    line = LineDirection(baud)
    bt = 10 / baud
    t = 0.0
    pushed = 0
    got = 0
    for i, step in enumerate(steps):
        if i < len(sizes):
            line.push(bytes(sizes[i]), t)
            pushed += sizes[i]
        t += step
        got += len(line.take(t))
        # a real line started at 0 could not have delivered more than t / bt bytes
        assert got <= t / bt + 1e-6
    assert got <= pushed


def test_a_late_reader_gets_no_burst_beyond_one_slice() -> None:
    line = LineDirection(115200)
    line.push(bytes(5000), now=0.0)
    line.take(0.010)
    late = line.take(0.200)  # the thread slept 190 ms
    assert len(late) <= line.slice_bytes + 1, "the line stalled; it does not catch up in a burst"


def test_next_time_says_when_the_next_slice_has_crossed() -> None:
    line = LineDirection(115200)
    assert line.next_time() is None
    line.push(bytes(100), now=1.0)
    when = line.next_time()
    assert when is not None and abs(when - (1.0 + line.slice_bytes * 10 / 115200)) < 1e-9
    assert len(line.take(when)) == line.slice_bytes


def test_faults_are_seeded_repeatable_and_roughly_at_their_rates() -> None:
    faults = LinkFaults(corrupt_rate=0.01, drop_rate=0.002, delay_rate=0.002, delay_ms=(20, 80), seed=7)
    rng = random.Random(1)
    data = bytes(rng.randrange(256) for _ in range(50_000))

    outs = []
    for _ in range(2):
        line = LineDirection(115200, faults, "x")
        line.push(data, 0.0)
        outs.append((drain(line), line.corrupted, line.dropped, line.delayed))
    assert outs[0] == outs[1], "same seed, same traffic: same damage"
    out, corrupted, dropped, delayed = outs[0]
    assert 300 < corrupted < 700 and 40 < dropped < 170 and 40 < delayed < 170
    assert len(out) == len(data) - dropped
    different = LineDirection(115200, faults, "other direction")
    different.push(data, 0.0)
    assert different.corrupted != corrupted or different.dropped != dropped


def test_delays_hold_bytes_back() -> None:
    faults = LinkFaults(delay_rate=0.5, delay_ms=(50, 50), seed=3)
    line = LineDirection(115200, faults)
    line.push(bytes(20), 0.0)
    got = b""
    t = 0.0
    while len(got) < 20:
        t += 0.001
        got += line.take(t)
    assert t >= line.delayed * 0.050, "each delay held the line for 50 ms"


def test_a_clean_line_changes_nothing() -> None:
    line = LineDirection(115200, LinkFaults())
    data = bytes(range(256)) * 4
    line.push(data, 0.0)
    assert drain(line) == data
    assert (line.corrupted, line.dropped, line.delayed) == (0, 0, 0)


def test_each_push_is_due_when_its_own_last_byte_has_crossed() -> None:
    # two frames queued at once: the first is handed out at its own end, not a slice later
    line = LineDirection(921600)
    bt = 10 / 921600
    line.push(bytes(11), now=1.0)
    line.push(bytes(range(30)), now=1.0)
    first = line.next_time()
    assert first is not None and abs(first - (1.0 + 11 * bt)) < 1e-9
    assert len(line.take(first - bt / 2)) == 10, "what has crossed, not the last byte before its time"
    assert line.take(first) == bytes(1)
    second = line.next_time()
    assert second is not None and abs(second - (1.0 + 41 * bt)) < 1e-9
    assert line.take(second) == bytes(range(30))
    assert line.next_time() is None


def test_a_long_push_still_goes_in_slices() -> None:
    line = LineDirection(9600)
    line.push(bytes(500), now=0.0)
    when = line.next_time()
    assert when is not None and abs(when - line.slice_bytes * 10 / 9600) < 1e-9
    assert len(line.take(when)) == line.slice_bytes


@settings(max_examples=60, deadline=None)
@given(baud=st.sampled_from([1200, 9600, 115200, 921600]),
       sizes=st.lists(st.integers(1, 300), min_size=1, max_size=8),
       faults=st.booleans())
def test_waking_at_next_time_delivers_everything_in_order_never_early(baud: int, sizes: list[int],
                                                                     faults: bool) -> None:
    # the server's way of reading a line: sleep until next_time, take, repeat
    link = LinkFaults(drop_rate=0.05, delay_rate=0.05, delay_ms=(1, 3), seed=5) if faults else None
    line = LineDirection(baud, link)
    bt = 10 / baud
    data = [bytes([i % 256]) * n for i, n in enumerate(sizes)]
    for chunk in data:
        line.push(chunk, 0.0)
    got = bytearray()
    t = 0.0
    wakes = 0
    while (when := line.next_time()) is not None:
        assert when > t, "next_time always moves on"
        t = when
        piece = line.take(t)
        # a delay reached at the head is fixed at the first take, which may move the time on
        assert piece or faults, "something is due at next_time"
        got += piece
        assert len(got) <= t / bt + 1e-6, "never ahead of the line"
        wakes += 1
        assert wakes <= 4 * len(sizes) + sum(sizes), "the line keeps moving"
    if not faults:
        assert bytes(got) == b"".join(data)
    else:
        assert len(got) == sum(sizes) - line.dropped
