"""The fault catalogue: complete for the protocol's codes, in both languages, consistent, strict."""

from __future__ import annotations

import contextlib
import dataclasses
import re
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pos_sim.diagnostics.catalogue import (
    LANGUAGES,
    OVERALL_VERDICTS,
    VERDICTS,
    Catalogue,
    CatalogueError,
    Category,
    FaultEntry,
    UnknownLanguage,
    default_language,
    load_catalogue,
    normalize_language,
)
from protocols.pos.codes import (
    Component,
    FaultCode,
    Measurement,
    Outcome,
    Prompt,
    SelfTestPlan,
    Severity,
    TrackCode,
)

CAT = load_catalogue()
SHIPPED = resources.files("pos_sim.diagnostics").joinpath("catalogue.toml").read_text(encoding="utf-8")
CODES = [c for c in FaultCode if c is not FaultCode.none]
ENTRIES = list(CAT)
HOST_KEYS = ("link_timeout", "link_disconnected", "link_garbage", "link_echo", "link_crc_errors",
             "link_refused", "selftest_lost")

_IDEOGRAPH = re.compile(r"[\u4e00-\u9fff]")
#: CJK ideographs, CJK punctuation and full-width forms: none of it belongs in English text
_ANY_CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")
#: half-width punctuation that Chinese text writes full-width (，；：？！（）)
_ASCII_PUNCT = re.compile(r"[,;:?!()]")
#: common traditional characters whose simplified forms the catalogue uses
_TRADITIONAL = set("這們個會時機請檢測試電網與為過無後開關號頭點條紙碼鍵終錯誤讀聯線連設認確換維報態裝")


def _texts(entry: FaultEntry, lang: str) -> list[str]:
    return [entry.message(lang), *entry.advice(lang)]


def _assert_chinese(text: str, where: str) -> None:
    assert _IDEOGRAPH.search(text), f"{where}: zh-CN text has no Chinese: {text!r}"
    assert not _ASCII_PUNCT.search(text), f"{where}: half-width punctuation in Chinese text: {text!r}"
    traditional = _TRADITIONAL & set(text)
    assert not traditional, f"{where}: traditional characters {traditional} in {text!r}"


def _assert_english(text: str, where: str) -> None:
    assert text.strip(), f"{where}: empty English text"
    assert not _ANY_CJK.search(text), f"{where}: Chinese characters in English text: {text!r}"


# --- completeness ---------------------------------------------------------------------------


def test_every_fault_code_but_none_has_its_entry() -> None:
    assert set(CAT.faults) == {c.name for c in CODES}
    for code in CODES:
        entry = CAT.faults[code.name]
        assert entry.known
        assert entry.code == code.value and entry.fault_code is code
        assert CAT.fault(code) is entry
        assert CAT.fault(int(code)) is entry
        assert CAT.fault(code.name) is entry
        assert CAT.fault(f"0x{code.value:04X}") is entry
        assert entry.code_text == f"0x{code.value:04X}"


def test_entries_come_in_code_order() -> None:
    codes = [e.code for e in CAT.faults.values()]
    assert codes == sorted(c.value for c in CODES)


def test_component_follows_the_codes_high_byte() -> None:
    for code in CODES:
        entry = CAT.fault(code)
        if code >> 8 == 0x0C:
            assert entry.component == "transaction" and entry.wire_component is None
        else:
            assert entry.wire_component is Component(code >> 8)
            assert entry.component == Component(code >> 8).name


def test_host_side_link_faults_are_there() -> None:
    assert set(HOST_KEYS) <= set(CAT.host_faults)
    for key in HOST_KEYS:
        entry = CAT.fault(key)
        assert entry is CAT.host_faults[key]
        assert entry.code is None and entry.fault_code is None and entry.code_text == key
        assert entry.component == "link" and entry.wire_component is None
    assert len(CAT) == len(CODES) + len(CAT.host_faults)


def test_none_is_not_a_fault() -> None:
    with pytest.raises(KeyError, match="no fault"):
        CAT.fault(FaultCode.none)
    with pytest.raises(KeyError, match="no fault"):
        CAT.fault("none")


