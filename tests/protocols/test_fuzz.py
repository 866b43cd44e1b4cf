"""Fuzz the protocol layer: only ProtocolError subclasses may ever leave it.

Each run uses a fresh random seed, printed in every failure message; set ``POS_SIM_FUZZ_SEED``
(decimal or 0x-hex) to replay a run.  Every test below tries at least ``CASES`` inputs.
"""

from __future__ import annotations

import os
import random
import struct
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from protocols.pos.deframer import FrameDeframer
from protocols.pos.errors import ProtocolError
from protocols.pos.framing import HEADER_SIZE, MAX_PAYLOAD, SYNC, crc16, decode_frame
from protocols.pos.messages import CATALOGUE, decode_message, decode_payload
from tests.protocols.vectors import MESSAGE_VECTORS, VECTORS

SEED_ENV = "POS_SIM_FUZZ_SEED"
CASES = 10_000
#: inputs per test: at least CASES; the cheap ones get more (the whole file stays near 5 s)
DEFRAMER_CASES, PAYLOAD_CASES, FRAME_CASES = 4 * CASES, CASES, 4 * CASES
SEED = int(os.environ[SEED_ENV], 0) if os.environ.get(SEED_ENV) else random.SystemRandom().randrange(2**32)
TYPES = sorted(int(t) for t in CATALOGUE)
WIRES = [w for w, _ in VECTORS]
SMALL_WIRES = [w for w in WIRES if len(w) < 400]
PAYLOADS: dict[int, list[bytes]] = {}
for _w, _f in MESSAGE_VECTORS:
    PAYLOADS.setdefault(_f.type, []).append(_f.payload)


