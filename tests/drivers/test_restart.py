"""Noticing a terminal that restarted mid-session (docs/protocol.md section 6, "Noticing a restart").

The rule itself on hand-made numbers (a fake clock: times are plain floats), then the link
against a terminal played by the test on a pty (uptime values chosen to wrap, to go back, to
lie), then the Terminal against the emulator power-cycled with ``EmulatorServer.restart()``.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import DriverError, RequestRefused, SelfTestLost, SessionLost
from drivers.link import (
    UPTIME_MODULUS,
    Link,
    LinkTimings,
    UptimeReference,
    uptime_consistent,
    uptime_step,
)
from drivers.terminal import Terminal
from drivers.transport import open_port
from pos_sim.emulator import EmulatorServer, load_scenario
from protocols.pos import MessageType
from tests.drivers.ptypeer import PtyPeer

WRAP = 2**32   # written out here, not taken from the code under test
HELLO_REPLY = {"protocol_version": 1, "max_payload": 1024, "components": 0x7FF, "serial": "SP1", "boot_id": 0x1234}
INFO = {"manufacturer": "SimPOS", "model": "SP-M7", "serial": "SP1", "hardware_rev": "B", "firmware_version": "1",
        "lifecycle": "bound", "merchant_id": "", "activated_at": 0, "clock": 0}


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def is_none(value: object) -> bool:
    """``value is None``, out of mypy's reach (it narrows properties as if they were fields)."""
    return value is None


def is_true(value: object) -> bool:
    """``bool(value)``, likewise."""
    return bool(value)


# -- the rule, on a fake clock ------------------------------------------------------------------


@pytest.mark.parametrize(("earlier", "later", "step"), [
    (0, 1, 1),
    (1000, 3000, 2000),
    (WRAP - 1, 0, 1),                 # the counter wrapped: one step forward
    (WRAP - 300, 700, 1000),
    (3000, 1000, WRAP - 2000),        # back by 2 s: a step of nearly 49.7 days, never a real one
    (0, WRAP - 1, WRAP - 1),
])
def test_uptime_step_is_the_difference_modulo_2_to_the_32(earlier: int, later: int, step: int) -> None:
    assert UPTIME_MODULUS == WRAP
    assert uptime_step(earlier, later) == step


def pong(ms: int, asked: float, arrived: float) -> UptimeReference:
    return UptimeReference(ms, arrived, exact=True, asked_at=asked)


def after_hello(arrived: float) -> UptimeReference:
    return UptimeReference(0, arrived, exact=False)


# reference, then the next PONG: its uptime, when its PING went out, when it arrived
RULE_CASES = [
    pytest.param(pong(1000, 9.99, 10.0), 3000, 12.0, 12.01, True, id="steady"),
    pytest.param(pong(5000, 9.99, 10.0), 5000, 10.3, 10.31, True, id="jitter-within-slack"),
    pytest.param(pong(60_000, 9.99, 10.0), 1500, 12.0, 12.01, False, id="back-to-1.5s"),
    pytest.param(pong(WRAP - 1000, 9.99, 10.0), 1000, 12.0, 12.01, True, id="wrapped-after-49.7-days"),
    pytest.param(pong(WRAP - 200, 9.99, 10.0), 100, 10.3, 10.31, True, id="wrapped-small-step"),
    pytest.param(pong(WRAP - 1000, 9.99, 10.0), WRAP - 5000, 12.0, 12.01, False, id="back-just-before-the-wrap"),
    # restarted 20 s after the last PONG and up 30 s since: above the old value, yet 60 s
    # passed on the host and only 29 s on the terminal
    pytest.param(pong(1000, 9.99, 10.0), 30_000, 70.0, 70.01, False, id="restart-above-the-old-value"),
    # up 30 days (past 2^31 ms), restarted, up 2 s: the step modulo 2^32 is 19.7 days forward
    pytest.param(pong(30 * 86_400_000, 9.99, 10.0), 2000, 12.0, 12.01, False, id="restart-after-30-days"),
    pytest.param(pong(1000, 9.99, 10.0), 9000, 12.0, 12.01, False, id="ran-6s-ahead-in-2s"),
    # one hour with the terminal's clock 0.8 per mille slow: drift, not a restart
    pytest.param(pong(0, 0.0, 0.0), 3_597_000, 3600.0, 3600.0, True, id="slow-crystal"),
    pytest.param(pong(0, 0.0, 0.0), 3_594_000, 3600.0, 3600.0, False, id="too-slow-for-a-crystal"),
    # only HELLO's lower bound: the terminal has been up at least as long as the session
    pytest.param(after_hello(10.0), 20_000, 20.0, 20.01, True, id="hello-bound-met"),
    pytest.param(after_hello(10.0), 500, 20.0, 20.01, False, id="hello-bound-missed"),
    pytest.param(after_hello(10.0), 4_000_000_000, 20.0, 20.01, True, id="hello-bound-up-46-days"),
]