# --- texts ----------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.key)
def test_fault_texts_exist_in_both_languages(entry: FaultEntry) -> None:
    for lang in LANGUAGES:
        assert entry.message(lang).strip()
        assert 1 <= len(entry.advice(lang)) <= 5, "advice is a few concrete steps"
        assert all(step.strip() for step in entry.advice(lang))
    assert len(entry.advice("zh-CN")) == len(entry.advice("en")), "both languages give the same steps"
    for text in _texts(entry, "zh-CN"):
        _assert_chinese(text, entry.key)
    for text in _texts(entry, "en"):
        _assert_english(text, entry.key)


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.key)
def test_messages_are_short(entry: FaultEntry) -> None:
    assert len(entry.message("zh-CN")) <= 60
    assert len(entry.message("en")) <= 200


@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_two_faults_share_a_message(lang: str) -> None:
    messages = [e.message(lang) for e in ENTRIES]
    assert len(set(messages)) == len(messages)


def test_text_accepts_every_spelling_of_a_language() -> None:
    entry = CAT.fault(FaultCode.paper_end)
    assert entry.text("zh") == entry.text("zh_CN.UTF-8") == entry.text("zh-CN") == entry.zh_cn
    assert entry.text("en_US.UTF-8") == entry.text("EN") == entry.en
    assert entry.message("zh") != entry.message("en")
    with pytest.raises(UnknownLanguage):
        entry.text("fr")


def test_entries_are_frozen() -> None:
    entry = CAT.fault(FaultCode.paper_end)
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.severity = Severity.info  # type: ignore[misc]


# --- labels ---------------------------------------------------------------------------------

LABEL_CASES = [
    *(("component", c.name) for c in Component),
    ("component", "transaction"), ("component", "link"), ("component", "unknown"),
    *(("verdict", v) for v in VERDICTS),
    *(("overall", v) for v in OVERALL_VERDICTS),
    *(("overall_detail", v) for v in OVERALL_VERDICTS),
    *(("category", c.value) for c in Category),
    *(("severity", s.name) for s in Severity),
    *(("measurement", m.name) for m in Measurement),
    *(("track_code", t.name) for t in TrackCode),
    *(("prompt", p.name) for p in Prompt),
    *(("plan", p) for p in ("full", "quick", "drop")),
    *(("plan_detail", p) for p in ("full", "quick", "drop")),
    *(("ticket", k) for k in ("title", "materials_intro", "backup_first", "after_repair")),
    *(("ticket_material", k) for k in ("owner_id", "proof_of_purchase", "model_serial", "fault_description",
                                       "repair_payment", "invoice")),
]


@pytest.mark.parametrize(("group", "key"), LABEL_CASES, ids=str)
def test_label_exists_in_both_languages(group: str, key: str) -> None:
    _assert_chinese(CAT.label(group, key, "zh-CN"), f"{group}.{key}")
    _assert_english(CAT.label(group, key, "en"), f"{group}.{key}")


def test_every_label_in_the_file_is_in_both_languages() -> None:
    for group in CAT.groups:
        for key in CAT.keys(group):
            zh, en = CAT.label(group, key, "zh"), CAT.label(group, key, "en")
            _assert_english(en, f"{group}.{key}")
            if group == "unit":  # %, mV, dBm are written the same way in Chinese
                assert zh.strip()
            else:
                _assert_chinese(zh, f"{group}.{key}")


def test_labels_take_enum_members_and_any_language_spelling() -> None:
    assert CAT.label("component", Component.magstripe, "zh") == "磁条读卡器"
    assert CAT.label("component", "magstripe", "en_GB.UTF-8") == "Magnetic stripe reader"
    assert CAT.label("prompt", Prompt.swipe_card, "zh_CN") == "请刷磁条测试卡"
    assert CAT.label("category", Category.power, "en") == "Power"
    with pytest.raises(KeyError, match="group 'component'"):
        CAT.label("component", "toaster", "en")
    with pytest.raises(KeyError, match="no label group"):
        CAT.label("colours", "red", "en")


