"""Leave-one-out retrieval evaluation over the corpus, by answer overlap and by labelled relevance.

For each case: query with its title + 问题描述, retrieve from all *other* cases. Two gradings:
- answer overlap: the character ROUGE-L F1 between a retrieved case's answer and the held-out case's
  (top-1, best of k, nDCG@k, product accuracy@1) over the cases that have an answer;
- labelled relevance: the problem groups in ``eval/relevance/groups/`` (P@1, MRR@10, hit@5, graded
  nDCG@5 with partly relevant = 0.5) over the cases that have a same-problem partner.

    python eval/retrieval_loo.py [--data data]   (or: python -m rag.evaluation.retrieval_loo) [--json out.json] [--rankings rankings.json]

Prints a Markdown table: RANDOM and ORACLE baselines, the plain char-BM25 baseline, then the
project's setups. The match rerank is shown twice: out-of-fold (refitted per fold on the other
groups' queries and the dev tickets: the honest figure) and with the shipped model (fitted on these
same queries: in-sample). ``--rankings`` writes the default setup's rankings, one entry per case in
corpus order: ``{"case_id", "title", "ranking": [up to 10 case ids]}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from functools import partial
from pathlib import Path

from rich.progress import Progress

from rag.pipeline import Pipeline
from rag.evaluation.metric_names import LOO_LABELLED
from rag.evaluation.setups import DEFAULT_SETUP, SETUPS, Parts, Setup
from rag.retrieve import Filters, HybridRetriever
from rag.retrieve.rerank.match import MatchReranker
from rag.retrieve.sources.lexical import LexicalIndex
from rag.score.retrieval import (
    RelevanceTable,
    RetrievalScores,
    mean_scores,
    oracle_rankings,
    random_rankings,
    score_rankings,
)
from rag.score.labels import GroupLabels, load_groups, load_tickets
from rag.score.relevance import mean_of, ranking_scores
from rag.paths import loo_store, resource
from rag.records import Case
from rag.settings import Settings, load_settings
from rag.text.tokens import char_unigrams_bigrams

OOF_SETUP = "fused + match rerank (out-of-fold: refitted without the query's group)"


def loo_settings() -> Settings:
    """The environment's settings on the leave-one-out scratch store (``rag.paths.loo_store``, collection "loo")."""
    settings = load_settings(store={"collection": "loo"})
    return settings.updated(store={"store_path": loo_store(settings.home)})


def baseline_char_bm25(cases, table: RelevanceTable) -> dict[str, list[str]]:
    """The reference point from the issue: BM25 over char 1+2-grams of title + first customer turn."""
    texts = [f"{c.title}\n{c.first_customer_turn}" for c in cases]
    index = LexicalIndex(texts, tokenizer=char_unigrams_bigrams)
    out = {}
    for held in table.evaluable:
        c = cases[table.index[held]]

        def others(r: int, h: str = held) -> bool:
            return bool(cases[r].id != h)

        hits = index.search(c.query_text, 10, allowed=others)
        out[held] = [cases[r].id for r, _ in hits]
    return out


def labelled_scores(labels: GroupLabels | None, ids: list[str], rankings: dict[str, list[str]]) -> dict[str, float]:
    if labels is None:
        return {}
    rows = []
    for held, ranked in rankings.items():
        if held not in labels.group_of or not labels.partners(held, ids):
            continue
        ideal = [labels.gain(held, c) for c in ids if c != held]
        rows.append(ranking_scores(ranked, partial(labels.gain, held), ideal))
    return {"labelled_queries": len(rows), **mean_of(rows)}


def out_of_fold_rankings(retriever: HybridRetriever, rater: MatchReranker, cases, labels: GroupLabels,
                         tickets_file: Path) -> dict[str, list[str]]:
    """The match rerank's rankings when each query's own problem group never trained the ranker."""
    from rag.evaluation.match_fit import collect, corpus_queries, fit, ticket_queries
    from rag.score.relevance import threshold_for_precision

    queries = corpus_queries(cases, labels)
    dev = [t for t in load_tickets(tickets_file) if t.split == "dev"] if tickets_file.is_file() else []
    pairs = collect(retriever, rater, queries) + collect(retriever, rater, ticket_queries(dev))
    fitted = fit(pairs, lambda p, y: threshold_for_precision(p.tolist(), y.astype(bool).tolist()))
    return {q.id: r[:10] for q, r in zip(queries, fitted.rankings)}