@pytest.mark.parametrize(("ref", "uptime", "sent_at", "received_at", "consistent"), RULE_CASES)
def test_the_rule_on_hand_made_numbers(ref: UptimeReference, uptime: int, sent_at: float, received_at: float,
                                       consistent: bool) -> None:
    assert uptime_consistent(ref, uptime, sent_at, received_at) is consistent


@given(st.integers(0, 10 * WRAP), st.floats(0.2, 600), st.floats(0, 0.05), st.floats(0, 0.05))
def test_a_terminal_that_kept_running_is_consistent_across_any_wrap(
        up_ms: int, gap: float, rtt_before: float, rtt_after: float) -> None:
    """A PONG made ``gap`` s after the reference PONG, each somewhere inside its round trip:
    whatever the total uptime (ten wraps and more), never taken for a restart."""
    made = 100.0
    ref = pong(up_ms % WRAP, made - rtt_before, made + rtt_before)
    later = made + gap
    uptime = (up_ms + int(gap * 1000)) % WRAP
    assert uptime_consistent(ref, uptime, later - rtt_after, later + rtt_after)


@given(st.integers(0, 10 * WRAP), st.floats(1.0, 600), st.floats(0.0, 1.0))
def test_a_terminal_that_started_again_is_not(up_ms: int, gap: float, share: float) -> None:
    """Booted again ``share`` of the way into the gap: unseen only when the new boot came a
    whole number of 2^32 ms periods (give or take the allowance) after the old one."""
    made = 100.0
    ref = pong(up_ms % WRAP, made, made)
    booted_ms = int(gap * share * 1000)
    uptime = int(gap * 1000) - booted_ms        # counted from the new boot
    allowance = 500 + 0.001 * gap * 1000        # docs/protocol.md section 6
    since_old_boot = (up_ms + booted_ms) % WRAP
    near_a_period = min(since_old_boot, WRAP - since_old_boot)
    if abs(near_a_period - allowance) < 2:
        return                                  # on the edge: rounding decides
    assert uptime_consistent(ref, uptime, made + gap, made + gap) is (near_a_period < allowance)


# -- the link, against a terminal played on a pty -----------------------------------------------


KEEPALIVE = LinkTimings(response_base=0.15, inter_byte=0.05, keepalive_idle=0.15, busy_backoff=0.05)


def hello(peer: PtyPeer, pool: ThreadPoolExecutor, link: Link, boot_id: int = 0x1234, *,
          keepalive: bool = True) -> None:
    """The host's HELLO, answered with ``boot_id``; then keep-alives on (or not)."""
    link.keepalive = False
    fut = pool.submit(link.request, MessageType.HELLO, {"protocol_version": 1, "max_payload": 1024, "host": "t"})
    req = peer.expect_message(MessageType.HELLO)
    peer.send(MessageType.HELLO_REPLY, {**HELLO_REPLY, "boot_id": boot_id}, seq=req.seq)
    fut.result(timeout=2)
    link.keepalive = keepalive


def answer_pings(peer: PtyPeer, uptime: Callable[[], int], count: int) -> list[int]:
    """Answer ``count`` keep-alive PINGs with ``uptime()``; fail on anything else."""
    sent = []
    for _ in range(count):
        ping = peer.expect_message(MessageType.PING, timeout=3)
        value = uptime() % WRAP
        sent.append(value)
        peer.send(MessageType.PONG, {"uptime_ms": value}, seq=ping.seq)
    return sent


