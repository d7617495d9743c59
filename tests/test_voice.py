"""An LLM reply in the team's voice: Markdown made plain, composed links removed, cut back to the team's length."""

from __future__ import annotations

import re

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from rag.draft.voice import MAX_REPLY_CHARS, check, composed_links, links_in, plain, shorten, without_internal

SHOWN = {"https://portal.qiniu.com/cdn/refresh", "https://developer.qiniu.com/fusion/kb/1325/refresh-the-cache"}
DOCS = ("https://developer.qiniu.com/fusion",)
OFFICIAL = ("qiniu.com",)


def test_markdown_becomes_the_teams_plain_text():
    text, changed = plain("## 刷新缓存\n您好，**刷新缓存**可以这样做：\n- 登录`控制台`\n- 进入 [刷新预取](https://portal.qiniu.com/cdn/refresh)")
    assert changed and text == "您好，刷新缓存可以这样做：\n1. 登录控制台\n2. 进入 刷新预取 https://portal.qiniu.com/cdn/refresh"
    table, _ = plain("| 项目 | 价格 |\n|---|---|\n| 存储 | 0.1 元/GB |")
    assert table == "项目，价格\n存储，0.1 元/GB"
    assert plain("您好，在控制台 → CDN → 刷新预取 里提交。") == ("您好，在控制台 → CDN → 刷新预取 里提交。", False)


def test_a_composed_link_goes_with_its_sentence_and_a_known_one_stays():
    reply = ("您好，可以在 https://portal.qiniu.com/cdn/refresh 提交刷新。"
             "也可以调用接口 https://developer.qiniu.com/fusion/api/cache-refresh?url=https://yourdomain.com/a.jpg 提交。"
             "文档见 https://developer.qiniu.com/fusion 。")
    assert composed_links(reply, SHOWN, DOCS, OFFICIAL) == [
        "https://developer.qiniu.com/fusion/api/cache-refresh?url=https://yourdomain.com/a.jpg"]
    report = check(reply, SHOWN, DOCS, OFFICIAL)
    assert "cache-refresh" not in report.text and "调用接口" not in report.text
    assert "https://portal.qiniu.com/cdn/refresh" in report.text and "https://developer.qiniu.com/fusion" in report.text
    # a known page with a query a case never had is composed too
    assert composed_links("见 https://portal.qiniu.com/cdn/refresh?domain=a.com", SHOWN, DOCS, OFFICIAL)
    # another host's link is the guard's to judge, not composed on a trusted host
    assert composed_links("见 https://made-up.example.org/guide", SHOWN, DOCS, OFFICIAL) == []


def test_a_link_composed_without_its_scheme_is_caught_and_one_the_cases_wrote_so_is_kept():
    # The 1.5B model wrote 「qiniu.com/pili/…」 in the held-out bench, and the check read only schemed links.
    reply = "您好，推流回调在 qiniu.com/pili/notify-settings 里配置。也见portal.qiniu.com/pili/hub/list。控制台 portal.qiniu.com 登录即可。"
    assert composed_links(reply, SHOWN, DOCS, OFFICIAL) == ["qiniu.com/pili/notify-settings",
                                                            "portal.qiniu.com/pili/hub/list"]
    report = check(reply, SHOWN, DOCS, OFFICIAL)
    assert report.text == "控制台 portal.qiniu.com 登录即可。"  # a bare host names the console; it is no link
    assert composed_links("见 portal.qiniu.com/cdn/refresh 。", SHOWN, DOCS, OFFICIAL) == []  # a case's page
    assert links_in("见portal.qiniu.com/cdn/refresh和 https://developer.qiniu.com/fusion") == [
        "https://developer.qiniu.com/fusion", "portal.qiniu.com/cdn/refresh"]


def test_an_over_long_reply_is_cut_at_a_sentence_end_and_never_inside_a_link():
    long = "您好，" + "这是一句很长的说明。" * 80 + "参考 https://portal.qiniu.com/cdn/refresh?x=1。"
    cut, changed = shorten(long)
    assert changed and len(cut) <= MAX_REPLY_CHARS and cut.endswith("。")
    assert shorten("您好，很短。") == ("您好，很短。", False)


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("您好#*-_`[]()|。！?\n 刷新缓存https://portal.qiniu.com/cdn/refresh")),
               max_size=300))
def test_repairs_never_add_text_and_always_end_plain(text):
    report = check(text, SHOWN, DOCS, OFFICIAL)
    assert len(report.text) <= max(len(text), MAX_REPLY_CHARS)
    assert not re.search(r"\*\*[^*\n]+\*\*", report.text) and not re.search(r"\[[^\]\n]*\]\(\S+\)", report.text)


@pytest.mark.parametrize("text, kept, removed", [
    ("您好，感谢您提供参考案例。根据客户的问题，建议使用图片瘦身。", "您好，建议使用图片瘦身。", 2),
    ("您好，客户工单中提到的问题是关于生命周期规则没有生效。旧文件不受新规则影响。", "您好，旧文件不受新规则影响。", 1),
    ("您好，根据以上案例，可以在控制台刷新缓存。", "您好，可以在控制台刷新缓存。", 1),
    # the greeting keeps the comma it was written with, and gets one when it had none
    ("您好,客户工单中提到的问题是关于生命周期规则。旧文件不受新规则影响。", "您好,旧文件不受新规则影响。", 1),
    ("您好客户工单中提到的问题是关于生命周期规则。旧文件不受新规则影响。", "您好，旧文件不受新规则影响。", 1),
    # the customer's client app, and a reply that speaks to the customer, are left alone
    ("您好，客户端需要升级到 7.2 以上，请根据您的业务选择区域。", "您好，客户端需要升级到 7.2 以上，请根据您的业务选择区域。", 0),
])
def test_talk_about_the_ticket_or_the_prompt_is_removed_the_greeting_kept(text, kept, removed):
    out, gone = without_internal(text)
    assert (out, len(gone)) == (kept, removed)
    assert check(text, (), (), ()).internal == gone
