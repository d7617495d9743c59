from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, HTTPException

from rag.records import Ticket, Turn
from rag.service.deps import FeedbackDep, PipelineDep, SettingsDep
from rag.service.schemas import DraftRequest, DraftResponse

router = APIRouter(prefix="/v1/drafts", tags=["drafts"])


@router.post("", response_model=DraftResponse, summary="Draft a reply for a ticket")
def create_draft(body: DraftRequest, settings: SettingsDep, pipeline: PipelineDep, feedback: FeedbackDep) -> DraftResponse:
    text = body.text.strip()
    if not text:
        raise HTTPException(status_code=422, detail="text: the ticket is empty")
    if len(text) > settings.max_ticket_chars:
        raise HTTPException(status_code=413, detail=f"text: the ticket has {len(text)} characters; the limit is {settings.max_ticket_chars}")
    ticket = Ticket(text=text, title=body.title.strip(), product=body.product or None,
                    history=tuple(Turn(role=t.role, text=t.text) for t in body.history))
    # The LLM failing must not take the service down: fall back to the offline draft, flagged.
    draft = pipeline.drafter.draft(ticket, k=body.k, fallback="offline")
    top = pipeline.retriever.case_metadata(draft.citations[0].case_id) if draft.citations else None
    product = ticket.product or (str(top.get("product", "")) if top else "")
    subcategory = str(top.get("subcategory", "")) if top else ""
    draft_id = feedback.record_draft(ticket, draft, product, subcategory)
    d = asdict(draft)
    return DraftResponse(
        draft_id=draft_id, text=draft.text, action=draft.action, confidence=draft.confidence,
        citations=d["citations"], links=list(draft.links), backend=draft.backend, fallback=draft.fallback,
        prompt_id=draft.prompt_id, prompt_version=draft.prompt_version, latency_ms=draft.latency_ms,
        usage={"prompt_tokens": draft.usage.prompt_tokens, "completion_tokens": draft.usage.completion_tokens},
        removed=list(draft.removed), notes=list(draft.notes),
    )
