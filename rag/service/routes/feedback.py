from __future__ import annotations

from fastapi import APIRouter, HTTPException

from rag.feedback.store import UnknownDraftError
from rag.service.deps import FeedbackDep, PipelineDep
from rag.service.schemas import FeedbackRequest, FeedbackResponse, error_responses

router = APIRouter(prefix="/v1/feedback", tags=["feedback"])


@router.post("", response_model=FeedbackResponse, status_code=201, summary="Accept, edit or reject a draft", responses=error_responses(400, 404, 413, 415, 422))
def post_feedback(body: FeedbackRequest, feedback: FeedbackDep, pipeline: PipelineDep) -> FeedbackResponse:
    # A product or scenario is one the store knows ("cdn" → "CDN"), else 422 naming the allowed values:
    # free text here once forged cases in the export.
    catalog = pipeline.cases.catalog if body.product or body.scenarios else None
    product = catalog.product(body.product) if catalog and body.product else None
    scenarios = tuple(dict.fromkeys(s for s in (catalog.scenario(v) for v in body.scenarios) if s)) if catalog else ()
    try:
        fid = feedback.add_feedback(body.draft_id, body.verdict, body.final_text, body.reason,
                                    product=product, scenarios=scenarios)
    except UnknownDraftError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    return FeedbackResponse(id=fid, draft_id=body.draft_id, verdict=body.verdict)
