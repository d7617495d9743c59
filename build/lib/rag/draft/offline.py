"""The offline drafter: a useful reply with no LLM, built from the best-supported past answer.

Past answers are the team's own words, and many are recurring templates (free-certificate steps,
cache refresh, bill lookup). The retriever's consensus rerank already put the best-supported case
first; this module adapts its answer: filler and greetings removed, one greeting put back, dated or
status-only sentences dropped, links separated from the text glued to them, and a request for the
details a ticket lacks when support is weak. Identifiers of other customers are removed afterwards
by the guards, like any draft's. Deterministic: same ticket and index, same draft.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from rag.draft.actions import classify_reply, needs_staff
from rag.filler import is_filler, strip_image_markers
from rag.links import separate_links
from rag.records import Action, Hit, Ticket
from rag.retrieve.consensus import consensus_scores

_GREETING = re.compile(r"^\s*(您好|你好|亲|hi|hello)[，,！!。\s]*", re.I)
_LEADING_FILLER = re.compile(r"^\s*((麻烦|请)?(您)?稍等(一下|下)?|嗯嗯|好的|收到|抱歉让您久等了|久等了)[，,。！!\s]*")
_DATETIME = re.compile(r"\d{4}[-/.年]\d{1,2}[-/.月]\d{1,2}日?(\s*\d{1,2}:\d{2}(:\d{2})?)?")
_STATUS_ONLY = re.compile(r"^(已(经)?处理完成|处理完成|配置已(经)?下发|已下发|您(再)?确认(一)?下|您看下|好了|可以了|已经可以了)[。！!，,\s]*$")
_SENTENCE = re.compile(r"(?<=[。！？!?])")
# "步骤如下1.免费证书申请…2.补全信息" → one step per line
_GLUED_STEP = re.compile(r"(?<=[\u4e00-\u9fff：:\s])\s*(?=\d{1,2}[.、][\u4e00-\u9fffA-Za-z])")

_MISSING_BY_PRODUCT = {
    "CDN": "加速域名、报错截图或报错信息",
    "对象存储": "空间名称、文件链接（或 key）以及报错信息",
    "账户与财务": "账号（或登录邮箱）以及订单号/账单月份",
    "直播云": "直播空间名、推流/拉流地址以及报错信息",
    "实时互动": "AppID、房间名以及报错信息",
    "云短信": "短信签名/模板 ID 以及发送记录截图",
}
_MISSING_DEFAULT = "具体的报错信息或截图、相关域名或空间名，以及请求 ID（X-Reqid）"
LOW_CONFIDENCE = 0.15
# Words that open a conversation but say nothing about the problem.
_EMPTY_TALK = re.compile(r"在吗|在不在|您好|你好|请问|咨询(一下|下)?|问(一下|下)|有个问题|有问题|客服|人工|麻烦|谢谢|急|hello|hi|\[图片\]|\[REDACTED_[A-Z_]+\]", re.I)
_PUNCT = re.compile(r"[\s\W_]+")


def is_vague(ticket: Ticket) -> bool:
    """True when, greetings aside, the ticket says too little to answer."""
    rest = _PUNCT.sub("", _EMPTY_TALK.sub("", ticket.query_text))
    return len(rest) < 4
MAX_CHARS = 700


@dataclass(frozen=True)
class Composition:
    text: str
    action: Action
    confidence: float
    used: tuple[Hit, ...]
    notes: tuple[str, ...] = ()


def adapt_answer(answer: str) -> str:
    """A past answer, made reusable: no filler turns, greetings, dates or status-only lines."""
    parts: list[str] = []
    for turn in answer.split("\n"):
        turn = strip_image_markers(turn).strip()
        if not turn or is_filler(turn):
            continue
        turn = _GREETING.sub("", turn)
        turn = _LEADING_FILLER.sub("", turn).strip()
        sentences = [s for s in _SENTENCE.split(turn) if s.strip()]
        kept = [s for s in sentences if not _DATETIME.search(s) and not _STATUS_ONLY.match(s.strip())]
        turn = "".join(kept).strip()
        if turn and not is_filler(turn):
            parts.append(_GLUED_STEP.sub("\n", separate_links(turn)))
    text = "\n".join(parts)
    if len(text) > MAX_CHARS:
        cut = text.rfind("。", 0, MAX_CHARS)
        text = text[: cut + 1 if cut > MAX_CHARS // 2 else MAX_CHARS]
    return text


def support(hits: Sequence[Hit], top: int = 5) -> list[float]:
    """How much each of the top hits' answers agrees with the others' (weighted by retrieval score)."""
    pool = list(hits[:top])
    if len(pool) < 2:
        return [0.0] * len(pool)
    weights = [max(h.score, 1e-6) for h in pool]
    return consensus_scores([h.answer for h in pool], weights).tolist()


def missing_info_request(product: str | None) -> str:
    items = _MISSING_BY_PRODUCT.get(product or "", _MISSING_DEFAULT)
    return f"为了进一步帮您确认，麻烦提供一下{items}，这边收到后马上为您排查。"


ESCALATION_NOTE = "这个需要工作人员在后台为您处理，麻烦提供一下相关的账号和域名（或订单号），处理完成后会第一时间告知您。"


def compose(ticket: Ticket, hits: Sequence[Hit]) -> Composition:
    product = ticket.product or (hits[0].product if hits else None)
    if not hits:
        return Composition(f"您好，{missing_info_request(product)}", "ask_for_info", 0.0, (), ("no similar past case",))
    agreement = support(hits)
    chosen_i = next((i for i, h in enumerate(hits[:5]) if len(adapt_answer(h.answer)) >= 8), None)
    if chosen_i is None:
        return Composition(
            f"您好，{missing_info_request(product)}", "ask_for_info", 0.0, tuple(hits[:1]), ("past cases hold no substantive answer",)
        )
    chosen = hits[chosen_i]
    body = adapt_answer(chosen.answer)
    confidence = round(float(min(1.0, agreement[chosen_i] * 1.5)) if agreement else 0.0, 3)
    past_action = classify_reply(chosen.answer)
    notes: list[str] = [f"adapted from case {chosen.case_id}"]
    if needs_staff(ticket.text) or past_action == "escalate":
        action: Action = "escalate"
        text = f"您好，{body}\n{ESCALATION_NOTE}" if past_action != "escalate" else f"您好，{ESCALATION_NOTE}"
    elif is_vague(ticket):
        action = "ask_for_info"
        text = f"您好，请问具体遇到了什么问题呢？{missing_info_request(ticket.product)}"
        notes.append("the ticket does not describe the problem yet")
    elif past_action == "ask_for_info" or confidence < LOW_CONFIDENCE:
        action = "ask_for_info"
        text = f"您好，{body}\n{missing_info_request(product)}"
        if confidence < LOW_CONFIDENCE:
            notes.append(f"low support ({confidence:.2f}): asking for details")
    else:
        action = "answer"
        text = f"您好，{body}"
    supporters = tuple(h for i, h in enumerate(hits[:5]) if i == chosen_i or (agreement and agreement[i] >= 0.3))
    return Composition(text, action, confidence, supporters, tuple(notes))