def up_for_a_minute(peer: PtyPeer) -> None:
    """Answer keep-alives for 0.7 s (more than the slack) as a terminal up for a minute."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < 0.7:
        answer_pings(peer, lambda: 60_000 + int((time.monotonic() - t0) * 1000), 1)


def make_link(peer: PtyPeer, **kw: Any) -> Link:
    return Link(open_port(peer.path, read_timeout=KEEPALIVE.read_slice), timings=KEEPALIVE, **kw).start()


def test_a_counter_that_wraps_is_not_a_restart(peer: PtyPeer, pool: ThreadPoolExecutor) -> None:
    with make_link(peer) as link:
        noticed: list[SessionLost] = []
        link.on_restart = noticed.append
        hello(peer, pool, link)
        t0 = time.monotonic()
        # the terminal has been up for 49.7 days less 400 ms: its counter wraps in a moment
        values = answer_pings(peer, lambda: WRAP - 400 + int((time.monotonic() - t0) * 1000), 6)
        assert any(b < a for a, b in itertools.pairwise(values)), f"no wrap in {values}"
        assert all(f.type == MessageType.PING for f in peer.quiet(0.3))   # never an INFO_REQUEST
        assert link.session_lost is None and not noticed and link.restarts == 0


def test_uptime_going_back_is_checked_and_a_terminal_without_the_session_has_restarted(
        peer: PtyPeer, pool: ThreadPoolExecutor) -> None:
    with make_link(peer) as link:
        noticed: list[SessionLost] = []
        link.on_restart = noticed.append
        hello(peer, pool, link)
        up_for_a_minute(peer)
        answer_pings(peer, lambda: 20, 1)            # back to 20 ms
        probe = peer.expect_message(MessageType.INFO_REQUEST, timeout=2)   # the link asks
        peer.send(MessageType.NAK, {"reason": "not_permitted"}, seq=probe.seq)
        wait_until(lambda: bool(noticed), timeout=3)
        assert len(noticed) == 1 and noticed[0].cause == "uptime"
        assert link.session_lost is noticed[0] and link.restarts == 1
        assert "uptime read 0.0 s where about" in str(noticed[0]) and "\n" not in str(noticed[0])
        assert noticed[0].exit_code == 4
        # the new boot's count is the reference now: its next PONG raises no new doubt
        answer_pings(peer, lambda: 400, 1)
        assert all(f.type == MessageType.PING for f in peer.quiet(0.3))
        # a new HELLO opens a new session; the restart was already noticed, so only once
        hello(peer, pool, link, boot_id=0x5678, keepalive=False)
        assert len(noticed) == 1 and link.boot_id == 0x5678
        assert is_none(link.session_lost)   # a property: the HELLO above changed it


def test_a_terminal_whose_uptime_jumped_but_kept_the_session_did_not_restart(
        peer: PtyPeer, pool: ThreadPoolExecutor) -> None:
    with make_link(peer) as link:
        hello(peer, pool, link)
        up_for_a_minute(peer)
        answer_pings(peer, lambda: 20, 1)            # back to 20 ms
        probe = peer.expect_message(MessageType.INFO_REQUEST, timeout=2)
        peer.send(MessageType.INFO_REPLY, INFO, seq=probe.seq)
        answer_pings(peer, lambda: 400, 1)   # life goes on: the link pings again, asks nothing
        wait_until(lambda: link.uptime_reference is not None and link.uptime_reference.uptime_ms == 400)
        assert link.session_lost is None and link.restarts == 0


def test_a_small_uptime_right_after_hello_may_be_a_wrap_the_session_check_tells(
        peer: PtyPeer, pool: ThreadPoolExecutor) -> None:
    """Before any PONG, a value below the session's age is a restart or a counter that wrapped
    since HELLO: the same INFO_REQUEST decides."""
    with make_link(peer) as link:
        hello(peer, pool, link, keepalive=False)
        time.sleep(0.8)
        fut = pool.submit(link.request, MessageType.PING)
        ping = peer.expect_message(MessageType.PING)
        peer.send(MessageType.PONG, {"uptime_ms": 100}, seq=ping.seq)   # up 0.1 s, session 0.8 s old
        assert fut.result(timeout=2).fields["uptime_ms"] == 100
        probe = peer.expect_message(MessageType.INFO_REQUEST, timeout=2)
        peer.send(MessageType.INFO_REPLY, INFO, seq=probe.seq)     # it wrapped: the session is there
        assert peer.quiet(0.3) == []
        assert link.session_lost is None and link.restarts == 0


def test_not_permitted_to_info_means_the_session_is_gone(peer: PtyPeer, pool: ThreadPoolExecutor) -> None:
    with make_link(peer) as link:
        hello(peer, pool, link, keepalive=False)
        fut = pool.submit(link.request, MessageType.INFO_REQUEST)
        req = peer.expect_message(MessageType.INFO_REQUEST)
        peer.send(MessageType.NAK, {"reason": "not_permitted"}, seq=req.seq)
        with pytest.raises(RequestRefused):
            fut.result(timeout=2)
        assert link.session_lost is not None and link.session_lost.cause == "not_permitted"


def test_another_boot_id_at_hello_is_a_restart(peer: PtyPeer, pool: ThreadPoolExecutor) -> None:
    with make_link(peer) as link:
        noticed: list[SessionLost] = []
        link.on_restart = noticed.append
        hello(peer, pool, link, boot_id=0xAAAA, keepalive=False)
        hello(peer, pool, link, boot_id=0xAAAA, keepalive=False)    # the same boot: a new session
        assert not noticed
        hello(peer, pool, link, boot_id=0xBBBB, keepalive=False)
        assert [e.cause for e in noticed] == ["boot_id"]
        assert "0000aaaa is now 0000bbbb" in str(noticed[0])
        assert link.session_lost is None   # that HELLO opened the new session


# -- the Terminal, against the emulator power-cycled on a pty -----------------------------------


Opener = Callable[..., tuple[EmulatorServer, Terminal]]


@pytest.fixture
def emulated() -> Iterator[Opener]:
    started: list[tuple[EmulatorServer, Terminal]] = []

    def start(scenario: str = "healthy", *, speed: float = 50.0, keepalive: float = 3600.0,
              **kw: Any) -> tuple[EmulatorServer, Terminal]:
        server = EmulatorServer(load_scenario(scenario), speed=speed)
        path = server.serve_pty()
        try:
            term = Terminal.open(path, timings=LinkTimings(keepalive_idle=keepalive), **kw)
        except BaseException:
            server.stop()
            raise
        started.append((server, term))
        return server, term

    yield start
    for server, term in started:
        term.close()
        server.stop()


def test_emulator_restart_gives_a_new_boot_and_keeps_the_line(emulated: Opener) -> None:
    server, term = emulated("healthy")
    assert term.hello is not None
    first = term.hello.boot_id
    port = term.link.port
    server.restart()
    assert server.restarts == 1 and server.running and not server.line_closed
    # a power-cycled terminal has no session: it refuses INFO until HELLO
    with pytest.raises(SessionLost) as info:
        term.info()
    assert info.value.cause == "not_permitted" and term.restarted
    hello = term.connect()
    assert hello.boot_id != first and hello.serial == term.info().serial
    assert not is_true(term.restarted)   # a property: connect() above changed it
    assert term.link.port is port and term.link.error is None


def test_a_running_self_test_is_lost_to_the_restart_not_to_silence(emulated: Opener) -> None:
    # the lost timer set far off: only noticing the restart can end this wait
    server, term = emulated("healthy", speed=1.0, keepalive=0.2, lost_after=120.0)
    noticed: list[SessionLost] = []
    term.on_restart = noticed.append
    run = term.start_self_test("network")
    wait_until(lambda: len(run.progress) >= 2)
    time.sleep(0.6)   # the terminal has been up longer than the slack
    server.restart()
    with pytest.raises(SessionLost) as lost:
        run.wait(timeout=60)
    assert not isinstance(lost.value, SelfTestLost)
    assert lost.value.cause == "uptime" and "uptime read" in str(lost.value)
    assert noticed == [lost.value] and term.restarted
    assert "network" not in term.results
    # after HELLO the same test runs to its end on the new boot
    term.connect()
    assert term.run_self_test("system", timeout=60).outcome == "passed"


def test_not_permitted_on_selftest_start_is_checked_with_info(emulated: Opener) -> None:
    server, term = emulated("healthy")
    server.restart()
    with pytest.raises(SessionLost) as lost:
        term.start_self_test("system")
    assert lost.value.cause == "not_permitted"
    assert isinstance(lost.value.__cause__, RequestRefused)


def test_before_hello_there_is_no_session_to_lose(emulated: Opener) -> None:
    _, term = emulated("healthy", connect=False)
    with pytest.raises(RequestRefused) as refused:
        term.info()
    assert refused.value.reason == "not_permitted" and not isinstance(refused.value, SessionLost)
    assert not term.restarted and term.link.restarts == 0


def test_a_refusal_of_its_own_is_not_a_restart(emulated: Opener) -> None:
    _, term = emulated("healthy")
    with pytest.raises(RequestRefused) as refused:
        term.confirm("screen", True)   # no confirm prompt showing: refused, session intact
    assert refused.value.reason == "not_permitted" and not isinstance(refused.value, SessionLost)
    assert not term.restarted and term.info().serial


def test_a_restart_noticed_at_hello_loses_the_running_test(emulated: Opener) -> None:
    server, term = emulated("healthy", speed=1.0, lost_after=120.0)
    noticed: list[SessionLost] = []
    term.on_restart = noticed.append
    run = term.start_self_test("network")
    wait_until(lambda: bool(run.progress))
    server.restart()
    term.connect()   # the host says HELLO again before it noticed anything
    assert [e.cause for e in noticed] == ["boot_id"]
    with pytest.raises(SessionLost):
        run.poll()
    assert not term.restarted   # that HELLO is the new session


def test_a_crashed_firmware_comes_back_and_reports_the_watchdog(emulated: Opener) -> None:
    server, term = emulated("firmware-crash", lost_after=120.0)
    events: list[Any] = []
    term.subscribe(events.append)
    with pytest.raises(DriverError):
        term.run_self_test("printer", timeout=3)   # the firmware hangs mid-test
    assert server.crashed
    server.restart()
    assert not is_true(server.crashed)   # a property: restart() changed it
    term.connect()
    wait_until(lambda: any(e.type == MessageType.EVENT and str(e.fields["event"]) == "rebooted"
                           for e in events), timeout=5)
