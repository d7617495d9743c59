"""The grader's reading of what an answer carries (key content) and what a deferral asks (rag/score/)."""

from __future__ import annotations

import pytest

from rag.score.asks import asked, fits
from rag.score.key_content import KeyItem, check_key
from rag.evaluation.tickets import coverage_at, curve


@pytest.mark.parametrize("text, kinds", [
    ("您好，为了进一步帮您确认，麻烦提供一下使用的 SDK 语言和版本（或调用的 API）、完整的报错信息（含错误码）以及请求 ID（X-Reqid），"
     "这边收到后马上为您排查。", {"sdk", "error", "request_id"}),
    ("麻烦提供一下加速域名、出现问题的完整 URL、报错截图以及大概的发生时间。", {"domain", "url", "error", "time"}),
    ("麻烦提供一下空间名称、存储区域、相关文件的 key 以及报错信息", {"bucket", "key", "error"}),
    ("这个需要工作人员在后台为您处理，麻烦提供一下相关的账号和域名（或订单号），处理完成后会第一时间告知您。",
     {"account", "domain", "order"}),
    ("您好，请问具体遇到了什么问题呢？", {"goal"}),
    ("您好，刷新缓存可以在控制台的 CDN → 刷新预取 中提交 URL。参考文档：https://developer.qiniu.com/fusion/kb/1325", set()),
    ("您好，这个问题需要确认一下 Xcode 和 CocoaPods 的版本，方便提供一下吗？", {"toolchain"}),
    ("方便的话截图发一下控制台页面的配置截图", {"screenshot"}),
    # in English, as an English deferral asks
    ("Hello, could you please send us your account (its login email) and the domain concerned?", {"account", "domain"}),
    ("Could you tell us what you are trying to do, or what you see, so we can look into it?", {"goal"}),
    ("Can you share the order number or the bill's month, and when it started?", {"order", "time"}),
    ("Hello, we are looking into this and will get back to you as soon as we can.", set()),
])
def test_what_a_deferral_asks_for(text, kinds):
    assert asked(text) == kinds


def test_a_deferral_fits_when_it_asks_only_what_is_reasonable():
    text = "您好，麻烦提供一下完整的报错信息和请求 ID（X-Reqid）。"
    assert fits(text, frozenset({"error", "request_id", "sdk"}))
    assert not fits(text, frozenset({"error"}))
    assert fits("您好，删除的文件无法恢复。", frozenset())  # asking for nothing always fits


def test_key_content_reads_alternatives_across_width_case_and_spacing():
    key = (KeyItem("the refresh console", ("portal.qiniu.com/cdn/refresh", "刷新预取")),
           KeyItem("cannot be restored", ("无法恢复", "不能恢复")))
    full = check_key("您好，在 PORTAL.qiniu.com / cdn / refresh 提交即可；删除后不 能 恢复。", key)
    assert full.complete and full.found == 2
    half = check_key("您好，在控制台刷新预取里提交。", key)
    assert (half.found, half.missing) == (1, ("cannot be restored",))


def _record(match: float, fits_: bool, answerable: bool, answered: bool = False, only_threshold: bool = True) -> dict:
    return {"top_match": match, "threshold_only": only_threshold,
            "decision": {"answered": answered, "top_fits": fits_, "fits_exist": answerable, "match": match}}


def test_the_curve_moves_only_what_the_threshold_decides():
    records = [_record(0.9, True, True), _record(0.8, True, True), _record(0.6, False, False),
               _record(0.5, True, True), _record(0.1, False, False, answered=True, only_threshold=False)]
    points = curve(records)
    at = {p["threshold"]: p for p in points}
    assert at[0.8] == {"threshold": 0.8, "answered": 3, "precision": pytest.approx(0.6667, abs=1e-4),
                       "coverage": pytest.approx(0.6667, abs=1e-4)}
    assert at[1.0]["answered"] == 1  # the fixed answer stays answered at any threshold
    assert coverage_at(points, 0.6) == 1.0  # at 0.5: 3 right of 5 answered
    assert coverage_at(points, 0.65) == pytest.approx(0.6667, abs=1e-4)
    assert coverage_at(points, 0.99) == 0.0


def test_a_deferral_that_carries_the_key_content_counts_for_the_agent_but_not_as_an_answer():
    from dataclasses import replace

    from rag.evaluation.tickets import summarise_tickets, ticket_record
    from rag.records import Draft, Hint
    from rag.score.labels import LabelledTicket

    key = (KeyItem("refresh the CDN cache", ("刷新",)),)
    t = LabelledTicket("t1", "更新后还是旧的", "", None, ("a" * 16,), (), "answer", "covered", "dev", key=key,
                       ask=frozenset())
    def deferral(text: str) -> Draft:
        return Draft(text=text, action="ask_for_info", confidence=0.3, citations=(), links=(), backend="offline",
                     prompt_id="offline", prompt_version="offline-1", latency_ms=1.0, verdict="no_fit")

    pointed = deferral("您好，如果您是指“CDN 刷新缓存”，在控制台刷新预取里提交 URL 即可。")
    bare = deferral("您好，对象存储相关的说明可以先参考：https://developer.qiniu.com/kodo")
    records = [ticket_record(t, pointed), ticket_record(t, bare)]
    assert [r["key"] for r in records] == [None, None] and [r["key_any"] for r in records] == [True, False]
    block = summarise_tickets(records)["all"]
    assert block["key_content"] is None and block["key_content_any"] == 0.5
    escalated = LabelledTicket("t2", "x", "", None, ("a" * 16,), (), "escalate", "covered", "dev", key=key)
    assert ticket_record(escalated, pointed)["key_any"] is None  # not answerable: not counted
    # the agent's desk: the hint beside a bare deferral carries it too, and is still not what is sent
    hinted = replace(bare, hint=Hint("a" * 16, "CDN 刷新缓存", 0.25, "在控制台刷新预取里提交 URL 即可。"))
    desk = [ticket_record(t, d) for d in (pointed, bare, hinted)]
    assert [r["key_any"] for r in desk] == [True, False, False] and [r["key_desk"] for r in desk] == [True, False, True]
    assert summarise_tickets(desk)["all"]["key_content_desk"] == round(2 / 3, 4)
