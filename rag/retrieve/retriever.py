"""The case retriever: chunk rankings from both indexes, grouped per case, fused, reranked."""

from __future__ import annotations

import re
import time
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Collection, Literal, Sequence

import numpy as np

from rag.chunk import SCENARIO_SEP
from rag.embed import Embedder
from rag.identifiers import strip_identifiers
from rag.records import Hit, Ticket
from rag.retrieve.consensus import consensus_scores, rerank
from rag.retrieve.duplicates import duplicate_groups
from rag.retrieve.fusion import best_per_case, rrf
from rag.retrieve.lexical import LexicalIndex
from rag.retrieve.match import CandidateText, MatchModel, idf_table, pair_features
from rag.settings import Settings
from rag.store import ChunkStore, StoredChunk

Mode = Literal["lexical", "dense", "fused"]
Rerank = Literal["match", "consensus", "none"]
_DEFAULTS = Settings.model_fields

# Greetings, thanks and redaction tokens carry no topic; dropping them keeps BM25 and the
# embedding on what the customer is asking about.
_NOISE = re.compile(r"\[REDACTED_[A-Z_]+\]|\[图片\]|^(您好|你好|hello|hi)[，,！!。\s]*|(谢谢|麻烦了|辛苦了)[！!。]*", re.I)


def rewrite_query(text: str) -> str:
    """Drop greetings, thanks, redaction tokens, links and identifiers (measured: top-1 0.245 → 0.256)."""
    return strip_identifiers(_NOISE.sub(" ", text)) or text


@dataclass(frozen=True)
class RetrievalConfig:
    mode: Mode = "fused"
    # "match": the fitted match model orders the fused candidates (measured on the problem-group labels,
    # see README); "consensus": answer agreement (raises answer char-ROUGE, lowers same-problem P@1).
    rerank: Rerank = _DEFAULTS["rerank"].default
    lexical_field: Literal["key", "full"] = "full"
    # Defaults live in Settings (one place); a RetrievalConfig() matches what `rag` runs with.
    candidates: int = _DEFAULTS["candidates"].default
    rrf_k: int = _DEFAULTS["rrf_k"].default
    lexical_weight: float = _DEFAULTS["lexical_weight"].default
    dense_weight: float = _DEFAULTS["dense_weight"].default
    consensus_weight: float = _DEFAULTS["consensus_weight"].default
    consensus_top: int = _DEFAULTS["consensus_top"].default
    voters: int = _DEFAULTS["consensus_voters"].default
    chunk_kinds: tuple[str, ...] = ("case", "exchange")

    @classmethod
    def from_settings(cls, s: Settings, **overrides) -> "RetrievalConfig":
        values: dict[str, Any] = dict(
            candidates=s.candidates,
            rrf_k=s.rrf_k,
            lexical_weight=s.lexical_weight,
            dense_weight=s.dense_weight,
            consensus_weight=s.consensus_weight,
            consensus_top=s.consensus_top,
            voters=s.consensus_voters,
            rerank=s.rerank,
        )
        values.update(overrides)
        return cls(**values)


@dataclass
class Timing:
    embed_ms: float = 0.0
    dense_ms: float = 0.0
    lexical_ms: float = 0.0
    rerank_ms: float = 0.0
    match_ms: float = 0.0


@dataclass(frozen=True)
class Candidates:
    """Fused candidates for one query, best first, and (for the match rerank) one feature row each."""

    case_ids: tuple[str, ...]
    fused: dict[str, float]
    matched: dict[str, tuple[str, dict[str, float]]]
    features: np.ndarray | None = None


