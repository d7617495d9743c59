"""The hybrid case retriever: the lexical and dense retrievers' rankings fused (RRF) and reranked.

``mode`` picks which of the two contribute; the match rerank (default) orders the fused candidates
with the fitted match model, which also rates each one (``Hit.match``) under any rerank.
"""

from __future__ import annotations

import time
from pathlib import Path
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np

from rag.cases import CaseRepository
from rag.configs import RetrievalConfig
from rag.embed import Embedder
from rag.records import Hit, Ticket
from rag.retrieve.consensus import rerank
from rag.retrieve.dense import DenseRetriever
from rag.retrieve.duplicates import duplicate_groups
from rag.retrieve.fusion import rrf
from rag.retrieve.hits import hit
from rag.retrieve.lexical import LexicalRetriever
from rag.retrieve.match import CandidateText, MatchModel, idf_table, pair_features
from rag.retrieve.query import rewrite_query
from rag.retrieve.retrieval import NO_FILTERS, Filters, Retrieval, Timing, query_text
from rag.rouge import consensus_scores
from rag.store import ChunkStore

__all__ = ["CaseRetriever", "Candidates", "rewrite_query"]


@dataclass(frozen=True)
class Candidates:
    """Fused candidates for one query, best first, and (for the match rerank) one feature row each."""

    case_ids: tuple[str, ...]
    fused: dict[str, float]
    matched: dict[str, tuple[str, dict[str, float]]]
    features: np.ndarray | None = None
    timing: Timing = Timing()


