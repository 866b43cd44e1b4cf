"""The phrase books (the TUI's, the reports', the CLI's own words) share the catalogue's format and loader:
every phrase in both languages with the same fields, every key the code asks for there, none left over."""

from __future__ import annotations

import ast
import string
from collections.abc import Iterator
from pathlib import Path

import pytest

from pos_sim.diagnostics.catalogue import LANGUAGES, CatalogueError, Phrases, load_catalogue, load_phrases
from protocols.pos import codes

ROOT = Path(__file__).resolve().parents[3]
#: every phrase book, with the sources that show its words
BOOKS: dict[tuple[str, str], tuple[Path, ...]] = {
    ("pos_sim.tui", "text.toml"): (ROOT / "pos_sim" / "tui", ROOT / "pos_sim" / "cli" / "tui.py"),
    ("pos_sim.reports", "text.toml"): (ROOT / "pos_sim" / "reports",),
    ("pos_sim.cli", "text.toml"): (ROOT / "pos_sim" / "cli" / "status.py",),
}


def _book_ids() -> list[str]:
    return [f"{package}/{name}" for package, name in BOOKS]


def _files(*places: Path) -> Iterator[Path]:
    for place in places:
        yield from (sorted(place.rglob("*.py")) if place.is_dir() else [place])


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


@pytest.mark.parametrize(("package", "name"), list(BOOKS), ids=_book_ids())
def test_every_phrase_has_both_languages_with_the_same_fields(package: str, name: str) -> None:
    book = load_phrases(package, name)
    assert book.groups
    for group in book.groups:
        for key, texts in book.pairs(group).items():
            assert tuple(texts) == LANGUAGES, (group, key)
            assert all(t.strip() for t in texts.values()), (group, key)
            # a field only one language fills in would be dropped, or fail, in the other
            assert _fields(texts["zh-CN"]) == _fields(texts["en"]), (group, key, texts)


def test_the_catalogue_and_the_phrase_books_are_one_format(tmp_path: Path) -> None:
    """A ``[labels.*]`` group of the catalogue, pasted into a file of its own, is a phrase book."""
    cat = load_catalogue()
    lines = ["schema = 1", "[labels.component]"]
    lines += [f'{k} = {{ zh-CN = "{cat.label("component", k, "zh-CN")}", en = "{cat.label("component", k, "en")}" }}'
              for k in cat.keys("component")]
    path = tmp_path / "copy.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    book = load_phrases("unused", "unused", path)
    assert book.text("component", "magstripe", "zh") == "磁条读卡器"
    assert list(book.pairs("component")) == list(cat.keys("component"))


