from __future__ import annotations

import re

from fastapi import APIRouter, HTTPException

from rag.service.deps import PipelineDep
from rag.service.schemas import CaseOut, ProvenanceOut, error_responses

router = APIRouter(prefix="/v1/cases", tags=["cases"])
_ID = re.compile(r"^[0-9a-f]{16}$")


@router.get("/{case_id}", response_model=CaseOut, summary="One past case", responses=error_responses(404))
def get_case(case_id: str, pipeline: PipelineDep) -> CaseOut:
    case = pipeline.cases.get(case_id) if _ID.match(case_id) else None
    if case is None:
        raise HTTPException(status_code=404, detail=f"no case with id {case_id!r}")
    return CaseOut(
        case_id=case.id, title=case.title, product=case.product, subcategory=case.subcategory,
        scenarios=list(case.scenarios), question=case.question, answer=case.answer, root_cause=case.root_cause,
        source=case.source, line=case.line, provenance=ProvenanceOut.of(case.provenance),
    )
