"""The LLM backend against the real openai SDK, with every HTTP call answered by respx."""

import json
import re
import time
from dataclasses import replace

import httpx
import pytest
import respx

from rag.draft.details import DOMAIN
from rag.draft.policy import Verdict
from rag.draft.writers.llm import dropped_links, lost_literals, shown_cases
from rag.notes import ContextTrimmed, DocLinkAdded, InternalWordingRemoved, LLMDoesNotAnswer, LLMFallback, LLMMoreCautious, LLMOverruled, SubstanceRemoved
from rag.llm.client import LLMClient
from rag.errors import ContextLengthError, LLMError
from rag.records import Hit, Provenance, Ticket

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
    return corpus_settings.updated(llm={
        "base_url": BASE, "model": "qwen-test", "api_key": "sk-test", "timeout": 5.0,
        "retry": {"max_attempts": 3, "backoff_initial": 0.01, "backoff_max": 0.05},
    })


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
    # The five cases fit, each with its own resolution: all are shown (a repeated template is shown once: below).
    assert "[案例 5]" in user["content"] and "[案例 6]" not in user["content"]
    cited = {c.case_id for c in draft.citations}
    assert sum(case_id in user["content"] for case_id in cited) == 5 and len(cited) == 5
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
    assert any(isinstance(n, LLMFallback) for n in draft.notes)


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
    assert ContextTrimmed(2) in draft.notes
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


def test_a_streamed_sentence_is_checked_exactly_like_the_whole_draft(drafter, sse):
    """Issue 21: the streamed path scrubbed without the corpus's identifiers, so a token only one past customer's
    case holds (not an id by its shape) reached the agent's screen while the final draft replaced it."""
    specific = sorted(drafter.guard.corpus.specific_tokens)
    token = next(t for t in specific if drafter.guard.scrub(f"参考 {t} 配置。", "").text != f"参考 {t} 配置。"
                 and not any(c in t for c in "@.:/"))
    parts = ["您好，请参考 ", f"{token} 这个配置。", "其余步骤见控制台：https://portal.qiniu.com/certificate/apply 。"]
    seen: list[str] = []
    with respx.mock() as mock:
        mock.post(URL).mock(return_value=httpx.Response(200, headers={"content-type": "text/event-stream"},
                                                       content=sse(*parts)))
        streamed = drafter.draft(TICKET, on_delta=seen.append)
    with respx.mock() as mock:
        mock.post(URL).mock(return_value=httpx.Response(200, json={
            "id": "c", "object": "chat.completion", "created": 0, "model": "qwen-test",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(parts)}, "finish_reason": "stop"}]}))
        plain = drafter.draft(TICKET)
    assert token not in "".join(seen) and token not in streamed.text and token not in plain.text
    assert "".join(seen).replace(" ", "") == plain.text.replace(" ", "") == streamed.text.replace(" ", "")


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
    assert draft.action == "ask_for_info" and LLMDoesNotAnswer("ask_for_info") in draft.notes


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
    assert any(isinstance(n, LLMFallback) and "max_tokens" in n.error for n in draft.notes)


def test_the_body_alone_takes_the_verdicts_action(drafter):
    """The prompts ask for the body only; a reply with no ACTION line is the verdict's action, no note."""
    with respx.mock() as mock:
        route = mock.post(URL).mock(return_value=httpx.Response(200, json=completion(GOOD.removeprefix("ACTION: answer\n"))))
        draft = drafter.draft(TICKET)
    system = sent(route)["messages"][0]["content"]
    assert "只写给客户的回复正文" in system and "第一行" not in system
    assert draft.verdict == "fits" and draft.action == "answer" and draft.text.startswith("您好")
    assert not any(isinstance(n, (LLMDoesNotAnswer, LLMMoreCautious, LLMOverruled)) for n in draft.notes)


def test_an_action_line_at_the_end_may_only_lower_the_action(drafter):
    lowered = "您好，这个需要确认您的域名配置后才能判断。\nACTION: ask_for_info"
    with respx.mock() as mock:
        mock.post(URL).mock(return_value=httpx.Response(200, json=completion(lowered)))
        draft = drafter.draft(TICKET)
    assert draft.action == "ask_for_info" and "ACTION" not in draft.text
    assert LLMMoreCautious("ask_for_info", "answer") in draft.notes


