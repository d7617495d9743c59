"""Consensus rerank: among the fused candidates, favour the case whose answer agrees with the others'.

Support answers recur as team templates (free certificate steps, cache refresh, bill lookup). When
a vague ticket matches several cases, the answer most candidates share is the likeliest right one.
Only the candidates' own answers are compared, never the ticket's true answer. The agreement itself
(``consensus_scores``) is a text measure in ``rag.rouge``: the offline drafter weighs its hits with it too.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from rag.rouge import consensus_scores


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
