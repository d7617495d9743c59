"""Reciprocal rank fusion over per-case rankings."""

from __future__ import annotations

from typing import Mapping, Sequence


def best_per_case(ranked_chunks: Sequence[tuple[str, str, float]]) -> list[tuple[str, str, float]]:
    """Collapse a chunk ranking (case_id, chunk_id, score) to one entry per case, keeping its best chunk."""
    seen: set[str] = set()
    out = []
    for case_id, chunk_id, score in ranked_chunks:
        if case_id not in seen:
            seen.add(case_id)
            out.append((case_id, chunk_id, score))
    return out


def rrf(rankings: Mapping[str, Sequence[str]], weights: Mapping[str, float], k: int = 60) -> dict[str, float]:
    """score(case) = Σ_r weight_r / (k + rank_r(case)), rank starting at 1."""
    fused: dict[str, float] = {}
    for name, ranking in rankings.items():
        w = weights.get(name, 1.0)
        if w == 0:
            continue
        for rank, case_id in enumerate(ranking, start=1):
            fused[case_id] = fused.get(case_id, 0.0) + w / (k + rank)
    return fused
