"""``pos-sim wireshark install [--dir DIR]``: put the ``possim`` dissector where Wireshark looks.

The dissector is a Lua plugin generated from the protocol's declarations and shipped in the
package (``pos_sim/wireshark/possim.lua``).  Wireshark and tshark load every ``.lua`` in the
user's personal plugin folder at start: ``~/.local/lib/wireshark/plugins`` on Linux and macOS,
``%APPDATA%\\Wireshark\\plugins`` on Windows (``tshark -G folders`` shows it as "Personal Lua
Plugins").  After the install, ``tshark -r FILE.pcapng`` decodes ``pos-sim pcap`` files with no
further setting.

Exit status: 0 installed (or already up to date); 1 the folder cannot be made or written.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

from drivers.files import write_atomically
from pos_sim import exitcodes

PLUGIN_NAME = "possim.lua"


def plugin_text() -> str:
    """The shipped Lua plugin."""
    return files("pos_sim").joinpath("wireshark", PLUGIN_NAME).read_text(encoding="utf-8")


def personal_plugin_dir() -> Path:
    """Wireshark's personal Lua plugin folder for this user (see the module docstring)."""
    if sys.platform == "win32" and os.environ.get("APPDATA"):
        return Path(os.environ["APPDATA"]) / "Wireshark" / "plugins"
    return Path.home() / ".local" / "lib" / "wireshark" / "plugins"


def add_parser(sub: Any) -> None:
    """Add ``wireshark`` to the command line."""
    p = sub.add_parser(
        "wireshark", help="install the Wireshark dissector for pos-sim captures",
        description="Wireshark support: `install` copies the possim dissector (a Lua plugin) into "
                    "your personal Wireshark plugin folder, so that Wireshark and tshark decode the "
                    "files `pos-sim pcap` writes.")
    wsub = p.add_subparsers(dest="wireshark_command", metavar="ACTION", required=True,
                            parser_class=type(p))
    inst = wsub.add_parser("install", help="copy the dissector into Wireshark's plugin folder",
                           description="Copy possim.lua into DIR (default: Wireshark's personal Lua "
                                       f"plugin folder, here {personal_plugin_dir()}); restart "
                                       "Wireshark to load it.")
    inst.add_argument("--dir", metavar="DIR", type=Path, help="the plugin folder to install into")
    inst.set_defaults(func=run_install)


def run_install(args: argparse.Namespace) -> int:
    """Carry out ``pos-sim wireshark install``."""
    folder: Path = args.dir if args.dir is not None else personal_plugin_dir()
    target = folder / PLUGIN_NAME
    text = plugin_text()
    try:
        if target.is_file() and target.read_text(encoding="utf-8") == text:
            print(f"{target}: already up to date")
            return exitcodes.OK
        folder.mkdir(parents=True, exist_ok=True)
        write_atomically(target, text)
    except OSError as exc:
        why = exc.strerror or str(exc)
        print(f"pos-sim wireshark install: {folder}: cannot install the dissector there: {why}", file=sys.stderr)
        return exitcodes.USAGE
    print(f"installed the possim dissector to {target}; restart Wireshark to load it")
    return exitcodes.OK
