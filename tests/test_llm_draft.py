"""The LLM backend against the real openai SDK, with every HTTP call answered by respx."""

import json
import time

import httpx
import pytest
import respx

from rag.configs import LLMConfig
from rag.draft.llm import LLMClient
from rag.errors import ContextLengthError, LLMError
from rag.records import Ticket

BASE = "http://llm.test/v1"
URL = f"{BASE}/chat/completions"
TICKET = Ticket("证书过期了，怎么重新申请免费证书？我的域名是 img.mine-site.com", product="CDN")


def completion(text: str, finish: str = "stop") -> dict:
    return {
        "id": "c1", "object": "chat.completion", "created": 0, "model": "qwen-test",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
        "usage": {"prompt_tokens": 1200, "completion_tokens": 80, "total_tokens": 1280},
    }


GOOD = "ACTION: answer\n您好，免费证书可以在这里申请：https://portal.qiniu.com/certificate/apply ，验证通过后在域名管理里开启 HTTPS。"


@pytest.fixture
def llm_settings(corpus_settings):
    return corpus_settings.updated(**dict(
        llm_base_url=BASE, llm_model="qwen-test", llm_api_key="sk-test", llm_max_attempts=3,
        llm_backoff_initial=0.01, llm_backoff_max=0.05, llm_timeout=5.0,
    ))


@pytest.fixture
def drafter(llm_settings, corpus_drafter):
    return corpus_drafter(llm_settings)


def sent(route, n=-1) -> dict:
    return json.loads(route.calls[n].request.content)


def test_success_carries_cases_and_customer_text(drafter):
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(URL).mock(return_value=httpx.Response(200, json=completion(GOOD)))
        draft = drafter.draft(TICKET)
    assert route.call_count == 1
    body = sent(route)
    assert body["model"] == "qwen-test" and body["max_tokens"] == 800
    system, user = body["messages"]
    assert system["role"] == "system" and "您好" in system["content"]
    assert "<customer_message>" in user["content"] and TICKET.text in user["content"]
    assert "[案例 1]" in user["content"] and "[案例 5]" in user["content"]
    cited = {c.case_id for c in draft.citations}
    assert all(case_id in user["content"] for case_id in cited) and len(cited) == 5
    assert route.calls[0].request.headers["authorization"] == "Bearer sk-test"
    assert draft.action == "answer" and draft.backend == "llm:qwen-test" and not draft.fallback
    assert draft.text.startswith("您好") and "ACTION" not in draft.text
    assert draft.links == ("https://portal.qiniu.com/certificate/apply",)
    assert draft.usage.prompt_tokens == 1200 and draft.usage.completion_tokens == 80
    assert draft.prompt_id == "default" and len(draft.prompt_version) == 12


def test_429_then_success(drafter):
    with respx.mock() as mock:
        route = mock.post(URL).mock(side_effect=[
            httpx.Response(429, json={"error": {"message": "rate limited"}}),
            httpx.Response(200, json=completion(GOOD)),
        ])
        draft = drafter.draft(TICKET)
    assert route.call_count == 2 and draft.action == "answer"


def test_retry_after_is_honoured(drafter):
    with respx.mock() as mock:
        route = mock.post(URL).mock(side_effect=[
            httpx.Response(429, headers={"retry-after": "0.5"}, json={"error": {"message": "wait"}}),
            httpx.Response(200, json=completion(GOOD)),
        ])
        t0 = time.monotonic()
        drafter.draft(TICKET)
    assert route.call_count == 2
    assert time.monotonic() - t0 >= 0.05  # capped by llm_backoff_max=0.05, not the 10 ms backoff


def test_persistent_429_makes_exactly_max_attempts_calls(drafter):
    with respx.mock() as mock:
        route = mock.post(URL).mock(return_value=httpx.Response(429, json={"error": {"message": "rate limited"}}))
        with pytest.raises(LLMError, match="HTTP 429"):
            drafter.draft(TICKET)
    assert route.call_count == 3  # tenacity's 3 attempts; the SDK's own retries are off


