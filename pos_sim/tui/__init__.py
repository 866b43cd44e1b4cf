"""The Textual TUI: live tiles, the keypad map, the frame log and the port picker (docs/tui.md)."""

from __future__ import annotations

from pos_sim.tui.app import PosSimApp

__all__ = ["PosSimApp"]
