"""The fault catalogue: what each fault code means and every text the diagnostics show people.

All of it lives in one data file, ``catalogue.toml`` next to this module, so that a technician
or translator can read and correct it without touching code. :func:`load_catalogue` reads it
(through :mod:`importlib.resources`, so it works from an installed wheel), checks it completely
and returns a :class:`Catalogue` of frozen dataclasses. A file that is incomplete or
misspelt is refused with a :class:`CatalogueError` naming the file and the entry, at load time
rather than when a technician happens to meet the broken entry.

The other texts people read (the TUI's chrome, the words only a report uses) are phrase books in
the same format, ``[labels.<group>]`` tables of ``key = { zh-CN = "...", en = "..." }`` beside the
code that shows them; :func:`load_phrases` reads and checks them with the same rules.

Two languages: ``"zh-CN"`` and ``"en"``. Every function that takes a language also accepts the
spellings people and locales use (``zh``, ``zh_CN``, ``en_US.UTF-8``) and normalises them with
:func:`normalize_language`; :func:`default_language` picks one from the environment's locale.
"""

from __future__ import annotations

import enum
import functools
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal

from protocols.pos.codes import (
    CodeEnum,
    Component,
    FaultCode,
    Measurement,
    Outcome,
    Prompt,
    Severity,
    TrackCode,
)

__all__ = [
    "LANGUAGES",
    "OVERALL_VERDICTS",
    "PHRASES_SCHEMA",
    "VERDICTS",
    "Catalogue",
    "CatalogueError",
    "Category",
    "FaultEntry",
    "FaultText",
    "Language",
    "Phrases",
    "UnknownLanguage",
    "default_language",
    "load_catalogue",
    "load_phrases",
    "normalize_language",
]

Language = Literal["zh-CN", "en"]
#: the languages every text exists in, in the order the data file lists them
LANGUAGES: Final[tuple[Language, ...]] = ("zh-CN", "en")

#: a component's verdict in a diagnostic run (docs/diagnostics.md, "Verdicts")
VERDICTS: Final[tuple[str, ...]] = ("pass", "warn", "fail", "skipped", "error")
#: the run's overall verdict: needs_attention = the merchant can fix it, locked = tamper
OVERALL_VERDICTS: Final[tuple[str, ...]] = ("ok", "needs_attention", "needs_repair", "locked")
#: self-test plans: the wire's SelfTestPlan members plus the host-side "drop" plan
PLANS: Final[tuple[str, ...]] = ("full", "quick", "drop")

#: the component of the 0x0Cxx codes, which are about transactions, not a part
TRANSACTION: Final = "transaction"
#: the component of the faults the host finds in the link itself (no FaultCode)
LINK: Final = "link"
#: the component of a code whose high byte names no component we know
UNKNOWN: Final = "unknown"
_TRANSACTION_HIGH_BYTE: Final = 0x0C

DATA_FILE: Final = "catalogue.toml"


class Category(enum.StrEnum):
    """How a technician files a fault (docs/diagnostics.md, the JSON's ``category``)."""

    hardware = "hardware"
    software = "software"
    network = "network"
    power = "power"
    communication = "communication"
    transaction = "transaction"
    security = "security"


#: Category of a code whose high byte names no known component. Such a code comes from a part
#: this catalogue does not know, which is a peripheral (LwM2M's "peripheral malfunction").
_UNKNOWN_COMPONENT_CATEGORY: Final = Category.hardware


class CatalogueError(Exception):
    """The catalogue's data file is missing, not valid TOML, incomplete or inconsistent."""


class UnknownLanguage(ValueError):
    """A language the catalogue has no texts for (it has zh-CN and en)."""


# --------------------------------------------------------------------------------------------
# languages
# --------------------------------------------------------------------------------------------

_C_LOCALES: Final = frozenset({"c", "posix"})


