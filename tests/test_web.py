"""The agents' web page, end to end: a real `rag serve` process and headless Debian Chromium via Playwright.

Screenshots are kept in test-artifacts/ for a person to look at.
"""

import os
import re
import sqlite3

import pytest

from rag.service.schemas import CitationOut, DraftResponse, ProvenanceOut
from rag.settings import PROJECT_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.server]

ARTIFACTS = PROJECT_ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def test_agent_drafts_reviews_and_edits_in_the_browser(live_server):
    from playwright.sync_api import expect, sync_playwright

    assert os.path.exists(CHROMIUM), "Debian's chromium is required (scripts/test.sh installs it)"
    url, feedback_db = live_server
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 820})
        page.goto(url + "/")
        expect(page.locator("#health")).to_contain_text("114")
        page.fill("#ticket", "证书过期了，怎么重新申请免费证书？")
        expect(page.locator("#counter")).to_have_text("17 / 8000 字")  # the character counter follows the typing
        page.select_option("#product", "CDN")
        page.click("#go")
        expect(page.locator("#status")).to_have_text("草稿已生成", timeout=60_000)
        draft = page.input_value("#draft-text")
        assert draft.startswith("您好")
        expect(page.locator("#action")).to_be_visible()
        # notes in Chinese, not the library's English
        expect(page.locator("#notes")).to_contain_text("基于历史案例")
        assert not re.search(r"[A-Za-z]{4,}", re.sub(r"https?://\S+|\b[0-9a-f]{16}\b", "", page.inner_text("#notes")))
        # every citation names its product
        metas = page.locator("#cases .case > .meta").all_inner_texts()
        products = set(page.locator("#product option").all_inner_texts()) - {"自动判断"}
        assert metas and all(m.split(" · ")[0] in products for m in metas), (metas, products)
        # every citation says where it came from: these are all the dataset's
        sources = page.locator("#cases .case > .provenance").all_inner_texts()
        assert len(sources) == len(metas) and set(sources) == {"来源：历史工单数据集"}, sources
        # open the cited cases: their links are clickable, http(s) only, opened without access to this page
        for b in page.locator("#cases .case button").all():
            b.click()
        expect(page.locator("#cases pre").first).to_contain_text("客服：")
        links = page.locator("#cases pre a")
        assert links.count() >= 1
        for i in range(links.count()):
            a = links.nth(i)
            assert a.get_attribute("href").startswith(("https://", "http://"))
            assert a.get_attribute("rel") == "noopener noreferrer" and a.get_attribute("target") == "_blank"
        # only http(s) becomes a link; markup in case text stays text
        made = page.evaluate("""() => { const d = document.createElement('div');
            linkify(d, 'javascript:alert(1) <img src=x onerror=alert(1)> 见 https://developer.qiniu.com/fusion，谢谢');
            return {links: [...d.querySelectorAll('a')].map(a => a.href), imgs: d.querySelectorAll('img').length}; }""")
        assert made == {"links": ["https://developer.qiniu.com/fusion"], "imgs": 0}
        # nothing cut off at desktop width: the citations column ends inside the window
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280
        page.screenshot(path=str(ARTIFACTS / "web-draft-1280.png"), full_page=True)

        page.click("#copy")
        expect(page.locator("#status")).to_have_text("已复制到剪贴板")
        page.click("#edit")
        expect(page.locator("#status")).to_contain_text("没有改动")
        edited = draft + "\n如有其他问题随时联系我们。"
        page.fill("#draft-text", edited)
        page.click("#edit")
        expect(page.locator("#status")).to_have_text("已记录修改")
        page.screenshot(path=str(ARTIFACTS / "web-feedback-1280.png"), full_page=True)

        # an error clears the previous draft, badge and citations, and says what happened in Chinese
        page.fill("#ticket", "")
        page.click("#go")
        expect(page.locator("#status")).to_have_text("请先粘贴客户消息")
        assert page.input_value("#draft-text") == "" and page.locator("#cases .case").count() == 0
        expect(page.locator("#action")).to_be_hidden()
        page.fill("#ticket", "证书过期了怎么办")
        page.click("#go")
        expect(page.locator("#status")).to_have_text("草稿已生成", timeout=60_000)
        page.route("**/v1/drafts", lambda route: route.fulfill(
            status=502, content_type="application/json",
            body='{"error": {"status": 502, "message": "LLM endpoint failed: HTTP 500"}}'))
        page.click("#go")
        expect(page.locator("#status")).to_contain_text("生成失败：大模型或向量服务暂时不可用")
        assert page.input_value("#draft-text") == "" and page.locator("#cases .case").count() == 0
        page.unroute("**/v1/drafts")
        page.route("**/v1/drafts", lambda route: route.fulfill(
            status=422, content_type="application/json",
            body='{"error": {"status": 422, "message": "unknown product \'cdn2\'; valid values: CDN, 对象存储"}}'))
        page.click("#go")
        expect(page.locator("#status")).to_have_text("生成失败：未知的产品「cdn2」，可选：CDN, 对象存储")
        page.unroute("**/v1/drafts")
        # a case from approved feedback shows its feedback ids, verdict, reviewer, date and copies, as text
        markup = '<img src=x onerror="window.pwned=1">'
        provenance = ProvenanceOut(origin="feedback", feedback_ids=[3, 7], draft_ids=["d3", "d7"], verdict="edited",
                                   reviewer="lead" + markup, reviewed_at="2026-11-26 04:30:00", copies=2)
        routed = DraftResponse(
            draft_id="x", text="您好", action="ask_for_info", confidence=0.5, backend="offline", fallback=False, prompt_id="p",
            prompt_version="1", latency_ms=1.0, usage={}, removed=[], notes=[], links=[],
            citations=[CitationOut(case_id="fb1", title="证书续期" + markup, product="CDN", passage="p", score=0.9,
                                   provenance=provenance)])
        page.route("**/v1/drafts", lambda route: route.fulfill(status=200, content_type="application/json",
                                                                 body=routed.model_dump_json()))
        page.click("#go")
        expect(page.locator("#status")).to_have_text("草稿已生成")
        expect(page.locator("#cases .case > .provenance")).to_have_text(
            "来源：客服反馈 #3, #7（修改后采纳） · 审核人 lead" + markup + " · 审核于 2026-11-26 04:30:00 · 合并 2 条相同反馈")
        assert page.locator("#cases img").count() == 0 and page.evaluate("window.pwned === undefined")
        page.unroute("**/v1/drafts")
        page.fill("#ticket", "证" * 8001)
        expect(page.locator("#counter")).to_have_class("counter over")
        page.click("#go")
        expect(page.locator("#status")).to_contain_text("超过上限 8000 字")

        # a phone: one column, nothing wider than the screen; 360 px still fits
        mobile = browser.new_page(viewport={"width": 390, "height": 844})
        mobile.goto(url + "/")
        expect(mobile.locator("#health")).to_contain_text("114")
        mobile.fill("#ticket", "我的CDN域名证书过期了，怎么更换免费证书？")
        mobile.click("#go")
        expect(mobile.locator("#status")).to_have_text("草稿已生成", timeout=60_000)
        mobile.locator("#cases .case button").first.click()
        expect(mobile.locator("#cases pre").first).to_contain_text("客服：")
        assert mobile.evaluate("document.documentElement.scrollWidth") <= 390
        mobile.screenshot(path=str(ARTIFACTS / "web-draft-390.png"), full_page=True)
        mobile.set_viewport_size({"width": 360, "height": 740})
        assert mobile.evaluate("document.documentElement.scrollWidth") <= 360
        box = mobile.locator("#cases").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 360
        mobile.set_viewport_size({"width": 800, "height": 740})
        assert mobile.evaluate("document.documentElement.scrollWidth") <= 800
        # the agent edits, then clicks 采纳: the edited text is what was accepted
        mobile.fill("#draft-text", mobile.input_value("#draft-text") + "\n祝您工作顺利。")
        accepted_text = mobile.input_value("#draft-text").strip()
        mobile.click("#accept")
        expect(mobile.locator("#status")).to_have_text("已采纳")
        browser.close()

    rows = sqlite3.connect(feedback_db).execute("SELECT verdict, final_text FROM feedback ORDER BY id").fetchall()
    assert rows == [("edited", edited), ("accepted", accepted_text)]

