"""A ranked case as a ``Hit``: its record from the repository and the text of the chunk that matched."""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from rag.records import Hit

if TYPE_CHECKING:
    from rag.store.cases import CaseRepository


def hit(cases: "CaseRepository", case_id: str, chunk_id: str, score: float, components: Mapping[str, float],
        match: float | None = None) -> Hit:
    row = cases.row_of.get(chunk_id)
    record = cases.get(case_id)
    assert record is not None, f"ranked a case the repository does not hold: {case_id}"
    return Hit(case=record, score=float(score), chunk_id=chunk_id,
               chunk_text=cases.chunks[row].text if row is not None else "", components=dict(components), match=match)
