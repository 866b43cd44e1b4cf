"""pos-sim: the application (emulator, diagnostics, registry, reports, CLI and TUI)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pos-sim")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+source"
