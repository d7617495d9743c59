"""The offline writer: a reply an agent can send, composed from past answers with no LLM.

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
from typing import Callable, Collection, Sequence

import numpy as np

from rag.text.markers import REPLY_GREETING
from rag.draft.actions import classify_reply, needs_staff
from rag.draft.details import GOAL, customer_text, details_for, request_for
from rag.draft.resolution import resolve
from rag.draft.sentences import is_doc_link
from rag.text.links import find_links
from rag.draft.deferral import HOLDING, Deferral, VerdictTexts, deferral, desk_hint
from rag.draft.language import is_english
from rag.draft.policy import Verdict, asks_staff, is_vague as _is_vague_text
from rag.draft.writers import Reply
from rag.notes import ComposedFrom, DocLinkAdded, EnglishTicket, LowSupport, NoSimilarCase, Note, NothingReusable, Vague
from rag.records import Action, Hit, Passage, Ticket
from rag.text.rouge import consensus_scores, normalise_answer, pairwise_rouge_l, rouge_l_f1

# The line of doc links the writer adds when the resolution it reuses holds none (notes.DocLinkAdded).
DOC_LINE = "参考文档："

LOW_CONFIDENCE = 0.15
# Fitting cases within this much of the best match are "matched about as well" (choose): dev key content 0.705 ->
# 0.727; 0, 0.05 and 0.2 chose the same.
_AS_WELL = 0.1


@dataclass(frozen=True)
class Composition:
    text: str
    action: Action
    confidence: float
    used: tuple[Hit, ...]
    notes: tuple[Note, ...] = ()
    passages: tuple[Passage, ...] = ()
    body: str = ""        # the reused resolution (and any doc line), whatever the action took of it


def support(hits: Sequence[Hit], top: int = 5) -> list[float]:
    """How much each of the top hits' answers agrees with the others' (weighted by retrieval score)."""
    pool = list(hits[:top])
    if len(pool) < 2:
        return [0.0] * len(pool)
    weights = [max(h.score, 1e-6) for h in pool]
    return consensus_scores([h.answer for h in pool], weights).tolist()


ESCALATION_NOTE = "这个需要工作人员在后台为您处理，处理完成后会第一时间告知您。"
# A resolution that tells the customer what to do or what to expect, not only what staff did.
_TELLS_CUSTOMER = re.compile(r"需要您|您需要|您(这边)?可以|请您|麻烦您|您(这边)?(先|再)|一般|通常|预计|工作日|小时|天内|"
                             r"不支持|无法|不能|只能|需要(设置|添加|提供|提交)")


def hand_over_text(ticket: Ticket, body: str = "") -> str:
    """A hand-over to staff: what the customer must do or may expect first (``body``), that staff will act, and what
    they need to find it minus what the ticket gives (the staff verdict's table: a hand-over once asked for the domain
    the ticket named)."""
    note = f"{ESCALATION_NOTE}\n{request_for(details_for(customer_text(ticket), staff=True))}".rstrip()
    return f"{REPLY_GREETING}{body}\n{note}" if body else f"{REPLY_GREETING}{note}"


# An English ticket answered from a past case (or pointed at one) gets the team's Chinese reply under one line an
# agent would write in English: a bracketed note about the reply itself read to a support lead as the tool talking
# (and "past cases" as internal wording). Any other deferral is written in English (prompts/replies-en/).
ENGLISH_NOTE = "Hello, thank you for contacting Qiniu support. The steps are below in Chinese; let us know if you need them in English."
SUPPORT_FLOOR = 0.3


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
           allowed: Sequence[bool] | None = None, closeness: Sequence[float] | None = None) -> int | None:
    """The candidate whose reusable part is best supported: retrieval score (relative to the best),
    agreement of its body with the other bodies (weighted by score) and closeness to the ticket.

    Leave-one-out over the corpus, bodies' ROUGE-L (``python eval/offline_variants.py``): first usable
    hit 0.237, this blend 0.239; the best of the five would be 0.328. ``allowed`` limits the choice (the
    cases the match verdict found to fit)."""
    usable = [len(b) >= 8 and (allowed is None or allowed[i]) for i, b in enumerate(bodies)]
    if not any(usable):
        return None
    if allowed is not None:
        # The verdict found these cases fit: the best-matching one's resolution, not the most typical answer
        # (agreement favours a neighbouring template over the case about this very problem). Among the cases
        # matched about as well, the one whose customer asked what this ticket asks.
        first = next(i for i in range(len(pool)) if usable[i])
        if closeness is None:
            return first
        as_well = [i for i in range(len(pool)) if usable[i]
                   and (pool[i].match or 0.0) >= (pool[first].match or 0.0) - _AS_WELL]
        return max(as_well, key=lambda i: (closeness[i], -i))
    scores = np.array([max(h.score, 1e-6) for h in pool])
    agree = pairwise_rouge_l([normalise_answer(b) for b in bodies]) @ scores / scores.sum()
    query = normalise_answer(ticket.query_text)
    near = np.array([rouge_l_f1(query, normalise_answer(b)) for b in bodies])
    blend = scores / scores.max() + agree + near
    return int(max((i for i in range(len(pool)) if usable[i]), key=lambda i: blend[i]))


def compose(ticket: Ticket, hits: Sequence[Hit], *, fitting: Collection[str] | None = None) -> Composition:
    """A reply from the best reusable resolution among ``hits`` (``rag.draft.resolution``).

    ``fitting``: the ids of the cases the caller's match verdict found to address the ticket. The body then
    comes from one of them only (the other hits still vote on agreement and links), and weak agreement is
    no reason to ask for details: the verdict has already decided that a case fits.
    """
    # The same table as the verdict's details: the customer is asked for the same things by either path.
    ask = request_for(details_for(customer_text(ticket)))
    if not hits:
        return Composition(f"{REPLY_GREETING}{ask or HOLDING}", "ask_for_info", 0.0, (), (NoSimilarCase(),))
    pool = list(hits[:5])
    agreement = support(pool)
    resolutions = [resolve(h.case, ticket.query_text, [o.answer for o in pool if o is not h]) for h in pool]
    bodies = [r.text if r is not None else "" for r in resolutions]
    allowed = None if fitting is None else [h.case_id in fitting for h in pool]
    chosen_i = choose(ticket, pool, bodies, allowed, [r.closeness if r is not None else 0.0 for r in resolutions])
    if chosen_i is None:
        return Composition(
            f"{REPLY_GREETING}{ask or HOLDING}", "ask_for_info", 0.0, tuple(pool[:1]), (NothingReusable(),),
        )
    chosen = pool[chosen_i]
    resolution = resolutions[chosen_i]
    assert resolution is not None  # choose() only picks a non-empty body
    body = bodies[chosen_i]
    passages = tuple(Passage(chosen.case_id, p.text) for p in resolution.pieces)
    confidence = round(float(min(1.0, agreement[chosen_i] * 1.5)) if agreement else 0.0, 3)
    # What the reused turns do, not the whole dialogue: a fix that follows a question back is an answer.
    past_action = classify_reply(body)
    notes: list[Note] = [ComposedFrom(chosen.case_id)]
    supporters = [i for i in range(len(pool)) if i == chosen_i or (agreement and agreement[i] >= SUPPORT_FLOOR
                                                                    and (allowed is None or allowed[i]))]
    if not find_links(body):
        extra = supporting_links(body, [pool[i] for i in supporters], [max(pool[i].score, 1e-6) for i in supporters], 2)
        if extra:
            body = f"{body}\n{DOC_LINE}" + " ".join(extra)
            notes.append(DocLinkAdded())
    if needs_staff(ticket.text) or past_action == "escalate":
        action: Action = "escalate"
        # what the past agent did for that customer is no news to this one; what the customer must do or may expect
        # first (the TXT record a domain recovery needs) is
        told = past_action != "escalate" or bool(_TELLS_CUSTOMER.search(body))
        text = hand_over_text(ticket, body if told else "")
    elif _is_vague_text(ticket.query_text):
        action = "ask_for_info"
        text = f"{REPLY_GREETING}请问具体遇到了什么问题呢？{request_for((GOAL,))}"
        notes.append(Vague())
    elif past_action == "ask_for_info" or (confidence < LOW_CONFIDENCE and fitting is None):
        action = "ask_for_info"
        text = f"{REPLY_GREETING}{body}\n{ask}".rstrip()
        if confidence < LOW_CONFIDENCE:
            notes.append(LowSupport(confidence))
    else:
        action = "answer"
        text = f"{REPLY_GREETING}{body}"
    if is_english(ticket):
        text = f"{ENGLISH_NOTE}\n{text}"
        notes.append(EnglishTicket())
    return Composition(text, action, confidence, tuple(pool[i] for i in supporters), tuple(notes),
                       passages if action == "answer" else (), body)


class OfflineWriter:
    """Answers by composing from the fitting case (``compose``); otherwise the verdict's deferral text."""

    backend = "offline"
    streams = False

    def __init__(self, texts: VerdictTexts) -> None:
        self.texts = texts

    def write(self, ticket: Ticket, hits: Sequence[Hit], verdict: Verdict, *, k: int,
              on_delta: Callable[[str], None] | None = None) -> Reply:
        hits = hits[:k]
        related = tuple(hits[:3])
        if verdict.action == "answer":
            # The body comes from a dataset case; a fitting feedback case only supports it (votes, links).
            c = compose(ticket, hits, fitting={h.case_id for h in verdict.fitting if h.case.provenance is None})
            # The fitting case's answer may hold nothing reusable (a status update): then it is not an answer.
            reply = Reply(c.text, c.action, verdict.match, c.used, related, self.backend, "offline", "offline-1",
                          notes=c.notes, passages=c.passages,
                          hint=desk_hint(hits, ticket.query_text) if c.action != "answer" else None)
        elif verdict.kind == "staff" and (dataset := {h.case_id for h in verdict.fitting if h.case.provenance is None}):
            reply = self._hand_over(ticket, hits, verdict, dataset)
        else:
            reply = self._defer(ticket, hits, verdict, deferral(verdict, ticket))
        return reply  # nothing is streamed: ``on_delta`` may only ever see guarded text

    def _defer(self, ticket: Ticket, hits: Sequence[Hit], verdict: Verdict, parts: Deferral) -> Reply:
        """The verdict's own text: a deferral, or a hand-over that says nothing of a case."""
        text = self.texts.reply(verdict, parts)
        if is_english(ticket) and not parts.english:
            # a pointer quotes a past case in Chinese: one English line an agent would write goes above it
            text = f"{ENGLISH_NOTE}\n{text}"
        # a hand-over answers from no case: the closest one's resolution still helps the agent who takes it
        hint = parts.hint or (desk_hint(hits, ticket.query_text) if verdict.kind == "staff" else None)
        return Reply(text, verdict.action, verdict.match, verdict.fitting, tuple(hits[:3]), self.backend, "offline",
                     "offline-1", hint=hint)

    def _hand_over(self, ticket: Ticket, hits: Sequence[Hit], verdict: Verdict, fitting: set[str]) -> Reply:
        """A hand-over with a fitting case. The ticket asking staff for something: the case's resolution goes above
        the hand-over when it tells the customer what to do or expect (the TXT record a domain recovery needs
        first, 「每月1-3号不支持过户」); a bare status (「已处理完成」) does not. Only the past answer was a back-office
        action: the part of it this ticket asks about may be none (「需要等待运营商审核通过」 to 「审核一般要多久」),
        and then it is answered (``compose`` hands over when that part is one)."""
        c = compose(ticket, hits, fitting=fitting)
        if c.action == "escalate" or (c.action == "answer" and not asks_staff(customer_text(ticket))):
            text, action, passages = c.text, c.action, c.passages
        elif c.body and _TELLS_CUSTOMER.search(c.body):
            text, action, passages = hand_over_text(ticket, c.body), "escalate", ()
            if is_english(ticket):
                text = f"{ENGLISH_NOTE}\n{text}"
        else:
            return self._defer(ticket, hits, verdict, deferral(verdict, ticket))
        # a staff verdict points at no related case (``Verdict.related``): the hint is the closest case's resolution
        return Reply(text, action, verdict.match, c.used, tuple(hits[:3]), self.backend, "offline", "offline-1",
                     notes=c.notes, passages=passages,
                     hint=desk_hint(hits, ticket.query_text) if action != "answer" else None)
