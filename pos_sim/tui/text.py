"""The TUI's own words (its chrome) in zh-CN and en.

Everything about a component, a verdict, a fault or a prompt comes from the diagnostics
catalogue (``pos_sim/diagnostics/catalogue.toml``); the words of the screen itself (state names,
the banner, the status bar, the help and the picker) are the phrase book ``text.toml`` beside
this module, in the catalogue's format and read by its loader
(:func:`~pos_sim.diagnostics.catalogue.load_phrases`).
"""

from __future__ import annotations

from typing import Final

from pos_sim.diagnostics.catalogue import Phrases, load_phrases

#: the phrase book: groups ``screen`` (the words), ``help`` and ``device_help`` (key rows, in order)
PHRASES: Final[Phrases] = load_phrases(__package__ or "pos_sim.tui", "text.toml")


def _rows(group: str) -> tuple[tuple[str, tuple[str, str]], ...]:
    return tuple((key, (texts["zh-CN"], texts["en"])) for key, texts in PHRASES.pairs(group).items())


#: the help screen's rows: key, (zh-CN, en)
HELP_ROWS: Final[tuple[tuple[str, tuple[str, str]], ...]] = _rows("help")

#: the device screen's keys (pos_sim/tui/device_screen.py), for ``pos-sim tui --help``
DEVICE_HELP_ROWS: Final[tuple[tuple[str, tuple[str, str]], ...]] = _rows("device_help")


def ui_text(key: str, lang: str, **values: object) -> str:
    """The screen word ``key`` in ``lang`` (``zh-CN`` or ``en``), formatted with ``values``."""
    return PHRASES.text("screen", key, "zh-CN" if lang == "zh-CN" else "en", **values)


def help_text(lang: str) -> str:
    """The help screen's body."""
    i = 0 if lang == "zh-CN" else 1
    return "\n".join(f"  {key:<8} {texts[i]}" for key, texts in HELP_ROWS)
