"""Issue 12's probes and their variations: obfuscated links, identifiers and injection phrasings; issue 24's
30 LLM-reply probes (defanged, IDN and punycode links, open redirects, spaced phone digits, written-out
emails, messaging handles).

Each row of ``tests/data/guard_probes.jsonl`` is an attack (or, ``keep``, a control that must stay).
A probe survives when its secret is still readable in the scrubbed draft, read in normal form, or
when an injection phrasing goes unflagged in any prompt field. A ``reply`` probe is what an LLM wrote:
it goes through the drafter (a fake OpenAI-compatible endpoint, plain and streamed), and survives when
its secret is readable in the draft or in any streamed delta, read in normal form or letters and
digits only (so a spaced phone number counts even where the normal form does not join it). The aim is
0 survivors.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import httpx
import pytest
import respx

from rag.draft.guards import SLOTS, block, escape_field, scan_fields, scrub
from rag.text.identifiers import CorpusIdentifiers
from rag.text.normalise import normalise
from rag.corpus.parse import parse_paths
from rag.configs import DEFAULT_LINK_ALLOWLIST
from rag.records import Ticket

from rag.settings import PROJECT_ROOT

DATA_DIR = PROJECT_ROOT / "data"
TEST_DATA = Path(__file__).parent / "data"

ROWS = [json.loads(line) for line in (TEST_DATA / "guard_probes.jsonl").read_text(encoding="utf-8").split("\n") if line.strip()]  # U+2028 is not a line break
TICKET = "我的域名 mine.example.com 的证书过期了，怎么重新申请？"


def test_the_table_is_large_enough():
    assert sum(r["kind"] != "keep" for r in ROWS) >= 60


@pytest.fixture(scope="module")
def corpus_ids() -> CorpusIdentifiers:
    cases, _ = parse_paths([DATA_DIR])
    return CorpusIdentifiers.learn(
        (c.id, "\n".join([c.title, c.question, *(t.text for t in c.turns)]), "\n".join(t.text for t in c.turns if t.role == "agent"))
        for c in cases
    )


def _scrub(text, corpus_ids):
    return scrub(f"您好，{text}", TICKET, known_links=frozenset(), allowlist=DEFAULT_LINK_ALLOWLIST, corpus=corpus_ids)


def _readable(text: str) -> str:
    return normalise(text).lower()


@pytest.mark.parametrize("row", [r for r in ROWS if r["kind"] == "link"], ids=lambda r: r["note"])
def test_no_link_survives_and_none_leaves_a_slot(row, corpus_ids):
    out = _scrub(row["text"], corpus_ids).text
    assert _readable(row["secret"]) not in _readable(out), out
    assert not any(slot in out for slot in SLOTS.values()), f"a removed link left a slot: {out}"


@pytest.mark.parametrize("row", [r for r in ROWS if r["kind"] == "identifier"], ids=lambda r: r["note"])
def test_no_identifier_survives(row, corpus_ids):
    out = _scrub(row["text"], corpus_ids).text
    assert _readable(row["secret"]) not in _readable(out), out


@pytest.mark.parametrize("row", [r for r in ROWS if r["kind"] == "keep"], ids=lambda r: r["note"])
def test_public_and_own_details_stay(row, corpus_ids):
    assert row["secret"] in _scrub(row["text"], corpus_ids).text


@pytest.mark.parametrize("field", ["ticket_title", "ticket_product", "conversation_history", "customer_message", "case_text"])
@pytest.mark.parametrize("row", [r for r in ROWS if r["kind"] == "injection"], ids=lambda r: r["text"][:30])
def test_injection_is_flagged_in_every_field(row, field):
    assert scan_fields({field: f"证书过期了。{row['text']}"}), row["text"]


@pytest.mark.parametrize("row", [r for r in ROWS if r["kind"] == "injection"], ids=lambda r: r["text"][:30])
def test_no_field_can_close_its_block(row):
    for name in ("customer_message", "ticket_title", "conversation_history"):
        b = block(name, row["text"])
        assert b.count(f"</{name}>") == 1 and b.endswith(f"</{name}>")
        inner = b[len(name) + 3 : -len(name) - 4]
        assert "<" not in normalise(inner) and ">" not in normalise(inner)


def test_ordinary_tickets_are_not_flagged():
    for text in ("进入控制台 → CDN → 域名管理，显示证书过期", "How do I show the upload instructions in the SDK?",
                 "请问之前的账单在哪里看", "我想忽略掉这个告警邮件可以吗", "空间域名 cdn.mine.com 回源失败"):
        assert not scan_fields({"customer_message": text}), text


def test_escaping_keeps_ordinary_text():
    assert escape_field("您好，证书过期了：https://portal.qiniu.com/a?b=1&c=2") == "您好，证书过期了：https://portal.qiniu.com/a?b=1&amp;c=2"


# -- Issue 24: what an LLM wrote, through the drafter ------------------------------------------------------

SAMPLE = "我的CDN域名证书过期了，怎么更换免费证书？"  # the README's ticket
LLM_URL = "http://llm.test/v1/chat/completions"
REPLY_ROWS = [r for r in ROWS if r["kind"] == "reply"]


def test_the_llm_reply_table_has_issue_24s_thirty_probes():
    assert len(REPLY_ROWS) == 30


def _letters_and_digits(text: str) -> str:
    """Our own reading, not the guards': what survives here survives whatever the normal form does."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).lower() if ch.isalnum())


