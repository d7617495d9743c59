"""The agents' web page, end to end: a real `rag serve` process and headless Debian Chromium via Playwright.

Screenshots are kept in test-artifacts/ for a person to look at.
"""

import os
import sqlite3

import pytest

from conftest import PROJECT_ROOT

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
        page = browser.new_page(viewport={"width": 1400, "height": 820})
        page.goto(url + "/")
        expect(page.locator("#health")).to_contain_text("114")
        page.fill("#ticket", "证书过期了，怎么重新申请免费证书？")
        page.select_option("#product", "CDN")
        page.click("#go")
        expect(page.locator("#status")).to_have_text("草稿已生成", timeout=60_000)
        draft = page.input_value("#draft-text")
        assert draft.startswith("您好")
        expect(page.locator("#action")).to_be_visible()
        expect(page.locator("#cases .case")).to_have_count(page.locator("#cases .case").count())
        assert page.locator("#cases .case").count() >= 1
        page.locator("#cases .case button").first.click()
        expect(page.locator("#cases pre").first).to_contain_text("客服：")
        page.screenshot(path=str(ARTIFACTS / "web-draft.png"), full_page=True)

        page.click("#copy")
        expect(page.locator("#status")).to_have_text("已复制到剪贴板")
        page.click("#edit")
        expect(page.locator("#status")).to_contain_text("没有改动")
        page.fill("#draft-text", draft + "\n如有其他问题随时联系我们。")
        page.click("#edit")
        expect(page.locator("#status")).to_have_text("已记录修改")
        page.screenshot(path=str(ARTIFACTS / "web-feedback.png"), full_page=True)

        page.fill("#ticket", "")
        page.click("#go")
        expect(page.locator("#status")).to_have_text("请先粘贴客户消息")
        browser.close()
    rows = sqlite3.connect(feedback_db).execute("SELECT verdict, final_text FROM feedback").fetchall()
    assert rows == [("edited", draft + "\n如有其他问题随时联系我们。")]
