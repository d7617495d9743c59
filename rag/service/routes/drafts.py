from __future__ import annotations

import json
import queue
import threading
from dataclasses import asdict, replace
from typing import Iterator

from fastapi import APIRouter, HTTPException
from fastapi.responses import StreamingResponse

from rag.configs import ServiceConfig
from rag.errors import RagError
from rag.feedback.store import FeedbackStore
from rag.pipeline import Pipeline
from rag.records import Draft, Ticket, Turn
from rag.service.deps import FeedbackDep, PipelineDep, ServiceDep
from rag.service.schemas import CitationOut, DraftRequest, DraftResponse, HintOut, PassageOut, ProvenanceOut, error_responses
from rag.notes import render
from rag.service.security import draft_caps_problem
from rag.service.statuses import status_of

router = APIRouter(prefix="/v1/drafts", tags=["drafts"])


def _ticket(body: DraftRequest, service: ServiceConfig, pipeline: Pipeline) -> Ticket:
    # The middleware checks the caps on the raw JSON; checked again here, on what FastAPI parsed, so they hold
    # whatever reached the route (issue 24: a Content-Type spelling once skipped the middleware's check).
    problem = draft_caps_problem(body.model_dump(), service)
    if problem:
        raise HTTPException(status_code=413, detail=problem)
    text = body.text.strip()
    if not text:
        raise HTTPException(status_code=422, detail="text: the ticket is empty")
    if len(text) > service.max_ticket_chars:
        raise HTTPException(status_code=413, detail=f"text: the ticket has {len(text)} characters; the limit is {service.max_ticket_chars}")
    # "cdn" becomes "CDN"; a product no case has is refused, never recorded as a new product.
    product = pipeline.cases.catalog.product(body.product) if body.product else None
    return Ticket(text=text, title=body.title.strip(), product=product,
                  history=tuple(Turn(role=t.role, text=t.text) for t in body.history))


def _response(ticket: Ticket, draft: Draft, pipeline: Pipeline, feedback: FeedbackStore) -> DraftResponse:
    cases = pipeline.cases
    # Filed under the ticket's product, else the product of the case the reply is built from; a "related" case
    # was cited because it does not address this ticket, so its product says nothing about the ticket.
    source = next((c.case_id for c in draft.citations if c.relation == "source"), None)
    top = cases.get(source) if source else None
    product = ticket.product or (top.product if top else "")
    subcategory = top.subcategory if top else ""
    draft = replace(draft, product=ticket.product or "")  # the drafter leaves it empty (as `rag draft --json`)
    draft_id = feedback.record_draft(ticket, draft, product, subcategory)
    # A cited case that came from feedback says so (provenance), so an agent can weigh it.
    cited = {c.case_id: cases.get(c.case_id) for c in draft.citations}
    citations = [CitationOut(**asdict(c), product=getattr(cited[c.case_id], "product", ""),
                             provenance=ProvenanceOut.of(getattr(cited[c.case_id], "provenance", None)))
                 for c in draft.citations]
    return DraftResponse(
        draft_id=draft_id, text=draft.text, action=draft.action, confidence=draft.confidence,
        verdict=draft.verdict, citations=citations, links=list(draft.links), backend=draft.backend, fallback=draft.fallback,
        prompt_id=draft.prompt_id, prompt_version=draft.prompt_version, latency_ms=draft.latency_ms,
        usage={"prompt_tokens": draft.usage.prompt_tokens, "completion_tokens": draft.usage.completion_tokens},
        removed=list(draft.removed), notes=render(draft.notes, "en"), notes_zh=render(draft.notes, "zh"),
        passages=[PassageOut(case_id=p.case_id, text=p.text) for p in draft.passages],
        hint=HintOut(**asdict(draft.hint)) if draft.hint is not None else None,
        retrieved=list(draft.retrieved), product=draft.product,
    )


@router.post("", response_model=DraftResponse, summary="Draft a reply for a ticket", responses=error_responses(400, 413, 415))
def create_draft(body: DraftRequest, service: ServiceDep, pipeline: PipelineDep, feedback: FeedbackDep) -> DraftResponse:
    ticket = _ticket(body, service, pipeline)
    # The LLM failing must not take the service down: fall back to the offline draft, flagged.
    draft = pipeline.drafter.draft(ticket, k=body.k, fallback="offline")
    return _response(ticket, draft, pipeline, feedback)


def _sse(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


_STREAM_DOC = """Server-sent events: `delta` events (`{"text": "…"}`) carry the draft's text as it is written, as
the drafter passes it on after its safety checks; the last event is `draft` with the whole draft object (the
same body as `POST /v1/drafts`), or `error` with the usual error body. Without an LLM the checked text comes
as one `delta`."""


@router.post("/stream", summary="Draft a reply, streamed as server-sent events", description=_STREAM_DOC,
             response_class=StreamingResponse, responses={200: {"content": {"text/event-stream": {}}}, **error_responses(400, 413, 415, 429)})
def stream_draft(body: DraftRequest, service: ServiceDep, pipeline: PipelineDep, feedback: FeedbackDep) -> StreamingResponse:
    ticket = _ticket(body, service, pipeline)  # bad requests fail before the stream starts, with a status
    events: queue.Queue[tuple[str, object]] = queue.Queue()
    sent: list[str] = []

    def on_delta(text: str) -> None:
        sent.append(text)
        events.put(("delta", {"text": text}))

    def work() -> None:
        try:
            draft = pipeline.drafter.draft(ticket, k=body.k, fallback="offline", on_delta=on_delta)
            if not sent:
                events.put(("delta", {"text": draft.text}))
            events.put(("draft", _response(ticket, draft, pipeline, feedback).model_dump()))
        except RagError as exc:
            status = status_of(exc)
            events.put(("error", {"error": {"status": status, "message": str(exc)}}))
        except Exception as exc:  # noqa: BLE001 - the stream must end with an event, not hang the client
            events.put(("error", {"error": {"status": 500, "message": f"internal error: {type(exc).__name__}"}}))
            raise
        finally:
            events.put(("end", None))

    def generate() -> Iterator[str]:
        threading.Thread(target=work, name="draft-stream", daemon=True).start()
        while True:
            event, data = events.get()
            if event == "end":
                return
            yield _sse(event, data)

    return StreamingResponse(generate(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
