"""Fit the match model on the relevance labels, cross-validated so that no query scores itself.

Training queries: leave-one-out queries over the corpus (each case's title + question, the case itself
excluded; labels from the problem groups) and the *dev* half of the new tickets (labels: their matching
cases). The *test* half of the new tickets is never used here. Folds split the corpus queries by
problem group, so a query's own group never trains the model that ranks it.

Stage 1, the ranker: logistic regression over the pair features of every fused candidate.
Stage 2, the fit model: logistic regression over the top candidate's standing under the out-of-fold
ranker (``rag.retrieve.match.fit_features``), labelled by whether that top case addresses the problem;
its out-of-fold probabilities give the calibration figures and the `answer` threshold.
scikit-learn is needed here only: the shipped model is two dot products.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable, Sequence

import numpy as np

from rag.records import Case
from rag.retrieve.match import FEATURES, FIT_FEATURES, Linear, MatchModel, fit_features
from rag.retrieve.retrieval import Filters
from rag.retrieve.retriever import CaseRetriever
from rag.score.labels import GroupLabels, LabelledTicket


@dataclass(frozen=True)
class Query:
    id: str
    text: str
    exclude: frozenset[str]
    fold_key: str                       # queries sharing a key fall in the same fold
    relevant: Callable[[str], bool]     # does a candidate address this query's problem?
    fits_exist: bool


@dataclass
class PairSet:
    queries: list[Query]
    case_ids: list[tuple[str, ...]]     # fused candidates per query, best first
    features: list[np.ndarray]          # one row per candidate

    def labels(self, i: int) -> np.ndarray:
        return np.array([self.queries[i].relevant(c) for c in self.case_ids[i]], dtype=float)

    def stacked(self, which: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        rows = [i for i in which if len(self.features[i])]
        if not rows:
            return np.zeros((0, len(FEATURES))), np.zeros(0)
        return np.vstack([self.features[i] for i in rows]), np.concatenate([self.labels(i) for i in rows])

    def __add__(self, other: "PairSet") -> "PairSet":
        return PairSet(self.queries + other.queries, self.case_ids + other.case_ids, self.features + other.features)


def corpus_queries(cases: Sequence[Case], labels: GroupLabels) -> list[Query]:
    """Leave-one-out queries over the corpus (the case itself excluded), labelled by the problem groups."""
    ids = [c.id for c in cases]
    out: list[Query] = []
    for c in cases:
        if c.id not in labels.group_of:
            continue
        out.append(Query(
            id=c.id, text=c.query_text, exclude=frozenset({c.id}), fold_key=labels.group_of[c.id],
            relevant=partial(labels.relevant, c.id),
            fits_exist=bool(labels.partners(c.id, ids)),
        ))
    return out


def ticket_queries(tickets: Sequence[LabelledTicket]) -> list[Query]:
    """The new tickets as queries, relevant when a candidate is one of the ticket's labelled matches."""
    return [Query(id=t.id, text=f"{t.title}\n{t.text}".strip(), exclude=frozenset(), fold_key=t.id,
                  relevant=frozenset(t.match).__contains__, fits_exist=t.covered) for t in tickets]


def collect(retriever: CaseRetriever, queries: Sequence[Query], k: int = 5,
            progress: Callable[[], None] = lambda: None) -> PairSet:
    ids, feats = [], []
    for q in queries:
        cands = retriever.candidates(q.text, Filters.of(exclude=q.exclude), k, with_features=True)
        ids.append(cands.case_ids)
        feats.append(cands.features if cands.features is not None else np.zeros((0, len(FEATURES))))
        progress()
    return PairSet(list(queries), ids, feats)


def fit_linear(x: np.ndarray, y: np.ndarray, names: tuple[str, ...], c: float) -> Linear:
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    if len(set(y.tolist())) < 2:  # one class only: a constant model at its rate
        rate = float(np.clip(y.mean() if len(y) else 0.5, 1e-3, 1 - 1e-3))
        return Linear(names, tuple(mean.tolist()), tuple(scale.tolist()), (0.0,) * len(names),
                      float(np.log(rate / (1 - rate))))
    lr = LogisticRegression(C=c, max_iter=3000)
    lr.fit((x - mean) / scale, y.astype(int))
    return Linear(names, tuple(mean.tolist()), tuple(scale.tolist()), tuple(lr.coef_[0].tolist()),
                  float(lr.intercept_[0]))


def folds_of(queries: Sequence[Query], n_folds: int) -> list[list[int]]:
    """Split query indices into folds by ``fold_key`` (deterministic: keys sorted, dealt round-robin)."""
    keys = sorted({q.fold_key for q in queries})
    fold_of_key = {key: i % n_folds for i, key in enumerate(keys)}
    folds: list[list[int]] = [[] for _ in range(n_folds)]
    for i, q in enumerate(queries):
        folds[fold_of_key[q.fold_key]].append(i)
    return [f for f in folds if f]


@dataclass
class Fitted:
    model: MatchModel
    rankings: list[list[str]]           # out-of-fold rankings, one per training query
    top_prob: np.ndarray                # out-of-fold calibrated probability of each query's top candidate
    top_correct: np.ndarray             # does that top candidate address the problem?


def _tops(pairs: PairSet, scores: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
    feats: list[np.ndarray] = []
    correct: list[bool] = []
    rankings: list[list[str]] = []
    for i, s in enumerate(scores):
        if len(s) == 0:
            feats.append(np.zeros(len(FIT_FEATURES)))
            correct.append(False)
            rankings.append([])
            continue
        order = np.argsort(-s, kind="stable")
        rankings.append([pairs.case_ids[i][j] for j in order])
        feats.append(fit_features(pairs.features[i], s)[order[0]])
        correct.append(pairs.queries[i].relevant(pairs.case_ids[i][order[0]]))
    return np.asarray(feats), np.asarray(correct, dtype=float), rankings


def fit(pairs: PairSet, threshold_for: Callable[[np.ndarray, np.ndarray], float], *, n_folds: int = 5,
        c_rank: float = 0.1, c_fit: float = 0.3, about: str = "") -> Fitted:
    n = len(pairs.queries)
    folds = folds_of(pairs.queries, n_folds)
    oof: list[np.ndarray] = [np.zeros(0)] * n
    for test in folds:
        held = set(test)
        ranker = fit_linear(*pairs.stacked([i for i in range(n) if i not in held]), FEATURES, c_rank)
        for i in test:
            oof[i] = ranker(pairs.features[i]) if len(pairs.features[i]) else np.zeros(0)
    top_x, top_y, rankings = _tops(pairs, oof)
    has = np.array([len(s) > 0 for s in oof])
    prob = np.zeros(n)
    for test in folds:
        held = set(test)
        train = [i for i in range(n) if i not in held and has[i]]
        model = fit_linear(top_x[train], top_y[train], FIT_FEATURES, c_fit)
        rows = [i for i in test if has[i]]
        prob[rows] = 1.0 / (1.0 + np.exp(-model(top_x[rows])))
    threshold = threshold_for(prob, top_y)
    final = MatchModel(
        ranker=fit_linear(*pairs.stacked(range(n)), FEATURES, c_rank),
        fit=fit_linear(top_x[has], top_y[has], FIT_FEATURES, c_fit),
        threshold=round(threshold, 4),
        about=about,
    )
    return Fitted(final, rankings, prob, top_y)
