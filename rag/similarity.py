"""Character-level ROUGE-L between answers: the relevance measure of retrieval, the consensus
rerank and the draft scores. The LCS runs in rapidfuzz's C++ (pure-Python LCS is too slow for the
thousands of pairs a leave-one-out run compares); a test cross-checks it against rouge-chinese.
"""

from __future__ import annotations

import re

from typing import Sequence

import numpy as np
from rapidfuzz.distance import LCSseq
from rapidfuzz.process import cdist

from rag.dataset_markers import strip_image_markers

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


def pairwise_rouge_l(texts: Sequence[str]) -> np.ndarray:
    """The full matrix of ``rouge_l_f1`` between ``texts``, computed in rapidfuzz's C++ on every core.

    Thousands of answers mean millions of pairs; a Python loop over them would take minutes.
    """
    n = len(texts)
    if n == 0:
        return np.zeros((0, 0))
    lcs = cdist(list(texts), list(texts), scorer=LCSseq.similarity, dtype=np.int32, workers=-1).astype(np.float64)
    lengths = np.array([len(t) for t in texts], dtype=np.float64)
    total = lengths[:, None] + lengths[None, :]
    out = np.divide(2.0 * lcs, total, out=np.zeros_like(lcs), where=total > 0)
    out[(lengths == 0)[:, None] | (lengths == 0)[None, :]] = 0.0
    np.fill_diagonal(out, 0.0)
    return out
