"""The host's side of an ESC/POS printer's line as a sans-I/O machine: bytes and time in, bytes
to send and events out.

Pure, like the rest of :mod:`protocols` (no I/O, no clock, no threads): the caller says what
time it is.  :class:`PrinterSession` keeps the query rules a diagnosis needs:

* requests go out one at a time, in the order asked, each only when the one before it has
  its reply or has given up, so every reply is matched to its request by
  :class:`~protocols.escpos.status.StatusParser` (which also skips bytes that are no reply);
* print data (``ESC @``, a test page) goes out in its place among the requests;
* a request whose reply has not come by its deadline (:func:`~protocols.escpos.timing.reply_timeout`
  at the line rate, counted from the moment it became the one on the line) is given up.

It has the shape :class:`drivers.link.PortWorker` drives (``receive_data``, ``advance``,
``next_deadline``, ``frames_to_send``, ``events``).  A deadline starts at the ``now`` of the call
that put the request on the line: :meth:`PrinterSession.request` for one asked while the line
is idle, else the call that settled the request before it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from protocols.escpos.status import ParserStats, Request, StatusParser
from protocols.escpos.timing import reply_timeout


@dataclass(frozen=True)
class Reply:
    """The reply to request ``ticket``: a status byte (int) or a block's text (bytes)."""

    ticket: int
    request: Request
    value: int | bytes
    #: when it came (the ``now`` of the bytes that completed it)
    at: float


@dataclass(frozen=True)
class NoReply:
    """Request ``ticket`` had no reply within ``waited`` seconds and was given up."""

    ticket: int
    request: Request
    waited: float


Event = Reply | NoReply


@dataclass
class SessionStats:
    """What went over the printer's line, as the report counts it."""

    bytes_out: int = 0
    bytes_in: int = 0
    requests: int = 0
    timeouts: int = 0


@dataclass
class _Query:
    ticket: int
    request: Request
    wait: float


@dataclass
class _Data:
    data: bytes


@dataclass
class _OnLine:
    query: _Query
    deadline: float


@dataclass
class PrinterSession:
    """The query rules of one printer line; see the module docstring.

    ``baud`` is the line rate the waits are derived from (None: a USB or network printer,
    timed as :data:`~protocols.escpos.timing.NO_LINE_RATE`).
    """

    baud: int | None = None
    parser: StatusParser = field(default_factory=StatusParser)
    stats: SessionStats = field(default_factory=SessionStats)
    _queue: deque[_Query | _Data] = field(default_factory=deque)
    _out: list[bytes] = field(default_factory=list)
    _events: list[Event] = field(default_factory=list)
    _on_line: _OnLine | None = None
    _tickets: int = 0

    # -- what the host asks ---------------------------------------------------------------

    def request(self, request: Request, now: float, timeout: float | None = None) -> int:
        """Ask ``request`` (after whatever is queued); return its ticket.  ``timeout`` overrides
        the line-rate wait (auto-detection's short probe)."""
        self._tickets += 1
        wait = timeout if timeout is not None else reply_timeout(
            self.baud, len(request.command), request.reply_bytes, realtime=request.realtime)
        self._queue.append(_Query(self._tickets, request, wait))
        self._pump(now)
        return self._tickets

    def send(self, data: bytes, now: float) -> None:
        """Queue print data (it goes out after the requests asked before it)."""
        if data:
            self._queue.append(_Data(bytes(data)))
            self._pump(now)

    @property
    def busy(self) -> bool:
        """Whether a request awaits its reply or anything waits to go out."""
        return self._on_line is not None or bool(self._queue) or bool(self._out)

    @property
    def garbage(self) -> ParserStats:
        """What the parser skipped (bytes that were no reply, blocks given up)."""
        return self.parser.stats

    # -- what the worker feeds --------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes arrived at ``now``."""
        self.stats.bytes_in += len(data)
        for request, value in self.parser.feed(data):
            on_line = self._on_line
            if on_line is not None and request is on_line.query.request:
                self._events.append(Reply(on_line.query.ticket, request, value, now))
                self._on_line = None
        self.advance(now)

    def advance(self, now: float) -> None:
        """Time reached ``now``: a request past its deadline is given up, the next one goes out."""
        on_line = self._on_line
        if on_line is not None and now >= on_line.deadline:
            self.parser.forget()
            self.stats.timeouts += 1
            self._events.append(NoReply(on_line.query.ticket, on_line.query.request, on_line.query.wait))
            self._on_line = None
        self._pump(now)

    def next_deadline(self) -> float | None:
        """When the request on the line is given up (None: none is)."""
        return self._on_line.deadline if self._on_line is not None else None

    def frames_to_send(self) -> list[bytes]:
        """The bytes to write, in order; each is handed out once."""
        out, self._out = self._out, []
        return out

    def events(self) -> list[Event]:
        """Replies and give-ups since last asked, in order."""
        out, self._events = self._events, []
        return out

    # -- inside -------------------------------------------------------------------------------

    def _pump(self, now: float) -> None:
        while self._on_line is None and self._queue:
            item = self._queue.popleft()
            if isinstance(item, _Data):
                self._out.append(item.data)
                self.stats.bytes_out += len(item.data)
                continue
            self.parser.expect(item.request)
            self._out.append(item.request.command)
            self.stats.bytes_out += len(item.request.command)
            self.stats.requests += 1
            self._on_line = _OnLine(item, now + item.wait)


__all__ = ["Event", "NoReply", "PrinterSession", "Reply", "SessionStats"]
