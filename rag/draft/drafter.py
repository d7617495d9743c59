"""Draft a reply for a ticket: retrieve cases → the answer policy's verdict → a writer → the guard → ``Draft``.

Every part is given (``rag.pipeline`` wires them): the drafter never reaches into the retriever, and the guard
that checks a whole draft is the one that checks each streamed sentence.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Callable, Literal, Sequence

from rag.configs import DraftConfig
from rag.draft import output_checks
from rag.draft.deferral import verdict_note
from rag.draft.guards import Guard, injection_signals
from rag.draft.policy import AnswerPolicy
from rag.draft.writers import Reply, Writer
from rag.draft.writers.llm import ticket_context, ticket_fields
from rag.errors import LLMError
from rag.notes import LLMFallback, Note, RemovedIdentifiers, RemovedLinks, SubstanceRemoved
from rag.records import Citation, Draft, Hit, Ticket
from rag.retrieve import Filters, Retriever
from rag.text.links import find_links

Fallback = Literal["offline", "none"]


def without_injected_lines(ticket: Ticket) -> Ticket:
    """The ticket minus the lines that carry injection signals (unchanged when nothing else would remain)."""
    lines = ticket.text.splitlines()
    kept = [line for line in lines if not injection_signals(line)]
    if len(kept) == len(lines) or not "".join(kept).strip():
        return ticket
    return replace(ticket, text="\n".join(kept))


class Drafter:
    """Build it through ``Pipeline.make_drafter`` (every face does)."""

    def __init__(self, config: DraftConfig, retriever: Retriever, policy: AnswerPolicy, writer: Writer, guard: Guard,
                 *, offline: Writer | None = None, top_k: int = 5) -> None:
        self.config = config
        self.top_k = top_k  # RAG_TOP_K: the retrieval group's, passed along by the pipeline
        self.retriever = retriever
        self.policy = policy
        self.writer = writer
        self.guard = guard
        # The writer used when ``writer`` fails and the caller asked for a fallback (an LLM that is down).
        self.offline = offline or writer

    @property
    def backend(self) -> str:
        return self.writer.backend

    @property
    def streams(self) -> bool:
        return self.writer.streams

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
        k = k or self.top_k
        notes: list[Note] = list(self.guard.scan(ticket_fields(ticket)))
        # Injected instructions say nothing about the problem: the match and the verdict are judged on the rest.
        asked = without_injected_lines(ticket)
        hits = self.retriever.retrieve(asked, Filters.of(exclude=exclude), max(k, self.config.llm_context_cases)).hits
        verdict = self.policy.decide(asked, hits)
        if verdict.action != "answer":
            notes.append(verdict_note(verdict))  # why it does not answer, whichever writer words it
        fell_back = False
        try:
            reply = self.writer.write(ticket, hits, verdict, k=k, on_delta=on_delta)
        except LLMError as exc:
            if fallback != "offline" or self.offline is self.writer:
                raise
            reply = self.offline.write(ticket, hits, verdict, k=k)
            notes.append(LLMFallback(str(exc)))
            fell_back = True
        draft = self._finish(ticket, reply, notes)
        return replace(draft, fallback=fell_back, latency_ms=round((time.perf_counter() - started) * 1000, 1),
                       retrieved=tuple(h.case_id for h in hits[:k]), verdict=verdict.kind)

    def _finish(self, ticket: Ticket, reply: Reply, notes: Sequence[Note]) -> Draft:
        context = ticket_context(ticket)
        report = self.guard.scrub(reply.text, context)
        extra: list[Note] = []
        if report.invented_links:
            extra.append(RemovedLinks(report.invented_links))
        if report.removed:
            extra.append(RemovedIdentifiers(len(report.removed)))
        used_ids = {u.case_id for u in reply.used}
        draft = Draft(
            text=report.text.strip(),
            action=reply.action,
            confidence=reply.confidence,
            citations=tuple(_citation(h, "source") for h in reply.used)
            + tuple(_citation(h, "related") for h in reply.related if h.case_id not in used_ids),
            links=find_links(report.text),
            backend=reply.backend,
            prompt_id=reply.prompt_id,
            prompt_version=reply.prompt_version,
            latency_ms=0.0,
            usage=reply.usage,
            removed=report.removed + report.invented_links,
            notes=tuple(notes) + reply.notes + tuple(extra),
            # each passage as the draft shows it: scrubbed by the same guard
            passages=tuple(replace(p, text=self.guard.scrub(p.text, context).text.strip()) for p in reply.passages),
            hint=replace(reply.hint, resolution=self.guard.scrub(reply.hint.resolution, context).text.strip())
            if reply.hint is not None else None,
        )
        if report.substance_removed and draft.action == "answer":
            # 「请访问 续期。」 with its link gone says nothing: the agent must see it is not an answer (issue 24).
            draft = replace(draft, action="ask_for_info", confidence=round(draft.confidence * 0.3, 3),
                            notes=draft.notes + (SubstanceRemoved(tuple(report.hollow)),))
        return output_checks.apply(draft, reply.checks) if reply.checks is not None else draft


def _citation(h: Hit, relation: Literal["source", "related"]) -> Citation:
    return Citation(h.case_id, h.title, h.chunk_text[:400], round(h.score, 4), relation, h.match)
