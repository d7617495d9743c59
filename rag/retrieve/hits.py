"""A ranked case as a ``Hit``: its record from the repository and the text of the chunk that matched (the case's own
chunk when another customer's wording of it matched)."""

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
    if row is not None and cases.chunks[row].kind == "asked":
        # Another customer's wording matched: show the case itself, never a text no customer of it wrote.
        row = next((r for r in cases.rows_of_case[case_id] if cases.chunks[r].kind == "case"), None)
        chunk_id = cases.chunks[row].id if row is not None else chunk_id
    return Hit(case=record, score=float(score), chunk_id=chunk_id,
               chunk_text=cases.chunks[row].text if row is not None else "", components=dict(components), match=match)