class Fuzz:
    """Runs calls, counts the ProtocolErrors, records anything else with seed and input."""

    def __init__(self, name: str, cases: int) -> None:
        self.name = name
        self.want = cases
        self.rng = random.Random(f"{SEED}/{name}")
        self.errors: Counter[str] = Counter()
        self.failures: list[str] = []
        self.cases = 0
        print(f"{name} fuzz: seed {SEED} (replay with {SEED_ENV}={SEED})")

    def inputs(self) -> Iterator[int]:
        """Count the cases as they are tried (the count goes into failure messages)."""
        for case in range(1, self.want + 1):
            self.cases = case
            yield case

    def call(self, what: str, data: bytes, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except ProtocolError as exc:
            self.errors[type(exc).__name__] += 1
        except Exception as exc:
            if len(self.failures) < 5:
                tb = "".join(traceback.format_exception(exc)[-4:])
                self.failures.append(f"case {self.cases} ({what}): {type(exc).__name__}: {exc}\n"
                                     f"  input hex: {bytes(data).hex()}\n{tb}")
        return None

    def check(self) -> None:
        assert not self.failures, (
            f"{self.name}: non-ProtocolError escaped; seed {SEED} "
            f"(replay with {SEED_ENV}={SEED})\n" + "\n".join(self.failures))
        assert self.cases == self.want >= CASES, (self.cases, SEED)


# -- input makers ----------------------------------------------------------------------

def reframe(body: bytes | bytearray) -> bytes:
    """Sync + body + a correct CRC: the deframer accepts it, so the payload decoder runs."""
    return SYNC + bytes(body) + struct.pack(">H", crc16(body))


def random_bytes(rng: random.Random, most: int = 64) -> bytes:
    data = bytearray(rng.randbytes(rng.randrange(most + 1)))
    for _ in range(rng.randrange(3)):            # sprinkle sync patterns
        at = rng.randrange(len(data) + 1)
        data[at:at] = rng.choice([SYNC, SYNC[:1], SYNC + b"\x01"])
    return bytes(data)


def mutate_payload(rng: random.Random, payload: bytes) -> bytes:
    p = bytearray(payload)
    for _ in range(rng.randrange(1, 4)):
        op = rng.randrange(5)
        if op == 0 and p:                                   # bit flips
            p[rng.randrange(len(p))] ^= 1 << rng.randrange(8)
        elif op == 1:                                       # truncate
            del p[rng.randrange(len(p) + 1):]
        elif op == 2:                                       # insert
            at = rng.randrange(len(p) + 1)
            p[at:at] = rng.randbytes(rng.randrange(1, 8))
        elif op == 3 and p:                                 # a count / length byte set high
            p[rng.randrange(len(p))] = rng.choice([0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF])
        else:                                               # random tail
            p += rng.randbytes(rng.randrange(4))
    return bytes(p)


def mutate_frame(rng: random.Random, wire: bytes) -> tuple[str, bytes]:
    """One valid frame, damaged one way or another."""
    w = bytearray(wire)
    body = w[2:-2]
    kind = rng.randrange(8)
    if kind == 0:
        for _ in range(rng.randrange(1, 9)):
            w[rng.randrange(len(w))] ^= 1 << rng.randrange(8)
        return "bit flips", bytes(w)
    if kind == 1:
        return "truncated", bytes(w[:rng.randrange(len(w))])
    if kind == 2:
        at = rng.randrange(len(w) + 1)
        w[at:at] = random_bytes(rng, 12) or b"\x00"
        return "insertion", bytes(w)
    if kind == 3:
        a = rng.randrange(len(w))
        del w[a:a + rng.randrange(1, 12)]
        return "deletion", bytes(w)
    if kind == 4:
        # length field rewritten, payload cut or padded to match, CRC recomputed
        length = rng.choice([0, 1, 2, rng.randrange(len(body) - 7 + 20), rng.randrange(MAX_PAYLOAD + 1)])
        payload = bytes(body[7:7 + length])
        payload += rng.randbytes(length - len(payload))
        return "length rewrite", reframe(body[:5] + struct.pack(">H", length) + payload)
    if kind == 5:
        # payload damaged, CRC recomputed
        payload = mutate_payload(rng, bytes(body[7:]))[:MAX_PAYLOAD]
        return "payload mutation", reframe(body[:5] + struct.pack(">H", len(payload)) + payload)
    if kind == 6:
        # the payload sent as another message type, CRC recomputed
        body[4] = rng.choice(TYPES) if rng.random() < 0.9 else rng.randrange(256)
        return "type swap", reframe(body)
    # length field rewritten, CRC recomputed over the old body: a header that lies
    body[5:7] = struct.pack(">H", rng.choice([0, 1, MAX_PAYLOAD, MAX_PAYLOAD + 1, 0xFFFF,
                                              rng.randrange(0x10000)]))
    return "lying length", reframe(body)


def fuzz_stream(rng: random.Random) -> tuple[str, bytes]:
    kind = rng.randrange(6)
    if kind == 0:
        return "random", random_bytes(rng, rng.choice([16, 64, 400]))
    if kind == 1:
        return "sync + random", SYNC + random_bytes(rng, 40)
    parts, whats = [], []
    for _ in range(rng.randrange(1, 4)):
        what, data = mutate_frame(rng, rng.choice(SMALL_WIRES if rng.random() < 0.97 else WIRES))
        whats.append(what)
        parts.append(data)
        if rng.random() < 0.3:
            parts.append(random_bytes(rng, 16))
    return "+".join(whats), b"".join(parts)


# -- the tests -------------------------------------------------------------------------

def test_fuzz_deframer_and_message_decoder() -> None:
    fz = Fuzz("deframer", DEFRAMER_CASES)
    rng = fz.rng
    decoded = 0
    for _ in fz.inputs():
        what, data = fuzz_stream(rng)
        d = FrameDeframer(max_payload=rng.choice([MAX_PAYLOAD, MAX_PAYLOAD, 64]))
        frames: list[Any] = []
        pos = 0
        while pos < len(data):
            step = rng.choice([1, 3, HEADER_SIZE, 64, len(data)])
            got = fz.call(f"{what}: feed", data, d.feed, data[pos:pos + step])
            frames += got or []
            pos += step
        for _ in range(8):
            if not d.pending:
                break
            frames += fz.call(f"{what}: drop_partial", data, d.drop_partial) or []
        for frame in frames:
            decoded += 1
            fz.call(f"{what}: decode_message of type 0x{frame.type:02x}", data, decode_message, frame)
    fz.check()
    # the mutations with a recomputed CRC really did reach the payload decoders
    assert decoded > fz.want // 4, (decoded, SEED)
    assert fz.errors["MalformedPayload"] > fz.want // 20, (fz.errors, SEED)


def test_fuzz_decode_payload_every_type() -> None:
    fz = Fuzz("payload", PAYLOAD_CASES)
    rng = fz.rng
    for _ in fz.inputs():
        r = rng.random()
        if r < 0.4:
            data = rng.randbytes(rng.randrange(rng.choice([4, 16, 64, 300])))
        elif r < 0.5:
            # a plausible component byte first, so STATUS_REPLY's per-component blocks run
            data = bytes([rng.randrange(13)]) + rng.randbytes(rng.randrange(40))
        else:
            data = mutate_payload(rng, rng.choice(rng.choice(list(PAYLOADS.values()))))
        for t in TYPES:
            fz.call(f"decode_payload(0x{t:02x})", data, decode_payload, t, data)
        t = rng.randrange(256)
        fz.call(f"decode_payload(0x{t:02x})", data, decode_payload, t, data)
    fz.check()
    assert fz.errors["MalformedPayload"] > CASES, (fz.errors, SEED)
    assert fz.errors["UnknownMessageType"] > CASES // 2, (fz.errors, SEED)


def test_fuzz_decode_frame() -> None:
    fz = Fuzz("frame", FRAME_CASES)
    rng = fz.rng
    accepted = 0
    for _ in fz.inputs():
        if rng.random() < 0.3:
            what, data = "random", random_bytes(rng, rng.choice([8, 16, 64]))
        else:
            what, data = mutate_frame(rng, rng.choice(WIRES))
        if fz.call(what, data, decode_frame, data) is not None:
            accepted += 1
    fz.check()
    assert accepted > fz.want // 10, (accepted, SEED)
    assert all(fz.errors[e] for e in ("BadCRC", "IncompleteFrame", "TrailingBytes", "BadSync",
                                      "OversizeFrame")), (fz.errors, SEED)
