"""Consensus rerank: among the fused candidates, favour the case whose answer agrees with the others'.

Support answers recur as team templates (free certificate steps, cache refresh, bill lookup). When
a vague ticket matches several cases, the answer most candidates share is the likeliest right one.
Only the candidates' own answers are compared, never the ticket's true answer. The agreement itself
(``consensus_scores``) is a text measure in ``rag.text.rouge``: the offline drafter weighs its hits with it too.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Sequence

import numpy as np

from rag.retrieve.base import Candidates
from rag.retrieve.duplicates import answers_of, voter_groups
from rag.text.rouge import consensus_scores

if TYPE_CHECKING:
    from rag.store.cases import CaseRepository


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


class ConsensusReranker:
    """Reorders the best ``top`` candidates (at least the ``k`` asked for) by ``rerank``, the first ``voters``
    voting; candidates below ``top`` keep their order after them."""

    def __init__(self, cases: "CaseRepository", *, weight: float = 0.7, top: int = 12, voters: int = 12) -> None:
        self.cases = cases
        self.weight = weight
        self.top = top
        self.voters = voters

    def rerank(self, cands: Candidates) -> Candidates:
        t0 = time.perf_counter()
        items = list(cands.items)
        top = items[: max(self.top, cands.k)]
        if self.weight <= 0 or len(top) < 2:
            return cands
        voters = items[: max(self.voters, len(top))]
        ids = [c.case_id for c in voters]
        final = rerank([c.score for c in voters], answers_of(self.cases, ids), self.weight,
                       voter_groups(self.cases, ids))[: len(top)]
        order = np.argsort(-final, kind="stable")
        scores = sorted(final.tolist(), reverse=True)
        reordered = tuple(replace(top[i], score=s) for i, s in zip(order, scores)) + tuple(items[len(top):])
        ms = (time.perf_counter() - t0) * 1000
        return replace(cands, items=reordered, timing=replace(cands.timing, rerank_ms=cands.timing.rerank_ms + ms))
