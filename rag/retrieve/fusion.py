"""Fusers: merge the sources' rankings into one list of candidates, best first.

- ``RRF``: reciprocal rank fusion (the default; measured in docs/measurements.md);
- ``Passthrough``: one source's own scores (the research setups that rank with a single source).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Protocol, Sequence

from rag.retrieve.base import Candidate, Ranking


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


class Fuser(Protocol):
    def fuse(self, rankings: Sequence[Ranking]) -> tuple[Candidate, ...]: ...


def _matched(rankings: Sequence[Ranking]) -> dict[str, tuple[str, dict[str, float]]]:
    """Per case: the chunk that matched (the dense source's when it ranked the case: the question side), and each
    source's score and rank as the candidate's components."""
    matched: dict[str, tuple[str, dict[str, float]]] = {}
    order = sorted(rankings, key=lambda r: r.source != "dense")  # dense first, then the others as given
    for r in order:
        for rank, entry in enumerate(r.ranked, start=1):
            chunk, components = matched.setdefault(entry.case_id, (entry.chunk_id, {}))
            components[f"{r.source}_score"] = entry.score
            components[f"{r.source}_rank"] = rank
    return matched


def _candidates(rankings: Sequence[Ranking], fused: dict[str, float]) -> tuple[Candidate, ...]:
    matched = _matched(rankings)
    ordered = sorted(fused, key=lambda c: -fused[c])  # stable: ties keep the first source's order
    return tuple(Candidate(c, matched[c][0], fused[c], fused[c], matched[c][1]) for c in ordered)


@dataclass(frozen=True)
class RRF:
    """Reciprocal rank fusion; ``weights`` by source name (a missing source weighs 1)."""

    k: int = 60
    weights: Mapping[str, float] = field(default_factory=dict)

    def fuse(self, rankings: Sequence[Ranking]) -> tuple[Candidate, ...]:
        fused = rrf({r.source: [e.case_id for e in r.ranked] for r in rankings}, self.weights, k=self.k)
        return _candidates(rankings, fused)


@dataclass(frozen=True)
class Passthrough:
    """The single source's own scores, unfused."""

    def fuse(self, rankings: Sequence[Ranking]) -> tuple[Candidate, ...]:
        if len(rankings) != 1:
            raise ValueError(f"Passthrough fuses exactly one ranking, got {len(rankings)}")
        return _candidates(rankings, {e.case_id: e.score for e in rankings[0].ranked})
