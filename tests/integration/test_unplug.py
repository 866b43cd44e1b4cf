"""Pull the cable at every byte offset of one full self-test exchange.

The emulator closes its side of the pty after exactly k bytes have crossed the line, for every
k from 0 to the length of the exchange.  Each time the driver must raise DeviceDisconnected
within the response timeout plus 0.5 s, leave no thread behind, and keep every result that was
complete before the cut.
"""

from __future__ import annotations

import threading
import time

from drivers.errors import DeviceDisconnected
from drivers.link import LinkTimings
from drivers.terminal import SelfTestResult, Terminal
from pos_sim.emulator import EmulatorServer, load_scenario

TIMINGS = LinkTimings(keepalive_idle=3600)
COMPONENTS = ("power", "security", "system")
SCENARIO = load_scenario("healthy")


def exchange(term: Terminal, done: list[SelfTestResult]) -> None:
    for component in COMPONENTS:
        done.append(term.run_self_test(component, "quick", timeout=10))


def line_bytes(server: EmulatorServer) -> int:
    s = server.stats
    return s.bytes_in + s.bytes_out


def settle(server: EmulatorServer, term: Terminal) -> None:
    """Wait until the last ACK has crossed the line (the host sends it after the result)."""
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline and line_bytes(server) < term.link.stats.bytes_in + term.link.stats.bytes_out:
        time.sleep(0.005)


def test_unplug_at_every_byte_offset() -> None:
    baseline = threading.active_count()
    with (EmulatorServer(SCENARIO, speed=float("inf")) as server,
          Terminal.open(server.serve_pty(), timings=TIMINGS) as term):
        start = line_bytes(server)
        reference: list[SelfTestResult] = []
        exchange(term, reference)
        settle(server, term)
        total = line_bytes(server) - start
    assert [r.outcome for r in reference] == ["passed"] * len(COMPONENTS)
    assert total > 100

    cut_mid_exchange = 0
    for k in range(total):
        with EmulatorServer(SCENARIO, speed=float("inf")) as server:
            term = Terminal.open(server.serve_pty(), timings=TIMINGS)
            try:
                before, host_in, host_out0 = server.stats, term.link.stats.bytes_in, term.link.stats.bytes_out
                server.unplug_after_bytes(k) if k else server.unplug()
                done: list[SelfTestResult] = []
                try:
                    exchange(term, done)
                except DeviceDisconnected:
                    cut_mid_exchange += 1
                    # noticed by the broken port, not by a request running out of time
                    assert term.link.stats.timeouts == 0, f"cut at byte {k}: noticed too late"
                    assert isinstance(term.link.error, DeviceDisconnected)
                else:
                    # the cut fell after the terminal's last byte, on the host's closing ACKs
                    # (how many progress frames a zero-length test sends, and so how many ACKs
                    # are still to go when the result is in, is a race), or after the exchange:
                    # every result arrived, and every byte the terminal sent reached the host
                    assert len(done) == len(COMPONENTS), f"cut at byte {k}: results lost, no error"
                    deadline = time.monotonic() + 1  # our last ACK may still be on its way
                    while True:
                        host_out = term.link.stats.bytes_out - host_out0
                        after = server.stats
                        sent, heard = after.bytes_out - before.bytes_out, after.bytes_in - before.bytes_in
                        if sent + heard == k or heard == host_out or time.monotonic() > deadline:
                            break
                        time.sleep(0.005)
                    assert term.link.stats.bytes_in - host_in == sent, f"cut at byte {k} went unnoticed"
                    assert sent + heard == k or heard == host_out, f"cut at byte {k}: {sent + heard} crossed"
                # what completed before the cut is kept, intact
                assert [(r.component, r.outcome, r.code) for r in done] == [
                    (r.component, r.outcome, r.code) for r in reference[:len(done)]]
                assert {r.component for r in done} <= set(term.results)
                by_component = {r.component: r for r in reference}
                for component, kept in term.results.items():
                    assert (kept.outcome, kept.code) == (by_component[component].outcome, by_component[component].code)
            finally:
                term.close()
        # the link and the emulator join their threads on close; allow a loaded machine a moment
        deadline = time.monotonic() + 2.0
        while threading.active_count() > baseline and time.monotonic() < deadline:
            time.sleep(0.01)
        assert threading.active_count() == baseline, f"cut at byte {k}: a thread was left behind"
    # the checks above hold for every k; this one only makes sure most cuts fell mid-exchange
    assert cut_mid_exchange > total // 2