def test_5xx_exhausted_falls_back_to_offline_when_asked(drafter):
    with respx.mock() as mock:
        route = mock.post(URL).mock(return_value=httpx.Response(503, json={"error": {"message": "overloaded"}}))
        with pytest.raises(LLMError, match="HTTP 503"):
            drafter.draft(TICKET)
        draft = drafter.draft(TICKET, fallback="offline")
    assert route.call_count == 6
    assert draft.fallback and draft.backend == "offline" and draft.text.startswith("您好")
    assert any("offline fallback" in n for n in draft.notes)


def test_4xx_is_not_retried(drafter):
    with respx.mock() as mock:
        route = mock.post(URL).mock(return_value=httpx.Response(401, json={"error": {"message": "bad key"}}))
        with pytest.raises(LLMError, match="HTTP 401"):
            drafter.draft(TICKET)
    assert route.call_count == 1


def test_timeout_is_retried_then_reported(drafter):
    with respx.mock() as mock:
        route = mock.post(URL).mock(side_effect=httpx.ReadTimeout("slow"))
        with pytest.raises(LLMError, match="timed out"):
            drafter.draft(TICKET)
    assert route.call_count == 3


def test_malformed_body_is_a_clear_error(drafter):
    with respx.mock() as mock:
        mock.post(URL).mock(return_value=httpx.Response(200, content=b"<html>gateway</html>", headers={"content-type": "text/html"}))
        with pytest.raises(LLMError, match="malformed|empty"):
            drafter.draft(TICKET)
    with respx.mock() as mock:
        mock.post(URL).mock(return_value=httpx.Response(200, json={"id": "x", "choices": []}))
        with pytest.raises(LLMError, match="malformed"):
            drafter.draft(TICKET)


def test_context_length_error_trims_cases_and_retries_once(drafter):
    too_long = httpx.Response(400, json={"error": {"message": "This model's maximum context length is 4096 tokens",
                                                   "code": "context_length_exceeded", "type": "invalid_request_error"}})
    with respx.mock() as mock:
        route = mock.post(URL).mock(side_effect=[too_long, httpx.Response(200, json=completion(GOOD))])
        draft = drafter.draft(TICKET)
    assert route.call_count == 2
    assert sent(route, 0)["messages"][1]["content"].count("[案例 ") == 5
    assert sent(route, 1)["messages"][1]["content"].count("[案例 ") == 2
    assert any("context too long" in n for n in draft.notes)
    with respx.mock() as mock:
        route = mock.post(URL).mock(return_value=too_long)
        with pytest.raises(ContextLengthError):
            drafter.draft(TICKET)
    assert route.call_count == 2


def test_streaming_releases_only_checked_sentences_and_the_final_draft(drafter, sse):
    parts = ["ACTION: answer\n", "您好，免费证书申请：", "https://portal.qiniu.com/certificate/apply 。",
             "另见 https://evil.example.net/x 。", "联系 a@b.co"]
    seen: list[str] = []
    with respx.mock() as mock:
        route = mock.post(URL).mock(return_value=httpx.Response(200, headers={"content-type": "text/event-stream"}, content=sse(*parts)))
        draft = drafter.draft(TICKET, on_delta=seen.append)
    assert sent(route)["stream"] is True
    assert seen == ["您好，免费证书申请：https://portal.qiniu.com/certificate/apply 。", "另见 。", "联系 【您的邮箱】"]
    assert not any("ACTION" in s or "evil.example" in s or "a@b.co" in s for s in seen)
    assert draft.text.startswith("您好，免费证书申请：https://portal.qiniu.com/certificate/apply")
    assert "evil.example" not in draft.text


class CutStream(httpx.SyncByteStream):
    def __init__(self, first: bytes) -> None:
        self.first = first

    def __iter__(self):
        yield self.first
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


