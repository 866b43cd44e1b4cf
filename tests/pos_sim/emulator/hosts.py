"""Hosts played by the tests: one drives the engine on a fake clock, one a real pyserial port.

Both speak the wire through our protocols package only (encode_message, FrameDeframer,
decode_message), never through the emulator's internals, so what they see is what a driver
would see.
"""

from __future__ import annotations

import math
import select
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import serial

from pos_sim.emulator.engine import TerminalEngine
from pos_sim.emulator.scenario import Scenario, load_scenario
from pos_sim.emulator.state import StateStore
from protocols.pos import Frame, FrameDeframer, Message, MessageType, decode_message, encode_message
from protocols.pos.codes import FrameFlag

RESPONSE = int(FrameFlag.RESPONSE)
EVENT = int(FrameFlag.EVENT)
RETRANSMIT = int(FrameFlag.RETRANSMIT)
T = MessageType
#: the fake clock's Unix time at t0 (the transaction log's records end shortly before)
WALL_T0 = 1_795_100_000


def hello_fields(max_payload: int = 1024, version: int = 1) -> dict[str, Any]:
    """A HELLO's fields."""
    return {"protocol_version": version, "max_payload": max_payload, "host": "pytest"}


class EngineHost:
    """A host on a fake clock, talking to a TerminalEngine directly (no threads, no sleeps)."""

    def __init__(self, scenario: str | Path | Scenario = "healthy", *, speed: float = math.inf, baud: int = 115200,
                 store: StateStore | None = None, auto_ack: bool = True, confirm: bool | None = None,
                 t0: float = 1000.0, **engine_options: Any) -> None:
        self.now = t0
        sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        self.engine = TerminalEngine(sc, now=t0, speed=speed, baud=baud, store=store,
                                     wall_offset=WALL_T0 - t0, **engine_options)
        self.deframer = FrameDeframer()
        self.seq = 0x0100
        self.auto_ack = auto_ack
        #: answer confirm prompts with this (None: leave them unanswered)
        self.confirm = confirm
        #: every frame received, with the time it was taken from the engine
        self.received: list[tuple[float, Frame]] = []
        #: event frames, first copies only (retransmits of an event already seen are not repeated)
        self.events: list[Message] = []
        self._seen_events: set[int] = set()

    # -- plumbing -------------------------------------------------------------------------------

    def send_raw(self, data: bytes) -> None:
        """Put bytes on the line now and let the engine answer."""
        self.engine.receive(data, self.now)
        self.collect()

    def collect(self) -> list[Frame]:
        """Take everything the engine sent; ACK events and answer confirm prompts as configured."""
        got: list[Frame] = []
        while out := self.engine.take_output():
            for frame in self.deframer.feed(out):
                got.append(frame)
                self.received.append((self.now, frame))
                if not frame.flags & EVENT:
                    continue
                msg = decode_message(frame)
                if frame.seq not in self._seen_events:
                    self._seen_events.add(frame.seq)
                    self.events.append(msg)
                    if (self.confirm is not None and msg.type == T.SELFTEST_PROGRESS
                            and msg.fields["prompt"] in ("confirm_print", "confirm_pattern")):
                        self.engine.receive(encode_message(T.ACK, seq=frame.seq, flags=RESPONSE), self.now)
                        self.request(T.SELFTEST_CONFIRM, {"component": msg.fields["component"],
                                                          "accepted": self.confirm})
                        continue
                if self.auto_ack:
                    self.engine.receive(encode_message(T.ACK, seq=frame.seq, flags=RESPONSE), self.now)
        return got

    def next_seq(self) -> int:
        """A new request sequence number."""
        self.seq = (self.seq + 1) & 0xFFFF
        return self.seq

    def request(self, mtype: MessageType, fields: dict[str, Any] | None = None, *, seq: int | None = None,
                flags: int = 0) -> Message:
        """Send a request; return the terminal's answer (the RESPONSE frame with its seq)."""
        seq = self.next_seq() if seq is None else seq
        self.engine.receive(encode_message(mtype, fields, seq=seq, flags=flags), self.now)
        return self.answer_to(seq)

    def answer_to(self, seq: int) -> Message:
        """The last RESPONSE frame carrying ``seq`` received so far."""
        self.collect()
        for _, frame in reversed(self.received):
            if frame.flags & RESPONSE and frame.seq == seq:
                return decode_message(frame)
        raise AssertionError(f"no answer to seq {seq}")

    def hello(self, max_payload: int = 1024) -> Message:
        """Open a session."""
        reply = self.request(T.HELLO, hello_fields(max_payload))
        assert reply.type == T.HELLO_REPLY, reply
        return reply

    def advance(self, seconds: float) -> None:
        """Let time pass, running every deadline in between in order."""
        end = self.now + seconds
        while True:
            self.collect()
            deadline = self.engine.next_deadline()
            if deadline is None or deadline > end:
                break
            self.now = max(self.now, deadline)
            self.engine.tick(self.now)
        self.now = end
        self.engine.tick(self.now)
        self.collect()

    def run_until(self, done: Callable[[], bool], limit: float = 600.0) -> None:
        """Advance deadline by deadline until ``done()`` (fails after ``limit`` fake seconds)."""
        end = self.now + limit
        while True:
            self.collect()
            if done():
                return
            deadline = self.engine.next_deadline()
            if deadline is None or deadline > end:
                raise AssertionError(f"condition not reached within {limit} s (deadline {deadline})")
            self.now = max(self.now, deadline)
            self.engine.tick(self.now)

    def results(self) -> dict[str, dict[str, Any]]:
        """SELFTEST_RESULT fields by component name."""
        return {m.fields["component"]: m.fields for m in self.events if m.type == T.SELFTEST_RESULT}

    def run_self_test(self, component: str, plan: str = "full", interactive: bool = True,
                      limit: float = 600.0) -> dict[str, Any]:
        """Start a self-test and run until its result; return the result's fields."""
        ack = self.request(T.SELFTEST_START, {"component": component, "plan": plan, "interactive": interactive})
        assert ack.type == T.ACK, ack
        self.run_until(lambda: component in self.results(), limit)
        return self.results()[component]

    def events_of(self, mtype: MessageType) -> list[Message]:
        """Events of one message type, in order."""
        return [m for m in self.events if m.type == mtype]


