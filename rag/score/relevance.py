"""Retrieval and deferral judged by the problem-group labels, not by answer overlap.

Ranking metrics (over queries that have a same-problem partner): P@1, MRR@10, hit@5 and graded
nDCG@5 (same problem 1, partly relevant 0.5). Decision metrics: answer precision (an `answer` draft's
top case addresses the problem), deferral recall (no case fits and the draft does not answer),
coverage (a case fits and the draft answers from one), and calibration (expected calibration error of
the match probability against "the top case addresses the problem").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

Gain = Callable[[str], float]


def ranking_scores(ranking: Sequence[str], gain: Gain, ideal: Sequence[float], k: int = 5) -> dict[str, float]:
    """One query's ranking metrics; ``gain(case_id)`` grades a candidate, ``ideal`` lists all gains available."""
    gains = [gain(c) for c in ranking[:10]]
    first = next((i for i, g in enumerate(gains) if g >= 1.0), None)
    dcg = sum(g / math.log2(r + 2) for r, g in enumerate(gains[:k]))
    idcg = sum(g / math.log2(r + 2) for r, g in enumerate(sorted(ideal, reverse=True)[:k]))
    return {
        "p_at_1": 1.0 if gains and gains[0] >= 1.0 else 0.0,
        "mrr_at_10": 1.0 / (first + 1) if first is not None else 0.0,
        f"hit_at_{k}": 1.0 if first is not None and first < k else 0.0,
        f"ndcg_at_{k}": dcg / idcg if idcg > 0 else 0.0,
    }


def mean_of(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    if not rows:
        return {}
    return {key: round(float(np.mean([r[key] for r in rows])), 4) for key in rows[0]}


def expected_calibration_error(prob: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float:
    """Weighted mean |accuracy - confidence| over equal-width probability bins."""
    p = np.asarray(prob, dtype=np.float64)
    y = np.asarray(correct, dtype=np.float64)
    if len(p) == 0:
        return 0.0
    idx = np.minimum((p * bins).astype(int), bins - 1)
    err = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            err += sel.sum() / len(p) * abs(y[sel].mean() - p[sel].mean())
    return float(err)


def reliability_bins(prob: Sequence[float], correct: Sequence[bool], bins: int = 10) -> list[dict[str, float]]:
    p = np.asarray(prob, dtype=np.float64)
    y = np.asarray(correct, dtype=np.float64)
    idx = np.minimum((p * bins).astype(int), bins - 1) if len(p) else np.zeros(0, dtype=int)
    out = []
    for b in range(bins):
        sel = idx == b
        if sel.any():
            out.append({"low": b / bins, "high": (b + 1) / bins, "n": int(sel.sum()),
                        "confidence": float(p[sel].mean()), "accuracy": float(y[sel].mean())})
    return out


@dataclass(frozen=True)
class Decision:
    """What the drafter did with one labelled query, and whether a case truly fits it."""

    answered: bool          # the draft's action is `answer`
    top_fits: bool          # the top cited case addresses the problem
    fits_exist: bool        # some case in the corpus addresses the problem
    match: float            # the calibrated probability the drafter reported


def decision_scores(decisions: Sequence[Decision]) -> dict[str, float | int | None]:
    answered = [d for d in decisions if d.answered]
    no_fit = [d for d in decisions if not d.fits_exist]
    fit = [d for d in decisions if d.fits_exist]

    def rate(xs: list[bool]) -> float | None:
        return round(float(np.mean(xs)), 4) if xs else None

    return {
        "queries": len(decisions),
        "answered": len(answered),
        "answer_precision": rate([d.top_fits for d in answered]),
        "deferral_recall": rate([not d.answered for d in no_fit]),
        "coverage": rate([d.answered and d.top_fits for d in fit]),
        "ece": round(expected_calibration_error([d.match for d in decisions], [d.top_fits for d in decisions]), 4),
    }


def threshold_for_precision(prob: Sequence[float], correct: Sequence[bool], target: float = 0.85,
                            min_answered: int = 10) -> float:
    """The lowest threshold whose answered set (prob >= t, at least ``min_answered`` queries) has precision >= target."""
    p = np.asarray(prob, dtype=np.float64)
    y = np.asarray(correct, dtype=bool)
    order = np.argsort(-p, kind="stable")
    best = 1.0
    hits = 0
    for n, i in enumerate(order, start=1):
        hits += int(y[i])
        if n >= min_answered and hits / n >= target and (n == len(order) or p[order[n]] < p[i]):
            best = float(p[i])
    return best
