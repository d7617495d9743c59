"""Fit the match model (does a retrieved case address the ticket?) on the relevance labels.

    python eval/fit_match.py [--write] [--folds 5] [--c-rank 0.1] [--c-fit 0.3] [--json report.json]

1. Training queries: leave-one-out queries over the corpus (title + 问题描述, the case itself excluded),
   labelled by the problem groups in ``eval/relevance/groups/``, and the DEV half of the new tickets
   (``eval/relevance/new_tickets.jsonl``). The TEST half is held out: never fitted on, never tuned on.
2. Cross-validation (corpus queries split by problem group): out-of-fold rankings (P@1, MRR@10, hit@5,
   nDCG@5 over queries with a same-problem partner), calibration of the top candidate (ECE) and the
   `answer` threshold, chosen for answer precision >= 0.85 on the out-of-fold probabilities.
3. The final model is fitted on all training queries; ``--write`` saves it to ``rag/retrieve/match_model.json``.
4. The held-out test tickets are scored with the final model and reported apart.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from rich.progress import Progress

from rag.evaluation.match_fit import PairSet, Query, collect, corpus_queries, fit, ticket_queries
from rag.evaluation.retrieval_loo import loo_settings
from rag.pipeline import Pipeline
from rag.configs import RetrievalConfig
from rag.retrieve import CaseRetriever, Filters
from rag.retrieve.match import MODEL_FILE, MatchModel
from rag.score.labels import GroupLabels, load_groups, load_tickets
from rag.score.relevance import (Decision, decision_scores, expected_calibration_error, mean_of, ranking_scores,
                                 threshold_for_precision)

ROOT = Path(__file__).resolve().parent.parent
LABELS = ROOT / "eval" / "relevance"
TARGET_PRECISION = 0.85


def ranking_table(queries, rankings, labels_gain) -> dict[str, float]:
    rows = []
    for q, ranked in zip(queries, rankings):
        if not q.fits_exist:
            continue
        ideal = [labels_gain(q, c) for c in labels_gain.universe(q)]
        rows.append(ranking_scores(ranked, lambda c, q=q: labels_gain(q, c), ideal))
    return {"queries": len(rows), **mean_of(rows)}


class CorpusGain:
    def __init__(self, labels: GroupLabels, ids: list[str]):
        self.labels, self.ids = labels, ids

    def __call__(self, q: Query, cand: str) -> float:
        return self.labels.gain(q.id, cand)

    def universe(self, q: Query) -> list[str]:
        return [c for c in self.ids if c != q.id]


class TicketGain:
    def __init__(self, tickets):
        self.by_id = {t.id: t for t in tickets}

    def __call__(self, q: Query, cand: str) -> float:
        t = self.by_id[q.id]
        return 1.0 if cand in t.match else (0.5 if cand in t.partial else 0.0)

    def universe(self, q: Query) -> list[str]:
        t = self.by_id[q.id]
        return list(t.match) + list(t.partial)


def decisions(pairs: PairSet, rankings, probs, threshold: float) -> list[Decision]:
    return [Decision(answered=bool(p >= threshold), top_fits=bool(r) and q.relevant(r[0]), fits_exist=q.fits_exist,
                     match=float(p)) for q, r, p in zip(pairs.queries, rankings, probs)]


def score_with(model: MatchModel, pairs: PairSet) -> tuple[list[list[str]], np.ndarray]:
    rankings, top = [], []
    for ids, x in zip(pairs.case_ids, pairs.features):
        if not len(x):
            rankings.append([])
            top.append(0.0)
            continue
        s = model.scores(x)
        order = np.argsort(-s, kind="stable")
        rankings.append([ids[j] for j in order])
        top.append(float(model.probabilities(x, s)[order[0]]))
    return rankings, np.asarray(top)


def summary(pairs: PairSet, rankings, probs, threshold, gain) -> dict:
    return {"ranking": ranking_table(pairs.queries, rankings, gain),
            "decisions": decision_scores(decisions(pairs, rankings, probs, threshold))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "data")
    ap.add_argument("--labels", type=Path, default=LABELS)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--c-rank", type=float, default=0.1, help="inverse L2 strength of the ranker")
    ap.add_argument("--c-fit", type=float, default=0.3, help="inverse L2 strength of the fit model")
    ap.add_argument("--write", action="store_true", help=f"save the fitted model to rag/retrieve/{MODEL_FILE}")
    ap.add_argument("--json", type=Path, help="write the report as JSON")
    args = ap.parse_args(argv)

    settings = loo_settings()
    pipeline = Pipeline(settings)
    pipeline.ingest([args.data], prune=True)  # this scratch store holds exactly --data: fitted on what it searches
    cases = list(pipeline.cases.replay_cases())
    labels = load_groups(args.labels / "groups")
    store, embedder = pipeline.store, pipeline.embedder
    retriever = CaseRetriever(store, embedder, RetrievalConfig(rerank="none"), lexical_cache=settings.cache_dir / "bm25",
                               use_match_model=False)
    queries = corpus_queries(cases, labels)
    tickets = load_tickets(args.labels / "new_tickets.jsonl")
    dev = [t for t in tickets if t.split == "dev"]
    test = [t for t in tickets if t.split == "test"]
    with Progress(transient=True) as progress:
        task = progress.add_task("candidates and features", total=len(queries) + len(tickets))
        step = lambda: progress.advance(task)  # noqa: E731
        corpus_pairs = collect(retriever, queries, progress=step)
        dev_pairs = collect(retriever, ticket_queries(dev), progress=step)
        test_pairs = collect(retriever, ticket_queries(test), progress=step)

    gain = CorpusGain(labels, [c.id for c in cases])
    tgain = TicketGain(tickets)
    report: dict = {"corpus_queries": len(queries), "corpus_with_partner": sum(q.fits_exist for q in queries),
                    "dev_tickets": len(dev), "test_tickets": len(test)}
    report["corpus_fused_no_rerank"] = ranking_table(queries, [list(i) for i in corpus_pairs.case_ids], gain)
    consensus = CaseRetriever(store, embedder, RetrievalConfig(rerank="consensus"),
                              lexical_cache=settings.cache_dir / "bm25", use_match_model=False)
    report["corpus_consensus_rerank"] = ranking_table(
        queries, [[h.case_id for h in consensus.retrieve(q.text, Filters.of(exclude=q.exclude), 10).hits] for q in queries], gain)
    report["test_fused_no_rerank"] = ranking_table(test_pairs.queries, [list(i) for i in test_pairs.case_ids], tgain)

    fitted = fit(corpus_pairs + dev_pairs,
                 lambda p, y: threshold_for_precision(p, y.astype(bool), TARGET_PRECISION),
                 n_folds=args.folds, c_rank=args.c_rank, c_fit=args.c_fit, about=(
                     f"Ranker and fit model fitted on {len(queries)} leave-one-out corpus queries (problem-group "
                     f"labels) and the {len(dev)} dev new tickets; threshold for answer precision >= "
                     f"{TARGET_PRECISION} on {args.folds}-fold out-of-fold probabilities; C={args.c_rank}/{args.c_fit}. "
                     "The test tickets are held out. Refit: python eval/fit_match.py --write"))
    model = fitted.model
    nq = len(queries)
    report["threshold"] = model.threshold
    report["oof_corpus"] = summary(corpus_pairs, fitted.rankings[:nq], fitted.top_prob[:nq], model.threshold, gain)
    report["oof_dev_tickets"] = summary(dev_pairs, fitted.rankings[nq:], fitted.top_prob[nq:], model.threshold, tgain)
    report["oof_all_ece"] = round(expected_calibration_error(fitted.top_prob, fitted.top_correct.astype(bool)), 4)
    rankings, top = score_with(model, test_pairs)
    report["test_tickets_heldout"] = summary(test_pairs, rankings, top, model.threshold, tgain)
    report["ranker_weights"] = dict(zip(model.ranker.features, [round(w, 3) for w in model.ranker.weights]))
    report["fit_weights"] = dict(zip(model.fit.features, [round(w, 3) for w in model.fit.weights]))

    print(json.dumps(report, ensure_ascii=False, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    if args.write:
        path = ROOT / "rag" / "retrieve" / MODEL_FILE
        path.write_text(json.dumps(model.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