def normalize_language(value: str) -> Language:
    """The catalogue language for a language tag or locale name.

    ``zh``, ``zh-CN``, ``zh_CN.UTF-8``, ``zh-Hans`` (any Chinese: the catalogue's Chinese is the
    only Chinese it has) and ``cn`` (what people type) give ``"zh-CN"``; ``en``, ``en-GB``,
    ``en_US.UTF-8`` give ``"en"``. Anything else raises :class:`UnknownLanguage`.
    """
    tag = value.strip().split(".", 1)[0].split("@", 1)[0].replace("_", "-").lower()
    primary = tag.split("-", 1)[0]
    if primary in {"zh", "cn"}:
        return "zh-CN"
    if primary == "en":
        return "en"
    raise UnknownLanguage(f"no texts in language {value!r}; choose zh (简体中文) or en (English)")


def default_language(environ: Mapping[str, str] | None = None) -> Language:
    """The language the environment asks for: ``"zh-CN"`` for a Chinese locale, else ``"en"``.

    The locale is the first of ``LC_ALL``, ``LC_MESSAGES`` and ``LANG`` that is set (POSIX
    precedence). ``LANGUAGE``, GNU gettext's list of preferred languages (``zh_CN:en``), is
    consulted first unless the locale is explicitly ``C`` or ``POSIX``, as gettext does; its
    first entry we have texts for wins, then the locale. Unlike gettext we honour ``LANGUAGE``
    when no locale is set at all: a technician who only set ``LANGUAGE=zh_CN`` means it.
    """
    env = os.environ if environ is None else environ
    locale = next((env[name] for name in ("LC_ALL", "LC_MESSAGES", "LANG") if env.get(name)), "")
    candidates: list[str] = []
    if locale.split(".", 1)[0].lower() not in _C_LOCALES:
        candidates += env.get("LANGUAGE", "").split(":")
    candidates.append(locale)
    for candidate in candidates:
        if not candidate.strip():
            continue
        try:
            return normalize_language(candidate)
        except UnknownLanguage:
            continue
    return "en"


# --------------------------------------------------------------------------------------------
# entries
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaultText:
    """A fault's text in one language: what is wrong, and the steps to take, in order."""

    message: str
    advice: tuple[str, ...]


@dataclass(frozen=True)
class FaultEntry:
    """Everything the catalogue says about one fault.

    ``code`` is the FaultCode value, or ``None`` for a fault the host finds in the link itself
    (``key`` then names it: ``link_timeout``, ``selftest_lost``, ...). ``component`` is a
    :class:`~protocols.pos.codes.Component` name, ``"transaction"`` for the 0x0Cxx codes, ``"link"``
    for host-side faults, or ``"unknown"``. ``known`` is false for the generic entry the
    catalogue makes up for a code it does not know.
    """

    key: str
    code: int | None
    component: str
    category: Category
    severity: Severity
    merchant_fixable: bool
    repair_ticket: bool
    zh_cn: FaultText
    en: FaultText
    known: bool = True

    def text(self, lang: str) -> FaultText:
        """The message and advice in ``lang`` (any spelling :func:`normalize_language` accepts)."""
        return self.zh_cn if normalize_language(lang) == "zh-CN" else self.en

    def message(self, lang: str) -> str:
        """What is wrong, in plain words, in ``lang``."""
        return self.text(lang).message

    def advice(self, lang: str) -> tuple[str, ...]:
        """The steps to take, first-line fixes first and escalation last, in ``lang``."""
        return self.text(lang).advice

    @property
    def fault_code(self) -> FaultCode | None:
        """The code as a :class:`FaultCode`, or ``None`` (host-side fault, or unknown code)."""
        if self.code is None:
            return None
        try:
            return FaultCode(self.code)
        except ValueError:
            return None

    @property
    def wire_component(self) -> Component | None:
        """The :class:`Component` the fault belongs to, or ``None`` (transaction, link, unknown)."""
        return Component.__members__.get(self.component)

    @property
    def code_text(self) -> str:
        """The code as people write it (``0x0501``), or the key for host-side faults."""
        return self.key if self.code is None else f"0x{self.code:04X}"


# --------------------------------------------------------------------------------------------
# the catalogue
# --------------------------------------------------------------------------------------------


