"""Consensus rerank: among the fused candidates, favour the case whose answer agrees with the others'.

Support answers recur as team templates (free certificate steps, cache refresh, bill lookup). When
a vague ticket matches several cases, the answer most candidates share is the likeliest right one.
Only the candidates' own answers are compared, never the ticket's true answer.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from rag.similarity import normalise_answer, pairwise_rouge_l


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


# Agreement below this is what unrelated answers share by chance ("您好", "控制台"); scaling
# consensus by at least this much keeps a handful of unrelated candidates from amplifying noise.
AGREEMENT_FLOOR = 0.25


def rerank(fused: Sequence[float], answers: Sequence[str], alpha: float, groups: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """Blend min-max normalised fused scores with consensus scaled by max(best agreement, floor)."""
    f = np.asarray(fused, dtype=np.float64)
    if len(f) < 2 or alpha <= 0:
        return f
    c = consensus_scores(answers, f, groups)
    span = f.max() - f.min()
    f_norm = (f - f.min()) / span if span > 0 else np.ones_like(f)
    c_norm = c / max(float(c.max()), AGREEMENT_FLOOR)
    # An empty answer has nothing to agree with; it must not win on consensus.
    has_answer = np.array([bool(a.strip()) for a in answers], dtype=np.float64)
    return (1 - alpha) * f_norm + alpha * c_norm * has_answer
