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

from typing import Sequence

import numpy as np
from rapidfuzz import fuzz

# rapidfuzz ratio (0-100) on text with whitespace folded; feedback export collapses at the same level.
NEAR_DUPLICATE = 90.0


def _key(text: str) -> str:
    return " ".join(text.split())


def duplicate_groups(answers: Sequence[str], questions: Sequence[str], from_feedback: Sequence[bool],
                     cutoff: float = NEAR_DUPLICATE) -> np.ndarray:
    """A group number per candidate; candidates in one group are copies of each other."""
    a = [_key(x) for x in answers]
    q = [_key(x) for x in questions]
    groups = np.arange(len(a))
    for i in range(len(a)):
        if groups[i] != i or not a[i]:
            continue
        for j in range(i + 1, len(a)):
            if groups[j] != j or not fuzz.ratio(a[i], a[j], score_cutoff=cutoff):
                continue
            if from_feedback[i] or from_feedback[j] or fuzz.ratio(q[i], q[j], score_cutoff=cutoff):
                groups[j] = i
    return groups