def test_the_prompt_shows_cut_cases_and_no_empty_blocks(llm_settings, corpus_drafter):
    settings = llm_settings.updated(draft={"llm_context_cases": 2, "llm_case_chars": 120, "prompt_variant": "small"},
                                    llm={"seed": 7})
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
    copied = "您好，点击开启-&gt;免费证书，勾选 [同意] &amp; 确认。\n第二步在域名管理里开启 HTTPS：https://portal.qiniu.com/cdn/domain"
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
    from rag.llm.bounds import LLMDeadlineError, cause_is_bound

    a, b = RuntimeError("a"), ValueError("b")
    a.__context__, b.__context__ = b, a
    assert cause_is_bound(a) is None  # walked the loop once (it used to spin forever and hang a whole eval run)
    late, c = LLMDeadlineError("late"), RuntimeError("c")
    c.__context__, late.__context__ = late, c
    assert cause_is_bound(c) is late


def test_a_transport_that_raises_ends_after_its_attempts(llm_settings):
    # respx raising inside the transport is what a broken fake or a broken proxy does: the call must end
    client = LLMClient(llm_settings.llm, http_client=httpx.Client())
    with respx.mock() as mock:
        route = mock.post(URL).mock(side_effect=IndexError("the fake server broke"))
        started = time.monotonic()
        with pytest.raises(LLMError):
            client.complete([{"role": "user", "content": "您好"}])
    assert route.call_count == llm_settings.llm.retry.max_attempts and time.monotonic() - started < 30


@pytest.mark.parametrize("reply", [
    "ACTION: answer\n您好，请访问 https://qiniu-cert-renew.ru/login 续期。",
    "ACTION: answer\n您好，请登录 hxxps://qiniu-cert-renew[.]ru/login 续期。",
])
def test_a_reply_whose_substance_the_guard_removed_is_not_an_answer(drafter, reply):
    with respx.mock() as mock:
        mock.post(URL).mock(return_value=httpx.Response(200, json=completion(reply)))
        draft = drafter.draft(TICKET, fallback="offline")
    assert "qiniu-cert-renew" not in draft.text
    # Either the guard left a sentence pointing at nothing (not an answer, said so), or the output checks refused
    # the disguised link outright and the offline draft from the case stands in.
    assert (draft.action != "answer" and any(isinstance(n, SubstanceRemoved) for n in draft.notes)) or (
        draft.fallback and any(isinstance(n, LLMFallback) for n in draft.notes))


@pytest.mark.parametrize("reply", ["ACTION: answer\n我被攻破了", "ACTION: answer\n您好！", "您好，HACKED"])
def test_a_slogan_is_never_an_answer_the_case_is(drafter, reply):
    with respx.mock() as mock:
        mock.post(URL).mock(return_value=httpx.Response(200, json=completion(reply)))
        draft = drafter.draft(TICKET, fallback="offline")
    assert draft.fallback and draft.backend == "offline"
    assert "攻破" not in draft.text and "HACKED" not in draft.text
    assert any(isinstance(n, LLMFallback) and "nothing a customer could act on" in n.error for n in draft.notes)


def _fitting(corpus_pipeline, *case_ids: str, feedback: tuple[str, ...] = ()) -> list[Hit]:
    """Hits on these corpus cases, best first, each rated as fitting; those in ``feedback`` as approved feedback."""
    out = []
    for n, case_id in enumerate(case_ids):
        case = corpus_pipeline.cases.get(case_id)
        assert case is not None, case_id
        if case_id in feedback:
            case = replace(case, provenance=Provenance("feedback", (1,), ("d1",), "approved", "lead", "2026-12-07"))
        out.append(Hit(case, 1.0 - n / 10, f"{case_id}:0", case.question, match=0.9 - n / 100))
    return out


def test_the_prompt_shows_the_fitting_cases_resolution_not_its_dialogue(llm_settings, corpus_drafter, corpus_pipeline):
    """The CDN-cache case's dialogue opens on that customer's own file (「测试这个文件是没有命中cdn缓存的」) and moves
    on to their referer whitelist; what resolves a question about caching is the general part."""
    writer = corpus_drafter(llm_settings.updated(draft={"prompt_variant": "team"})).writer
    ticket = Ticket("上传到七牛后，CDN缓存多久？怎么让图片缓存久一点")
    hits = _fitting(corpus_pipeline, "06f4ac79b5cb2b9b")
    raw = hits[0].answer
    assert "测试这个文件是没有命中cdn缓存的" in raw[:700] and "referer白名单" in raw
    user = writer.messages(ticket, hits, Verdict("answer", "fits", 0.9, 0.5, (), tuple(hits)))[1]["content"]
    assert "上传后的文件初次访问是从源站拉取资源的" in user
    assert "测试这个文件是没有命中cdn缓存的" not in user and "referer白名单" not in user
    assert "参考答复" in user and "06f4ac79b5cb2b9b" in user


