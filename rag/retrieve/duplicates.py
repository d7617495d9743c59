"""Near-duplicate candidates are one voter in the consensus, not several.

The consensus (and the match model's ``consensus`` feature) rewards a candidate whose answer the
other candidates share: a team template answering different customers' questions is evidence.
A copy is not: the same feedback posted three times, or exported twice, once made a phishing text
the top answer (confidence 0.61 with two copies, 1.0 with three). So two candidates are one voter
when their answers are near-duplicates and either their questions are too (the same case twice)
or one of them came from feedback (which has no independent customers behind it). The dataset's
own templates answer different questions, so the corpus's rankings do not change (a test checks
no two dataset cases are grouped).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
from rapidfuzz import fuzz

from rag.text.near_duplicates import NEAR_DUPLICATE, same_content

if TYPE_CHECKING:
    from rag.store.cases import CaseRepository



def _key(text: str) -> str:
    return " ".join(text.split())


def duplicate_groups(answers: Sequence[str], questions: Sequence[str], from_feedback: Sequence[bool],
                     cutoff: float = NEAR_DUPLICATE) -> np.ndarray:
    """A group number per candidate; candidates in one group are copies of each other and vote once.

    Feedback cases all vote as one, whatever their text: however many an attacker gets approved, padded so no
    two look alike, they are one voice among the candidates (issue 24). Dataset cases are copies when their
    answers have the same content (``rag.text.near_duplicates``) and their questions are near-duplicates too."""
    a = [_key(x) for x in answers]
    q = [_key(x) for x in questions]
    parent = list(range(len(a)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    def join(i: int, j: int) -> None:
        ri, rj = root(i), root(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)

    feedback = [i for i, f in enumerate(from_feedback) if f]
    for i in feedback[1:]:
        join(feedback[0], i)
    for i in range(len(a)):
        for j in range(i + 1, len(a)):
            if root(i) == root(j) or not a[i] or not a[j] or not same_content(a[i], a[j], cutoff):
                continue
            # A feedback copy of an answer adds no vote; two dataset cases are copies only if their questions are.
            if from_feedback[i] or from_feedback[j] or fuzz.ratio(q[i], q[j], score_cutoff=cutoff):
                join(i, j)
    return np.array([root(i) for i in range(len(a))])


def answers_of(cases: "CaseRepository", case_ids: Sequence[str]) -> list[str]:
    return [r.answer if (r := cases.get(c)) is not None else "" for c in case_ids]


def voter_groups(cases: "CaseRepository", case_ids: Sequence[str]) -> np.ndarray:
    """``duplicate_groups`` of the repository's cases: copies among the voters vote once."""
    records = [cases.get(c) for c in case_ids]
    return duplicate_groups([r.answer if r else "" for r in records], [r.question if r else "" for r in records],
                            [r is not None and r.provenance is not None for r in records])
