"""Fit the match model on the relevance labels, cross-validated so that no query scores itself.

Training queries: leave-one-out queries over the corpus (each case's title + question, the case itself
excluded; labels from the problem groups) and the *dev* half of the new tickets (labels: their matching
cases). The *test* half of the new tickets is never used here. Folds split the corpus queries by
problem group, so a query's own group never trains the model that ranks it.

Stage 1, the ranker: logistic regression over the pair features of every fused candidate.
Stage 2, the fit model: logistic regression over the top candidate's standing under the out-of-fold
ranker (``rag.retrieve.rerank.match_model.fit_features``), labelled by whether that top case addresses the problem;
its out-of-fold probabilities give the calibration figures and the `answer` threshold.
scikit-learn is needed here only: the shipped model is two dot products.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable, Sequence

import numpy as np

from rag.records import Case
from rag.retrieve.rerank.match_model import FEATURES, FIT_FEATURES, Linear, MatchModel, feature_names, fit_features
from rag.retrieve import Filters, HybridRetriever
from rag.retrieve.rerank.match import MatchReranker
from rag.score.labels import GroupLabels, LabelledTicket
from rag.score.relevance import mean_of, ranking_scores


@dataclass(frozen=True)
class Query:
    id: str
    text: str
    exclude: frozenset[str]
    fold_key: str                       # queries sharing a key fall in the same fold
    relevant: Callable[[str], bool]     # does a candidate address this query's problem?
    fits_exist: bool
    answerable: bool = False            # a case fits and answering is the right move (coverage's denominator)
    scored: bool = True                 # False: a synthetic training ticket, never in the threshold or the figures


@dataclass
class PairSet:
    queries: list[Query]
    case_ids: list[tuple[str, ...]]     # fused candidates per query, best first
    features: list[np.ndarray]          # one row per candidate
    names: tuple[str, ...] = FEATURES   # the features' columns (a research script may add its own)

    def labels(self, i: int) -> np.ndarray:
        return np.array([self.queries[i].relevant(c) for c in self.case_ids[i]], dtype=float)

    def stacked(self, which: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        rows = [i for i in which if len(self.features[i])]
        if not rows:
            return np.zeros((0, len(self.names))), np.zeros(0)
        return np.vstack([self.features[i] for i in rows]), np.concatenate([self.labels(i) for i in rows])

    def __add__(self, other: "PairSet") -> "PairSet":
        if self.names != other.names:
            raise ValueError(f"pair sets with different features: {self.names} and {other.names}")
        return PairSet(self.queries + other.queries, self.case_ids + other.case_ids, self.features + other.features,
                       self.names)


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
            fits_exist=bool(labels.partners(c.id, ids)), answerable=bool(labels.partners(c.id, ids)),
        ))
    return out


def ticket_queries(tickets: Sequence[LabelledTicket], labels: GroupLabels | None = None) -> list[Query]:
    """The new tickets as queries, relevant when a candidate is one of the ticket's labelled matches.

    A synthetic training ticket (split "train") shares the fold of the case it was written from, so the model that
    ranks that case's own group never learnt from its paraphrases; it trains, and is never scored."""
    def fold_key(t: LabelledTicket) -> str:
        return labels.group_of.get(t.from_case, t.id) if labels is not None and t.from_case else t.id

    return [Query(id=t.id, text=f"{t.title}\n{t.text}".strip(), exclude=frozenset(), fold_key=fold_key(t),
                  relevant=frozenset(t.match).__contains__, fits_exist=t.covered, answerable=t.answerable,
                  scored=t.split != "train")
            for t in tickets]


def collect(retriever: HybridRetriever, rater: MatchReranker, queries: Sequence[Query], k: int = 5,
            progress: Callable[[], None] = lambda: None) -> PairSet:
    """The fused candidates of each query (``retriever``'s, before any reranker) and their match features."""
    names = feature_names(rater.sides is not None)[0]
    ids, feats = [], []
    for q in queries:
        cands = retriever.candidates(q.text, Filters.of(exclude=q.exclude), k)
        ids.append(cands.case_ids)
        feats.append(rater.features(cands) if cands.items else np.zeros((0, len(names))))
        progress()
    return PairSet(list(queries), ids, feats, names)


def fit_linear(x: np.ndarray, y: np.ndarray, names: tuple[str, ...], c: float) -> Linear:
    from sklearn.linear_model import LogisticRegression

    # A feature missing for a query (NaN: match_model.pair_features) is left out of its mean and stands at it.
    mean = np.nan_to_num(np.nanmean(x, axis=0)) if len(x) else np.zeros(x.shape[1])
    scale = np.nan_to_num(np.nanstd(x, axis=0)) if len(x) else np.ones(x.shape[1])
    scale[scale < 1e-9] = 1.0
    if len(set(y.tolist())) < 2:  # one class only: a constant model at its rate
        rate = float(np.clip(y.mean() if len(y) else 0.5, 1e-3, 1 - 1e-3))
        return Linear(names, tuple(mean.tolist()), tuple(scale.tolist()), (0.0,) * len(names),
                      float(np.log(rate / (1 - rate))))
    lr = LogisticRegression(C=c, max_iter=3000)
    lr.fit(np.nan_to_num((x - mean) / scale, nan=0.0), y.astype(int))
    return Linear(names, tuple(mean.tolist()), tuple(scale.tolist()), tuple(lr.coef_[0].tolist()),
                  float(lr.intercept_[0]))


