"""The catalogue's answer, session and paging rules: one home, checked at import.

Expected values come from docs/protocol.md (section 4's exchanges, section 6's session rules,
sections 9 and 10's page sizes), written out by hand here."""

from __future__ import annotations

import dataclasses
import sys
import types
from pathlib import Path

import pytest

from protocols.pos import messages
from protocols.pos.messages import (
    ANSWERS,
    ANY_SESSION_MAY,
    CATALOGUE,
    EVENT_FRAME,
    NO_SESSION_NEEDED,
    REPLY,
    REQUESTS,
    SAFE_TO_REPEAT,
    CatalogueError,
    MessageSpec,
    MessageType,
    Paging,
    page_capacity,
    request,
    validate_catalogue,
)

T = MessageType

#: docs/protocol.md section 4 and the catalogue table of section 7, by hand
SPEC_ANSWERS = {
    T.HELLO: {T.HELLO_REPLY}, T.PING: {T.PONG}, T.INFO_REQUEST: {T.INFO_REPLY},
    T.STATUS_REQUEST: {T.STATUS_REPLY}, T.SELFTEST_START: {T.ACK}, T.SELFTEST_ABORT: {T.ACK},
    T.SELFTEST_CONFIRM: {T.ACK}, T.EVENTLOG_READ: {T.EVENTLOG_PAGE}, T.TXLOG_OPEN: {T.TXLOG_INFO},
    T.TXLOG_READ: {T.TXLOG_PAGE}, T.LC_CHALLENGE_REQUEST: {T.LC_CHALLENGE}, T.LC_REQUEST: {T.LC_RESULT},
}


def test_every_request_has_the_answer_the_spec_names() -> None:
    assert {t: set(a) for t, a in ANSWERS.items()} == SPEC_ANSWERS
    assert set(SPEC_ANSWERS) == REQUESTS


def test_the_noisy_line_and_session_sets_are_the_specs() -> None:
    # section 5, "A noisy line", rule (1)
    assert {T.PING, T.INFO_REQUEST, T.STATUS_REQUEST, T.EVENTLOG_READ, T.TXLOG_READ, T.HELLO} == SAFE_TO_REPEAT
    # section 6: before HELLO only HELLO and PING; INFO_REQUEST and EVENTLOG_READ in any session
    assert {T.HELLO, T.PING} == NO_SESSION_NEEDED
    assert {T.INFO_REQUEST, T.EVENTLOG_READ} == ANY_SESSION_MAY
    # a lifecycle request is never asked again as a new request
    assert not SAFE_TO_REPEAT & {T.LC_REQUEST, T.LC_CHALLENGE_REQUEST, T.SELFTEST_START}


def test_event_frames_are_the_terminals_four() -> None:
    events = {t for t, s in CATALOGUE.items() if s.rule.kind == "event"}
    assert events == {T.SELFTEST_PROGRESS, T.SELFTEST_RESULT, T.ERROR, T.EVENT}


@pytest.mark.parametrize(("max_payload", "entries", "records"), [
    # section 9: at most 64 entries (8 bytes each beside 5 bytes of page, pages and count);
    # section 10: floor((max_payload - 7) / 29), never more than 32
    (1024, 64, 32), (517, 64, 17), (512, 63, 17), (256, 31, 8), (128, 15, 4),
])
def test_page_sizes(max_payload: int, entries: int, records: int) -> None:
    assert page_capacity(T.EVENTLOG_PAGE, max_payload) == entries
    assert page_capacity(T.TXLOG_PAGE, max_payload) == records


def test_only_paged_answers_have_a_capacity() -> None:
    with pytest.raises(CatalogueError, match="not paged"):
        page_capacity(T.INFO_REPLY, 1024)


def _with(t: MessageType, **changes: object) -> dict[MessageType, MessageSpec]:
    broken = dict(CATALOGUE)
    broken[t] = dataclasses.replace(CATALOGUE[t], **changes)   # type: ignore[arg-type]
    return broken


def test_the_real_catalogue_is_valid() -> None:
    validate_catalogue(CATALOGUE)


@pytest.mark.parametrize(("broken", "words"), [
    (_with(T.STATUS_REQUEST, rule=request()), "STATUS_REQUEST is a request without an answer rule"),
    (_with(T.STATUS_REQUEST, rule=REPLY), "host-to-terminal message must be a request"),
    (_with(T.INFO_REQUEST, rule=request(T.STATUS_REQUEST)), "STATUS_REQUEST, which is not declared as an answer"),
    (_with(T.INFO_REPLY, rule=request(T.ACK)), "terminal-to-host message cannot be a request"),
    (_with(T.PONG, rule=EVENT_FRAME), "only the terminal sends event frames"),
    (_with(T.ACK, rule=dataclasses.replace(REPLY, harmless=True)), "only a request names"),
    (_with(T.PING, rule=request(T.PONG, session="sometimes")), "unknown session need"),
    (_with(T.TXLOG_PAGE, paging=Paging("page", 8)), "must be a prefixed array"),
    (_with(T.EVENTLOG_PAGE, paging=Paging("rows", 8)), "no field 'rows'"),
    (_with(T.EVENTLOG_READ, paging=Paging("page", 8)), "only an answer is paged"),
    ({t: s for t, s in CATALOGUE.items() if t != T.TXLOG_OPEN}, "no declaration for TXLOG_OPEN"),
    ({**CATALOGUE, T.PING: CATALOGUE[T.PONG]}, "PING is declared as PONG"),
])
def test_a_broken_catalogue_is_refused(broken: dict[MessageType, MessageSpec], words: str) -> None:
    with pytest.raises(CatalogueError, match=words):
        validate_catalogue(broken)


def test_a_request_declared_without_an_answer_fails_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    """The module checks its own catalogue when it is imported: the same source with one
    request's answer rule emptied does not import (and neither would the driver or emulator)."""
    source = Path(messages.__file__).read_text(encoding="utf-8")
    broken = source.replace("request(_T.TXLOG_INFO)", "request()")
    assert broken != source
    module = types.ModuleType("broken_messages")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    with pytest.raises(Exception, match="TXLOG_OPEN is a request without an answer rule") as caught:
        exec(compile(broken, messages.__file__, "exec"), module.__dict__)
    assert type(caught.value).__name__ == "CatalogueError"
