from __future__ import annotations

from fastapi import APIRouter, HTTPException

from rag.feedback import UnknownDraftError
from rag.service.deps import FeedbackDep
from rag.service.schemas import FeedbackRequest, FeedbackResponse, error_responses

router = APIRouter(prefix="/v1/feedback", tags=["feedback"])


@router.post("", response_model=FeedbackResponse, status_code=201, summary="Accept, edit or reject a draft", responses=error_responses(404))
def post_feedback(body: FeedbackRequest, feedback: FeedbackDep) -> FeedbackResponse:
    try:
        fid = feedback.add_feedback(body.draft_id, body.verdict, body.final_text, body.reason)
    except UnknownDraftError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    return FeedbackResponse(id=fid, draft_id=body.draft_id, verdict=body.verdict)
