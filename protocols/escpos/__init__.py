"""ESC/POS receipt printers: the status requests a diagnostic tool sends and what their replies mean.

Pure, like the rest of :mod:`protocols`: bytes in, values out, no I/O, clocks or threads.

* :mod:`protocols.escpos.status`: the real-time status requests ``DLE EOT 1``..``4``, ``GS r 1``
  and the identity requests ``GS I 65``..``68``; the decoding of every bit of their replies (Epson
  ESC/POS command reference); :class:`PrinterStatus`; :class:`StatusParser`, which finds the replies
  in a stream of bytes (garbage, split reads).
* :mod:`protocols.escpos.session`: :class:`PrinterSession`, the host's query rules as a sans-I/O
  machine (one request on the line at a time, print data in its place, line-rate deadlines).
* :mod:`protocols.escpos.faults`: the pos-sim fault codes a status stands for, and how serious each is.
* :mod:`protocols.escpos.timing`: how long to wait for a reply at a line rate (and for the
  auto-detection's first, short probe).
"""

from protocols.escpos.faults import PRINTER_FAULT_OUTCOME, faults_of, outcome_of, primary_fault
from protocols.escpos.session import NoReply, PrinterSession, Reply
from protocols.escpos.status import (
    DLE_EOT,
    GS_R_PAPER,
    IDENTITY_REQUESTS,
    STATUS_REQUESTS,
    PrinterStatus,
    Request,
    StatusParser,
    decode,
)
from protocols.escpos.timing import probe_timeout, reply_timeout

__all__ = [
    "DLE_EOT",
    "GS_R_PAPER",
    "IDENTITY_REQUESTS",
    "PRINTER_FAULT_OUTCOME",
    "STATUS_REQUESTS",
    "NoReply",
    "PrinterSession",
    "PrinterStatus",
    "Reply",
    "Request",
    "StatusParser",
    "decode",
    "faults_of",
    "outcome_of",
    "primary_fault",
    "probe_timeout",
    "reply_timeout",
]
