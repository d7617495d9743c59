"""Leave-one-out retrieval metrics with graded relevance.

Relevance of a retrieved case to a held-out case is the character ROUGE-L F1 between their
substantive agent answers (filler removed, cut at 600 chars): a retrieved case is useful to the
extent its answer says what the real agent said.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from rag.records import Case
from rag.text.rouge import normalise_answer, pairwise_rouge_l


@dataclass(frozen=True)
class RetrievalScores:
    cases: int
    top1: float
    best_of_k: float
    ndcg_at_k: float
    product_acc1: float
    k: int

    def as_dict(self) -> dict[str, float]:
        return {
            "cases": self.cases,
            "top1": round(self.top1, 4),
            f"best_of_{self.k}": round(self.best_of_k, 4),
            f"ndcg@{self.k}": round(self.ndcg_at_k, 4),
            "product_acc@1": round(self.product_acc1, 4),
        }


class RelevanceTable:
    """All pairwise answer similarities of a corpus, computed once."""

    def __init__(self, cases: Sequence[Case]) -> None:
        self.cases = list(cases)
        self.index = {c.id: i for i, c in enumerate(self.cases)}
        answers = [normalise_answer(c.answer) for c in self.cases]
        self.matrix = pairwise_rouge_l(answers)
        self.evaluable = [c.id for c, a in zip(self.cases, answers) if a]

    def rel(self, held_out: str, retrieved: str) -> float:
        return float(self.matrix[self.index[held_out], self.index[retrieved]])

    def others(self, held_out: str) -> np.ndarray:
        i = self.index[held_out]
        return np.delete(self.matrix[i], i)


def ndcg(gains: Sequence[float], ideal: Sequence[float], k: int) -> float:
    dcg = sum(g / math.log2(r + 2) for r, g in enumerate(gains[:k]))
    idcg = sum(g / math.log2(r + 2) for r, g in enumerate(sorted(ideal, reverse=True)[:k]))
    return dcg / idcg if idcg > 0 else 0.0


def case_scores(table: RelevanceTable, held: str, retrieved: Sequence[str], k: int = 5) -> dict[str, float]:
    """One held-out case's retrieval metrics, from the ids retrieved for it, best first."""
    ranked = [c for c in retrieved if c != held and c in table.index][:k]
    gains = [table.rel(held, c) for c in ranked]
    product = table.cases[table.index[held]].product
    return {
        "top1": gains[0] if gains else 0.0,
        "best_of_k": max(gains) if gains else 0.0,
        "ndcg": ndcg(gains, table.others(held).tolist(), k),
        "product_acc1": 1.0 if ranked and table.cases[table.index[ranked[0]]].product == product else 0.0,
    }


def score_rankings(table: RelevanceTable, rankings: Mapping[str, Sequence[str]], k: int = 5) -> RetrievalScores:
    """``rankings[held_out_id]`` lists retrieved case ids, best first (the held-out case never among them)."""
    per_case = [case_scores(table, held, rankings.get(held, []), k) for held in table.evaluable]

    def mean(name: str) -> float:
        return float(np.mean([s[name] for s in per_case])) if per_case else 0.0

    return RetrievalScores(len(per_case), mean("top1"), mean("best_of_k"), mean("ndcg"), mean("product_acc1"), k)


def oracle_rankings(table: RelevanceTable) -> dict[str, list[str]]:
    out = {}
    for held in table.evaluable:
        i = table.index[held]
        order = np.argsort(-table.matrix[i], kind="stable")
        out[held] = [table.cases[j].id for j in order if j != i]
    return out


def random_rankings(table: RelevanceTable, seed: int = 0, repeats: int = 20) -> list[dict[str, list[str]]]:
    rng = random.Random(seed)
    ids = [c.id for c in table.cases]
    runs = []
    for _ in range(repeats):
        runs.append({held: rng.sample([c for c in ids if c != held], len(ids) - 1) for held in table.evaluable})
    return runs


def mean_scores(runs: Sequence[RetrievalScores]) -> RetrievalScores:
    return RetrievalScores(
        runs[0].cases,
        float(np.mean([r.top1 for r in runs])),
        float(np.mean([r.best_of_k for r in runs])),
        float(np.mean([r.ndcg_at_k for r in runs])),
        float(np.mean([r.product_acc1 for r in runs])),
        runs[0].k,
    )
