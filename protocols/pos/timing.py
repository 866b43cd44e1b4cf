"""The protocol's timers, as formulas of the line rate and the negotiated maximum payload.

docs/protocol.md section 5 states these rules; this module is their one home: the host's link,
the emulated terminal and the spec's worked figures all compute them here, so a slow line slows
every timer together and no side gives up on a frame the line cannot yet have carried.  Pure:
numbers in, seconds out, no clock.

A byte on the line is ten bits (8N1: start, eight data bits, stop), so ``n`` bytes take
``10 n / baud`` seconds.  A *maximal frame* is the negotiated maximum payload plus the frame's
11 bytes of sync, header and CRC (1035 bytes before HELLO, when the limit is 1024).
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.pos.framing import MAX_PAYLOAD, OVERHEAD

#: the smallest maximum payload a session may negotiate (docs/protocol.md section 6)
MIN_PAYLOAD = 128
#: the line speed when nobody says otherwise
DEFAULT_BAUD = 115200
#: bits a byte takes on the line at 8N1
BITS_PER_BYTE = 10
#: the fixed part of the response timeout: the terminal's time to think
RESPONSE_BASE = 0.500
#: retransmissions of one request or event after the first send (four sends in all)
RETRANSMITS = 3
#: wait after NAK busy before sending again
BUSY_BACKOFF = 0.200
#: the floor of the inter-byte timeout, and its size in byte times at slow rates
INTER_BYTE_FLOOR = 0.100
INTER_BYTE_CHARS = 24
#: the host pings after this much idle time
KEEPALIVE_IDLE = 2.0
#: the terminal closes a session after hearing nothing for this long (at least; see session_timeout)
SESSION_TIMEOUT = 10.0
#: a running self-test reports progress at least this often (terminal side)
PROGRESS_INTERVAL = 1.0
#: a confirm prompt nobody answers is skipped after this long
CONFIRM_TIMEOUT = 60.0
#: a lifecycle challenge is good for this long, and for one request
CHALLENGE_VALIDITY = 60.0


def line_time(nbytes: int, baud: int) -> float:
    """Seconds ``nbytes`` take on a line of ``baud`` bits a second (8N1)."""
    if baud <= 0:
        raise ValueError("baud must be positive")
    return nbytes * BITS_PER_BYTE / baud


def max_frame(max_payload: int = MAX_PAYLOAD) -> int:
    """Bytes of the largest frame allowed with ``max_payload``."""
    return OVERHEAD + max_payload


def response_timeout(baud: int, max_payload: int = MAX_PAYLOAD, *, base: float = RESPONSE_BASE) -> float:
    """``T_resp``: how long to wait, after the last byte of a frame, for its answer.

    500 ms (``base``) plus two maximal frames' line time: one already on the line ahead of the
    answer, and the answer itself.  680 ms at 115200 baud before HELLO; 17.75 s at 1200.
    """
    return base + 2 * line_time(max_frame(max_payload), baud)


def inter_byte_timeout(baud: int, *, floor: float = INTER_BYTE_FLOOR) -> float:
    """``T_ib``: silence inside a frame after which its partial bytes are dropped.

    100 ms (``floor``), or 24 byte times where that is longer (below 2400 baud).
    """
    return max(floor, line_time(INTER_BYTE_CHARS, baud))


def send_schedule(baud: int, max_payload: int = MAX_PAYLOAD, *, base: float = RESPONSE_BASE,
                  retransmits: int = RETRANSMITS) -> float:
    """``T_sched``: from a frame's first send until its last retransmission has had its answer
    time: every one of the four sends crossing the line and waiting out ``T_resp``."""
    per_send = line_time(max_frame(max_payload), baud) + response_timeout(baud, max_payload, base=base)
    return (retransmits + 1) * per_send


def request_budget(baud: int, max_payload: int = MAX_PAYLOAD, *, base: float = RESPONSE_BASE,
                   retransmits: int = RETRANSMITS) -> float:
    """The least overall time a host may give one request: ``T_sched`` plus, for each send, the
    one maximal frame more it waits while an answer is still arriving (section 5)."""
    return (send_schedule(baud, max_payload, base=base, retransmits=retransmits)
            + (retransmits + 1) * line_time(max_frame(max_payload), baud))


def session_timeout(baud: int, max_payload: int = MAX_PAYLOAD) -> float:
    """``T_session``: silence from the host after which the terminal closes the session.

    10 s, or where it is longer one request's whole schedule and one more answer time,
    ``T_sched + T_resp``: a host retransmitting on a bad line is never taken for a host that
    left (17.6 s at 9600 baud, 62.9 s at 2400, 123 s at 1200 with 1024-byte payloads).
    """
    return max(SESSION_TIMEOUT, send_schedule(baud, max_payload) + response_timeout(baud, max_payload))


def selftest_lost_after(baud: int, max_payload: int = MAX_PAYLOAD, *, base: float = RESPONSE_BASE,
                        retransmits: int = RETRANSMITS, progress: float = PROGRESS_INTERVAL) -> float:
    """``T_lost``: silence from a running self-test after which the host calls it lost.

    The terminal sends progress at least every ``PROGRESS_INTERVAL``; the next report may wait
    behind a maximal frame on the line, and the terminal is entitled to retransmit it on its
    full schedule.  Only after all of that has passed with nothing heard is the test lost:
    ``PROGRESS_INTERVAL + line time of a maximal frame + T_sched`` (4.2 s at 115200 baud
    with 1024-byte payloads, 3.2 s with 128; 115 s at 1200 baud with 1024).
    """
    return (progress + line_time(max_frame(max_payload), baud)
            + send_schedule(baud, max_payload, base=base, retransmits=retransmits))


@dataclass(frozen=True)
class Timers:
    """The protocol's timers for one line: the formulas above, for ``baud`` and the negotiated
    ``max_payload`` (the protocol's maximum until HELLO has answered).  The fixed parts default
    to the spec's values; tests may shorten them, and every derived timer follows."""

    baud: int = DEFAULT_BAUD
    #: the negotiated maximum payload (the protocol's maximum until HELLO has answered)
    max_payload: int = MAX_PAYLOAD
    #: the floor of the inter-byte timeout (at slow rates it is longer: a few byte times)
    inter_byte: float = INTER_BYTE_FLOOR
    response_base: float = RESPONSE_BASE
    retransmits: int = RETRANSMITS
    busy_backoff: float = BUSY_BACKOFF
    keepalive_idle: float = KEEPALIVE_IDLE
    progress_interval: float = PROGRESS_INTERVAL

    def line_time(self, nbytes: int) -> float:
        """Seconds ``nbytes`` take on the line at 10 bits a byte (8N1)."""
        return line_time(nbytes, self.baud)

    @property
    def max_frame(self) -> int:
        """Bytes of the largest frame either side may send now."""
        return max_frame(self.max_payload)

    @property
    def inter_byte_timeout(self) -> float:
        """T_ib: silence inside a frame after which its partial bytes are dropped."""
        return inter_byte_timeout(self.baud, floor=self.inter_byte)

    @property
    def response_timeout(self) -> float:
        """T_resp: the fixed base plus a maximal frame's line time each way."""
        return response_timeout(self.baud, self.max_payload, base=self.response_base)

    @property
    def worst_case(self) -> float:
        """T_sched: how long a request can take before it fails, every send timing out."""
        return send_schedule(self.baud, self.max_payload, base=self.response_base, retransmits=self.retransmits)

    @property
    def request_budget(self) -> float:
        """The least overall time to give one request: T_sched and the waits for answers still
        arriving at each deadline (a caller's --timeout is never set below it)."""
        return request_budget(self.baud, self.max_payload, base=self.response_base, retransmits=self.retransmits)

    @property
    def selftest_lost_after(self) -> float:
        """T_lost: silence from a running self-test after which it is lost (progress interval,
        a maximal frame ahead of the report, and the terminal's whole retransmit schedule)."""
        return selftest_lost_after(self.baud, self.max_payload, base=self.response_base,
                                   retransmits=self.retransmits, progress=self.progress_interval)

    @property
    def session_timeout(self) -> float:
        """T_session: the terminal's silence limit before it closes the session."""
        return session_timeout(self.baud, self.max_payload)


__all__ = [
    "BITS_PER_BYTE",
    "BUSY_BACKOFF",
    "CHALLENGE_VALIDITY",
    "CONFIRM_TIMEOUT",
    "DEFAULT_BAUD",
    "INTER_BYTE_CHARS",
    "INTER_BYTE_FLOOR",
    "KEEPALIVE_IDLE",
    "MIN_PAYLOAD",
    "PROGRESS_INTERVAL",
    "RESPONSE_BASE",
    "RETRANSMITS",
    "SESSION_TIMEOUT",
    "Timers",
    "inter_byte_timeout",
    "line_time",
    "max_frame",
    "request_budget",
    "response_timeout",
    "selftest_lost_after",
    "send_schedule",
    "session_timeout",
]
