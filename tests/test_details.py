"""One table of what to ask the customer for: the verdict and the offline drafter ask for the same things."""

import pytest

from rag.draft.details import DEFAULT, TOPICS, customer_text, details_to_ask, request_for
from rag.draft.offline import compose
from rag.draft.policy import decide
from rag.records import Ticket, Turn

# The corpus's products (rag stats) that name a topic: a ticket with nothing but its product still gets
# that product's request, as the offline drafter's per-product table gave. "账户与财务" does not: its
# tickets name the bill, the invoice or the account, and matching the product as well added a second,
# near-identical request to invoice tickets (new ticket nt-001).
PRODUCT_ASKS = {
    "CDN": "加速域名",
    "对象存储": "空间名称",
    "直播云": "推流或播放地址",
    "实时互动": "AppID",
    "云短信": "短信签名",
}


@pytest.mark.parametrize("product, asks", PRODUCT_ASKS.items())
def test_every_product_has_its_own_request(product, asks):
    details = details_to_ask("有个问题想咨询", product)
    assert details != DEFAULT and asks in details


def test_a_ticket_without_a_topic_gets_the_default_and_at_most_two_topics_are_asked():
    assert details_to_ask("在吗") == DEFAULT
    many = details_to_ask("CDN 证书 上传报错 发票 短信")
    assert many.count("；") == 1


def test_the_first_matching_topic_leads():
    # A domain held by another account needs the ownership check before any CDN detail.
    assert details_to_ask("域名被其他账号绑定了", "CDN").startswith(TOPICS[0].details)


@pytest.mark.parametrize("ticket", [
    Ticket("证书过期了怎么办", product="CDN"),
    Ticket("推流一直失败", product="直播云"),
    Ticket("房间进不去", product="实时互动"),
    Ticket("这个月多扣了钱", history=(Turn("customer", "账单有问题"), Turn("agent", "您好，请稍等"))),
])
def test_offline_and_verdict_ask_for_the_same_details(ticket):
    verdict = decide(ticket, [], threshold=0.5)
    offline = compose(ticket, [])
    assert offline.action == "ask_for_info"
    assert request_for(verdict.details) in offline.text


def test_customer_text_reads_only_the_customer():
    t = Ticket("推流失败", title="直播", history=(Turn("customer", "账单"), Turn("agent", "证书")))
    assert customer_text(t) == "账单 直播\n推流失败"
