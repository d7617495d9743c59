"""Leave-one-out retrieval evaluation over the corpus.

For each case: query with its title + 问题描述, retrieve from all *other* cases, and grade each
retrieved case by the character ROUGE-L F1 between its answer and the held-out case's answer.

    python eval/retrieval_loo.py [--data data] [--json out.json]

Prints a Markdown table: RANDOM and ORACLE baselines, the plain char-BM25 baseline, then the
project's lexical, dense and fused setups (with and without the consensus rerank).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rich.progress import Progress

from rag.embed import make_embedder
from rag.ingest import ingest
from rag.parse import parse_paths
from rag.retrieve import CaseRetriever, RetrievalConfig
from rag.retrieve.lexical import LexicalIndex
from rag.score.retrieval import (
    RelevanceTable,
    RetrievalScores,
    mean_scores,
    oracle_rankings,
    random_rankings,
    score_rankings,
)
from rag.settings import load_settings
from rag.tokens import char_unigrams_bigrams

SETUPS: dict[str, RetrievalConfig] = {
    "lexical (bm25s, jieba+bigrams, question+answer)": RetrievalConfig(mode="lexical", consensus_weight=0),
    "lexical (bm25s, jieba+bigrams, question only)": RetrievalConfig(mode="lexical", lexical_field="key", consensus_weight=0),
    "dense (e5, question vs question)": RetrievalConfig(mode="dense", consensus_weight=0),
    "fused RRF (lexical + dense)": RetrievalConfig(mode="fused", consensus_weight=0),
    "lexical + consensus rerank": RetrievalConfig(mode="lexical"),
    "dense + consensus rerank": RetrievalConfig(mode="dense"),
    "fused + consensus rerank (default)": RetrievalConfig(mode="fused"),
}


def baseline_char_bm25(cases, table: RelevanceTable) -> dict[str, list[str]]:
    """The reference point from the issue: BM25 over char 1+2-grams of title + first customer turn."""
    texts = [f"{c.title}\n{c.first_customer_turn}" for c in cases]
    index = LexicalIndex(texts, tokenizer=char_unigrams_bigrams)
    out = {}
    for held in table.evaluable:
        c = cases[table.index[held]]
        hits = index.search(c.query_text, 10, allowed=lambda r, h=held: cases[r].id != h)
        out[held] = [cases[r].id for r, _ in hits]
    return out


def run(data: Path, k: int = 5, setups: dict[str, RetrievalConfig] = SETUPS) -> list[tuple[str, RetrievalScores, float]]:
    settings = load_settings(store_path=Path(".rag/eval-loo/chroma"), collection="loo")
    embedder = make_embedder(settings)
    ingest([data], settings, embedder)
    cases, _ = parse_paths([data])
    table = RelevanceTable(cases)
    from rag.store import ChunkStore

    store = ChunkStore(settings, embedder.name, create=False)
    rows: list[tuple[str, RetrievalScores, float]] = []
    rows.append(("RANDOM", mean_scores([score_rankings(table, r, k) for r in random_rankings(table)]), 0.0))
    rows.append(("ORACLE (best other case)", score_rankings(table, oracle_rankings(table), k), 0.0))
    t0 = time.perf_counter()
    rows.append(("baseline: BM25 char 1+2-grams, title + first turn", score_rankings(table, baseline_char_bm25(cases, table), k), time.perf_counter() - t0))
    by_id = {c.id: c for c in cases}
    with Progress(transient=True) as progress:
        for name, cfg in setups.items():
            retriever = CaseRetriever(store, embedder, cfg)
            task = progress.add_task(name, total=len(table.evaluable))
            rankings = {}
            t0 = time.perf_counter()
            for held in table.evaluable:
                hits = retriever.retrieve(by_id[held].query_text, k, exclude={held})
                rankings[held] = [h.case_id for h in hits]
                progress.advance(task)
            rows.append((name, score_rankings(table, rankings, k), time.perf_counter() - t0))
    return rows


def as_markdown(rows, k: int = 5) -> str:
    lines = [
        f"| setup | top-1 | best of {k} | nDCG@{k} | product acc@1 |",
        "|---|---|---|---|---|",
    ]
    for name, s, _ in rows:
        lines.append(f"| {name} | {s.top1:.3f} | {s.best_of_k:.3f} | {s.ndcg_at_k:.3f} | {s.product_acc1:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("-k", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    rows = run(args.data, args.k)
    print(as_markdown(rows, args.k))
    if args.json:
        args.json.write_text(json.dumps({n: s.as_dict() for n, s, _ in rows}, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
