from __future__ import annotations

import re

from fastapi import APIRouter, HTTPException

from rag.chunk import SCENARIO_SEP
from rag.service.deps import PipelineDep
from rag.service.schemas import CaseOut, ProvenanceOut, error_responses

router = APIRouter(prefix="/v1/cases", tags=["cases"])
_ID = re.compile(r"^[0-9a-f]{16}$")


@router.get("/{case_id}", response_model=CaseOut, summary="One past case", responses=error_responses(404))
def get_case(case_id: str, pipeline: PipelineDep) -> CaseOut:
    meta = pipeline.retriever.case_metadata(case_id) if _ID.match(case_id) else None
    if meta is None:
        raise HTTPException(status_code=404, detail=f"no case with id {case_id!r}")
    return CaseOut(
        case_id=case_id, title=str(meta.get("title", "")), product=str(meta.get("product", "")),
        subcategory=str(meta.get("subcategory", "")),
        scenarios=[s for s in str(meta.get("scenarios", "")).split(SCENARIO_SEP) if s],
        question=str(meta.get("question", "")), answer=str(meta.get("answer", "")),
        root_cause=str(meta.get("root_cause")) or None, source=str(meta.get("source", "")), line=int(meta.get("line", 0)),
        provenance=ProvenanceOut.from_metadata(meta),
    )
