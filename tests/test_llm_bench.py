"""The LLM bench's own grading and its timed cache (``rag/evaluation/llm_bench.py``); the drafting itself is covered
by the drafter's tests, and the local models by the ``llm_server`` tier."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.configs import LLMConfig
from rag.errors import LLMError
from rag.evaluation.llm_bench import (Grader, TimedCachedLLM, markdown_kinds, opens_with_greeting, sample, summarise,
                                      table, team_lengths)
from rag.llm.chat import Completion
from rag.records import Case, Turn
from rag.score.labels import LabelledTicket

ALLOW = ("qiniu.com",)


def _case(case_id: str, answer: str) -> Case:
    return Case(case_id, "标题", "CDN", "其他", (), "问题", (Turn("customer", "问题"), Turn("agent", answer)), None, "x.md", 1)


CASES = [_case("a1", "您好，刷新缓存见 https://developer.qiniu.com/fusion/kb/1325/refresh-the-cache 。"),
         _case("a2", "您好，我们已处理。" * 10), _case("a3", "您好，可以。")]


def test_markdown_is_read_on_its_own_and_numbered_steps_are_the_teams():
    assert markdown_kinds("## 步骤\n**注意**：\n- 登录\n[文档](https://a.qiniu.com/x)\n`qshell`") == [
        "heading", "bold", "bullet", "link", "code"]
    assert markdown_kinds("| a | b |\n|---|---|") == ["table"]
    assert markdown_kinds("您好，1. 登录控制台 2. 进入 CDN → 刷新预取。价格 0.1*2 元。") == []
    assert opens_with_greeting("您好，可以。") and opens_with_greeting("（以下回复参考的是…）\n您好，")
    assert not opens_with_greeting("可以的，您好")


def test_composed_links_are_official_pages_nobody_wrote_and_invented_ones_are_apart():
    grader = Grader.from_cases(CASES, ALLOW)
    known = "见 https://developer.qiniu.com/fusion/kb/1325/refresh-the-cache 。"
    assert grader.grade(known, "刷新缓存")["composed"] == [] and grader.grade(known, "刷新缓存")["invented"] == []
    composed = grader.grade("见 https://developer.qiniu.com/fusion/api/cache-refresh 。", "刷新缓存")
    assert composed["composed"] == ["https://developer.qiniu.com/fusion/api/cache-refresh"] and not composed["invented"]
    # a query that carries another address: the page is composed, the address it carries invented
    carried = grader.grade("见 https://developer.qiniu.com/fusion/api/cache-refresh?url=https://yourdomain.com/a.jpg 。",
                           "刷新缓存")
    assert carried["composed"] and carried["invented"] == ["https://yourdomain.com/a.jpg"]
    invented = grader.grade("见 https://made-up.example.org/guide 。", "刷新缓存")
    assert invented["invented"] and not invented["composed"]
    # the customer's own link is neither
    assert grader.grade("您的 https://img.shop.qiniu.com/a.jpg 可以访问。", "https://img.shop.qiniu.com/a.jpg 打不开")[
        "composed"] == []


def _ticket(n: int, covered: bool) -> LabelledTicket:
    return LabelledTicket(f"t{n:03d}", "问题", "", None, ("a1",) if covered else (), (), "answer", "covered", "dev")


def test_a_larger_sample_holds_the_smaller_so_cached_drafts_are_reused():
    tickets = [_ticket(n, n % 3 == 0) for n in range(60)]
    small, large = sample(tickets, 5, 5, seed=3), sample(tickets, 8, 9, seed=3)
    assert len(small) == 10 and len(large) == 17
    assert [t.id for t in small[:5]] == [t.id for t in large[:5]] and [t.id for t in small[5:]] == [t.id for t in large[8:13]]
    assert all(t.covered for t in large[:8]) and not any(t.covered for t in large[8:])
    assert sample(tickets, 5, 5, seed=4) != small
    assert sample(list(reversed(tickets)), 5, 5, seed=3) == small  # the file's order does not matter


class _Model:
    model = "m"

    def __init__(self, chunks: list[str], error: str | None = None) -> None:
        self.chunks, self.error, self.calls = chunks, error, 0

    def complete(self, messages, **_):
        raise AssertionError("the bench streams every call")

    def stream(self, messages, *, deadline=None):
        self.calls += 1
        yield from self.chunks
        if self.error:
            raise LLMError(self.error)


CONFIG = LLMConfig(base_url="http://127.0.0.1:1/v1", model="m")
MESSAGES = [{"role": "user", "content": "您好"}]


def test_a_cached_reply_keeps_the_timing_it_had_and_the_port_is_not_in_the_key(tmp_path: Path):
    inner = _Model(["您好，", "可以", "。"])
    llm = TimedCachedLLM(inner, tmp_path, CONFIG, endpoint="local:0.5b")
    first = llm.complete(MESSAGES)
    timing = llm.take()
    assert first.text == "您好，可以。" and timing["tokens"] == 3 and not timing["cached"] and timing["raw"] == first.text
    other_port = LLMConfig(base_url="http://127.0.0.1:2/v1", model="m")
    again = TimedCachedLLM(inner, tmp_path, other_port, endpoint="local:0.5b")
    assert isinstance(again.complete(MESSAGES), Completion) and inner.calls == 1
    cached = again.take()
    assert cached["cached"] and cached["total"] == timing["total"] and cached["raw"] == "您好，可以。"
    assert again.take() is None  # taken once


def test_a_reply_cut_at_max_tokens_is_cached_as_the_failure_it_was_but_a_deadline_is_not(tmp_path: Path):
    cut = _Model(["您好"] * 4, error="the reply was cut at max_tokens=4; raise RAG_LLM_MAX_TOKENS")
    llm = TimedCachedLLM(cut, tmp_path, CONFIG)
    for _ in range(2):
        with pytest.raises(LLMError, match="cut at max_tokens"):
            llm.complete(MESSAGES)
        assert llm.take()["raw"] == "您好" * 4
    assert cut.calls == 1
    slow = _Model(["您好"], error="the LLM did not finish within the 1 s deadline")
    llm = TimedCachedLLM(slow, tmp_path / "other", CONFIG)
    for _ in range(2):
        with pytest.raises(LLMError, match="deadline"):
            llm.complete(MESSAGES)
    assert slow.calls == 2


def _record(covered: bool, answered: bool, key_found: int, *, fallback: bool = False, raw: str | None = "您好",
            text: str = "您好，可以。", seconds: float = 10.0) -> dict:
    return {"match": ["a1"] if covered else [], "label_key": covered, "decision": {
        "answered": answered, "top_fits": covered, "fits_exist": covered, "match": 0.9 if answered else 0.1},
        "key": {"items": 1, "found": key_found, "missing": []} if answered and covered else None,
        "deferral": None if answered else {"fits": True}, "draft": {"fallback": fallback},
        "llm": None if raw is None else {"raw": raw, "markdown": markdown_kinds(raw), "ttft": 2.0, "tok_s": 5.0,
                                         "tokens": 10, "total": 4.0, "cached": False},
        "seconds": seconds, "grade": {"leaks": [], "defects": [], "invented": [], "composed": [],
                                      "markdown": markdown_kinds(text), "greeting": True, "length": len(text)}}


def test_the_summary_counts_key_content_against_every_covered_ticket_not_only_the_answers():
    records = [_record(True, True, 1), _record(True, False, 0), _record(True, True, 0, raw="**加粗**"),
               _record(False, False, 0, fallback=True, seconds=90.0)]
    s = summarise(records)
    assert s["key_content"] == 0.5 and s["key_carried"] == round(1 / 3, 4)
    assert s["coverage"] == round(2 / 3, 4) and s["deferral_recall"] == 1.0
    assert s["markdown_raw"] == 0.25 and s["markdown"] == 0.0 and s["llm_written"] == 0.75 and s["llm_calls"] == 4
    assert s["within_60s"] == 0.75 and s["ttft"] == 2.0
    text = table({"offline": summarise([dict(r, llm=None) for r in records]), "0.5b team": s},
                 team_lengths(CASES))
    assert text.splitlines()[0] == "| | offline | 0.5b team | aim |"
    assert "| Markdown: raw reply / draft | – / 0% | 25% / 0% | none |" in text
    assert json.dumps(s)  # the summary is written as JSON
