"""Character-level ROUGE-L between answers: the relevance measure of retrieval, the consensus
rerank and the draft scores. The LCS runs in rapidfuzz's C++ (pure-Python LCS is too slow for the
thousands of pairs a leave-one-out run compares); a test cross-checks it against rouge-chinese.
"""

from __future__ import annotations

import re

from rapidfuzz.distance import LCSseq

from rag.filler import strip_image_markers

ANSWER_CHARS = 600
_SPACE = re.compile(r"\s+")


def normalise_answer(text: str, limit: int = ANSWER_CHARS) -> str:
    return _SPACE.sub("", strip_image_markers(text))[:limit]


def rouge_l_f1(candidate: str, reference: str) -> float:
    """ROUGE-L F1 (beta = 1) over characters: 2·LCS / (|candidate| + |reference|)."""
    if not candidate or not reference:
        return 0.0
    lcs = LCSseq.similarity(candidate, reference)
    return 2.0 * lcs / (len(candidate) + len(reference))


def answer_similarity(a: str, b: str) -> float:
    return rouge_l_f1(normalise_answer(a), normalise_answer(b))