class Catalogue:
    """The loaded catalogue: fault entries by code and name, and labels by group.

    Build it with :func:`load_catalogue`; it is immutable and safe to share between threads.
    """

    def __init__(
        self,
        source: str,
        faults: Mapping[str, FaultEntry],
        host_faults: Mapping[str, FaultEntry],
        labels: Mapping[str, Mapping[str, Mapping[Language, str]]],
        component_category: Mapping[str, Category],
        outcome_verdict: Mapping[str, str],
        generic: FaultEntry,
    ) -> None:
        self._source = source
        self._faults = MappingProxyType(dict(faults))
        self._by_code = MappingProxyType({e.code: e for e in faults.values() if e.code is not None})
        self._host_faults = MappingProxyType(dict(host_faults))
        self._labels = MappingProxyType(
            {g: MappingProxyType({k: MappingProxyType(dict(v)) for k, v in items.items()})
             for g, items in labels.items()})
        self._component_category = MappingProxyType(dict(component_category))
        self._outcome_verdict = MappingProxyType(dict(outcome_verdict))
        self._generic = generic

    @property
    def source(self) -> str:
        """Where the catalogue was read from (a path, or the package resource)."""
        return self._source

    @property
    def faults(self) -> Mapping[str, FaultEntry]:
        """The terminal's fault codes, by FaultCode name, in code order."""
        return self._faults

    @property
    def host_faults(self) -> Mapping[str, FaultEntry]:
        """The faults the host finds in the link itself (category communication), by key."""
        return self._host_faults

    def __iter__(self) -> Iterator[FaultEntry]:
        """Every entry: the terminal's codes in code order, then the host-side faults."""
        yield from self._faults.values()
        yield from self._host_faults.values()

    def __len__(self) -> int:
        return len(self._faults) + len(self._host_faults)

    def fault(self, code_or_name: int | str) -> FaultEntry:
        """The entry for a fault code (``0x0501``, ``FaultCode.paper_end``) or a name.

        A name is a FaultCode name (``paper_end``), a host-side fault key (``link_timeout``) or a
        code written as a number (``"0x0501"``). A 16-bit code the catalogue does not know gives
        a generic entry (``known`` false) saying so, filed by the code's high byte: a newer
        firmware's code must not crash a diagnosis. Raises :class:`KeyError` for ``none`` (0:
        not a fault) and for an unknown name, :class:`ValueError` for a number that is not a
        16-bit code.
        """
        if isinstance(code_or_name, bool):
            raise TypeError("a fault code is an int, a FaultCode or a name, not a bool")
        if isinstance(code_or_name, str):
            name = code_or_name.strip()
            entry = self._faults.get(name) or self._host_faults.get(name)
            if entry is not None:
                return entry
            try:
                number = int(name, 0)
            except ValueError:
                if name == FaultCode.none.name:
                    raise KeyError("fault code 'none' (0x0000) means no fault; it has no entry") from None
                raise KeyError(f"no fault named {name!r} in the catalogue") from None
            return self.fault(number)
        code = int(code_or_name)
        if not 0 <= code <= 0xFFFF:
            raise ValueError(f"fault codes are 16-bit; {code} is not one")
        if code == FaultCode.none:
            raise KeyError("fault code 0x0000 means no fault; it has no entry")
        entry = self._by_code.get(code)
        return entry if entry is not None else self._unknown(code)

    def _unknown(self, code: int) -> FaultEntry:
        high = code >> 8
        if high == _TRANSACTION_HIGH_BYTE:
            component = TRANSACTION
        else:
            try:
                component = Component(high).name
            except ValueError:
                component = UNKNOWN
        category = self._component_category.get(component, _UNKNOWN_COMPONENT_CATEGORY)
        code_text = f"0x{code:04X}"

        def fill(text: FaultText) -> FaultText:
            return FaultText(text.message.replace("{code}", code_text),
                             tuple(step.replace("{code}", code_text) for step in text.advice))

        g = self._generic
        return FaultEntry(key=f"unknown_{code_text}", code=code, component=component, category=category,
                          severity=g.severity, merchant_fixable=g.merchant_fixable,
                          repair_ticket=g.repair_ticket, zh_cn=fill(g.zh_cn), en=fill(g.en), known=False)

    def category_of_component(self, component: str | Component) -> Category:
        """The category a component's faults are filed under (the generic entry uses it)."""
        name = component.name if isinstance(component, Component) else component
        return self._component_category.get(name, _UNKNOWN_COMPONENT_CATEGORY)

    @property
    def groups(self) -> tuple[str, ...]:
        """The label groups: component, verdict, overall, category, severity, measurement, ..."""
        return tuple(self._labels)

    def keys(self, group: str) -> tuple[str, ...]:
        """The keys of one label group, in the data file's order."""
        return tuple(self._group(group))

    def label(self, group: str, key: str | enum.Enum, lang: str) -> str:
        """A short text: ``label("component", "magstripe", "zh")`` gives ``磁条读卡器``.

        ``key`` may be an enum member (``Component.magstripe``, ``Category.power``); its name
        is used. Raises :class:`KeyError` naming the group and key when there is no such label.
        """
        name = key.name if isinstance(key, enum.Enum) else key
        items = self._group(group)
        if name not in items:
            raise KeyError(f"no label {name!r} in group {group!r}")
        return items[name][normalize_language(lang)]

    def unit(self, measurement: str | Measurement, lang: str) -> str:
        """The unit a measurement is shown with, or ``""`` for codes, counts and addresses."""
        name = measurement.name if isinstance(measurement, Measurement) else measurement
        if name not in Measurement.__members__:
            raise KeyError(f"no measurement {name!r}")
        text = self._group("unit").get(name)
        return "" if text is None else text[normalize_language(lang)]

    def verdict_for(self, outcome: Outcome | str) -> str:
        """The component verdict (pass, warn, fail, skipped, error) a self-test outcome shows as."""
        name = outcome.name if isinstance(outcome, Outcome) else outcome
        try:
            return self._outcome_verdict[name]
        except KeyError:
            raise KeyError(f"no outcome {name!r}") from None

    def _group(self, group: str) -> Mapping[str, Mapping[Language, str]]:
        try:
            return self._labels[group]
        except KeyError:
            raise KeyError(f"no label group {group!r}; groups: {', '.join(self._labels)}") from None