def run(data: Path, k: int = 5, setups: dict[str, Setup] = SETUPS, labels_dir: Path | None = None,
        ) -> tuple[list[tuple[str, RetrievalScores, dict, float]], dict[str, dict[str, list[str]]], list[Case]]:
    """The table's rows, every setup's rankings, and the graded cases in corpus order."""
    labels_dir = resource("relevance") if labels_dir is None else labels_dir
    pipeline = Pipeline(loo_settings())
    # Pruned, so this scratch store holds exactly ``data``: the cases graded are the stored ones, the
    # corpus every retriever below searches.
    pipeline.ingest([data], prune=True)
    cases = list(pipeline.cases.replay_cases())
    table = RelevanceTable(cases)
    ids = [c.id for c in cases]
    labels = load_groups(labels_dir / "groups") if (labels_dir / "groups").is_dir() else None
    parts = Parts.of(pipeline)
    rows: list[tuple[str, RetrievalScores, dict, float]] = []
    all_rankings: dict[str, dict[str, list[str]]] = {}
    rows.append(("RANDOM", mean_scores([score_rankings(table, r, k) for r in random_rankings(table)]),
                 labelled_scores(labels, ids, random_rankings(table)[0]), 0.0))
    rows.append(("ORACLE by answer overlap (best other case)", score_rankings(table, oracle_rankings(table), k),
                 labelled_scores(labels, ids, oracle_rankings(table)), 0.0))
    t0 = time.perf_counter()
    base = baseline_char_bm25(cases, table)
    rows.append(("baseline: BM25 char 1+2-grams, title + first turn", score_rankings(table, base, k),
                 labelled_scores(labels, ids, base), time.perf_counter() - t0))
    by_id = {c.id: c for c in cases}
    queries = [c.id for c in cases]  # every case: the labelled metrics also cover cases without an answer
    with Progress(transient=True) as progress:
        for name, setup in setups.items():
            retriever = setup(parts)
            task = progress.add_task(name, total=len(queries))
            rankings = {}
            t0 = time.perf_counter()
            for held in queries:
                hits = retriever.retrieve(by_id[held].query_text, Filters.of(exclude={held}), 10).hits
                rankings[held] = [h.case_id for h in hits]
                progress.advance(task)
            all_rankings[name] = rankings
            rows.append((name, score_rankings(table, rankings, k), labelled_scores(labels, ids, rankings),
                         time.perf_counter() - t0))
        if labels is not None:
            t0 = time.perf_counter()
            oof = out_of_fold_rankings(parts.retriever([parts.lexical, parts.dense]), parts.match(), cases, labels,
                                       labels_dir / "new_tickets.jsonl")
            all_rankings[OOF_SETUP] = oof
            rows.append((OOF_SETUP, score_rankings(table, oof, k), labelled_scores(labels, ids, oof),
                         time.perf_counter() - t0))
    return rows, all_rankings, cases


def as_markdown(rows, k: int = 5) -> str:
    lines = [
        f"| setup | top-1 | best of {k} | nDCG@{k} | product acc@1 | P@1 | MRR@10 | hit@5 | nDCG@5 (labels) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s, lab, _ in rows:
        cells = [f"{lab[m]:.2f}" if m in lab else "–" for m in LOO_LABELLED]
        lines.append(f"| {name} | {s.top1:.3f} | {s.best_of_k:.3f} | {s.ndcg_at_k:.3f} | {s.product_acc1:.2f} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=resource("data"))
    ap.add_argument("-k", type=int, default=5)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--rankings", type=Path, help="write the default setup's rankings (JSON list in corpus order)")
    args = ap.parse_args(argv)
    rows, rankings, cases = run(args.data, args.k)
    print(as_markdown(rows, args.k))
    if args.json:
        args.json.write_text(json.dumps({n: {**s.as_dict(), **lab} for n, s, lab, _ in rows}, ensure_ascii=False,
                                        indent=2))
    if args.rankings:
        default = rankings[DEFAULT_SETUP]
        args.rankings.write_text(json.dumps(
            [{"case_id": c.id, "title": c.title, "ranking": [x for x in default.get(c.id, []) if x != c.id][:10]}
             for c in cases], ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
