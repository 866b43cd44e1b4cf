"""``pos-sim pcap CAPTURE -o FILE.pcapng``: a capture as pcapng, for Wireshark and tshark.

One packet per intact frame (whole, however many reads it took), per dropped byte range (with a
comment saying why) and per note; direction in the packet flags, nanosecond timestamps, the
capture's header in the section comment (docs/wireshark.md).  With the dissector installed
(``pos-sim wireshark install``), ``tshark -r FILE.pcapng`` decodes every frame.

Exit status: 0 written (a torn capture is written as far as it goes, and said so on stderr);
1 the capture is missing or not a capture, or FILE cannot be written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from drivers.capture import CaptureError
from drivers.pcapng import export_capture
from pos_sim import exitcodes


def add_parser(sub: Any) -> None:
    """Add ``pcap`` to the command line."""
    p = sub.add_parser(
        "pcap", help="write a capture as pcapng for Wireshark / tshark",
        description="Write CAPTURE (a pos-sim capture, docs/capture-format.md) as a pcapng file: one "
                    "packet per frame, per dropped byte range (its comment says why) and per note. "
                    "Install the dissector once with `pos-sim wireshark install`, then "
                    "`tshark -r FILE.pcapng` or Wireshark decodes every frame.")
    p.add_argument("capture", metavar="CAPTURE", help="the capture file (.cap or .cap.gz)")
    p.add_argument("-o", "--output", metavar="FILE.pcapng", required=True, help="the pcapng file to write")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Carry out ``pos-sim pcap``."""
    output = Path(args.output)
    if Path(args.capture).resolve() == output.resolve():
        print(f"pos-sim pcap: {output}: the output would overwrite the capture", file=sys.stderr)
        return exitcodes.USAGE
    try:
        packets, reader = export_capture(args.capture, output)
    except CaptureError as exc:
        print(f"pos-sim pcap: {exc}", file=sys.stderr)
        return exitcodes.USAGE
    if reader.problem:
        print(f"pos-sim pcap: {args.capture}: {reader.problem}", file=sys.stderr)
    print(f"wrote {packets} packets to {output}", file=sys.stderr)
    return exitcodes.OK