class CaseRetriever:
    """The lexical and dense retrievers composed; implements ``Retriever``."""

    def __init__(
        self, store: ChunkStore, embedder: Embedder, config: RetrievalConfig = RetrievalConfig(), *,
        cases: CaseRepository | None = None, lexical_cache: Path | None = None, match_model: MatchModel | None = None,
        use_match_model: bool = True,
    ) -> None:
        self.config = config
        self.cases = cases if cases is not None else CaseRepository.from_store(store)
        self.lexical = LexicalRetriever(self.cases, field=config.lexical_field, cache_dir=lexical_cache,
                                        kinds=config.chunk_kinds)
        self.dense = DenseRetriever(self.cases, store, embedder, kinds=config.chunk_kinds)
        # The match model also rates candidates under another rerank: the drafter's verdict needs it.
        self.match_model = (match_model or MatchModel.load()) if use_match_model else None

    def candidates(
        self, query: str | Ticket, filters: Filters = NO_FILTERS, k: int = 5, *, with_features: bool | None = None,
    ) -> Candidates:
        """The fused candidate cases, best first, with their match features when a match rerank needs them."""
        filters = filters.for_ticket(query)
        cfg = self.config
        # Bounded work per request: jieba's cost grows with the text; the embedder bounds its own input.
        text = rewrite_query(query_text(query))[: cfg.query_max_chars]
        features_wanted = self.match_model is not None if with_features is None else with_features
        n = max(cfg.candidates, k)
        rankings: dict[str, list[tuple[str, str, float]]] = {}
        lexical_scores = np.zeros(len(self.cases.chunks), dtype=np.float32)
        vector = None
        lexical_ms = embed_ms = dense_ms = match_ms = 0.0
        if cfg.mode in ("lexical", "fused") or features_wanted:
            t0 = time.perf_counter()
            lexical_scores = self.lexical.scores(text)
            if cfg.mode in ("lexical", "fused"):
                rankings["lexical"] = self.lexical.rank(lexical_scores, filters, n)
            lexical_ms = (time.perf_counter() - t0) * 1000
        if cfg.mode in ("dense", "fused") or features_wanted:
            t0 = time.perf_counter()
            vector = self.dense.embed(text)
            embed_ms = (time.perf_counter() - t0) * 1000
            if cfg.mode in ("dense", "fused"):
                rankings["dense"], dense_ms = self.dense.rank(vector, filters, n)
        if cfg.mode == "fused":
            fused = rrf(
                {name: [c for c, _, _ in r] for name, r in rankings.items()},
                {"lexical": cfg.lexical_weight, "dense": cfg.dense_weight},
                k=cfg.rrf_k,
            )
        else:
            only = next(iter(rankings.values()))
            fused = {c: s for c, _, s in only}
        ordered = sorted(fused, key=lambda c: -fused[c])
        matched: dict[str, tuple[str, dict[str, float]]] = {}
        for name in ("dense", "lexical"):
            for rank, (case_id, chunk_id, score) in enumerate(rankings.get(name, []), start=1):
                entry = matched.setdefault(case_id, (chunk_id, {}))
                entry[1][f"{name}_score"] = score
                entry[1][f"{name}_rank"] = rank
        features = None
        if features_wanted and ordered and vector is not None:
            t0 = time.perf_counter()
            ordered = ordered[:n]
            voters = ordered[: max(cfg.voters, 2)]
            agreement = dict(zip(voters, consensus_scores(
                [self._answer(c) for c in voters], [fused[c] for c in voters], self._duplicate_groups(voters)).tolist()))
            features = self.match_features(text, ordered, vector, lexical_scores, filters, matched, agreement)
            match_ms = (time.perf_counter() - t0) * 1000
        timing = Timing(embed_ms=embed_ms, dense_ms=dense_ms, lexical_ms=lexical_ms, match_ms=match_ms)
        return Candidates(tuple(ordered), fused, matched, features, timing)

    def _answer(self, case_id: str) -> str:
        record = self.cases.get(case_id)
        return record.answer if record is not None else ""

    def _duplicate_groups(self, case_ids: Sequence[str]) -> np.ndarray:
        """Copies among the voters vote once (``rag.retrieve.duplicates``)."""
        records = [self.cases.get(c) for c in case_ids]
        return duplicate_groups([r.answer if r else "" for r in records], [r.question if r else "" for r in records],
                                [r is not None and r.provenance is not None for r in records])

    def retrieve(self, query: str | Ticket, filters: Filters = NO_FILTERS, k: int = 5) -> Retrieval:
        cfg = self.config
        cands = self.candidates(query, filters, k)
        fused, matched = cands.fused, cands.matched
        probs: dict[str, float] = {}
        if cands.features is not None and self.match_model is not None:
            scores = self.match_model.scores(cands.features)
            probs = dict(zip(cands.case_ids, self.match_model.probabilities(cands.features, scores).tolist()))
            if cfg.rerank == "match":
                order = sorted(range(len(cands.case_ids)), key=lambda i: (-scores[i], -fused[cands.case_ids[i]]))
                # Hit.score stays a positive, rank-preserving number: the ranker's logistic output.
                ranked = 1.0 / (1.0 + np.exp(-scores))
                return Retrieval(tuple(
                    self._hit(cands.case_ids[i], float(ranked[i]), matched.get(cands.case_ids[i], ("", {})),
                              fused[cands.case_ids[i]], match=probs[cands.case_ids[i]]) for i in order[:k]), cands.timing)
        t0 = time.perf_counter()
        ordered = list(cands.case_ids)
        top = ordered[: max(cfg.consensus_top, k)]
        scores_ = [fused[c] for c in top]
        if cfg.rerank == "consensus" and cfg.consensus_weight > 0 and len(top) > 1:
            voters = ordered[: max(cfg.voters, len(top))]
            answers = [self._answer(c) for c in voters]
            final = rerank([fused[c] for c in voters], answers, cfg.consensus_weight, self._duplicate_groups(voters))[: len(top)]
            top = [top[i] for i in np.argsort(-final, kind="stable")]
            scores_ = sorted(final.tolist(), reverse=True)
        timing = replace(cands.timing, rerank_ms=(time.perf_counter() - t0) * 1000)
        return Retrieval(tuple(self._hit(c, s, matched.get(c, ("", {})), fused.get(c, 0.0), match=probs.get(c))
                               for c, s in zip(top[:k], scores_[:k])), timing)

    def match_features(
        self, text: str, case_ids: list[str], vector: np.ndarray, lexical_scores: np.ndarray, filters: Filters,
        matched: dict[str, tuple[str, dict[str, float]]], agreement: dict[str, float],
    ) -> np.ndarray:
        """Features of each candidate case against the (rewritten) ticket text; see ``rag.retrieve.match``."""
        chunks, kinds = self.cases.chunks, self.config.chunk_kinds
        allowed: Callable[[int], bool] = lambda r: chunks[r].kind in kinds and filters.allows(self.cases.case_of_row(r))
        rows = {c: [r for r in self.cases.rows_of_case.get(c, []) if allowed(r)] or
                self.cases.rows_of_case.get(c, []) for c in case_ids}
        vectors = self.dense.vectors([chunks[r].id for c in case_ids for r in rows[c]])
        dense, lexical, texts = [], [], []
        for c in case_ids:
            sims = [float(np.dot(vectors[chunks[r].id], vector)) for r in rows[c] if chunks[r].id in vectors]
            dense.append(max(sims, default=0.0))
            lexical.append(max((float(lexical_scores[r]) for r in rows[c]), default=0.0))
            record = self.cases.get(c)
            title, question, answer = (record.title, record.question, record.answer) if record else ("", "", "")
            texts.append(CandidateText(
                case_id=c,
                title=title,
                key_texts=tuple(chunks[r].key_text for r in rows[c]),
                full_text=f"{question}\n{answer}",
                answer=answer,
            ))

        def ranks(name: str) -> np.ndarray:
            return np.array([matched.get(c, ("", {}))[1].get(f"{name}_rank", 0) for c in case_ids], dtype=np.float64)

        return pair_features(
            text, texts,
            dense=np.asarray(dense), lexical=np.asarray(lexical),
            rank_dense=ranks("dense"), rank_lexical=ranks("lexical"),
            rank_fused=np.arange(1, len(case_ids) + 1, dtype=np.float64),
            consensus=np.array([agreement.get(c, 0.0) for c in case_ids]),
            idf=idf_table(text, self.lexical.index.doc_freq(text), self.lexical.index.size),
        )

    def _hit(self, case_id: str, score: float, matched: tuple[str, dict[str, float]], fused: float, *,
             match: float | None = None) -> Hit:
        chunk_id, components = matched
        return hit(self.cases, case_id, chunk_id, score, {**components, "rrf": fused}, match)
