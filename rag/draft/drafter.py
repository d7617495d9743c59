"""Draft a reply for a ticket: retrieve cases, write (LLM or offline), guard, cite."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import replace
from typing import Callable, Literal, Sequence

from rag.draft import offline, output_checks
from rag.draft.actions import classify_reply
from rag.draft.deferral import VerdictTexts
from rag.draft.guards import (block, escape_field, injection_signals, repeats_prompt, scan_fields, scrub,
                              unescape_field)
from rag.configs import DraftConfig
from rag.dataset_markers import REPLY_GREETING, strip_image_markers
from rag.draft.chat import ChatModel
from rag.draft.policy import Verdict, decide
from rag.draft.llm_bounds import Deadline
from rag.draft.prompts import PromptPair
from rag.errors import ContextLengthError, LLMError
from rag.links import find_links
from rag.records import Action, Citation, Draft, Hit, Ticket, Usage
from rag.retrieve import Filters, Retriever

Fallback = Literal["offline", "none"]
# Small models put the marker anywhere (first line, mid-sentence, twice): the first one is the action,
# every one is removed from the text.
_ACTION = re.compile(r"[ \t]*\bACTION\s*[:：]\s*(answer|ask_for_info|escalate)\b[ \t]*\n?", re.I)
CASE_ANSWER_CHARS = 700
_CHINESE_REPLY = f"用中文回复，以“{REPLY_GREETING}”开头"
_ENGLISH_REPLY = 'The customer wrote in English: reply in English, starting with "Hello,"'


# Why a draft is not an answer, for the agent reading it.
_VERDICT_NOTES = {
    "no_fit": "no past case fits (match {match:.2f} < {threshold:.2f}): asking the customer for details",
    "no_cases": "no similar past case: asking the customer for details",
    "vague": "the ticket does not describe the problem yet",
    "off_topic": "the ticket is not about Qiniu's services",
    "staff": "staff must act in the back office",
    "bug_report": "a bug report: handed over to engineers",
    "feature_request": "a feature request: handed over to the product team",
}


def without_injected_lines(ticket: Ticket) -> Ticket:
    """The ticket minus the lines that carry injection signals (unchanged when nothing else would remain)."""
    lines = ticket.text.splitlines()
    kept = [line for line in lines if not injection_signals(line)]
    if len(kept) == len(lines) or not "".join(kept).strip():
        return ticket
    return replace(ticket, text="\n".join(kept))


def format_cases(hits: Sequence[Hit], answer_chars: int = CASE_ANSWER_CHARS) -> str:
    blocks = []
    for n, h in enumerate(hits, start=1):
        question = strip_image_markers(h.case.question)[:300]
        answer = strip_image_markers(h.answer)[:answer_chars]
        # Case text is data too (feedback can become a case): escaped into its own block.
        blocks.append(
            f"<case_{n}>\n[案例 {n}] 编号 {h.case_id}｜{escape_field(h.product)}｜{escape_field(h.subcategory)}\n"
            f"标题：{escape_field(h.title)}\n客户问题：{escape_field(question)}\n客服回复：{escape_field(answer)}\n</case_{n}>"
        )
    return "\n\n".join(blocks)


def ticket_fields(ticket: Ticket) -> dict[str, str]:
    """Every part of a ticket that reaches the prompt, by the name of its block."""
    history = "\n".join(f"{'客户' if t.role == 'customer' else '客服'}：{t.text}" for t in ticket.history)
    return {"ticket_title": ticket.title, "ticket_product": ticket.product or "", "conversation_history": history,
            "customer_message": ticket.text}


def parse_llm_reply(text: str) -> tuple[Action | None, str]:
    m = _ACTION.search(text)
    if not m:
        return None, text.strip()
    return m.group(1).lower(), _ACTION.sub("", text).strip()  # type: ignore[return-value]  # _ACTION matches only Action values


class Drafter:
    """Build it through ``Pipeline.make_drafter`` (every face does); tests may wire one by hand."""

    def __init__(
        self,
        config: DraftConfig,
        retriever: Retriever,
        *,
        llm: ChatModel | None = None,
        prompts: PromptPair | None = None,
    ) -> None:
        self.config = config
        self.retriever = retriever
        self.llm = llm
        self.prompts = prompts or PromptPair.load(config.prompts_dir, config.prompt_variant)
        self.known_links = retriever.cases.known_links
        # Bounds the LLM calls in flight: when every slot hangs on a slow endpoint, the next drafts fall
        # back to offline at once instead of pinning the service's worker threads.
        self._llm_slots = threading.BoundedSemaphore(config.llm_max_concurrent)
        self.corpus_ids = retriever.cases.identifiers
        self.texts = VerdictTexts(config.prompts_dir)
        model = getattr(retriever, "match_model", None)
        self.threshold = (config.answer_threshold if config.answer_threshold is not None
                          else model.threshold if model is not None else 0.5)

    @property
    def backend(self) -> str:
        return f"llm:{self.llm.model}" if self.llm else "offline"

    def draft(
        self,
        ticket: Ticket | str,
        *,
        k: int | None = None,
        exclude: Sequence[str] = (),
        fallback: Fallback = "none",
        on_delta: Callable[[str], None] | None = None,
    ) -> Draft:
        """``on_delta`` receives the streamed reply only as checked, scrubbed sentences, never raw model text."""
        if isinstance(ticket, str):
            ticket = Ticket(text=ticket)
        started = time.perf_counter()
        k = k or self.config.top_k
        notes = scan_fields(ticket_fields(ticket))
        # Injected instructions say nothing about the problem: the match and the verdict are judged on the rest.
        asked = without_injected_lines(ticket)
        hits = self.retriever.retrieve(asked, Filters.of(exclude=exclude), max(k, self.config.context_cases)).hits
        verdict = decide(asked, hits, self.threshold)
        if self.llm is None:
            draft = self._offline(ticket, hits[:k], verdict, notes)
        else:
            try:
                draft = self._llm_bounded(ticket, hits, verdict, notes, on_delta)
            except LLMError as exc:
                if fallback != "offline":
                    raise
                draft = self._offline(ticket, hits[:k], verdict, notes + [f"LLM failed, offline fallback: {exc}"])
                draft = replace(draft, fallback=True)
        return replace(draft, latency_ms=round((time.perf_counter() - started) * 1000, 1),
                       retrieved=tuple(h.case_id for h in hits[:k]), verdict=verdict.kind)

    def _finish(
        self, ticket: Ticket, text: str, action: Action, confidence: float, used: Sequence[Hit], *, backend: str,
        usage: Usage = Usage(), notes: Sequence[str] = (), related: Sequence[Hit] = (),
    ) -> Draft:
        report = scrub(
            text,
            self._ticket_context(ticket),
            known_links=self.known_links,
            allowlist=self.config.link_allowlist,
            corpus=self.corpus_ids,
        )
        extra = []
        if report.invented_links:
            extra.append(f"removed links not in the corpus or allow-list: {', '.join(report.invented_links)}")
        if report.removed:
            extra.append(f"removed {len(report.removed)} identifier(s) of other customers")
        return Draft(
            text=report.text.strip(),
            action=action,
            confidence=confidence,
            citations=tuple(Citation(h.case_id, h.title, h.chunk_text[:400], round(h.score, 4), "source", h.match)
                            for h in used)
            + tuple(Citation(h.case_id, h.title, h.chunk_text[:400], round(h.score, 4), "related", h.match)
                    for h in related if h.case_id not in {u.case_id for u in used}),
            links=find_links(report.text),
            backend=backend,
            prompt_id=self.prompts.id if backend != "offline" else "offline",
            prompt_version=self.prompts.version if backend != "offline" else "offline-1",
            latency_ms=0.0,
            usage=usage,
            removed=report.removed + report.invented_links,
            notes=tuple(notes) + tuple(extra),
        )

    @staticmethod
    def _ticket_context(ticket: Ticket) -> str:
        history = "\n".join(t.text for t in ticket.history)
        return f"{ticket.title}\n{ticket.text}\n{history}"

    def _offline(self, ticket: Ticket, hits: Sequence[Hit], verdict: Verdict, notes: list[str]) -> Draft:
        related = hits[:3]
        if verdict.action == "answer":
            c = offline.compose(ticket, hits, fitting={h.case_id for h in verdict.fitting})
            notes = notes + list(c.notes)
            # The fitting case's answer may hold nothing reusable (a status update): then it is not an answer.
            return self._finish(ticket, c.text, c.action, verdict.match, c.used, backend="offline", notes=notes,
                                related=related)
        notes = notes + [_VERDICT_NOTES.get(verdict.kind, verdict.kind).format(match=verdict.match,
                                                                                 threshold=verdict.threshold)]
        text = self.texts.reply(verdict)
        if offline.is_english(ticket):
            text = f"{offline.ENGLISH_NOTE}\n{text}"
        return self._finish(ticket, text, verdict.action, verdict.match, verdict.fitting,
                            backend="offline", notes=notes, related=related)

    def messages(self, ticket: Ticket, hits: Sequence[Hit], verdict: Verdict | None = None) -> list[dict[str, str]]:
        values = {"allowed_domains": "、".join(self.config.link_allowlist)}
        if "reply_language" in self.prompts.system.variables:
            # A variant may state the language outright: told "if the customer wrote in English, reply in
            # English", the 0.5B model answered Chinese tickets in English when no case was shown.
            values["reply_language"] = _ENGLISH_REPLY if offline.is_english(ticket) else _CHINESE_REPLY
        system = self.prompts.system.render(**values)
        fields = ticket_fields(ticket)
        fields["ticket_product"] = ticket.product or (hits[0].product if hits else "未知")
        verdict = verdict or decide(ticket, hits, self.threshold)
        # Cases that do not fit are not shown: told not to use them, a 0.5B model copied them anyway, and a
        # big model has nothing to take from them that the verdict's list of details does not say.
        shown = hits if verdict.action == "answer" else []
        user = self.prompts.user.render(
            cases=format_cases(shown, self.config.case_chars) or "（没有可以直接参考的案例）",
            # An empty block is noise a small model tries to answer; the message block is always there.
            ticket="\n".join(block(name, text) for name, text in fields.items()
                             if text.strip() or name == "customer_message"),
            verdict=self.texts.instruction(verdict),
        )
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def _llm_bounded(self, ticket: Ticket, hits: Sequence[Hit], verdict: Verdict, notes: list[str], on_delta) -> Draft:
        deadline = Deadline.after(self.config.llm_deadline)  # one budget for every attempt of this draft
        if not self._llm_slots.acquire(timeout=min(self.config.llm_queue_seconds, deadline.remaining())):
            raise LLMError(f"all {self.config.llm_max_concurrent} LLM slots are busy (RAG_LLM_MAX_CONCURRENT)")
        try:
            return self._llm(ticket, hits, verdict, notes, on_delta, deadline)
        finally:
            self._llm_slots.release()

    def _llm(self, ticket: Ticket, hits: Sequence[Hit], verdict: Verdict, notes: list[str], on_delta,
             deadline: Deadline) -> Draft:
        assert self.llm is not None
        used = list(hits[: self.config.context_cases])
        trimmed = False
        context = self._ticket_context(ticket)
        while True:
            messages = self.messages(ticket, used, verdict)
            checker = output_checks.ReplyChecker(context, messages[0]["content"], self.config.link_allowlist)
            try:
                if on_delta is not None:
                    gate = output_checks.CheckedStream(checker, self._scrub_piece(context), on_delta)
                    parts = []
                    for delta in self.llm.stream(messages, deadline=deadline):
                        parts.append(delta)
                        gate.feed(delta)
                    gate.close()
                    text, usage = "".join(parts), Usage()
                else:
                    completion = self.llm.complete(messages, deadline=deadline)
                    text, usage = completion.text, completion.usage
                break
            except ContextLengthError:
                # One more try with the least relevant cases dropped; a second overflow is final.
                if trimmed or len(used) <= 1:
                    raise
                used = used[: max(1, len(used) // 2)]
                trimmed = True
                notes.append(f"context too long: retried with {len(used)} case(s)")
        action, body = parse_llm_reply(unescape_field(text))
        if not body.strip():  # small models sometimes stop after the ACTION line: that is no draft
            raise LLMError("the LLM reply has no text besides the ACTION line")
        checked = checker.check(body)
        if checked.refusal:
            raise LLMError(checked.refusal)
        body = output_checks.strip_invisible(body)
        if repeats_prompt(body, messages[0]["content"]):
            raise LLMError("the LLM reply quoted the system prompt; refused")
        action = self._action(action, body, verdict, notes)
        draft = self._finish(ticket, body, action, verdict.match, verdict.fitting, backend=self.backend, usage=usage,
                             notes=notes, related=used)
        return output_checks.apply(draft, checked)

    @staticmethod
    def _action(said: Action | None, body: str, verdict: Verdict, notes: list[str]) -> Action:
        """The verdict decides the action; the model's reply may only make it more cautious.

        The prompts ask for the body alone (a 0.5B model asked for the action first often stopped after it);
        a model that still writes an ``ACTION:`` line anywhere is read, so a big model can say the cases do
        not fit, and a reply that mainly asks for details or hands over is not labelled an answer.
        """
        if said is None:
            inferred = classify_reply(body)
            if verdict.action == "answer" and inferred != "answer":
                notes.append(f"the LLM reply does not answer: action inferred from the text ({inferred})")
                return inferred
            return verdict.action
        if said == verdict.action:
            return verdict.action
        if said == "answer":
            # The model may not overrule the match verdict: no past case fits, so this is not an answer.
            notes.append(f"LLM said answer, but no past case fits (match {verdict.match:.2f} < "
                         f"{verdict.threshold:.2f}): marked {verdict.action}")
            return verdict.action
        notes.append(f"LLM said {said} where the match verdict said {verdict.action}: marked {said}")
        return said

    def _scrub_piece(self, context: str) -> Callable[[str], str]:
        return lambda piece: scrub(unescape_field(piece), context, known_links=self.known_links,
                                   allowlist=self.config.link_allowlist).text
