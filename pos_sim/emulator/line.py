"""One direction of a serial line, in time: bytes go in at once and come out at the baud rate.

A pseudo-terminal, a socket pair and loopback TCP move bytes instantly; a serial line at
115200 baud moves 11,520 bytes a second (8N1: ten bits a byte).  :class:`LineDirection`
puts the line time back: bytes pushed at ``t`` cross one after another, each taking
``10 / baud`` seconds, and :meth:`LineDirection.take` hands out only those whose last bit has
arrived by ``now``, so a receiver never sees a byte earlier than a real line would deliver it.
:meth:`LineDirection.next_time` says when to come back: when the bytes of the next push (one
frame of the terminal's, one read from the host) have all crossed, or a slice of about
:data:`SLICE` seconds of a longer push (small writes spread over time, not a burst and a
sleep), so each frame reaches the other side as soon as a real line would have carried it,
with one wake-up, and a reply's first frame is not held back until its last one has crossed.
If the server thread wakes late it does not catch up in a burst: at most one slice of
lateness is credited, the rest counts as the line having stalled.

It is also where a bad cable lives: with :class:`~pos_sim.emulator.scenario.LinkFaults`
bytes are corrupted (one bit flipped), dropped, or held back before they go on, decided per
byte by a seeded generator, so the same traffic is hit the same way on every run.
"""

from __future__ import annotations

import random
from collections import deque

from pos_sim.emulator.scenario import LinkFaults

#: the size of a write, in line time: a few bytes at 9600 baud, about 23 at 115200
SLICE = 0.002


class LineDirection:
    """Bytes in flight one way on a line of a given baud rate, with optional faults."""

    def __init__(self, baud: int, faults: LinkFaults | None = None, salt: str = "") -> None:
        if baud <= 0:
            raise ValueError("baud must be positive")
        self.byte_time = 10.0 / baud
        self.slice_bytes = max(1, int(SLICE / self.byte_time))
        self._max_lag = self.slice_bytes * self.byte_time
        self._faults = faults if faults is not None and faults.active else None
        self._rng = random.Random(f"link:{faults.seed if faults else 0}:{salt}")
        self._buf = bytearray()
        self._head = 0  # absolute index of _buf[0] among every byte ever pushed
        self._pauses: deque[tuple[int, float]] = deque()  # (absolute index, extra seconds before it)
        self._ends: deque[int] = deque()  # absolute index just after each push (a frame's end)
        self._clock = 0.0  # when the byte at the head starts to cross
        self.corrupted = 0
        self.dropped = 0
        self.delayed = 0

    @property
    def pending(self) -> int:
        """Bytes still crossing."""
        return len(self._buf)

    def clear(self) -> None:
        """Forget the bytes in flight (the line was cut or reconnected)."""
        self._head += len(self._buf)
        self._buf.clear()
        self._pauses.clear()
        self._ends.clear()

    def push(self, data: bytes, now: float) -> None:
        """Bytes enter the line at ``now`` (after any earlier ones, and through its faults)."""
        if not data:
            return
        if not self._buf:
            self._clock = max(self._clock, now)  # an idle line starts sending at once
        faults = self._faults
        if faults is None:
            self._buf += data
            self._ends.append(self._head + len(self._buf))
            return
        rng = self._rng
        lo, hi = faults.delay_ms
        for original in data:
            if rng.random() < faults.drop_rate:
                self.dropped += 1
                continue
            byte = original
            if rng.random() < faults.corrupt_rate:
                byte ^= 1 << rng.randrange(8)
                self.corrupted += 1
            if rng.random() < faults.delay_rate:
                self._pauses.append((self._head + len(self._buf), rng.uniform(lo, hi) / 1000.0))
                self.delayed += 1
            self._buf.append(byte)
        if self._buf and (not self._ends or self._ends[-1] != self._head + len(self._buf)):
            self._ends.append(self._head + len(self._buf))

    def _crossed(self, now: float, limit: int) -> tuple[int, float]:
        """How many head bytes (at most ``limit``) have crossed by ``now``, and when the last did."""
        n, done = 0, self._clock
        t = max(self._clock, now - self._max_lag)  # no burst to catch up after a late wake-up
        bt = self.byte_time
        pauses = self._pauses
        pi = 0
        while n < limit:
            if pi < len(pauses) and pauses[pi][0] == self._head + n:
                t += pauses[pi][1]
                pi += 1
            seg_end = min(limit, pauses[pi][0] - self._head if pi < len(pauses) else limit)
            can = int((now - t) / bt + 1e-9) if now > t else 0
            k = min(seg_end - n, can)
            if k <= 0:
                break
            n += k
            t += k * bt
            done = t
        return n, done

    def take(self, now: float, limit: int | None = None) -> bytes:
        """The bytes that have fully crossed by ``now`` (at most ``limit``), in order."""
        if not self._buf:
            return b""
        if self._pauses and self._pauses[0][0] == self._head:
            # the line has reached a delay: fix when it ends, once (were it recomputed from
            # ``now`` at every call, the lateness cap would keep pushing it into the future)
            self._clock = max(self._clock, now - self._max_lag) + self._pauses.popleft()[1]
        n, done = self._crossed(now, len(self._buf) if limit is None else min(limit, len(self._buf)))
        if not n:
            return b""
        data = bytes(self._buf[:n])
        del self._buf[:n]
        self._head += n
        self._clock = done
        while self._pauses and self._pauses[0][0] < self._head:
            self._pauses.popleft()
        while self._ends and self._ends[0] <= self._head:
            self._ends.popleft()
        return data

    def next_time(self) -> float | None:
        """When the next push's bytes (a frame), or the next slice of a longer one, will have
        crossed (None when nothing is in flight)."""
        if not self._buf:
            return None
        k = min(len(self._buf), self.slice_bytes)
        if self._ends:
            k = min(k, self._ends[0] - self._head)
        extra = sum(p for i, p in self._pauses if i < self._head + k)
        return self._clock + extra + k * self.byte_time
