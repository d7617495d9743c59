"""Every note kind renders in English and Chinese from its one declaration (rag/notes.py)."""

from __future__ import annotations

import re
import string
import typing
from dataclasses import fields

import pytest

from rag.notes import Injection, LLMFallback, NoFit, Note, RemovedLinks, all_kinds, render

SAMPLE = {str: "x", float: 0.5, int: 2, tuple[str, ...]: ("a", "b")}


def _example(kind: type[Note]) -> Note:
    hints = typing.get_type_hints(kind)
    return kind(**{f.name: SAMPLE[hints[f.name]] for f in fields(kind)})


def test_there_are_note_kinds_and_each_has_both_texts():
    kinds = all_kinds()
    assert len(kinds) >= 20
    for kind in kinds:
        assert "en" in vars(kind) and "zh" in vars(kind), f"{kind.__name__} must declare both texts"


@pytest.mark.parametrize("kind", all_kinds(), ids=lambda k: k.__name__)
def test_each_kind_renders_in_both_languages_with_only_its_own_values(kind):
    note = _example(kind)
    names = set(note.values())
    for template in (kind.en, kind.zh):
        used = {f for _, f, _, _ in string.Formatter().parse(template) if f}
        assert used <= names, f"{kind.__name__}: {used - names} is not a value of the note"
    en, zh = note.text("en"), note.text("zh")
    assert en and zh and en != zh and str(note) == en
    # The Chinese text is Chinese: what is left of it once the values are taken out has no English words.
    bare = zh
    for value in note.values().values():
        for part in (value if isinstance(value, tuple) else (value,)):
            bare = bare.replace(str(part), "")
    assert re.search(r"[\u4e00-\u9fff]", bare) and not re.search(r"[A-Za-z]{3,}", bare), zh


def test_a_kind_without_a_translation_fails_here():
    class Untranslated(Note):
        en = "only English"

    with pytest.raises(AttributeError):
        Untranslated().text("zh")


def test_notes_read_as_their_values_and_render_together():
    assert NoFit(0.291, 0.562).text() == "no past case fits (match 0.29 < 0.56): asking the customer for details"
    assert NoFit(0.291, 0.562).text("zh") == "没有与问题相符的历史案例（匹配度 0.29，低于 0.56），已请客户补充信息"
    assert Injection("customer_message", "p").text("zh") == "疑似提示词注入（客户消息）：p"
    assert render([LLMFallback("HTTP 500"), RemovedLinks(("https://a.example",))], "zh") == [
        "大模型调用失败，已改用离线草稿（HTTP 500）", "已删除不在案例库或白名单中的链接：https://a.example"]
    assert LLMFallback("x") == LLMFallback("x") and isinstance(LLMFallback("x"), Note)