@pytest.mark.parametrize(("body", "problem"), [
    ('[labels.g]\nk = { zh-CN = "好" }', "labels.g.k: missing field 'en'"),
    ('[labels.g]\nk = { zh-CN = "好", en = "good", fr = "bon" }', "labels.g.k: unknown field 'fr'"),
    ('[labels.g]\nk = { zh-CN = " ", en = "good" }', "labels.g.k.zh-CN: must be a non-empty string"),
    ('[labels.g]\nk = "good"', "labels.g.k: must be a table"),
    ("[labels.g]\n", "labels.g: holds no phrase"),
    ('[words.g]\nk = { zh-CN = "好", en = "good" }', "top level: unknown field 'words'"),
])
def test_a_broken_phrase_book_is_refused_naming_the_entry(tmp_path: Path, body: str, problem: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(f"schema = 1\n{body}\n", encoding="utf-8")
    with pytest.raises(CatalogueError) as caught:
        load_phrases("unused", "unused", path)
    assert str(caught.value) == f"{path}: {problem}" or str(caught.value).startswith(f"{path}: {problem}")


def test_text_fills_in_fields_and_names_what_is_missing() -> None:
    book = load_phrases("pos_sim.tui", "text.toml")
    assert book.text("screen", "connecting", "en", port="/dev/ttyACM0") == "connecting to /dev/ttyACM0 …"
    assert book.text("screen", "connecting", "zh_CN.UTF-8", port="X") == "正在连接 X …"
    with pytest.raises(KeyError, match="no phrase 'nope'"):
        book.text("screen", "nope", "en")
    with pytest.raises(KeyError, match="no group 'nope'"):
        book.pairs("nope")


# -- no key the code asks for is missing, no key in a book is left unused -------------------------


class _Uses:
    """String constants and f-string prefixes in the sources, and the literal keys passed to lookups."""

    def __init__(self, files: Iterator[Path], lookups: set[str]) -> None:
        self.constants: set[str] = set()
        self.prefixes: set[str] = set()
        self.asked: dict[str, str] = {}      # key -> where
        for f in files:
            tree = ast.parse(f.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    self.constants.add(node.value)
                if isinstance(node, ast.JoinedStr) and node.values:
                    head = node.values[0]
                    if isinstance(head, ast.Constant) and isinstance(head.value, str) and head.value:
                        self.prefixes.add(head.value)
                if isinstance(node, ast.Call) and node.args and _name(node.func) in lookups:
                    for key in _literals(node.args[0]):
                        self.asked[key] = f"{f.relative_to(ROOT)}:{node.lineno}"
                elif isinstance(node, ast.Subscript) and _name(node.value) in lookups:
                    for key in _literals(node.slice):
                        self.asked[key] = f"{f.relative_to(ROOT)}:{node.lineno}"

    def used(self, key: str, suffixes: set[str]) -> bool:
        """``key`` appears as it is, or is an f-string's prefix plus a value the code or the protocol has."""
        if key in self.constants:
            return True
        head, dot, tail = key.partition(".")
        if dot and head in self.constants and (tail in suffixes or tail.isdigit()):
            return True     # a code value's words: _named("reader", value) asks for reader.<value>
        return any(key.startswith(p) and (key[len(p):] in suffixes or key[len(p):].isdigit()) for p in self.prefixes)


def _literals(expr: ast.expr) -> list[str]:
    """The keys an argument can be: a string constant, or either branch of ``"a" if c else "b"``
    (the empty string clears a banner: not a key)."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str) and expr.value:
        return [expr.value]
    if isinstance(expr, ast.IfExp):
        return _literals(expr.body) + _literals(expr.orelse)
    return []


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        # PHRASES.text("group", key, ...) is the lookup itself, not a use of a key
        owner = func.value
        return "" if isinstance(owner, ast.Name) and owner.id.endswith("PHRASES") else func.attr
    return ""


def _code_values() -> set[str]:
    """Names of every protocol code (``ready``, ``tripped``, ``paper_end`` ...)."""
    out: set[str] = set()
    for value in vars(codes).values():
        if isinstance(value, type) and issubclass(value, codes.CodeEnum) and value is not codes.CodeEnum:
            out |= set(value.__members__)
    return out


def test_the_tui_asks_only_for_words_it_has_and_has_none_it_never_shows() -> None:
    book = load_phrases("pos_sim.tui", "text.toml")
    uses = _Uses(_files(*BOOKS[("pos_sim.tui", "text.toml")]), {"ui_text", "t", "set_banner"})
    screen = book.pairs("screen")
    missing = {k: where for k, where in uses.asked.items() if k not in screen}
    assert not missing, f"asked for but not in pos_sim/tui/text.toml: {missing}"
    suffixes = uses.constants | _code_values() | {f"fw{n}" for n in range(1, 4)}
    unused = [k for k in screen if not uses.used(k, suffixes)]
    assert not unused, f"in pos_sim/tui/text.toml but never shown: {unused}"


def test_the_reports_ask_only_for_words_they_have_and_have_none_they_never_show() -> None:
    book = load_phrases("pos_sim.reports", "text.toml")
    uses = _Uses(_files(ROOT / "pos_sim" / "reports"), {"words", "h", "report"})
    report = book.pairs("report")
    asked = {k: where for k, where in uses.asked.items() if not k.startswith("heading.")}
    missing = {k: where for k, where in asked.items() if k not in report}
    assert not missing, f"asked for but not in pos_sim/reports/text.toml: {missing}"
    unused = sorted(set(report) - set(asked))
    assert not unused, f"in pos_sim/reports/text.toml but never shown: {unused}"
    # the lifecycle states, one for one with the protocol's (the oracle: protocols/pos/codes.py)
    assert set(book.pairs("lifecycle")) == set(codes.LifecycleState.__members__)


def test_the_help_rows_are_the_books() -> None:
    from pos_sim.tui.text import DEVICE_HELP_ROWS, HELP_ROWS, help_text

    book: Phrases = load_phrases("pos_sim.tui", "text.toml")
    assert [k for k, _ in HELP_ROWS] == list(book.pairs("help"))
    assert [k for k, _ in DEVICE_HELP_ROWS] == list(book.pairs("device_help"))
    assert help_text("en").splitlines()[0].split() [:2] == ["r", "run"]


def test_status_asks_only_for_words_it_has_and_has_none_it_never_shows() -> None:
    book = load_phrases("pos_sim.cli", "text.toml")
    uses = _Uses(_files(*BOOKS[("pos_sim.cli", "text.toml")]), {"text", "_marks"})
    everything = {**book.pairs("status"), **book.pairs("marks")}
    missing = {k: where for k, where in uses.asked.items() if k not in everything}
    assert not missing, f"asked for but not in pos_sim/cli/text.toml: {missing}"
    # a block shown one row per declared field asks for its fields' words (status.declared_rows)
    from pos_sim.cli.status import _ROWS
    from protocols.pos.messages import STATUS_BY_COMPONENT, status_fields

    fields = {w for c in STATUS_BY_COMPONENT if c not in _ROWS
              for f in status_fields(c) for w in (f.name, f"{c}.{f.name}")}
    unused = [k for k in everything if k not in fields and not uses.used(k, uses.constants | _code_values())]
    assert not unused, f"in pos_sim/cli/text.toml but never shown: {unused}"