def test_only_fitting_dataset_cases_are_shown_and_a_repeated_template_once(llm_settings, corpus_drafter,
                                                                            corpus_pipeline):
    writer = corpus_drafter(llm_settings.updated(draft={"llm_context_cases": 5})).writer
    ticket = Ticket("证书过期了，怎么重新申请免费证书？")
    # 0349… and ef7f… resolve it with the same template; 3f63… is approved feedback here; 8ae7… does not fit.
    hits = _fitting(corpus_pipeline, "0349d2ec53082698", "ef7fb0576dd6dfa7", "3f631d4bc23358c4", "33692e6a5becf03c",
                    "8ae711b2431c6f6d", feedback=("3f631d4bc23358c4",))
    verdict = Verdict("answer", "fits", 0.9, 0.5, (), tuple(hits[:4]))
    shown = shown_cases(ticket, hits, verdict, 5, 400)
    assert [h.case_id for h, _ in shown] == ["0349d2ec53082698", "33692e6a5becf03c"]
    assert all(text for _, text in shown)
    user = writer.messages(ticket, hits, verdict)[1]["content"]
    assert user.count("[案例 ") == 2 and "8ae711b2431c6f6d" not in user and "3f631d4bc23358c4" not in user
    # the verdict names the cases shown, not the fitting ones left out
    assert "参考案例 0349d2ec53082698、33692e6a5becf03c 与客户的问题相符" in user
    assert [h.case_id for h, _ in shown_cases(ticket, hits, verdict, 1, 400)] == ["0349d2ec53082698"]
    deferred = Verdict("ask_for_info", "no_fit", 0.3, 0.5, (DOMAIN,))
    assert shown_cases(ticket, hits, deferred, 5, 400) == []
    assert "<case_1>" not in writer.messages(ticket, hits, deferred)[1]["content"]


def test_an_answers_only_variant_leaves_deferrals_to_the_teams_texts(llm_settings, corpus_drafter):
    """`prompts/team/answers-only.md`: a ticket no case fits gets the team's deferral (what to send, the area's
    docs), word for word what the offline drafter writes, without a call to the model; an answer still calls it."""
    ticket = Ticket("百度网盘下载太慢了，有什么办法提速吗")
    team = corpus_drafter(llm_settings.updated(draft={"prompt_variant": "team"}))
    offline = corpus_drafter(llm_settings.updated(llm={"base_url": None, "model": None}))
    assert team.writer.answers_only and not corpus_drafter(llm_settings).writer.answers_only
    with respx.mock() as mock:
        route = mock.post(URL).mock(return_value=httpx.Response(200, json=completion(GOOD)))
        deferred = team.draft(ticket)
        assert route.call_count == 0
        answered = team.draft(TICKET)
        assert route.call_count == 1
    expected = offline.draft(ticket)
    assert deferred.action == expected.action != "answer" and deferred.text == expected.text
    assert deferred.backend == "offline" and not deferred.fallback
    assert answered.backend == "llm:qwen-test" and answered.prompt_id == "team"
    with respx.mock() as mock:  # a variant without the file asks the model for the deferral too
        route = mock.post(URL).mock(return_value=httpx.Response(200, json=completion("您好，请问具体是哪个产品呢？")))
        corpus_drafter(llm_settings.updated(draft={"prompt_variant": "default"})).draft(ticket)
        assert route.call_count == 1


def test_an_answer_that_leaves_out_every_link_of_the_case_falls_back_to_the_case(drafter):
    """A 1.5B model paraphrased the page away (「在控制台中设置压缩参数」 for the imageslim link): the offline draft,
    built from the case's own resolution, is the better draft."""
    ticket = Ticket("我的CDN域名证书过期了，怎么更换免费证书？", product="CDN")  # its best case's steps carry links
    vague = "ACTION: answer\n您好，免费证书可以在控制台申请，申请后在域名设置里开启 HTTPS 即可。"
    with respx.mock() as mock:
        mock.post(URL).mock(return_value=httpx.Response(200, json=completion(vague)))
        with pytest.raises(LLMError, match="left out every link"):
            drafter.draft(ticket)
        mock.post(URL).mock(return_value=httpx.Response(200, json=completion(vague)))
        fell_back = drafter.draft(ticket, fallback="offline")
    assert fell_back.fallback and "portal.qiniu.com" in fell_back.text
    with respx.mock() as mock:
        mock.post(URL).mock(return_value=httpx.Response(200, json=completion(GOOD)))
        kept = drafter.draft(ticket)
    assert not kept.fallback and kept.backend.startswith("llm:")
    # a best case whose steps hold no link: a reply in words alone is its resolution, not a dropped link
    assert dropped_links("您好，在域名管理里开启免费证书即可。", ["在域名管理里开启免费证书", "申请：https://portal.qiniu.com/a"]) == []
    assert dropped_links("您好，在控制台申请。", ["申请：https://portal.qiniu.com/a", None]) == ["https://portal.qiniu.com/a"]


