"""Unlabelled personal names in running text (rag/text/person_names.py) and their redaction (rag/corpus/deidentify.py).

The labelled table (tests/data/person_names.jsonl, 40 support sentences, 41 names) measures recall; the
corpus, whose dialogues the dataset already de-identified, measures false positives.
"""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.corpus.deidentify import deidentify
from rag.evaluation.name_detection import score_table
from rag.corpus.parse import parse_paths
from rag.text.person_names import COMPOUND_SURNAMES, OWN_WORDS, SURNAMES, find_person_names
from rag.settings import PROJECT_ROOT


def _table(name):
    return [json.loads(line) for line in (PROJECT_ROOT / "tests" / "data" / name).read_text("utf-8").splitlines()]


# person_names.jsonl was written first and the detector tuned on it; person_names_heldout.jsonl was
# written after, measured once (recall 0.60), then two fixes were made for what it showed (0.70).
TABLE = _table("person_names.jsonl") + _table("person_names_heldout.jsonl")


def test_the_table_is_big_enough_and_each_name_is_in_its_sentence():
    assert len(TABLE) >= 60
    for row in TABLE:
        assert row["names"] and all(n in row["text"] for n in row["names"]), row


def test_names_in_running_text_are_found_on_the_labelled_table():
    score = score_table(TABLE)
    assert score.extra == 0, score.mistakes  # nothing but a name is taken
    assert score.recall >= 0.85, (score.recall, score.mistakes)  # measured 0.885: 54 of 61 (docs/security.md)


def test_a_surname_before_a_title_is_redacted_and_the_title_stays():
    out = deidentify("麻烦转告李经理和张工，王总已经确认。", allowlist=()).text
    assert out == "麻烦转告[REDACTED_NAME]经理和[REDACTED_NAME]工，[REDACTED_NAME]总已经确认。"
    # words that merely start with a surname character and a title are words
    assert find_person_names("施工方案和高工的意见，完成总量，加工费") == []


def test_every_name_found_is_gone_from_the_export_text():
    for row in TABLE:
        out = deidentify(row["text"], allowlist=()).text
        for span in find_person_names(row["text"]):
            assert span.value not in out, (span, out)
            assert out.count("[REDACTED_NAME]") >= 1


def test_products_scenarios_and_titles_of_the_corpus_are_not_names():
    cases, _ = parse_paths([PROJECT_ROOT / "data"])
    words = {c.product for c in cases} | {s for c in cases for s in c.scenarios} | {c.subcategory for c in cases}
    for text in sorted(words) + [c.title for c in cases]:
        assert find_person_names(text) == [], text


@pytest.mark.e2e
def test_the_corpus_agent_answers_have_no_false_names():
    """The dataset's agent turns are de-identified already: every name found there would be wrong."""
    cases, _ = parse_paths([PROJECT_ROOT / "data"])
    hits = [(c.id, s.value) for c in cases for t in c.turns if t.role == "agent" for s in find_person_names(t.text)]
    assert hits == []


_PRODUCT_WORDS = st.sampled_from(list(OWN_WORDS) + ["CDN", "白名单", "防盗链", "回源", "证书", "域名", "空间", "谢谢", "明白",
                                                    "申请人", "资源包", "杜绝", "直播云", "账单", "工单", "施工", "完成总量"])
_FILLER = st.sampled_from(["您好，", "请问", "的", "已经", "配置了", "，", "。", "没有生效", "才可以", "未生效", "谢谢您"])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_FILLER, _PRODUCT_WORDS), min_size=1, max_size=6))
def test_product_words_and_courtesies_are_never_redacted_as_names(parts):
    text = "".join(f + w for f, w in parts)
    assert "[REDACTED_NAME]" not in deidentify(text, allowlist=()).text, text


_SURNAME = st.sampled_from(sorted(SURNAMES)[:40] + sorted(COMPOUND_SURNAMES))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_SURNAME, st.sampled_from(["经理", "老师", "总监", "工程师"]), st.sampled_from(["请联系", "已转告", "麻烦"]))
def test_any_surname_before_a_title_is_redacted(surname, title, cue):
    out = deidentify(f"{cue}{surname}{title}处理一下。", allowlist=()).text
    assert f"[REDACTED_NAME]{title}" in out and surname not in out.replace("[REDACTED_NAME]", ""), out
