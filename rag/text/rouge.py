"""Character-level ROUGE-L between answers, and how much each of a set of answers agrees with the others.

A text measure, not a step: retrieval's consensus rerank and match features, the offline drafter's
support, and the grader's relevance and draft scores all read it (sharing a neutral measure does not make
the grader depend on what it grades; ``tests/test_score_independence.py`` names what it must not reach).
The LCS runs in rapidfuzz's C++ (pure-Python LCS is too slow for the thousands of pairs a leave-one-out
run compares); a test cross-checks it against rouge-chinese.
"""

from __future__ import annotations

import re

from typing import Sequence

import numpy as np
from rapidfuzz.distance import LCSseq
from rapidfuzz.process import cdist

from rag.text.markers import strip_image_markers

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


def agreement_matrix(answers: Sequence[str]) -> np.ndarray:
    return pairwise_rouge_l([normalise_answer(a) for a in answers])


def consensus_scores(answers: Sequence[str], weights: Sequence[float] | np.ndarray, groups: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """Weighted mean agreement of each answer with the other candidates' answers.

    ``groups`` (``rag.retrieve.duplicates``): copies of one case are one voter, the heaviest of them,
    and a candidate gets no vote from its own copies. Without groups every candidate is its own."""
    n = len(answers)
    if n < 2:
        return np.zeros(n)
    m = agreement_matrix(answers)
    w = np.asarray(weights, dtype=np.float64)
    if groups is None or len(set(groups)) == n:  # no copies: the same sums, in the same order, as always
        totals = w.sum() - w
        return (m @ w) / np.where(totals > 0, totals, 1.0)
    g = np.asarray(groups)
    voter = np.zeros(n, dtype=bool)
    for label in np.unique(g):
        members = np.flatnonzero(g == label)
        voter[members[np.argmax(w[members])]] = True
    votes = np.where(g[:, None] == g[None, :], 0.0, (w * voter)[None, :])
    totals = votes.sum(axis=1)
    return (m * votes).sum(axis=1) / np.where(totals > 0, totals, 1.0)