def test_stream_cut_midway_is_never_a_complete_draft(drafter, sse):
    first = sse("ACTION: answer\n", "您好，免费证书", finish=False)
    with respx.mock() as mock:
        mock.post(URL).mock(return_value=httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=CutStream(first)))
        with pytest.raises(LLMError, match="cut"):
            drafter.draft(TICKET, on_delta=lambda d: None)
    with respx.mock() as mock:
        mock.post(URL).mock(return_value=httpx.Response(200, headers={"content-type": "text/event-stream"}, content=first))
        with pytest.raises(LLMError, match="incomplete"):
            drafter.draft(TICKET, on_delta=lambda d: None)
        draft = drafter.draft(TICKET, on_delta=lambda d: None, fallback="offline")
    assert draft.fallback and draft.backend == "offline"


def test_llm_reply_is_guarded_for_leaks_and_invented_links(drafter):
    reply = ("ACTION: answer\n您好，参考 https://developer.qiniu.com/fusion/manual/4952/https-configuration 和 "
             "https://made-up.example.org/guide ，之前客户 cdn.lpxyr0206.com 的订单 6704848bce27951dbff8cf22 也是这样，"
             "您的域名 img.mine-site.com 按同样步骤即可。")
    with respx.mock() as mock:
        mock.post(URL).mock(return_value=httpx.Response(200, json=completion(reply)))
        draft = drafter.draft(TICKET)
    assert "made-up.example.org" not in draft.text and "cdn.lpxyr0206.com" not in draft.text
    assert "6704848bce27951dbff8cf22" not in draft.text
    assert "img.mine-site.com" in draft.text  # the customer's own domain stays
    assert draft.links == ("https://developer.qiniu.com/fusion/manual/4952/https-configuration",)
    assert "https://made-up.example.org/guide" in draft.removed


def test_missing_action_line_is_inferred(drafter):
    with respx.mock() as mock:
        mock.post(URL).mock(return_value=httpx.Response(200, json=completion("您好，麻烦提供一下您的域名和报错截图？")))
        draft = drafter.draft(TICKET)
    assert draft.action == "ask_for_info" and any("inferred" in n for n in draft.notes)


def test_reply_cut_at_max_tokens_is_an_error(drafter):
    with respx.mock() as mock:
        mock.post(URL).mock(return_value=httpx.Response(200, json=completion("ACTION: answer\n您好，步骤如下1.", finish="length")))
        with pytest.raises(LLMError, match="max_tokens"):
            drafter.draft(TICKET)


def test_a_reply_with_only_the_action_line_is_no_draft(drafter):
    with respx.mock() as mock:
        mock.post(URL).mock(return_value=httpx.Response(200, json=completion("ACTION: ask_for_info")))
        with pytest.raises(LLMError, match="no text besides the ACTION line"):
            drafter.draft(TICKET)
        draft = drafter.draft(TICKET, fallback="offline")
    assert draft.fallback and draft.text.startswith("您好")


def test_a_reply_cut_at_max_tokens_falls_back_flagged(drafter):
    with respx.mock() as mock:
        mock.post(URL).mock(return_value=httpx.Response(200, json=completion("您好，步骤如下1.", finish="length")))
        draft = drafter.draft(TICKET, fallback="offline")
    assert draft.fallback and draft.backend == "offline"
    assert any("offline fallback" in n and "max_tokens" in n for n in draft.notes)


def test_the_body_alone_takes_the_verdicts_action(drafter):
    """The prompts ask for the body only; a reply with no ACTION line is the verdict's action, no note."""
    with respx.mock() as mock:
        route = mock.post(URL).mock(return_value=httpx.Response(200, json=completion(GOOD.removeprefix("ACTION: answer\n"))))
        draft = drafter.draft(TICKET)
    system = sent(route)["messages"][0]["content"]
    assert "只写给客户的回复正文" in system and "第一行" not in system
    assert draft.verdict == "fits" and draft.action == "answer" and draft.text.startswith("您好")
    assert not any("ACTION" in n or "inferred" in n for n in draft.notes)