def test_the_models_talk_about_the_ticket_is_removed_and_noted(drafter):
    framed = ("ACTION: answer\n您好，感谢您提供参考案例。根据客户的问题，免费证书可以在这里申请："
              "https://portal.qiniu.com/certificate/apply ，验证通过后在域名管理里开启 HTTPS。")
    with respx.mock() as mock:
        mock.post(URL).mock(return_value=httpx.Response(200, json=completion(framed)))
        draft = drafter.draft(TICKET)
    assert draft.text.startswith("您好，免费证书可以在这里申请") and "案例" not in draft.text and "客户的问题" not in draft.text
    assert InternalWordingRemoved(2) in draft.notes


def _edit_drafters(llm_settings, corpus_drafter):
    edit = corpus_drafter(llm_settings.updated(draft={"prompt_variant": "edit"}))
    offline = corpus_drafter(llm_settings.updated(llm={"base_url": None, "model": None}))
    return edit, offline


def test_an_editing_variant_gets_the_offline_answer_and_the_ticket_not_the_cases(llm_settings, corpus_drafter):
    """`prompts/edit/`: the model tidies the offline drafter's answer for this ticket (the 1.5B retold the cases and
    lost what answers); deferrals are the team's texts, with no call."""
    edit, offline = _edit_drafters(llm_settings, corpus_drafter)
    assert edit.writer.edits and edit.writer.answers_only and not corpus_drafter(llm_settings).writer.edits
    expected = offline.draft(TICKET)
    assert expected.action == "answer"
    tidied = "ACTION: answer\n" + expected.text.replace("\n", "。")
    with respx.mock() as mock:
        route = mock.post(URL).mock(return_value=httpx.Response(200, json=completion(tidied)))
        draft = edit.draft(TICKET)
        deferred = edit.draft(Ticket("百度网盘下载太慢了，有什么办法提速吗"))
    assert route.call_count == 1 and deferred.backend == "offline" and not deferred.fallback
    system, user = (m["content"] for m in sent(route)["messages"])
    assert "<draft>" in user and "<customer_message>" in user and "<case_1>" not in user and "客服回复：" not in user
    answer, doc_line = ((expected.text.rpartition("\n")[0], expected.text.rpartition("\n")[2])
                        if DocLinkAdded() in expected.notes else (expected.text, ""))
    for line in answer.splitlines():  # the draft, escaped like case text
        assert line.replace("<", "&lt;").replace(">", "&gt;").strip() in user
    assert not doc_line or doc_line not in user  # the doc links the writer added are not the model's to edit
    assert "{{" not in system + user and "您好" in system
    assert draft.backend == "llm:qwen-test" and draft.prompt_id == "edit" and not draft.fallback
    assert draft.action == "answer" and draft.citations


def test_an_edit_that_drops_a_link_or_grows_past_its_draft_falls_back_to_the_draft(llm_settings, corpus_drafter):
    edit, offline = _edit_drafters(llm_settings, corpus_drafter)
    ticket = Ticket("CDN缓存怎么刷新？有没有接口可以调？")
    expected = offline.draft(ticket)
    links = re.findall(r"https?://[^\s，。]+", expected.text)
    assert len(links) >= 2, expected.text  # the refresh case's answer carries its guide and its API
    lost = expected.text.replace(links[-1], "")
    grown = expected.text + "为了确保您的问题能够得到解决，" * 12
    wrapped = "以下是整理后的回复：\n<reply>\n" + expected.text + "\n</reply>"
    for reply, reason in ((lost, "left out links or code of the draft"), (grown, "past the draft it edits"),
                          (wrapped, "scaffolding")):
        with respx.mock() as mock:
            mock.post(URL).mock(return_value=httpx.Response(200, json=completion(reply)))
            with pytest.raises(LLMError, match=reason):
                edit.draft(ticket)
            mock.post(URL).mock(return_value=httpx.Response(200, json=completion(reply)))
            fell_back = edit.draft(ticket, fallback="offline")
        assert fell_back.fallback and fell_back.text == expected.text, reason


