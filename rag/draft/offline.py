"""The offline drafter: a reply an agent can send, composed from past answers with no LLM.

Past answers are the team's own words, and many are recurring templates (free-certificate steps,
cache refresh, bill lookup). Each candidate answer is split into sentences and steps
(``rag.draft.sentences``); only those that hold for any customer are kept, whole and in order:
no other customer's numbers, times, statuses, files or questions, no redaction token, no link
that carries a customer's id. The answer whose reusable part the other candidates agree with most
(and that is closest to the ticket) is the body; when it has no doc link, the link the supporting
cases agree on is added on its own line. A draft never ends mid-sentence or mid-link. The guards
still check the result, like any draft. Deterministic: same ticket and index, same draft.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Collection, Sequence

import numpy as np
from rapidfuzz.distance import LCSseq

from rag.dataset_markers import REPLY_GREETING
from rag.draft.actions import classify_reply, needs_staff
from rag.draft.details import customer_text, details_to_ask, request_for
from rag.draft.sentences import Judge, Piece, is_doc_link, join, pieces_of, reusable
from rag.links import find_links
from rag.draft.policy import is_vague as _is_vague_text
from rag.records import Action, Hit, Ticket
from rag.rouge import consensus_scores, normalise_answer, pairwise_rouge_l, rouge_l_f1

LOW_CONFIDENCE = 0.15


@dataclass(frozen=True)
class Composition:
    text: str
    action: Action
    confidence: float
    used: tuple[Hit, ...]
    notes: tuple[str, ...] = ()


def support(hits: Sequence[Hit], top: int = 5) -> list[float]:
    """How much each of the top hits' answers agrees with the others' (weighted by retrieval score)."""
    pool = list(hits[:top])
    if len(pool) < 2:
        return [0.0] * len(pool)
    weights = [max(h.score, 1e-6) for h in pool]
    return consensus_scores([h.answer for h in pool], weights).tolist()


ESCALATION_NOTE = "这个需要工作人员在后台为您处理，麻烦提供一下相关的账号和域名（或订单号），处理完成后会第一时间告知您。"


ENGLISH_NOTE = "（以下回复参考的是以往的中文客服案例。This reply draws on past support cases written in Chinese.）"
_SPACE = re.compile(r"\s+")
_LATIN = re.compile(r"[A-Za-z]")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_WORD = re.compile(r"[A-Za-z]+")
# Function words: prose in English has them, a pasted log or JSON error mostly does not.
_ENGLISH_FUNCTION_WORDS = frozenset(
    "the a an to of in on for is are was be my our your i we you it this that how what why can could "
    "please not do does did have has with and or but when after since".split()
)
# Beyond this, a draft stops taking sentences (never cutting one): agents do not paste essays.
BODY_BUDGET = 900
SUPPORT_FLOOR = 0.3


def is_english(ticket: Ticket) -> bool:
    """Mostly Latin letters and next to no Chinese: the customer wrote in English."""
    text = ticket.query_text
    latin, cjk = len(_LATIN.findall(text)), len(_CJK.findall(text))
    function_words = sum(1 for w in _WORD.findall(text) if w.lower() in _ENGLISH_FUNCTION_WORDS)
    return function_words >= 3 and cjk * 4 < latin


def reusable_body(answer: str, others: Sequence[str], ticket: Ticket, budget: int = BODY_BUDGET) -> str:
    """The sentences of ``answer`` that hold for any customer, in order, whole, within ``budget``."""
    judge = Judge.of(ticket.query_text, others)
    kept: list[Piece] = []
    size = 0
    for piece in reusable(pieces_of(answer), judge):
        if kept and size + len(piece.text) > budget:
            break
        if repeats(piece, kept):
            continue
        kept.append(piece)
        size += len(piece.text)
    return join(kept)


def repeats(piece: Piece, kept: Sequence[Piece], similarity: float = 0.8) -> bool:
    """The agent said it already in this answer (a template pasted twice, a step restated)."""
    core = _SPACE.sub("", piece.text)
    for k in kept:
        other = _SPACE.sub("", k.text)
        if len(core) >= 8 and (core in other or LCSseq.normalized_similarity(core, other) >= similarity):
            return True
    return False


def supporting_links(body: str, hits: Sequence[Hit], weights: Sequence[float], limit: int = 2) -> list[str]:
    """Doc links the supporting answers agree on, best supported first, that ``body`` lacks."""
    have = set(find_links(body))
    votes: dict[str, float] = {}
    for hit, w in zip(hits, weights):
        for link in dict.fromkeys(find_links(hit.answer)):
            if link not in have and is_doc_link(link):
                votes[link] = votes.get(link, 0.0) + w
    ranked = sorted(votes.items(), key=lambda kv: -kv[1])
    return [link for link, _ in ranked[:limit]]


def choose(ticket: Ticket, pool: Sequence[Hit], bodies: Sequence[str],
           allowed: Sequence[bool] | None = None) -> int | None:
    """The candidate whose reusable part is best supported: retrieval score (relative to the best),
    agreement of its body with the other bodies (weighted by score) and closeness to the ticket.

    Leave-one-out over the corpus, bodies' ROUGE-L (``python eval/offline_variants.py``): first usable
    hit 0.237, this blend 0.239; the best of the five would be 0.328. ``allowed`` limits the choice (the
    cases the match verdict found to fit)."""
    usable = [len(b) >= 8 and (allowed is None or allowed[i]) for i, b in enumerate(bodies)]
    if not any(usable):
        return None
    scores = np.array([max(h.score, 1e-6) for h in pool])
    agree = pairwise_rouge_l([normalise_answer(b) for b in bodies]) @ scores / scores.sum()
    query = normalise_answer(ticket.query_text)
    near = np.array([rouge_l_f1(query, normalise_answer(b)) for b in bodies])
    blend = scores / scores.max() + agree + near
    return int(max((i for i in range(len(pool)) if usable[i]), key=lambda i: blend[i]))


def compose(ticket: Ticket, hits: Sequence[Hit], *, fitting: Collection[str] | None = None) -> Composition:
    """A reply from the best reusable past answer among ``hits``.

    ``fitting``: the ids of the cases the caller's match verdict found to address the ticket. The body then
    comes from one of them only (the other hits still vote on agreement and links), and weak agreement is
    no reason to ask for details: the verdict has already decided that a case fits.
    """
    product = ticket.product or (hits[0].product if hits else None)
    # The same table as the verdict's details: the customer is asked for the same things by either path.
    ask = request_for(details_to_ask(customer_text(ticket), product))
    if not hits:
        return Composition(f"{REPLY_GREETING}{ask}", "ask_for_info", 0.0, (), ("no similar past case",))
    pool = list(hits[:5])
    agreement = support(pool)
    bodies = [reusable_body(h.answer, [o.answer for o in pool if o is not h], ticket) for h in pool]
    allowed = None if fitting is None else [h.case_id in fitting for h in pool]
    chosen_i = choose(ticket, pool, bodies, allowed)
    if chosen_i is None:
        return Composition(
            f"{REPLY_GREETING}{ask}", "ask_for_info", 0.0, tuple(pool[:1]),
            ("past cases hold no reusable answer",),
        )
    chosen = pool[chosen_i]
    body = bodies[chosen_i]
    confidence = round(float(min(1.0, agreement[chosen_i] * 1.5)) if agreement else 0.0, 3)
    past_action = classify_reply(chosen.answer)
    notes: list[str] = [f"composed from case {chosen.case_id}"]
    supporters = [i for i in range(len(pool)) if i == chosen_i or (agreement and agreement[i] >= SUPPORT_FLOOR
                                                                    and (allowed is None or allowed[i]))]
    if not find_links(body):
        extra = supporting_links(body, [pool[i] for i in supporters], [max(pool[i].score, 1e-6) for i in supporters], 2)
        if extra:
            body = f"{body}\n参考文档：" + " ".join(extra)
            notes.append("doc link added from the supporting cases")
    if needs_staff(ticket.text) or past_action == "escalate":
        action: Action = "escalate"
        text = f"{REPLY_GREETING}{body}\n{ESCALATION_NOTE}" if past_action != "escalate" else f"{REPLY_GREETING}{ESCALATION_NOTE}"
    elif _is_vague_text(ticket.query_text):
        action = "ask_for_info"
        text = f"{REPLY_GREETING}请问具体遇到了什么问题呢？{request_for(details_to_ask(customer_text(ticket), ticket.product))}"
        notes.append("the ticket does not describe the problem yet")
    elif past_action == "ask_for_info" or (confidence < LOW_CONFIDENCE and fitting is None):
        action = "ask_for_info"
        text = f"{REPLY_GREETING}{body}\n{ask}"
        if confidence < LOW_CONFIDENCE:
            notes.append(f"low support ({confidence:.2f}): asking for details")
    else:
        action = "answer"
        text = f"{REPLY_GREETING}{body}"
    if is_english(ticket):
        text = f"{ENGLISH_NOTE}\n{text}"
        notes.append("English ticket: the reply says it draws on Chinese cases")
    return Composition(text, action, confidence, tuple(pool[i] for i in supporters), tuple(notes))
