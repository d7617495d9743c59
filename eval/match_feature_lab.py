"""Try extra pair features on the match model, out of fold (corpus queries + development tickets; the held-out
tickets are never read), against the shipped feature set. Prints one line per variant; not a test.

    python eval/match_feature_lab.py [--seeds 5]

Variants (docs/measurements.md, "Stop 30"): the ticket's most specific words missing from the case (the largest
IDF among them, the IDF-weighted share of its top 3 missing from the case, the same on the case's question side),
and the same question kind (``rag.draft.details.question_kind``) or area (``rag.draft.areas``) on both sides.
Each is tried in the ranker alone and in the ranker and the fit model; figures are means over --seeds fold
assignments (fr: coverage at answer precision >= 0.85; dr: deferral recall; pr / cov: at the fitted threshold).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

from rag.draft.areas import areas_of
from rag.draft.details import question_kind
from rag.evaluation.match_fit import PairSet, collect, corpus_queries, coverage_at_precision, fit, ticket_queries
from rag.evaluation.retrieval_loo import loo_settings
from rag.evaluation.setups import Parts
from rag.pipeline import Pipeline
from rag.retrieve.rerank.match import MatchReranker
from rag.retrieve.rerank.match_model import FEATURES, FIT_FEATURES, fit_features, idf_table
from rag.score.labels import load_groups, load_tickets
from rag.score.relevance import threshold_for_precision
from rag.text.tokens import words

ROOT = Path(__file__).resolve().parent.parent
EXTRA = ("miss_max", "miss_top3", "miss_q", "kind_same", "area_same")
VARIANTS = [((), ())] + [((n,), f) for n in EXTRA for f in ((), (n,))] + [(EXTRA, EXTRA)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--train", action="store_true", help="also fit on the synthetic training tickets "
                    "(eval/relevance/train_tickets.jsonl; never scored in the threshold) and print their figures")
    args = ap.parse_args(argv)
    settings = loo_settings()
    pipeline = Pipeline(settings)
    pipeline.ingest([ROOT / "data"], prune=True)
    cases = list(pipeline.cases.replay_cases())
    parts = Parts.of(pipeline, lexical_cache=settings.store.cache_dir / "bm25")
    retriever = parts.retriever([parts.lexical, parts.dense])
    rater = MatchReranker(dataclasses.replace(pipeline.match_model, sides=None), parts.cases, parts.lexical, parts.dense,
                          voters=parts.config.consensus_voters)
    groups = load_groups(ROOT / "eval/relevance/groups")
    queries = corpus_queries(cases, groups)
    tickets = load_tickets(ROOT / "eval/relevance/new_tickets.jsonl")
    train = load_tickets(ROOT / "eval/relevance/train_tickets.jsonl") if args.train else []
    pairs = (collect(retriever, rater, queries) + collect(retriever, rater, ticket_queries(tickets))
             + collect(retriever, rater, ticket_queries(train, groups)))

    def extra(text: str, ids: tuple[str, ...]) -> np.ndarray:
        idf = idf_table(text, parts.lexical.index.doc_freq(text), parts.lexical.index.size)
        qw = [w for w in dict.fromkeys(words(text)) if len(w) >= 2]
        top = sorted(qw, key=lambda w: -idf.get(w, 1.0))[:3]
        most = max((idf.get(w, 1.0) for w in qw), default=1.0)
        top_total = max(1e-9, sum(idf.get(w, 1.0) for w in top))
        rows = []
        for c in ids:
            r = parts.cases.get(c)
            question = f"{r.title}\n{r.question}".lower() if r else ""
            whole = f"{question}\n{r.answer}".lower() if r else ""
            missing = [w for w in qw if w not in whole]
            rows.append([
                max((idf.get(w, 1.0) for w in missing), default=0.0) / most if most > 0 else 0.0,
                sum(idf.get(w, 1.0) for w in top if w not in whole) / top_total if top else 0.0,
                sum(idf.get(w, 1.0) for w in top if w not in question) / top_total if top else 0.0,
                float(question_kind(text) == question_kind(question)),
                float(not areas_of(text) or bool(set(areas_of(text)) & set(areas_of(question) or areas_of(whole)))),
            ])
        return np.asarray(rows, dtype=float).reshape(len(ids), len(EXTRA))

    feats = [np.column_stack([f, extra(q.text, ids)]) if len(f) else np.zeros((0, len(FEATURES) + len(EXTRA)))
             for q, ids, f in zip(pairs.queries, pairs.case_ids, pairs.features)]
    n_corpus, n_real = len(queries), len(queries) + len(tickets)
    for use, fit_use in VARIANTS:
        cols = list(range(len(FEATURES))) + [len(FEATURES) + EXTRA.index(n) for n in use]
        variant = PairSet(pairs.queries, pairs.case_ids, [f[:, cols] for f in feats], FEATURES + tuple(use))

        def fit_of(x: np.ndarray, s: np.ndarray, use=use, fit_use=fit_use) -> np.ndarray:
            base = fit_features(x[:, :len(FEATURES)], s)
            added = [x[:, len(FEATURES) + use.index(n)] for n in fit_use]
            return np.column_stack([base, *added]) if added else base

        rows = []
        for seed in range(args.seeds):
            f = fit(variant, lambda p, y: threshold_for_precision(p, y.astype(bool), 0.85), fit_of=fit_of,
                    fit_names=FIT_FEATURES + tuple(fit_use), seed=seed)

            def figures(part: slice) -> tuple[float, ...]:
                qs, prob, right = variant.queries[part], f.top_prob[part], f.top_correct[part].astype(bool)
                answered, no_fit = prob >= f.model.threshold, np.array([not q.fits_exist for q in qs])
                can = np.array([q.answerable for q in qs])
                return (coverage_at_precision(prob, right, can), float((no_fit & ~answered).sum() / no_fit.sum()),
                        float(right[answered].mean()) if answered.any() else 1.0,
                        float((answered & right & can).sum() / can.sum()))

            rows.append(figures(slice(0, n_corpus)) + figures(slice(n_corpus, n_real))
                        + (figures(slice(n_real, None)) if train else ()))
        m = np.array(rows).mean(axis=0)
        print(f"{'+'.join(use) or 'shipped features':30s} fit +{'+'.join(fit_use) or '-':30s} "
              f"corpus fr {m[0]:.3f} dr {m[1]:.3f} pr {m[2]:.3f} cov {m[3]:.3f} | "
              f"tickets fr {m[4]:.3f} dr {m[5]:.3f} pr {m[6]:.3f} cov {m[7]:.3f}"
              + (f" | synthetic fr {m[8]:.3f} dr {m[9]:.3f} pr {m[10]:.3f} cov {m[11]:.3f}" if train else ""), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