def test_the_doc_links_the_writer_added_are_not_edited_and_come_back_under_the_edit(llm_settings, corpus_drafter, sse):
    """The offline writer adds a 参考文档 line when the answer it reuses holds no link: the model edits the answer
    only (the 0.5B model dropped the line, and the whole edit was refused), and the line is put back under it."""
    edit, offline = _edit_drafters(llm_settings, corpus_drafter)
    ticket = Ticket("我的CDN域名证书过期了，怎么更换免费证书？")
    expected = offline.draft(ticket)
    answer, _, doc_line = expected.text.rpartition("\n")
    assert DocLinkAdded() in expected.notes and doc_line.startswith("参考文档：https://"), expected.text
    with respx.mock() as mock:
        route = mock.post(URL).mock(return_value=httpx.Response(200, json=completion("ACTION: answer\n" + answer)))
        edited = edit.draft(ticket)
    assert doc_line not in sent(route)["messages"][1]["content"] and answer[4:40] in sent(route)["messages"][1]["content"]
    assert not edited.fallback and edited.text.endswith(doc_line) and edited.text.count("参考文档") == 1
    with respx.mock() as mock:  # streamed, the line reaches the screen too: the deltas are the draft
        mock.post(URL).mock(return_value=httpx.Response(200, headers={"content-type": "text/event-stream"},
                                                        content=sse(answer[:30], answer[30:])))
        seen: list[str] = []
        streamed = edit.draft(ticket, on_delta=seen.append)
    assert "".join(seen).replace(" ", "").replace("\n", "") == streamed.text.replace(" ", "").replace("\n", "")
    assert streamed.text.endswith(doc_line)


def test_an_edit_is_asked_only_of_an_answer_the_offline_writer_composed(llm_settings, corpus_drafter, corpus_pipeline):
    """A fitting case with nothing reusable: the offline writer says so instead of answering; there is nothing to
    edit, and a model asked anyway would make the answer up."""
    edit, offline = _edit_drafters(llm_settings, corpus_drafter)
    ticket = Ticket("上传到七牛后，CDN缓存多久？怎么让图片缓存久一点")
    hits = _fitting(corpus_pipeline, "06f4ac79b5cb2b9b")
    verdict = Verdict("answer", "fits", 0.9, 0.5, (), tuple(hits))
    bare = [replace(h, case=replace(h.case, answer="", dialogue=None)) for h in hits]  # the question alone
    composed = offline.writer.write(ticket, hits, verdict, k=5)
    assert composed.action == "answer"
    with respx.mock() as mock:
        route = mock.post(URL).mock(return_value=httpx.Response(200, json=completion(composed.text)))
        unanswered = edit.writer.write(ticket, bare, replace(verdict, fitting=tuple(bare)), k=5)
        assert route.call_count == 0
        edited = edit.writer.write(ticket, hits, verdict, k=5)
        assert route.call_count == 1
    assert unanswered.action != "answer" and unanswered.backend == "offline"
    assert unanswered.text == offline.writer.write(ticket, bare, replace(verdict, fitting=tuple(bare)), k=5).text
    assert edited.backend == "llm:qwen-test" and edited.text == composed.text


def test_an_edit_keeps_the_drafts_links_and_code_verbatim():
    """The 0.5B, editing, kept 「关闭 DNS 预解析就可以了」 and dropped the line of code that does it."""
    draft = ("您好，关闭dns预解析就可以了GlobalConfiguration.getInstance().isDnsOpen = false 参数是persistentNotifyUrl，"
             "文档：https://developer.qiniu.com/kodo/1206/put-policy （e.g. 文件 a.jpg）")
    assert lost_literals("您好，关闭 DNS 预解析就可以了。", draft) == [
        "https://developer.qiniu.com/kodo/1206/put-policy", "GlobalConfiguration.getInstance().isDnsOpen",
        "persistentNotifyUrl"]
    kept = ("您好，关闭 DNS 预解析即可：GlobalConfiguration.getInstance().isDnsOpen = false。参数是 persistentNotifyUrl，"
            "文档：developer.qiniu.com/kodo/1206/put-policy")  # spacing, punctuation and the scheme may change
    assert lost_literals(kept, draft) == []