class CaseRetriever:
    def __init__(
        self, store: ChunkStore, embedder: Embedder, config: RetrievalConfig = RetrievalConfig(), *,
        lexical_cache: Path | None = None, match_model: MatchModel | None = None, use_match_model: bool = True,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.config = config
        self.chunks: list[StoredChunk] = store.all_chunks()
        self._row = {c.id: i for i, c in enumerate(self.chunks)}
        self._case_of = [str(c.metadata.get("case_id", "")) for c in self.chunks]
        self._case_meta: dict[str, dict] = {}
        for c in self.chunks:
            if c.metadata.get("kind") == "case" or c.metadata.get("case_id") not in self._case_meta:
                self._case_meta[str(c.metadata.get("case_id"))] = c.metadata
        field_of = (lambda c: c.metadata.get("key_text", "")) if config.lexical_field == "key" else (
            lambda c: f"{c.metadata.get('key_text', '')}\n{c.text}"
        )
        self.lexical = LexicalIndex.cached([field_of(c) for c in self.chunks], lexical_cache)
        self.last_timing = Timing()
        self.rows_of_case: dict[str, list[int]] = {}
        for row, case_id in enumerate(self._case_of):
            self.rows_of_case.setdefault(case_id, []).append(row)
        # The match model also rates candidates under another rerank: the drafter's verdict needs it.
        self.match_model = (match_model or MatchModel.load()) if use_match_model else None

    @property
    def case_ids(self) -> list[str]:
        return list(self._case_meta)

    def case_metadata(self, case_id: str) -> dict | None:
        return self._case_meta.get(case_id)

    def _allowed(self, product: str | None, scenario: str | None, exclude: Collection[str]):
        kinds = self.config.chunk_kinds

        def ok(meta: dict) -> bool:
            if meta.get("kind") not in kinds:
                return False
            if meta.get("case_id") in exclude:
                return False
            if product and meta.get("product") != product:
                return False
            if scenario and scenario not in str(meta.get("scenarios", "")).split(SCENARIO_SEP):
                return False
            return True

        return ok

    def _lexical(self, scores: np.ndarray, ok, n: int) -> list[tuple[str, str, float]]:
        hits = self.lexical.top(scores, n * 4, allowed=lambda row: ok(self.chunks[row].metadata))
        return best_per_case([(self._case_of[r], self.chunks[r].id, s) for r, s in hits])[:n]

    def _dense(self, vector: np.ndarray, ok, n: int, product: str | None, exclude: Collection[str]) -> list[tuple[str, str, float]]:
        t1 = time.perf_counter()
        clauses: list[dict] = []
        if product:
            clauses.append({"product": product})
        if exclude:
            clauses.append({"case_id": {"$nin": list(exclude)}})
        where = clauses[0] if len(clauses) == 1 else ({"$and": clauses} if clauses else None)
        matches = self.store.query(vector, n * 4, where=where)
        self.last_timing.dense_ms = (time.perf_counter() - t1) * 1000
        for m in matches:
            # A chunk ingested after this retriever was built: its metadata is enough to cite it.
            self._case_meta.setdefault(str(m.metadata.get("case_id")), m.metadata)
        return best_per_case([(str(m.metadata.get("case_id")), m.id, m.similarity) for m in matches if ok(m.metadata)])[:n]

    def candidates(
        self,
        query: str | Ticket,
        k: int = 5,
        *,
        product: str | None = None,
        scenario: str | None = None,
        exclude: Collection[str] = (),
        with_features: bool | None = None,
    ) -> Candidates:
        """The fused candidate cases, best first, with their match features when a match rerank needs them."""
        text = query.query_text if isinstance(query, Ticket) else query
        if isinstance(query, Ticket) and product is None:
            product = query.product
        text = rewrite_query(text)
        cfg = self.config
        features_wanted = self.match_model is not None if with_features is None else with_features
        ok = self._allowed(product, scenario, set(exclude))
        self.last_timing = Timing()
        n = max(cfg.candidates, k)
        rankings: dict[str, list[tuple[str, str, float]]] = {}
        lexical_scores = np.zeros(len(self.chunks), dtype=np.float32)
        vector = None
        if cfg.mode in ("lexical", "fused") or features_wanted:
            t0 = time.perf_counter()
            lexical_scores = self.lexical.scores(text)
            if cfg.mode in ("lexical", "fused"):
                rankings["lexical"] = self._lexical(lexical_scores, ok, n)
            self.last_timing.lexical_ms = (time.perf_counter() - t0) * 1000
        if cfg.mode in ("dense", "fused") or features_wanted:
            t0 = time.perf_counter()
            vector = self.embedder.embed([text], "query")[0]
            self.last_timing.embed_ms = (time.perf_counter() - t0) * 1000
            if cfg.mode in ("dense", "fused"):
                rankings["dense"] = self._dense(vector, ok, n, product, set(exclude))
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
                [str(self._case_meta[c].get("answer", "")) for c in voters], [fused[c] for c in voters],
                self._duplicate_groups(voters)).tolist()))
            features = self.match_features(text, ordered, vector, lexical_scores, ok, matched, agreement)
            self.last_timing.match_ms = (time.perf_counter() - t0) * 1000
        return Candidates(tuple(ordered), fused, matched, features)

    def retrieve(
        self,
        query: str | Ticket,
        k: int = 5,
        *,
        product: str | None = None,
        scenario: str | None = None,
        exclude: Collection[str] = (),
    ) -> list[Hit]:
        cfg = self.config
        cands = self.candidates(query, k, product=product, scenario=scenario, exclude=exclude)
        fused, matched = cands.fused, cands.matched
        probs: dict[str, float] = {}
        if cands.features is not None and self.match_model is not None:
            scores = self.match_model.scores(cands.features)
            probs = dict(zip(cands.case_ids, self.match_model.probabilities(cands.features, scores).tolist()))
            if cfg.rerank == "match":
                order = sorted(range(len(cands.case_ids)), key=lambda i: (-scores[i], -fused[cands.case_ids[i]]))
                # Hit.score stays a positive, rank-preserving number: the ranker's logistic output.
                ranked = 1.0 / (1.0 + np.exp(-scores))
                return [self._hit(cands.case_ids[i], float(ranked[i]), matched.get(cands.case_ids[i], ("", {})),
                                  fused[cands.case_ids[i]], match=probs[cands.case_ids[i]]) for i in order[:k]]
        t0 = time.perf_counter()
        ordered = list(cands.case_ids)
        top = ordered[: max(cfg.consensus_top, k)]
        scores_ = [fused[c] for c in top]
        if cfg.rerank == "consensus" and cfg.consensus_weight > 0 and len(top) > 1:
            voters = ordered[: max(cfg.voters, len(top))]
            answers = [str(self._case_meta[c].get("answer", "")) for c in voters]
            final = rerank([fused[c] for c in voters], answers, cfg.consensus_weight, self._duplicate_groups(voters))[: len(top)]
            top = [top[i] for i in np.argsort(-final, kind="stable")]
            scores_ = sorted(final.tolist(), reverse=True)
        self.last_timing.rerank_ms = (time.perf_counter() - t0) * 1000
        return [self._hit(c, s, matched.get(c, ("", {})), fused.get(c, 0.0), match=probs.get(c))
                for c, s in zip(top[:k], scores_[:k])]

    def _duplicate_groups(self, case_ids: Sequence[str]) -> np.ndarray:
        """Copies among the voters vote once (``rag.retrieve.duplicates``)."""
        metas = [self._case_meta[c] for c in case_ids]
        return duplicate_groups([str(m.get("answer", "")) for m in metas], [str(m.get("question", "")) for m in metas],
                                [bool(m.get("provenance")) for m in metas])

    def match_features(
        self, text: str, case_ids: list[str], vector: np.ndarray, lexical_scores: np.ndarray, ok,
        matched: dict[str, tuple[str, dict[str, float]]], agreement: dict[str, float],
    ) -> np.ndarray:
        """Features of each candidate case against the (rewritten) ticket text; see ``rag.retrieve.match``."""
        rows = {c: [r for r in self.rows_of_case.get(c, []) if ok(self.chunks[r].metadata)] or
                self.rows_of_case.get(c, []) for c in case_ids}
        vectors = self.store.vectors([self.chunks[r].id for c in case_ids for r in rows[c]])
        dense, lexical, texts = [], [], []
        for c in case_ids:
            sims = [float(np.dot(vectors[self.chunks[r].id], vector)) for r in rows[c] if self.chunks[r].id in vectors]
            dense.append(max(sims, default=0.0))
            lexical.append(max((float(lexical_scores[r]) for r in rows[c]), default=0.0))
            meta = self._case_meta[c]
            texts.append(CandidateText(
                case_id=c,
                title=str(meta.get("title", "")),
                key_texts=tuple(str(self.chunks[r].metadata.get("key_text", "")) for r in rows[c]),
                full_text=f"{meta.get('question', '')}\n{meta.get('answer', '')}",
                answer=str(meta.get("answer", "")),
            ))

        def ranks(name: str) -> np.ndarray:
            return np.array([matched.get(c, ("", {}))[1].get(f"{name}_rank", 0) for c in case_ids], dtype=np.float64)

        return pair_features(
            text, texts,
            dense=np.asarray(dense), lexical=np.asarray(lexical),
            rank_dense=ranks("dense"), rank_lexical=ranks("lexical"),
            rank_fused=np.arange(1, len(case_ids) + 1, dtype=np.float64),
            consensus=np.array([agreement.get(c, 0.0) for c in case_ids]),
            idf=idf_table(text, self.lexical.doc_freq(text), self.lexical.size),
        )

    def _hit(self, case_id: str, score: float, matched: tuple[str, dict[str, float]], fused: float, *,
             match: float | None = None) -> Hit:
        meta = self._case_meta[case_id]
        chunk_id, components = matched
        row = self._row.get(chunk_id)
        chunk_text = self.chunks[row].text if row is not None else ""
        return Hit(
            case_id=case_id,
            score=float(score),
            title=str(meta.get("title", "")),
            product=str(meta.get("product", "")),
            subcategory=str(meta.get("subcategory", "")),
            chunk_id=chunk_id,
            chunk_text=chunk_text,
            answer=str(meta.get("answer", "")),
            metadata=dict(meta),
            components={**components, "rrf": fused},
            match=match,
        )
