"""The emulator on real lines: a pty and TCP through pyserial, and the emu:// URL scheme.

Timing assertions are lower bounds only (line time is a floor nothing may beat); there is
never an upper bound on elapsed time.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from pos_sim.emulator import EmulatorServer, LineError, register_url_scheme
from pos_sim.emulator.scenario import SCENARIO_DIR
from protocols.pos import FrameDeframer, decode_message, encode_message
from tests.pos_sim.emulator.hosts import RESPONSE, RETRANSMIT, PortHost, T, hello_fields


@pytest.fixture(autouse=True)
def _emu_scheme() -> None:
    register_url_scheme()


@pytest.fixture
def emu_port(request: pytest.FixtureRequest) -> Iterator[serial.SerialBase]:
    port = serial.serial_for_url(request.param, timeout=0.05)
    yield port
    port.close()


def line_time(nbytes: int, baud: int) -> float:
    return nbytes * 10 / baud


def test_register_url_scheme_is_idempotent() -> None:
    register_url_scheme()
    register_url_scheme()
    assert serial.protocol_handler_packages.count("pos_sim.emulator.urlhandler") == 1


def test_a_session_over_a_pty() -> None:
    with EmulatorServer("paper-out", speed=50) as server:
        path = server.serve_pty()
        assert path.startswith("/dev/pts/")
        with serial.Serial(path, 115200, timeout=0.05) as port:
            host = PortHost(port)
            assert host.request(T.HELLO, hello_fields()).fields["serial"] == "SP0000789"
            assert host.request(T.INFO_REQUEST).fields["lifecycle"] == "bound"
            status = host.request(T.STATUS_REQUEST, {"component": "printer"}).fields["status"]
            assert status["paper_sensor"] == 0x7E
            host.wait_event(lambda m: m.type == T.ERROR and m.fields["code"] == "paper_end")
            host.poll(0.1)
        stats = server.stats
        assert stats.bytes_in == host.bytes_sent and stats.bytes_out == host.bytes_received
        assert stats.frames_in == 4 and stats.frames_out == 4  # 3 replies and the ERROR event
        assert stats.deframer["frames"] == 4 and stats.deframer["bad_crc"] == 0


@pytest.mark.parametrize("emu_port", ["emu://healthy?speed=50&baud=115200"], indirect=True)
def test_a_full_self_test_over_emu(emu_port: serial.SerialBase) -> None:
    host = PortHost(emu_port)
    assert isinstance(emu_port.emulator, EmulatorServer)
    host.request(T.HELLO, hello_fields())
    assert host.request(T.SELFTEST_START, {"component": "printer", "plan": "full", "interactive": True}).type == T.ACK
    host.wait_event(lambda m: m.type == T.SELFTEST_PROGRESS and m.fields["prompt"] == "confirm_print")
    assert host.request(T.SELFTEST_CONFIRM, {"component": "printer", "accepted": True}).type == T.ACK
    result = host.wait_event(lambda m: m.type == T.SELFTEST_RESULT)
    assert (result.fields["outcome"], result.fields["code"]) == ("passed", "none")


def test_emu_by_absolute_path() -> None:
    path = SCENARIO_DIR / "no-network.toml"
    with serial.serial_for_url(f"emu://{path}?speed=inf", timeout=0.05) as port:
        host = PortHost(port)
        assert host.request(T.HELLO, hello_fields()).fields["serial"] == "SP0001024"


@pytest.mark.parametrize(("url", "message"), [
    ("emu://exploded", "known scenarios"),
    ("emu://healthy?colour=red", "unknown option"),
    ("emu://healthy?speed=-1", "positive number"),
])
def test_emu_url_errors_are_serial_exceptions(url: str, message: str) -> None:
    with pytest.raises(serial.SerialException, match=message):
        serial.serial_for_url(url)


def _throttle_case(port: serial.SerialBase, baud: int) -> None:
    host = PortHost(port)
    host.request(T.HELLO, hello_fields(), timeout=5)
    info = host.request(T.TXLOG_OPEN, timeout=5)
    assert info.fields["records_per_page"] == 32
    request = encode_message(T.TXLOG_READ, {"page": 0}, seq=999)
    deframer = FrameDeframer()
    arrivals: list[float] = []
    start = time.monotonic()
    port.write(request)
    reply = None
    while reply is None and time.monotonic() - start < 10:
        data = port.read(port.in_waiting or 1)
        if data:
            arrivals.append(time.monotonic())
        for frame in deframer.feed(data):
            if frame.flags & RESPONSE and frame.seq == 999:
                reply = frame
    elapsed = time.monotonic() - start
    assert reply is not None and reply.type == T.TXLOG_PAGE
    reply_bytes = len(reply.payload) + 11
    assert reply_bytes > 900
    assert elapsed >= 0.9 * line_time(len(request) + reply_bytes, baud)
    # spread over the line time, not one burst at the end
    assert arrivals[-1] - arrivals[0] >= 0.8 * line_time(reply_bytes, baud)
    assert len(arrivals) > 20


def test_a_pty_line_is_throttled_to_its_baud_rate() -> None:
    with EmulatorServer("healthy", baud=9600, speed=float("inf")) as server:
        path = server.serve_pty()
        with serial.Serial(path, 9600, timeout=0.05) as port:
            _throttle_case(port, 9600)


@pytest.mark.parametrize("emu_port", ["emu://healthy?speed=inf&baud=9600"], indirect=True)
def test_an_emu_line_is_throttled_to_its_baud_rate(emu_port: serial.SerialBase) -> None:
    _throttle_case(emu_port, 9600)


@pytest.mark.parametrize("emu_port", ["emu://healthy?speed=inf&baud=9600"], indirect=True)
def test_what_the_host_sends_reaches_the_terminal_at_line_rate_too(emu_port: serial.SerialBase) -> None:
    host = PortHost(emu_port)
    host.request(T.HELLO, hello_fields(), timeout=5)
    pings = b"".join(encode_message(T.PING, seq=100 + i) for i in range(10))
    start = time.monotonic()
    host.write(pings)  # all at once: a pty or socket takes them instantly
    while len([m for m in host.responses if m.type == T.PONG]) < 10 and time.monotonic() - start < 5:
        host.poll(0.01)
    elapsed = time.monotonic() - start
    # the tenth PING cannot reach the terminal before 110 bytes of line time, nor its PONG
    # come back before 15 more
    assert elapsed >= 0.9 * line_time(len(pings) + 15, 9600)


def test_tcp_one_client_at_a_time_and_a_fresh_session_for_each() -> None:
    with EmulatorServer("healthy", speed=50) as server:
        url = server.serve_tcp()
        assert url.startswith("socket://127.0.0.1:")
        first = serial.serial_for_url(url, timeout=0.05)
        host = PortHost(first)
        host.request(T.HELLO, hello_fields())
        # a second client while the first is served is turned away
        intruder = serial.serial_for_url(url, timeout=0.5)
        with pytest.raises(serial.SerialException):
            intruder.read(1)
        intruder.close()
        assert host.request(T.INFO_REQUEST).type == T.INFO_REPLY
        first.close()
        second = serial.serial_for_url(url, timeout=0.05)
        host2 = PortHost(second)
        reply = host2.request(T.INFO_REQUEST)
        assert reply.type == T.NAK and reply.fields["reason"] == "not_permitted", "a new client starts with HELLO"
        assert host2.request(T.HELLO, hello_fields()).type == T.HELLO_REPLY
        second.close()
        assert server.stats.connections == 2


def test_tcp_port_in_use_is_a_line_error() -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    try:
        server = EmulatorServer("healthy")
        with pytest.raises(LineError, match="cannot listen"):
            server.serve_tcp(holder.getsockname()[1])
        server.stop()
    finally:
        holder.close()


def test_unplugging_a_pty_fails_the_hosts_reads_at_once() -> None:
    with EmulatorServer("healthy", speed=50) as server:
        path = server.serve_pty()
        with serial.Serial(path, 115200, timeout=5.0) as port:
            PortHost(port).request(T.HELLO, hello_fields())
            server.unplug()
            assert server.line_closed
            # an error, not a timeout: on a timeout pyserial would return b"" instead
            with pytest.raises(serial.SerialException):
                port.read(1)
        assert not os.path.exists(path), "the pty is gone, as a pulled USB device's node is"


@pytest.mark.parametrize("emu_port", ["emu://healthy?speed=50"], indirect=True)
def test_unplugging_an_emu_port_fails_the_hosts_reads(emu_port: serial.SerialBase) -> None:
    PortHost(emu_port).request(T.HELLO, hello_fields())
    emu_port.emulator.unplug()
    with pytest.raises(serial.SerialException):
        emu_port.read(1)


def _exchange(port: serial.SerialBase) -> None:
    host = PortHost(port)
    host.request(T.HELLO, hello_fields(), timeout=1.0)
    host.request(T.INFO_REQUEST, timeout=1.0)


def test_the_cable_can_be_cut_at_every_byte_of_an_exchange() -> None:
    with serial.serial_for_url("emu://healthy?speed=inf&baud=115200", timeout=0.05) as port:
        _exchange(port)
        total = port.emulator.stats.bytes_in + port.emulator.stats.bytes_out
    hello = len(encode_message(T.HELLO, hello_fields(), seq=1))
    assert total == hello + 30 + 11 + 68  # HELLO, HELLO_REPLY, INFO_REQUEST, INFO_REPLY
    for cut in range(1, total + 2):
        with serial.serial_for_url("emu://healthy?speed=inf&baud=115200", timeout=0.05) as port:
            server = port.emulator
            server.unplug_after_bytes(cut)
            if cut < total:
                with pytest.raises((serial.SerialException, AssertionError)):
                    _exchange(port)
            else:
                _exchange(port)  # the last byte crossed before the cut
            assert server.line_closed == (cut <= total), cut
            stats = server.stats
            assert stats.bytes_in + stats.bytes_out == min(cut, total), "both directions counted, exactly"


def test_flaky_link_damages_bytes_but_no_corrupt_frame_gets_through() -> None:
    answered = 0
    with serial.serial_for_url("emu://flaky-link?speed=inf&baud=115200", timeout=0.02) as port:
        host = PortHost(port)
        for attempt in range(4):
            try:
                host.request(T.HELLO, hello_fields(), timeout=0.3)
                break
            except AssertionError:
                assert attempt < 3
        for i in range(50):
            seq = 2000 + i
            for attempt in range(4):  # first send and three retransmissions, as the spec allows
                host.write(encode_message(T.PING, seq=seq, flags=RETRANSMIT if attempt else 0))
                # shorter than T_resp to keep the test quick, longer than the inter-byte timeout
                # so that a garbled length on either side is given up before the next try
                end = time.monotonic() + 0.15
                got = False
                while not got and time.monotonic() < end:
                    got = any(m.seq == seq and m.type == T.PONG for m in host.poll(0.01))
                if got:
                    answered += 1
                    break
        link = port.emulator.stats.link
        terminal_deframer = port.emulator.stats.deframer
    assert answered >= 45
    assert link["corrupted_in"] + link["corrupted_out"] > 0 and link["dropped_in"] + link["dropped_out"] > 0
    assert terminal_deframer["bad_crc"] + host.deframer.stats.bad_crc > 0
    # whatever reached either side intact decoded as what was sent: PONGs and nothing else
    assert {m.type for m in host.responses} <= {T.PONG, T.HELLO_REPLY, T.NAK}


@pytest.mark.parametrize("emu_port", ["emu://firmware-crash?speed=50"], indirect=True)
def test_a_crashed_terminal_is_silent_but_the_line_stays(emu_port: serial.SerialBase) -> None:
    host = PortHost(emu_port)
    host.request(T.HELLO, hello_fields())
    assert host.request(T.SELFTEST_START, {"component": "printer", "plan": "full", "interactive": True}).type == T.ACK
    deadline = time.monotonic() + 3
    while not emu_port.emulator.crashed and time.monotonic() < deadline:
        host.poll(0.02)
    assert emu_port.emulator.crashed
    host.poll(0.1)
    with pytest.raises(AssertionError, match="no answer"):
        host.request(T.PING, timeout=1.0)
    assert emu_port.read(64) == b"", "silent, not disconnected"
    assert not emu_port.emulator.line_closed


def test_state_survives_a_restart_of_the_emulator(tmp_path: Path) -> None:
    from protocols.pos.auth import lifecycle_args, lifecycle_mac
    from protocols.pos.codes import LifecycleOp

    state = tmp_path / "terminal.json"
    key = bytes.fromhex("5ed75cad347a476e3f1d92c35a842a52b1c4203fa39bcd0236aac487ffdbb987")  # unactivated.toml
    with serial.serial_for_url(f"emu://unactivated?speed=inf&state={state}", timeout=0.05) as port:
        host = PortHost(port)
        host.request(T.HELLO, hello_fields())
        c = host.request(T.LC_CHALLENGE_REQUEST, {"operation": "activate"}).fields
        args = lifecycle_args("CODE-1", "898310048165555", "")
        mac = lifecycle_mac(key, c["serial"], int(LifecycleOp.activate), args, c["nonce"], 1)
        result = host.request(T.LC_REQUEST, {"operation": "activate", "counter": 1, "nonce": c["nonce"],
                                             "activation_code": "CODE-1", "merchant_id": "898310048165555",
                                             "reason": "", "mac": mac})
        assert result.fields["status"] == "ok"
    with serial.serial_for_url(f"emu://unactivated?speed=inf&state={state}", timeout=0.05) as port:
        host = PortHost(port)
        host.request(T.HELLO, hello_fields())
        info = host.request(T.INFO_REQUEST).fields
        assert info["lifecycle"] == "activated" and info["merchant_id"] == "898310048165555"


def test_stop_joins_the_thread_closes_the_line_and_can_be_repeated() -> None:
    server = EmulatorServer("healthy")
    path = server.serve_pty()
    threads = [t for t in threading.enumerate() if t.name.startswith("pos-sim-emulator")]
    assert len(threads) == 1
    server.stop()
    server.stop()
    assert not server.running and not threads[0].is_alive()
    assert not os.path.exists(path)
    with pytest.raises(LineError):
        server.serve_pty()


def test_a_server_serves_one_line() -> None:
    with EmulatorServer("healthy") as server:
        server.serve_tcp()
        with pytest.raises(LineError, match="already serving"):
            server.serve_pty()


def test_closing_the_emu_port_stops_its_emulator() -> None:
    port = serial.serial_for_url("emu://healthy?speed=inf&baud=115200", timeout=0.05)
    server = port.emulator
    assert server.running
    port.close()
    assert not server.running


def test_events_are_retransmitted_over_a_real_line_when_not_acknowledged() -> None:
    with serial.serial_for_url("emu://paper-out?speed=inf&baud=115200", timeout=0.05) as port:
        port.write(encode_message(T.HELLO, hello_fields(), seq=1))
        deframer = FrameDeframer()
        frames = []
        end = time.monotonic() + 3.2  # T_resp is 680 ms: three retransmissions fit in ~2.1 s
        while time.monotonic() < end:
            frames += deframer.feed(port.read(256))
        errors = [f for f in frames if f.type == T.ERROR]
        assert len(errors) == 4
        assert [bool(f.flags & RETRANSMIT) for f in errors] == [False, True, True, True]
        assert len({f.seq for f in errors}) == 1
        assert decode_message(errors[0]).fields["code"] == "paper_end"


def test_cancel_read_wakes_a_blocked_read_on_an_emu_port() -> None:
    with serial.serial_for_url("emu://healthy?speed=inf&baud=115200", timeout=None) as port:
        got: list[bytes] = []
        reader = threading.Thread(target=lambda: got.append(port.read(10)))
        reader.start()
        time.sleep(0.05)
        assert reader.is_alive(), "read blocks: nothing has arrived"
        port.cancel_read()
        reader.join(2.0)
        assert not reader.is_alive() and got == [b""]
        # the port still works afterwards
        port.timeout = 0.05
        assert PortHost(port).request(T.HELLO, hello_fields()).type == T.HELLO_REPLY


@pytest.mark.skipif(not os.path.exists("/proc/self/timerslack_ns"), reason="Linux's per-thread timer slack")
def test_the_server_thread_wakes_on_time() -> None:
    # the thread's timed sleeps are byte times: the default 50 us of timer slack would add to each
    with EmulatorServer("healthy") as server:
        server.serve_pty()
        assert server._thread is not None and server._thread.native_id is not None
        path = f"/proc/{server._thread.native_id}/timerslack_ns"
        end = time.monotonic() + 5.0
        while (slack := int(Path(path).read_text())) != 1 and time.monotonic() < end:
            time.sleep(0.01)  # the thread sets it as it starts
        assert slack == 1
    assert int(Path("/proc/self/timerslack_ns").read_text()) > 1, "only the server's own thread is changed"