# --------------------------------------------------------------------------------------------
# loading and checking
# --------------------------------------------------------------------------------------------


def _names(enum_type: type[CodeEnum]) -> tuple[str, ...]:
    return tuple(enum_type.__members__)


#: every label group and exactly the keys it must have ("unit" may hold a subset of its keys)
_LABEL_KEYS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType({
    "component": (*_names(Component), TRANSACTION, LINK, UNKNOWN),
    "verdict": VERDICTS,
    "overall": OVERALL_VERDICTS,
    "overall_detail": (*OVERALL_VERDICTS, "communication"),
    "completeness": ("ran", "ran_1", "none_ran", "not_tested", "partial", "event_log", "complete"),
    "not_tested_reason": ("needs_person", "not_fitted", "terminal_refused", "terminal_locked", "lost_to_restart",
                          "link_failed", "aborted"),
    "note": ("not_run_lost_to_restart", "not_run_link_failed", "lost", "not_run", "nothing", "crc_errors"),
    "console": ("answer_yes_no", "aborted"),
    "terminal_note": ("not_run", "also", "all_passed", "no_person", "not_confirmed", "swipe", "insert_card", "tap",
                      "test_page", "cutter", "pattern", "test_pattern", "backlight", "touch", "press_every_key",
                      "decode", "bearer", "ip", "dns", "host", "head_fault", "contact_fault", "field_fault",
                      "printer_offline", "no_panel", "no_sim", "no_ip", "dns_failed", "engine_fault"),
    "category": tuple(Category.__members__),
    "severity": _names(Severity),
    "measurement": _names(Measurement),
    "unit": _names(Measurement),
    "track_code": _names(TrackCode),
    "prompt": _names(Prompt),
    "plan": PLANS,
    "plan_detail": PLANS,
    "ticket": ("title", "materials_intro", "backup_first", "after_repair"),
    "ticket_material": ("owner_id", "proof_of_purchase", "model_serial", "fault_description",
                        "repair_payment", "invoice"),
    "ticket_field": ("model", "serial_number", "hardware_revision", "firmware_version",
                     "failed_components", "fault_descriptions"),
    "heading": ("device", "component", "verdict", "code", "category", "severity", "message", "advice",
                "measurements", "overall", "merchant_fixable", "repair_ticket"),
})
_PARTIAL_GROUPS: Final = frozenset({"unit"})
_TOP_LEVEL: Final = frozenset({"schema", "component_category", "outcome_verdict", "labels", "generic",
                               "faults", "host_faults"})
