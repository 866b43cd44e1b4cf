"""``pos-sim info PORT``: connect, say HELLO, print identity and lifecycle state."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from drivers.device import KINDS, open_device
from drivers.errors import DriverError
from drivers.escpos import ReceiptPrinter
from pos_sim import exitcodes
from pos_sim.ports import add_baud_option, register_url_schemes

DEFAULT_TIMEOUT = 5.0
SCHEMA_VERSION = 1


def add_parser(sub: Any) -> None:
    """Add ``info`` to the command line."""
    p = sub.add_parser(
        "info", help="connect to a terminal and print its identity and lifecycle state",
        description="Connect to the terminal on PORT (a device path such as /dev/ttyACM0, a "
                    "socket:// or rfc2217:// URL, or emu://SCENARIO for the built-in emulator), "
                    "negotiate with HELLO and print model, serial number, firmware and lifecycle "
                    "state. Exit status 2: the port could not be opened; 4: the terminal did not "
                    "answer properly.")
    p.add_argument("port", metavar="PORT", help="device path or URL (see `pos-sim ports`)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--timeout", type=_positive, default=DEFAULT_TIMEOUT, metavar="S",
                   help=f"give up after S seconds in all (default {DEFAULT_TIMEOUT:g}; never before one "
                        f"request has had all its retransmits at the line rate)")
    p.add_argument("--device", choices=KINDS, default="auto",
                   help="what is on PORT: a pos-sim terminal, an ESC/POS receipt printer, or auto: DLE EOT 1 "
                        "first, then HELLO (default auto)")
    add_baud_option(p)
    p.set_defaults(func=run)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def run(args: argparse.Namespace) -> int:
    """Carry out ``pos-sim info``."""
    register_url_schemes()
    try:
        with open_device(args.port, getattr(args, "device", "auto"), baud=args.baud, timeout=args.timeout) as term:
            hello = term.hello
            info = term.info()
            status = term.status() if isinstance(term, ReceiptPrinter) else None
    except DriverError as exc:
        if args.json:
            print(json.dumps({"schema_version": SCHEMA_VERSION, "port": args.port, "error": str(exc),
                              "exit_status": exc.exit_code}))
        print(f"pos-sim info: {exc}", file=sys.stderr)
        return exc.exit_code
    assert hello is not None
    if status is not None:   # an ESC/POS receipt printer
        if args.json:
            print(json.dumps({"schema_version": SCHEMA_VERSION, "port": args.port, "device": info.as_dict(),
                              "protocol": {"name": "ESC/POS", "components": list(hello.components)},
                              "status": status.flags(), "exit_status": 0}, ensure_ascii=False))
            return exitcodes.OK
        print(f"{info.manufacturer} {info.model}   serial {info.serial}")
        print(f"  ESC/POS receipt printer{', firmware ' + info.firmware_version if info.firmware_version else ''}")
        print(f"  {'offline' if status.offline else 'online'}; status bytes {status.raw()}")
        print(f"  components: {', '.join(hello.components)}; port {args.port}")
        return exitcodes.OK
    if args.json:
        print(json.dumps({"schema_version": SCHEMA_VERSION, "port": args.port, "device": info.as_dict(),
                          "protocol": {"version": hello.protocol_version, "max_payload": hello.max_payload,
                                       "components": list(hello.components), "boot_id": hello.boot_id},
                          "exit_status": 0}, ensure_ascii=False))
        return exitcodes.OK
    print(f"{info.manufacturer} {info.model}   serial {info.serial}")
    print(f"  hardware {info.hardware_rev}, firmware {info.firmware_version}")
    state = info.lifecycle
    if info.merchant_id:
        state += f", merchant {info.merchant_id}"
    if info.activated_at:
        state += f", activated {datetime.fromtimestamp(info.activated_at, UTC):%Y-%m-%d}"
    print(f"  lifecycle: {state}")
    print(f"  components: {', '.join(hello.components) or 'none reported'}")
    print(f"  protocol {hello.protocol_version}, max payload {hello.max_payload} bytes, port {args.port}")
    return exitcodes.OK