def _survives(secret: str, text: str) -> bool:
    return _readable(secret) in _readable(text) or _letters_and_digits(secret) in _letters_and_digits(text)


@pytest.fixture(scope="module")
def llm_drafter(corpus_settings, corpus_pipeline):
    from rag.llm.client import LLMClient

    settings = corpus_settings.updated(llm={"base_url": "http://llm.test/v1", "model": "m", "retry": {"max_attempts": 1}})
    llm = LLMClient(settings.llm, http_client=httpx.Client())
    return corpus_pipeline.make_drafter(settings=settings, llm=llm, offline=False)


def _completion(text: str) -> dict:
    return {"id": "c", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}


@pytest.mark.parametrize("row", REPLY_ROWS, ids=lambda r: r["note"])
def test_no_llm_reply_probe_survives(row, llm_drafter, sse):
    reply = f"您好，{row['text']}"
    with respx.mock() as mock:
        mock.post(LLM_URL).mock(return_value=httpx.Response(200, json=_completion(reply)))
        plain = llm_drafter.draft(Ticket(SAMPLE), fallback="offline")
    deltas: list[str] = []
    with respx.mock() as mock:
        mock.post(LLM_URL).mock(return_value=httpx.Response(200, content=sse(reply[:12], reply[12:]),
                                                            headers={"content-type": "text/event-stream"}))
        streamed = llm_drafter.draft(Ticket(SAMPLE), fallback="offline", on_delta=deltas.append)
    for where, text in (("draft", plain.text), ("streamed draft", streamed.text), ("streamed deltas", "".join(deltas))):
        assert not _survives(row["secret"], text), f"{where}: {text}"


# -- A reply whose substance the guard removed says so -----------------------------------------------------

@pytest.mark.parametrize("reply", [
    "请访问 https://qiniu-cert-renew.ru/login 续期。",
    "请登录 hxxps://qiniu-cert-renew[.]ru/login 续期。",
    "请访问七牛证书续期.com续期。",
    "请登录 https://portal.qiniu.com/login?next=https://evil.ru/x 续期。",
    "请把 AccessKey 发送到 hacker[at]evil[dot]ru 。",
    "请添加客服微信 qiniukf888 办理。",
])
def test_a_reply_whose_link_was_removed_is_reported_hollow(reply, corpus_ids):
    report = _scrub(reply, corpus_ids)
    assert report.substance_removed and report.hollow, report
    assert all(h in report.text for h in report.hollow)


@pytest.mark.parametrize("reply", [
    "证书可以在 https://portal.qiniu.com/certificate/ssl 申请。",
    "您的域名 mine.example.com 已配置，稍后生效。",
    "请访问 https://portal.qiniu.com/certificate/ssl 续期。之前 evil.ru/x 的说法不对。",
])
def test_a_kept_link_or_an_unpointed_removal_is_not_hollow(reply, corpus_ids):
    report = _scrub(reply, corpus_ids)
    assert not report.substance_removed, report