def test_an_action_line_at_the_end_may_only_lower_the_action(drafter):
    lowered = "您好，这个需要确认您的域名配置后才能判断。\nACTION: ask_for_info"
    with respx.mock() as mock:
        mock.post(URL).mock(return_value=httpx.Response(200, json=completion(lowered)))
        draft = drafter.draft(TICKET)
    assert draft.action == "ask_for_info" and "ACTION" not in draft.text
    assert any("verdict said answer: marked ask_for_info" in n for n in draft.notes)


def test_the_prompt_shows_cut_cases_and_no_empty_blocks(llm_settings, corpus_drafter):
    settings = llm_settings.updated(llm_context_cases=2, llm_case_chars=120, llm_seed=7, prompt_variant="small")
    drafter = corpus_drafter(settings)
    with respx.mock() as mock:
        route = mock.post(URL).mock(return_value=httpx.Response(200, json=completion(GOOD)))
        draft = drafter.draft(TICKET)
    body = sent(route)
    user = body["messages"][1]["content"]
    assert body["seed"] == 7 and draft.prompt_id == "small"
    assert "<case_2>" in user and "<case_3>" not in user
    for answer in user.split("客服回复：")[1:]:
        assert len(answer.split("\n</case_")[0]) <= 120 + 40  # escaping may lengthen it a little
    assert "<conversation_history>" not in user and "<ticket_title>" not in user  # empty: left out
    assert "<customer_message>" in user and "<ticket_product>" in user


def test_no_seed_is_sent_unless_set(drafter):
    with respx.mock() as mock:
        route = mock.post(URL).mock(return_value=httpx.Response(200, json=completion(GOOD)))
        drafter.draft(TICKET)
    assert "seed" not in sent(route)


def test_escaped_case_text_copied_by_the_model_is_read_back(drafter, sse):
    """Case text sits escaped in its block; a small model copies ``-&gt;`` where the agent wrote ``->``."""
    copied = "您好，点击开启-&gt;免费证书，勾选 [同意] &amp; 确认。\n第二步在域名管理里开启 HTTPS。"
    with respx.mock() as mock:
        mock.post(URL).mock(return_value=httpx.Response(200, json=completion(copied)))
        draft = drafter.draft(TICKET)
    seen: list[str] = []
    with respx.mock() as mock:
        mock.post(URL).mock(return_value=httpx.Response(200, content=sse(*copied.partition("\n")),
                                                        headers={"content-type": "text/event-stream"}))
        streamed = drafter.draft(TICKET, on_delta=seen.append)
    assert "开启->免费证书" in draft.text and "[同意] & 确认" in draft.text and "&gt;" not in draft.text
    assert "开启->免费证书" in "".join(seen) and "&" + "gt;" not in "".join(seen)
    assert streamed.text == draft.text


def test_an_exception_chain_that_loops_back_is_walked_once():
    from rag.draft.llm_bounds import LLMDeadlineError, cause_is_bound

    a, b = RuntimeError("a"), ValueError("b")
    a.__context__, b.__context__ = b, a
    assert cause_is_bound(a) is None  # walked the loop once (it used to spin forever and hang a whole eval run)
    late, c = LLMDeadlineError("late"), RuntimeError("c")
    c.__context__, late.__context__ = late, c
    assert cause_is_bound(c) is late


def test_a_transport_that_raises_ends_after_its_attempts(llm_settings):
    # respx raising inside the transport is what a broken fake or a broken proxy does: the call must end
    client = LLMClient(LLMConfig.from_settings(llm_settings), http_client=httpx.Client())
    with respx.mock() as mock:
        route = mock.post(URL).mock(side_effect=IndexError("the fake server broke"))
        started = time.monotonic()
        with pytest.raises(LLMError):
            client.complete([{"role": "user", "content": "您好"}])
    assert route.call_count == llm_settings.llm_max_attempts and time.monotonic() - started < 30
