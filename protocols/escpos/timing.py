"""How long to wait for an ESC/POS printer's reply, from the line rate.

A reply is late when it has not come within the time the request and the reply take on the
line (8N1: ten bits a byte), twice over for slack, plus the printer's turnaround.  ``DLE EOT`` is
answered at once (real time); ``GS r`` and ``GS I`` are processed after the data already in the
printer's receive buffer, so they get a longer turnaround.  USB and network printers have no line
rate: they are timed as at :data:`NO_LINE_RATE`.
"""

from __future__ import annotations

#: bits a byte takes on an 8N1 line
BITS_PER_BYTE = 10
#: how long a printer may take to answer a real-time request once it has it (seconds)
REALTIME_TURNAROUND = 0.5
#: ... and a request processed in order with the print data (GS r, GS I)
BUFFERED_TURNAROUND = 1.5
#: the rate a port without one (USB printer class, TCP 9100) is timed as
NO_LINE_RATE = 115200
#: the slowest rate taken: below it a reply is given up as at this rate
MIN_BAUD = 50


def wire_time(baud: int | None, nbytes: int) -> float:
    """Seconds ``nbytes`` take on the line at ``baud`` (None: :data:`NO_LINE_RATE`)."""
    rate = max(MIN_BAUD, baud or NO_LINE_RATE)
    return nbytes * BITS_PER_BYTE / rate


def reply_timeout(baud: int | None, request_bytes: int, reply_bytes: int, *, realtime: bool = True) -> float:
    """Seconds to wait for a reply of ``reply_bytes`` after sending ``request_bytes``."""
    turnaround = REALTIME_TURNAROUND if realtime else BUFFERED_TURNAROUND
    return turnaround + 2 * wire_time(baud, request_bytes + reply_bytes)


#: how long auto-detection waits for a printer's first ``DLE EOT 1`` reply once the line has
#: carried it: a real-time request is answered on receipt, so a printer that takes longer is
#: found by the slower second chance after HELLO (docs/escpos.md, "Auto-detection")
PROBE_TURNAROUND = 0.15


def probe_timeout(baud: int | None) -> float:
    """Seconds auto-detection waits for the reply to its one ``DLE EOT 1`` (3 bytes out, 1 back)
    before it says HELLO: short, so that a terminal, which stays silent, is not kept waiting."""
    return PROBE_TURNAROUND + 2 * wire_time(baud, 3 + 1)