_SCHEMA: Final = 1
_FAULT_FIELDS: Final = frozenset({"code", "component", "category", "severity", "merchant_fixable",
                                  "repair_ticket", *LANGUAGES})
_HOST_FAULT_FIELDS: Final = _FAULT_FIELDS - {"code"}
_GENERIC_FIELDS: Final = frozenset({"severity", "merchant_fixable", "repair_ticket", *LANGUAGES})
_TEXT_FIELDS: Final = frozenset({"message", "advice"})
_KEY = re.compile(r"[a-z][a-z0-9_]*\Z")


class _Checker:
    """Reads the parsed TOML, raising CatalogueError('<file>: <entry>: <what is wrong>')."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> CatalogueError:
        return CatalogueError(f"{self.source}: {where}: {problem}")

    def table(self, value: object, where: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"must be a table, not {type(value).__name__}")
        return value

    def exact_keys(self, table: Mapping[str, Any], where: str, allowed: frozenset[str],
                   required: frozenset[str] | None = None) -> None:
        extra = sorted(set(table) - allowed)
        if extra:
            raise self.fail(where, f"unknown field {extra[0]!r} (known: {', '.join(sorted(allowed))})")
        missing = sorted((allowed if required is None else required) - set(table))
        if missing:
            raise self.fail(where, f"missing field {missing[0]!r}")

    def text(self, value: object, where: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, "must be a non-empty string")
        return value

    def flag(self, value: object, where: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(where, f"must be true or false, not {value!r}")
        return value

    def choice(self, value: object, where: str, choices: tuple[str, ...]) -> str:
        if not isinstance(value, str) or value not in choices:
            raise self.fail(where, f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    def fault_text(self, value: object, where: str) -> FaultText:
        table = self.table(value, where)
        self.exact_keys(table, where, _TEXT_FIELDS)
        message = self.text(table["message"], f"{where}.message")
        advice = table["advice"]
        if not isinstance(advice, list) or not advice:
            raise self.fail(f"{where}.advice", "must be a non-empty list of steps")
        steps = tuple(self.text(step, f"{where}.advice[{i}]") for i, step in enumerate(advice))
        return FaultText(message, steps)

    def entry(self, key: str, value: object, where: str, code: int | None, component: str) -> FaultEntry:
        table = self.table(value, where)
        self.exact_keys(table, where, _FAULT_FIELDS if code is not None else _HOST_FAULT_FIELDS)
        if code is not None:
            found = table["code"]
            if isinstance(found, bool) or found != code:
                raise self.fail(f"{where}.code", f"is {found!r} but FaultCode.{key} is 0x{code:04X}")
        if table["component"] != component:
            raise self.fail(f"{where}.component", f"must be {component!r} (from the code), not {table['component']!r}")
        return FaultEntry(
            key=key,
            code=code,
            component=component,
            category=Category(self.choice(table["category"], f"{where}.category", tuple(Category))),
            severity=Severity[self.choice(table["severity"], f"{where}.severity", _names(Severity))],
            merchant_fixable=self.flag(table["merchant_fixable"], f"{where}.merchant_fixable"),
            repair_ticket=self.flag(table["repair_ticket"], f"{where}.repair_ticket"),
            zh_cn=self.fault_text(table["zh-CN"], f"{where}.zh-CN"),
            en=self.fault_text(table["en"], f"{where}.en"),
        )

    def catalogue(self, data: Mapping[str, Any]) -> Catalogue:
        self.exact_keys(data, "top level", _TOP_LEVEL)
        if data["schema"] != _SCHEMA:
            raise self.fail("schema", f"this version reads schema {_SCHEMA}, not {data['schema']!r}")

        categories = self.table(data["component_category"], "component_category")
        wanted = frozenset(_LABEL_KEYS["component"]) - {UNKNOWN}
        self.exact_keys(categories, "component_category", wanted)
        component_category = {
            name: Category(self.choice(value, f"component_category.{name}", tuple(Category)))
            for name, value in categories.items()}

        outcomes = self.table(data["outcome_verdict"], "outcome_verdict")
        self.exact_keys(outcomes, "outcome_verdict", frozenset(_names(Outcome)))
        outcome_verdict = {name: self.choice(value, f"outcome_verdict.{name}", VERDICTS)
                           for name, value in outcomes.items()}

        labels = self.labels(self.table(data["labels"], "labels"))

        generic_group = self.table(data["generic"], "generic")
        self.exact_keys(generic_group, "generic", frozenset({"unknown_fault"}))
        generic_table = self.table(generic_group["unknown_fault"], "generic.unknown_fault")
        self.exact_keys(generic_table, "generic.unknown_fault", _GENERIC_FIELDS)
        generic = FaultEntry(
            key="unknown", code=None, component=UNKNOWN, category=_UNKNOWN_COMPONENT_CATEGORY,
            severity=Severity[self.choice(generic_table["severity"], "generic.unknown_fault.severity",
                                          _names(Severity))],
            merchant_fixable=self.flag(generic_table["merchant_fixable"], "generic.unknown_fault.merchant_fixable"),
            repair_ticket=self.flag(generic_table["repair_ticket"], "generic.unknown_fault.repair_ticket"),
            zh_cn=self.fault_text(generic_table["zh-CN"], "generic.unknown_fault.zh-CN"),
            en=self.fault_text(generic_table["en"], "generic.unknown_fault.en"),
            known=False)
        for lang, text in (("zh-CN", generic.zh_cn), ("en", generic.en)):
            if "{code}" not in text.message:
                raise self.fail(f"generic.unknown_fault.{lang}.message", "must show the code: put {code} in it")

        fault_tables = self.table(data["faults"], "faults")
        codes = [c for c in FaultCode if c is not FaultCode.none]
        self.exact_keys(fault_tables, "faults", frozenset(c.name for c in codes))
        faults: dict[str, FaultEntry] = {}
        for code in codes:  # code order, whatever order the file has
            high = code >> 8
            component = TRANSACTION if high == _TRANSACTION_HIGH_BYTE else Component(high).name
            faults[code.name] = self.entry(code.name, fault_tables[code.name], f"faults.{code.name}",
                                           int(code), component)

        host_tables = self.table(data["host_faults"], "host_faults")
        host_faults: dict[str, FaultEntry] = {}
        for key, value in host_tables.items():
            where = f"host_faults.{key}"
            if not _KEY.match(key) or key in fault_tables:
                raise self.fail(where, "a host-side fault needs its own lower_case key, not a FaultCode name")
            host_faults[key] = self.entry(key, value, where, None, LINK)
            if host_faults[key].category is not Category.communication:
                # the link failing is never a component's fault (docs/diagnostics.md, "Verdicts")
                raise self.fail(f"{where}.category", "a host-side link fault must be 'communication'")

        return Catalogue(self.source, faults, host_faults, labels, component_category, outcome_verdict, generic)

    def labels(self, groups: Mapping[str, Any]) -> dict[str, dict[str, dict[Language, str]]]:
        self.exact_keys(groups, "labels", frozenset(_LABEL_KEYS))
        out: dict[str, dict[str, dict[Language, str]]] = {}
        for group, wanted in _LABEL_KEYS.items():
            items = self.table(groups[group], f"labels.{group}")
            required = frozenset() if group in _PARTIAL_GROUPS else frozenset(wanted)
            self.exact_keys(items, f"labels.{group}", frozenset(wanted), required)
            out[group] = self.label_group(items, f"labels.{group}")
        return out

    def label_group(self, items: Mapping[str, Any], where: str) -> dict[str, dict[Language, str]]:
        """One ``[labels.<group>]`` table: every key a table of exactly the languages, none empty."""
        out: dict[str, dict[Language, str]] = {}
        for key, value in items.items():
            pair = self.table(value, f"{where}.{key}")
            self.exact_keys(pair, f"{where}.{key}", frozenset(LANGUAGES))
            out[key] = {lang: self.text(pair[lang], f"{where}.{key}.{lang}") for lang in LANGUAGES}
        return out

    def phrases(self, data: Mapping[str, Any]) -> Phrases:
        self.exact_keys(data, "top level", frozenset({"schema", "labels"}))
        if data["schema"] != PHRASES_SCHEMA:
            raise self.fail("schema", f"this version reads schema {PHRASES_SCHEMA}, not {data['schema']!r}")
        groups = self.table(data["labels"], "labels")
        if not groups:
            raise self.fail("labels", "holds no group")
        out = {}
        for group, items in groups.items():
            table = self.table(items, f"labels.{group}")
            if not table:
                raise self.fail(f"labels.{group}", "holds no phrase")
            out[group] = self.label_group(table, f"labels.{group}")
        return Phrases(self.source, out)


def _toml(raw: bytes, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise CatalogueError(f"{source}: not UTF-8 text ({exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(f"{source}: not valid TOML: {exc}") from exc


def _parse(raw: bytes, source: str) -> Catalogue:
    return _Checker(source).catalogue(_toml(raw, source))


@functools.lru_cache(maxsize=1)
def _packaged() -> Catalogue:
    resource = resources.files(__package__ or "pos_sim.diagnostics").joinpath(DATA_FILE)
    try:
        raw = resource.read_bytes()
    except OSError as exc:
        raise CatalogueError(f"{resource}: cannot read the fault catalogue ({exc})") from exc
    return _parse(raw, str(resource))


def load_catalogue(path: str | os.PathLike[str] | None = None) -> Catalogue:
    """The fault catalogue: the packaged one (read once, then cached), or the file at ``path``.

    Raises :class:`CatalogueError` naming the file and the entry when the data is missing,
    malformed, incomplete or disagrees with :mod:`protocols.pos.codes`.
    """
    if path is None:
        return _packaged()
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise CatalogueError(f"{file}: cannot read the fault catalogue ({exc.strerror or exc})") from exc
    return _parse(raw, str(file))


# --------------------------------------------------------------------------------------------
# phrase books: the same [labels.*] format for the TUI's and the reports' own words
# --------------------------------------------------------------------------------------------

#: the schema a phrase book declares (``schema = 1`` at its top)
PHRASES_SCHEMA: Final = 1


class Phrases:
    """A phrase book: groups of ``key -> {zh-CN, en}``, in the data file's order.

    Build it with :func:`load_phrases`; it is immutable and safe to share between threads.
    """

    def __init__(self, source: str, groups: Mapping[str, Mapping[str, Mapping[Language, str]]]) -> None:
        self._source = source
        self._groups = MappingProxyType(
            {g: MappingProxyType({k: MappingProxyType(dict(v)) for k, v in items.items()})
             for g, items in groups.items()})

    @property
    def source(self) -> str:
        """Where the phrases were read from."""
        return self._source

    @property
    def groups(self) -> tuple[str, ...]:
        """The groups, in the file's order."""
        return tuple(self._groups)

    def pairs(self, group: str) -> Mapping[str, Mapping[Language, str]]:
        """Every phrase of ``group``: key -> {language: text}, in the file's order."""
        try:
            return self._groups[group]
        except KeyError:
            raise KeyError(f"{self._source}: no group {group!r}; groups: {', '.join(self._groups)}") from None

    def text(self, group: str, key: str, lang: str, **values: object) -> str:
        """The phrase ``key`` of ``group`` in ``lang`` (any spelling :func:`normalize_language`
        takes), with its ``{name}`` fields filled in from ``values``."""
        items = self.pairs(group)
        if key not in items:
            raise KeyError(f"{self._source}: no phrase {key!r} in group {group!r}")
        text = items[key][normalize_language(lang)]
        return text.format(**values) if values else text


@functools.cache
def _packaged_phrases(package: str, name: str) -> Phrases:
    resource = resources.files(package).joinpath(name)
    try:
        raw = resource.read_bytes()
    except OSError as exc:
        raise CatalogueError(f"{resource}: cannot read the phrases ({exc})") from exc
    return _Checker(str(resource)).phrases(_toml(raw, str(resource)))


def load_phrases(package: str, name: str, path: str | os.PathLike[str] | None = None) -> Phrases:
    """The phrase book ``name`` of ``package`` (read once, then cached), or the file at ``path``.

    Raises :class:`CatalogueError` naming the file and the entry when a phrase lacks a language,
    has an empty text or a field that is not a language, or the file is not a phrase book.
    """
    if path is None:
        return _packaged_phrases(package, name)
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise CatalogueError(f"{file}: cannot read the phrases ({exc.strerror or exc})") from exc
    return _Checker(str(file)).phrases(_toml(raw, str(file)))
