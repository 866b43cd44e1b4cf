"""The status parser finds replies among garbage and across split reads (hypothesis)."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from protocols.escpos import DLE_EOT, GS_R_PAPER, IDENTITY_REQUESTS, Request, StatusParser

STATUS = [*DLE_EOT.values(), GS_R_PAPER]
BLOCKS = list(IDENTITY_REQUESTS.values())

#: a byte with bit 7 set is the reply to none of the requests (every reply's bit 7 is fixed at 0)
garbage = st.binary(max_size=6).map(lambda b: bytes(x | 0x80 for x in b))


def _eot_reply() -> st.SearchStrategy[int]:
    # free bits 2, 3, 5 and 6 around the fixed pattern 0xx1xx10
    return st.integers(0, 15).map(lambda f: 0x12 | (f & 3) << 2 | (f >> 2) << 5)


def _reply(request: Request) -> st.SearchStrategy[bytes]:
    if request.block:
        text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)
        return text.map(lambda t: b"\x5f" + t.encode() + b"\x00")
    if request.realtime:
        return _eot_reply().map(lambda b: bytes([b]))
    return st.integers(0, 0x6F).filter(lambda b: b & 0x90 == 0).map(lambda b: bytes([b]))


@st.composite
def exchanges(draw: st.DrawFn) -> tuple[list[Request], list[bytes], bytes]:
    requests = draw(st.lists(st.sampled_from(STATUS + BLOCKS), min_size=1, max_size=8))
    replies = [draw(_reply(r)) for r in requests]
    stream = b"".join(draw(garbage) + reply for reply in replies) + draw(garbage)
    return requests, replies, stream


def _cuts(stream: bytes, points: list[int]) -> list[bytes]:
    cuts = sorted({p % (len(stream) + 1) for p in points})
    edges = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(edges)]


@given(exchanges(), st.lists(st.integers(0, 10_000), max_size=8))
def test_every_reply_is_found_in_order_however_the_reads_split(ex: tuple[list[Request], list[bytes], bytes],
                                                               points: list[int]) -> None:
    requests, replies, stream = ex
    parser = StatusParser()
    for r in requests:
        parser.expect(r)
    got = []
    for chunk in _cuts(stream, points):
        got += parser.feed(chunk)
    assert [r for r, _ in got] == requests
    expected = [reply[1:-1] if r.block else reply[0] for r, reply in zip(requests, replies, strict=True)]
    assert [v for _, v in got] == expected
    assert parser.pending == ()
    assert parser.stats.garbage == len(stream) - sum(len(r) for r in replies)


@given(st.lists(st.sampled_from(STATUS + BLOCKS), max_size=6), st.binary(max_size=200))
def test_any_bytes_never_raise_and_only_fitting_bytes_are_taken(requests: list[Request], data: bytes) -> None:
    parser = StatusParser()
    for r in requests:
        parser.expect(r)
    for request, value in parser.feed(data):
        if isinstance(value, int):
            assert request.recognises(value)
        else:
            assert request.block and b"\x00" not in value
    assert len(parser.pending) <= len(requests)


def test_a_reply_nobody_asked_for_is_garbage_and_forget_drops_the_rest() -> None:
    parser = StatusParser()
    assert parser.feed(b"\x12") == []
    assert parser.stats.garbage == 1
    parser.expect(DLE_EOT[1])
    parser.expect(GS_R_PAPER)
    assert parser.feed(b"\x1a") == [(DLE_EOT[1], 0x1A)]
    assert parser.forget() == [GS_R_PAPER]
    assert parser.feed(b"\x00") == []


def test_a_gs_r_reply_is_not_taken_for_a_dle_eot_one() -> None:
    parser = StatusParser()
    parser.expect(DLE_EOT[4])
    assert parser.feed(b"\x03\x0c") == []     # GS r shaped: bit 4 clear
    assert parser.feed(b"\x1e") == [(DLE_EOT[4], 0x1E)]
