"""The match verdict on the real corpus: honest deferral offline, and the LLM held to the same verdict."""

import json

import httpx
import pytest
import respx

from rag.notes import NoFit
from rag.records import Ticket

pytestmark = pytest.mark.e2e

BASE = "http://llm.test/v1"
URL = f"{BASE}/chat/completions"
COVERED = Ticket("我的CDN域名证书过期了，怎么更换免费证书？")
UNCOVERED = Ticket("qiniu-js 升级后 TypeScript 编译报错，d.ts 里找不到 UploadProgress 类型")


def completion(text: str) -> dict:
    return {"id": "c1", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}}


@pytest.fixture
def offline(corpus_pipeline):
    return corpus_pipeline.make_drafter()


@pytest.fixture
def llm_drafter(corpus_settings, corpus_drafter):
    return corpus_drafter(corpus_settings.updated(llm={"base_url": BASE, "model": "m", "retry": {"max_attempts": 1}}))


def test_a_covered_ticket_is_answered_from_a_fitting_case(offline):
    d = offline.draft(COVERED)
    assert d.action == "answer" and d.verdict == "fits"
    assert d.confidence >= offline.policy.threshold
    source = [c for c in d.citations if c.relation == "source"]
    assert source and source[0].match == pytest.approx(d.confidence, abs=1e-3)
    assert "portal.qiniu.com/certificate" in d.text


@pytest.mark.parametrize("text, verdict", [
    (UNCOVERED.text, "no_fit"),
    ("帮我订一张明天去北京的机票", "off_topic"),
    ("在吗", "vague"),
    ("希望对象存储能加个回收站功能，误删了还能找回来", "feature_request"),
])
def test_uncovered_tickets_are_deferred_with_related_cases(offline, text, verdict):
    d = offline.draft(Ticket(text))
    assert d.action != "answer" and d.verdict == verdict
    if verdict == "no_fit":
        assert d.confidence < offline.policy.threshold
    # The others are decided by what the ticket is, whatever the match: the recycle-bin request matches the
    # "deleted files cannot be restored" case closely, and is still a request for the product team.
    assert d.citations and all(c.relation == "related" for c in d.citations)


def test_the_deferral_asks_for_what_the_ticket_needs(offline):
    d = offline.draft(UNCOVERED)
    # a build error: the SDK and the toolchain, not a request id (no request reached the servers)
    assert "SDK" in d.text and "编译环境" in d.text and "X-Reqid" not in d.text and d.text.startswith("您好")


def test_the_llm_is_told_no_case_fits_and_cannot_answer_anyway(llm_drafter):
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(URL).mock(return_value=httpx.Response(200, json=completion(
            "ACTION: answer\n您好，请升级到最新版本即可解决。")))
        d = llm_drafter.draft(UNCOVERED)
    assert route.call_count == 1
    user = json.loads(route.calls[0].request.content)["messages"][1]["content"]
    assert "没有能直接解决客户问题的参考案例" in user and "请客户补充" in user
    assert "<case_1>" not in user  # cases that do not fit are not shown: a small model copies them anyway
    assert d.action == "ask_for_info" and d.verdict == "no_fit"
    assert any(isinstance(n, NoFit) for n in d.notes)
    assert all(c.relation == "related" for c in d.citations)


def test_the_llm_is_told_which_cases_fit(llm_drafter):
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(URL).mock(return_value=httpx.Response(200, json=completion(
            "ACTION: answer\n您好，免费证书可以在 https://portal.qiniu.com/certificate/apply 申请。")))
        d = llm_drafter.draft(COVERED)
    user = json.loads(route.calls[0].request.content)["messages"][1]["content"]
    source = [c.case_id for c in d.citations if c.relation == "source"]
    assert d.action == "answer" and source
    assert "与客户的问题相符" in user and source[0] in user


def test_an_english_ticket_asks_the_llm_for_an_english_reply(llm_drafter):
    reply = "ACTION: ask_for_info\nHello, could you tell us which SDK version you use and the full error message?"
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(URL).mock(return_value=httpx.Response(200, json=completion(reply)))
        d = llm_drafter.draft(Ticket("The Go SDK returns 'incorrect region' when I upload, what should I change?"))
    system = json.loads(route.calls[0].request.content)["messages"][0]["content"]
    assert "英文" in system and "Hello" in system
    assert d.text.startswith("Hello") and d.action == "ask_for_info"