def test_every_outcome_shows_as_a_verdict_with_labels() -> None:
    expected = {Outcome.passed: "pass", Outcome.warning: "warn", Outcome.failed: "fail",
                Outcome.skipped: "skipped", Outcome.error: "error"}
    for outcome, verdict in expected.items():
        assert CAT.verdict_for(outcome) == verdict
    # an aborted test says nothing about the part: never a pass, never a failure
    assert CAT.verdict_for(Outcome.aborted) not in {"pass", "fail"}
    for outcome in Outcome:
        verdict = CAT.verdict_for(outcome)
        assert verdict in VERDICTS
        _assert_chinese(CAT.label("verdict", verdict, "zh"), verdict)
        _assert_english(CAT.label("verdict", verdict, "en"), verdict)


def test_the_wire_plans_are_among_the_labelled_plans() -> None:
    assert {p.name for p in SelfTestPlan} <= set(CAT.keys("plan"))


def test_the_drop_plan_checks_tamper_first() -> None:
    zh, en = CAT.label("plan_detail", "drop", "zh"), CAT.label("plan_detail", "drop", "en")
    assert zh.index("防拆") < zh.index("屏幕")
    assert en.index("tamper") < en.index("screen")


def test_units() -> None:
    assert CAT.unit(Measurement.voltage_mv, "en") == "mV"
    assert CAT.unit("pages_printed", "zh") == "张"
    assert CAT.unit(Measurement.track2, "zh") == "", "a track result is a code, not a quantity"
    assert set(CAT.keys("unit")) <= {m.name for m in Measurement}
    with pytest.raises(KeyError):
        CAT.unit("speed_of_light", "en")


def test_the_repair_ticket_block_reminds_to_back_up_first() -> None:
    assert "备份交易记录" in CAT.label("ticket", "backup_first", "zh")
    assert "Back up the transaction records" in CAT.label("ticket", "backup_first", "en")
    assert len(CAT.keys("ticket_material")) == 6


# --- consistency rules ----------------------------------------------------------------------


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.key)
def test_consistency_rules(entry: FaultEntry) -> None:
    assert isinstance(entry.category, Category) and isinstance(entry.severity, Severity)
    # an on-the-spot fix and an after-sales repair exclude each other
    assert not (entry.merchant_fixable and entry.repair_ticket)
    # "critical" means the terminal cannot take payments whatever the merchant does
    if entry.severity is Severity.critical:
        assert not entry.merchant_fixable
    # a record for information never sends a terminal to repair
    if entry.severity is Severity.info:
        assert not entry.repair_ticket and not entry.merchant_fixable
    # every fault is filed under its component's category
    assert entry.category is CAT.category_of_component(entry.component)
    if entry.component == "security":
        assert entry.category is Category.security and not entry.merchant_fixable
    if entry.category is Category.transaction:
        assert entry.component == "transaction" and not entry.repair_ticket
    # a failing link is communication, never a component's fault: nothing to fix, nothing to repair
    assert (entry.category is Category.communication) == (entry.component == "link") == (entry.code is None)
    if entry.category is Category.communication:
        assert not entry.merchant_fixable and not entry.repair_ticket
    # broken parts are never the merchant's to fix; only the printer's paper and cover are
    if entry.category is Category.hardware and entry.merchant_fixable:
        assert entry.component == "printer"
    # the advice ends with the escalation: a repair ticket is the last step, not the first
    if entry.repair_ticket:
        assert re.search("报修|维修", entry.advice("zh")[-1])
        assert "repair" in entry.advice("en")[-1]
        assert len(entry.advice("en")) >= 2 or entry.severity is Severity.critical


def test_tamper_locks_and_needs_an_authorised_repair() -> None:
    for code in (FaultCode.tamper_tripped, FaultCode.keys_erased):
        entry = CAT.fault(code)
        assert entry.severity is Severity.critical
        assert entry.category is Category.security
        assert entry.repair_ticket and not entry.merchant_fixable