class PortHost:
    """A host on a real pyserial port: frames out, frames in, events acknowledged."""

    def __init__(self, port: serial.SerialBase) -> None:
        self.port = port
        self.deframer = FrameDeframer()
        self.seq = 0
        self.responses: list[Message] = []
        self.events: list[Message] = []
        self.bytes_sent = 0
        self.bytes_received = 0
        self._last_rx = 0.0

    def write(self, data: bytes) -> None:
        """Raw bytes to the terminal."""
        self.port.write(data)
        self.bytes_sent += len(data)

    def poll(self, timeout: float) -> list[Message]:
        """Read what arrives within ``timeout``; ACK events; return the messages."""
        got: list[Message] = []
        end = time.monotonic() + timeout
        while True:
            wait = max(0.0, end - time.monotonic())
            if self.deframer.pending:
                wait = min(wait, max(0.0, self._last_rx + 0.1 - time.monotonic()))
            readable, _, _ = select.select([self.port.fileno()], [], [], wait)
            frames = []
            if readable:
                data = self.port.read(self.port.in_waiting or 1)
                self.bytes_received += len(data)
                self._last_rx = time.monotonic()
                frames = self.deframer.feed(data)
            elif self.deframer.pending and time.monotonic() - self._last_rx >= 0.1:
                frames = self.deframer.drop_partial()  # the inter-byte timeout of section 3
            for frame in frames:
                msg = decode_message(frame)
                got.append(msg)
                if frame.flags & EVENT:
                    self.write(encode_message(T.ACK, seq=frame.seq, flags=RESPONSE))
                    self.events.append(msg)
                elif frame.flags & RESPONSE:
                    self.responses.append(msg)
            # return what is decoded before reading on: a disconnect right behind it would
            # otherwise raise before the caller saw the last answer
            if got or time.monotonic() >= end:
                return got

    def request(self, mtype: MessageType, fields: dict[str, Any] | None = None, timeout: float = 3.0) -> Message:
        """Send a request and wait for its answer (fails after ``timeout``)."""
        self.seq += 1
        seq = self.seq
        self.write(encode_message(mtype, fields, seq=seq))
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for msg in self.poll(min(0.05, max(0.0, end - time.monotonic()))):
                if msg.flags & RESPONSE and msg.seq == seq:
                    return msg
        raise AssertionError(f"no answer to {mtype.name} seq {seq} within {timeout} s")

    def wait_event(self, match: Callable[[Message], bool], timeout: float = 5.0) -> Message:
        """Wait for an event that matches."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for msg in [*self.events]:
                if match(msg):
                    return msg
            self.poll(0.05)
        raise AssertionError(f"no matching event within {timeout} s")