def folds_of(queries: Sequence[Query], n_folds: int, seed: int | None = None) -> list[list[int]]:
    """Split query indices into folds by ``fold_key`` (deterministic: keys sorted, dealt round-robin; with ``seed``,
    the sorted keys are shuffled by it first, for repeated cross-validation)."""
    keys = sorted({q.fold_key for q in queries})
    if seed is not None:
        keys = [keys[i] for i in np.random.default_rng(seed).permutation(len(keys))]
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


FitOf = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _tops(pairs: PairSet, scores: list[np.ndarray], fit_of: FitOf = fit_features, width: int = len(FIT_FEATURES),
          ) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
    feats: list[np.ndarray] = []
    correct: list[bool] = []
    rankings: list[list[str]] = []
    for i, s in enumerate(scores):
        if len(s) == 0:
            feats.append(np.zeros(width))
            correct.append(False)
            rankings.append([])
            continue
        order = np.argsort(-s, kind="stable")
        rankings.append([pairs.case_ids[i][j] for j in order])
        feats.append(fit_of(pairs.features[i], s)[order[0]])
        correct.append(pairs.queries[i].relevant(pairs.case_ids[i][order[0]]))
    return np.asarray(feats), np.asarray(correct, dtype=float), rankings


def fit(pairs: PairSet, threshold_for: Callable[[np.ndarray, np.ndarray], float], *, n_folds: int = 5,
        c_rank: float = 0.1, c_fit: float = 0.3, about: str = "", fit_of: FitOf = fit_features,
        fit_names: tuple[str, ...] | None = None, seed: int | None = None, sides: str | None = None) -> Fitted:
    """Cross-validated by ``folds_of``; the ranker reads ``pairs.names``, the fit model ``fit_of``'s ``fit_names``
    (the shipped model's by default: a research script passes its own to try extra features)."""
    if fit_names is None:  # the shipped model's own: with side features when the pairs hold them
        fit_names = feature_names(pairs.names != FEATURES)[1]
    n = len(pairs.queries)
    folds = folds_of(pairs.queries, n_folds, seed)
    oof: list[np.ndarray] = [np.zeros(0)] * n
    for test in folds:
        held = set(test)
        ranker = fit_linear(*pairs.stacked([i for i in range(n) if i not in held]), pairs.names, c_rank)
        for i in test:
            oof[i] = ranker(pairs.features[i]) if len(pairs.features[i]) else np.zeros(0)
    top_x, top_y, rankings = _tops(pairs, oof, fit_of, len(fit_names))
    has = np.array([len(s) > 0 for s in oof])
    prob = np.zeros(n)
    for test in folds:
        held = set(test)
        train = [i for i in range(n) if i not in held and has[i]]
        model = fit_linear(top_x[train], top_y[train], fit_names, c_fit)
        rows = [i for i in test if has[i]]
        prob[rows] = 1.0 / (1.0 + np.exp(-model(top_x[rows])))
    # Chosen on real queries only: paraphrases written from a case are easier than a customer's own words.
    scored = np.array([q.scored for q in pairs.queries], dtype=bool)
    threshold = threshold_for(prob[scored], top_y[scored])
    final = MatchModel(
        ranker=fit_linear(*pairs.stacked(range(n)), pairs.names, c_rank),
        fit=fit_linear(top_x[has], top_y[has], fit_names, c_fit),
        threshold=round(threshold, 4),
        about=about,
        sides=sides,
    )
    return Fitted(final, rankings, prob, top_y)


class CorpusGain:
    """Grades a candidate for a leave-one-out corpus query by the problem groups (same 1, partly 0.5)."""

    def __init__(self, labels: GroupLabels, ids: Sequence[str]):
        self.labels, self.ids = labels, list(ids)

    def __call__(self, q: Query, cand: str) -> float:
        return self.labels.gain(q.id, cand)

    def universe(self, q: Query) -> list[str]:
        return [c for c in self.ids if c != q.id]


class TicketGain:
    """Grades a candidate for a labelled ticket: a labelled match 1, a partial match 0.5."""

    def __init__(self, tickets: Sequence[LabelledTicket]):
        self.by_id = {t.id: t for t in tickets}

    def __call__(self, q: Query, cand: str) -> float:
        t = self.by_id[q.id]
        return 1.0 if cand in t.match else (0.5 if cand in t.partial else 0.0)

    def universe(self, q: Query) -> list[str]:
        t = self.by_id[q.id]
        return list(t.match) + list(t.partial)


def ranking_table(queries: Sequence[Query], rankings: Sequence[Sequence[str]],
                  gain: "CorpusGain | TicketGain") -> dict[str, float]:
    """P@1, MRR@10, hit@5, nDCG@5 over the queries that have a fitting case."""
    rows = []
    for q, ranked in zip(queries, rankings):
        if not q.fits_exist:
            continue
        ideal = [gain(q, c) for c in gain.universe(q)]
        rows.append(ranking_scores(list(ranked), partial(gain, q), ideal))
    return {"queries": len(rows), **mean_of(rows)}


def coverage_at_precision(prob: Sequence[float], top_fits: Sequence[bool], answerable: Sequence[bool],
                          target: float = 0.85) -> float:
    """The frontier of the match probability: over every threshold, the highest coverage (answered from a fitting
    case, among the ``answerable`` queries) whose answer precision (answered queries whose top case fits) is at
    least ``target``; the same curve as ``rag.evaluation.tickets.curve`` when only the threshold decides."""
    p = np.asarray(prob, dtype=np.float64)
    fits = np.asarray(top_fits, dtype=bool)
    can = np.asarray(answerable, dtype=bool)
    total = int(can.sum())
    best = 0.0
    for t in np.unique(p):
        answered = p >= t
        if answered.any() and fits[answered].mean() >= target and total:
            best = max(best, float((answered & fits & can).sum()) / total)
    return round(best, 4)