def test_the_merchant_fixes_paper_sim_signal_and_charging() -> None:
    for code in (FaultCode.paper_end, FaultCode.paper_near_end, FaultCode.cover_open, FaultCode.no_sim,
                 FaultCode.weak_signal, FaultCode.battery_low, FaultCode.not_charging):
        assert CAT.fault(code).merchant_fixable, code.name
    for code in (FaultCode.panel_damaged, FaultCode.msr_head_fault, FaultCode.battery_damaged):
        assert CAT.fault(code).repair_ticket, code.name


def test_categories_as_a_technician_files_them() -> None:
    expected = {
        FaultCode.firmware_integrity: Category.software, FaultCode.out_of_memory: Category.software,
        FaultCode.watchdog_reset: Category.software, FaultCode.msr_no_data: Category.hardware,
        FaultCode.panel_damaged: Category.hardware, FaultCode.key_stuck: Category.hardware,
        FaultCode.paper_end: Category.hardware, FaultCode.weak_signal: Category.network,
        FaultCode.no_sim: Category.network, FaultCode.battery_low: Category.power,
        FaultCode.tamper_tripped: Category.security, FaultCode.txn_declined: Category.transaction,
    }
    for code, category in expected.items():
        assert CAT.fault(code).category is category, code.name


# --- unknown codes --------------------------------------------------------------------------


@given(st.integers(min_value=1, max_value=0xFFFF))
def test_any_16_bit_code_gives_an_entry(code: int) -> None:
    entry = CAT.fault(code)
    assert entry.code == code
    assert entry.known == (code in FaultCode._value2member_map_)
    if not entry.known:
        assert f"0x{code:04X}" in entry.message("zh") and f"0x{code:04X}" in entry.message("en")
        assert "{code}" not in entry.message("en")
        assert entry.category is CAT.category_of_component(entry.component)
        assert not entry.merchant_fixable and not entry.repair_ticket
        assert entry.fault_code is None


@pytest.mark.parametrize(("code", "component", "category"), [
    (0x0199, "system", Category.software),
    (0x0299, "magstripe", Category.hardware),
    (0x0899, "network", Category.network),
    (0x0999, "power", Category.power),
    (0x0B99, "security", Category.security),
    (0x0C99, "transaction", Category.transaction),
    (0x0D01, "unknown", Category.hardware),
    (0x0042, "unknown", Category.hardware),
])
def test_unknown_code_is_filed_by_its_high_byte(code: int, component: str, category: Category) -> None:
    entry = CAT.fault(code)
    assert not entry.known
    assert entry.component == component and entry.category is category
    assert entry.message("en") == f"Unknown fault code 0x{code:04X}: this tool does not know it yet."
    _assert_chinese(entry.message("zh"), "generic")
    assert CAT.label("component", entry.component, "zh")


def test_bad_lookups_raise() -> None:
    with pytest.raises(KeyError, match="no fault named 'paper_jam'"):
        CAT.fault("paper_jam")
    for number in (-1, 0x10000):
        with pytest.raises(ValueError, match="16-bit"):
            CAT.fault(number)
    with pytest.raises(TypeError):
        CAT.fault(True)


# --- languages ------------------------------------------------------------------------------


@pytest.mark.parametrize(("given_", "expected"), [
    ("zh", "zh-CN"), ("zh-CN", "zh-CN"), ("zh_CN", "zh-CN"), ("zh_CN.UTF-8", "zh-CN"), ("ZH-cn", "zh-CN"),
    ("zh_CN.GB18030", "zh-CN"), ("zh-Hans", "zh-CN"), ("zh_TW.UTF-8", "zh-CN"), ("cn", "zh-CN"),
    ("en", "en"), ("en_US.UTF-8", "en"), ("en-GB", "en"), ("EN", "en"), (" en ", "en"), ("en_US@euro", "en"),
])
def test_language_spellings(given_: str, expected: str) -> None:
    assert normalize_language(given_) == expected


@pytest.mark.parametrize("bad", ["fr", "de_DE.UTF-8", "", "C", "POSIX", "english", "zhongwen"])
def test_unknown_languages_are_refused(bad: str) -> None:
    with pytest.raises(UnknownLanguage, match="zh"):
        normalize_language(bad)
    assert issubclass(UnknownLanguage, ValueError)


@given(st.text(max_size=20))
def test_normalize_language_never_raises_anything_else(value: str) -> None:
    with contextlib.suppress(UnknownLanguage):
        assert normalize_language(value) in LANGUAGES


@pytest.mark.parametrize(("environ", "expected"), [
    ({}, "en"),
    ({"LANG": "zh_CN.UTF-8"}, "zh-CN"),
    ({"LANG": "en_US.UTF-8"}, "en"),
    ({"LANG": "fr_FR.UTF-8"}, "en"),
    ({"LANG": "C.UTF-8"}, "en"),
    ({"LC_ALL": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"}, "zh-CN"),
    ({"LC_ALL": "en_US.UTF-8", "LANG": "zh_CN.UTF-8"}, "en"),
    ({"LC_MESSAGES": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"}, "zh-CN"),
    ({"LC_ALL": "", "LC_MESSAGES": "", "LANG": "zh_CN.UTF-8"}, "zh-CN"),
    ({"LANGUAGE": "zh_CN:en", "LANG": "en_US.UTF-8"}, "zh-CN"),
    ({"LANGUAGE": "fr:en", "LANG": "zh_CN.UTF-8"}, "en"),
    ({"LANGUAGE": "fr", "LANG": "zh_CN.UTF-8"}, "zh-CN"),
    ({"LANGUAGE": "zh_CN", "LANG": "C"}, "en"),
    ({"LANGUAGE": "zh_CN"}, "zh-CN"),
])
def test_default_language_from_the_environment(environ: dict[str, str], expected: str) -> None:
    assert default_language(environ) == expected


def test_default_language_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LC_ALL", "LC_MESSAGES", "LANGUAGE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    assert default_language() == "zh-CN"
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    assert default_language() == "en"


# --- loading --------------------------------------------------------------------------------


def test_packaged_catalogue_is_read_once() -> None:
    assert load_catalogue() is load_catalogue()
    assert isinstance(CAT, Catalogue)
    assert resources.files("pos_sim.diagnostics").joinpath("catalogue.toml").is_file()


def test_loading_from_a_path_gives_the_same_catalogue(tmp_path: Path) -> None:
    path = tmp_path / "catalogue.toml"
    path.write_text(SHIPPED, encoding="utf-8")
    other = load_catalogue(path)
    assert other is not CAT and other.source == str(path)
    assert dict(other.faults) == dict(CAT.faults)
    assert dict(other.host_faults) == dict(CAT.host_faults)
    assert [other.label(g, k, "zh") for g in CAT.groups for k in CAT.keys(g)] == \
        [CAT.label(g, k, "zh") for g in CAT.groups for k in CAT.keys(g)]


def _section_edit(section: str, old: str, new: str) -> str:
    """The shipped file with ``old`` replaced by ``new`` once, inside the table ``[section]``."""
    start = SHIPPED.index(f"[{section}]\n")
    end = SHIPPED.find("\n[", start + 1)
    end = len(SHIPPED) if end == -1 else end
    body = SHIPPED[start:end]
    assert old in body, f"test is stale: {old!r} not in [{section}]"
    return SHIPPED[:start] + body.replace(old, new, 1) + SHIPPED[end:]


def _section_sub(section: str, pattern: str, repl: str) -> str:
    """The shipped file with the regular expression ``pattern`` replaced once inside ``[section]``."""
    start = SHIPPED.index(f"[{section}]\n")
    end = SHIPPED.index("\n[", start + 1)
    body, count = re.subn(pattern, repl, SHIPPED[start:end], count=1, flags=re.DOTALL)
    assert count == 1, f"test is stale: {pattern!r} not in [{section}]"
    return SHIPPED[:start] + body + SHIPPED[end:]


def _without_section(section: str) -> str:
    start = SHIPPED.index(f"[{section}]\n")
    end = SHIPPED.index("\n[", start + 1)
    return SHIPPED[:start] + SHIPPED[end + 1:]


MALFORMED = [
    pytest.param(_section_edit("faults.paper_end", 'severity = "error"', 'severity = "fatal"'),
                 "faults.paper_end.severity", id="bad-severity"),
    pytest.param(_section_edit("faults.paper_end", 'category = "hardware"', 'category = "consumable"'),
                 "faults.paper_end.category", id="bad-category"),
    pytest.param(_section_edit("faults.paper_end", "code = 0x0501", "code = 0x0502"),
                 "faults.paper_end.code", id="wrong-code"),
    pytest.param(_section_edit("faults.paper_end", 'component = "printer"', 'component = "screen"'),
                 "faults.paper_end.component", id="wrong-component"),
    pytest.param(_section_edit("faults.paper_end", "merchant_fixable = true", 'merchant_fixable = "yes"'),
                 "faults.paper_end.merchant_fixable", id="flag-not-bool"),
    pytest.param(_section_edit("faults.paper_end", "merchant_fixable", "merchant_fixible"),
                 "faults.paper_end: unknown field 'merchant_fixible'", id="misspelt-field"),
    pytest.param(_section_edit("faults.paper_end", 'zh-CN.message = "打印纸用完了，打不出小票。"\n', ""),
                 "faults.paper_end.zh-CN: missing field 'message'", id="missing-message"),
    pytest.param(_section_edit("faults.paper_end", 'en.message = "The printer is out of paper, so no receipts '
                                                   'can be printed."', 'en.message = "  "'),
                 "faults.paper_end.en.message", id="blank-message"),
    pytest.param(_section_sub("faults.paper_near_end", r"en\.advice = \[.*?\]", "en.advice = []"),
                 "faults.paper_near_end.en.advice: must be a non-empty list", id="empty-advice"),
    pytest.param(_section_sub("faults.paper_near_end", r"(en\.advice = \[\n)", r'\1    "",\n'),
                 "faults.paper_near_end.en.advice[0]", id="blank-step"),
    pytest.param(_without_section("faults.cover_open"), "faults: missing field 'cover_open'", id="missing-entry"),
    pytest.param(SHIPPED + '\n[faults.paper_jam]\ncode = 0x0508\n', "faults: unknown field 'paper_jam'",
                 id="entry-for-no-code"),
    pytest.param(_section_edit("host_faults.link_timeout", 'category = "communication"', 'category = "hardware"'),
                 "host_faults.link_timeout.category", id="link-fault-blames-hardware"),
    pytest.param(_section_edit("labels.component", 'magstripe = { zh-CN = "磁条读卡器", en = "Magnetic stripe '
                                                   'reader" }', 'magstripe = { zh-CN = "磁条读卡器" }'),
                 "labels.component.magstripe: missing field 'en'", id="label-missing-language"),
    pytest.param(_section_edit("labels.prompt", "swipe_card = {", 'wave_card = { zh-CN = "挥卡", en = "Wave" }\n'
                                                                  "swipe_card = {"),
                 "labels.prompt: unknown field 'wave_card'", id="label-for-no-prompt"),
    pytest.param(_section_edit("generic.unknown_fault", "未知的故障代码 {code}，", "未知的故障代码，"),
                 "generic.unknown_fault.zh-CN.message", id="generic-without-code"),
    pytest.param(_section_edit("outcome_verdict", 'aborted = "skipped"', 'aborted = "maybe"'),
                 "outcome_verdict.aborted", id="bad-verdict"),
    pytest.param(SHIPPED.replace("schema = 1", "schema = 2", 1), "schema", id="future-schema"),
    pytest.param(SHIPPED.replace('[faults.paper_end]\n', '[faults.paper_end\n', 1), "not valid TOML",
                 id="toml-syntax"),
]


@pytest.mark.parametrize(("text", "names"), MALFORMED)
def test_a_malformed_file_names_the_file_and_the_entry(tmp_path: Path, text: str, names: str) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogueError) as info:
        load_catalogue(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert names in message


def test_a_missing_or_binary_file_is_a_catalogue_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match=r"nowhere\.toml"):
        load_catalogue(tmp_path / "nowhere.toml")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(CatalogueError, match=r"binary\.toml: not UTF-8"):
        load_catalogue(binary)
