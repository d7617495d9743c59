"""The case retriever: chunk rankings from both indexes, grouped per case, fused, reranked."""

from __future__ import annotations

import re
import time
from pathlib import Path
from dataclasses import dataclass
from typing import Collection, Literal

import numpy as np

from rag.chunk import SCENARIO_SEP
from rag.embed import Embedder
from rag.identifiers import strip_identifiers
from rag.records import Hit, Ticket
from rag.retrieve.consensus import rerank
from rag.retrieve.fusion import best_per_case, rrf
from rag.retrieve.lexical import LexicalIndex
from rag.settings import Settings
from rag.store import ChunkStore, StoredChunk

Mode = Literal["lexical", "dense", "fused"]
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
        values = dict(
            candidates=s.candidates,
            rrf_k=s.rrf_k,
            lexical_weight=s.lexical_weight,
            dense_weight=s.dense_weight,
            consensus_weight=s.consensus_weight,
            consensus_top=s.consensus_top,
            voters=s.consensus_voters,
        )
        values.update(overrides)
        return cls(**values)


@dataclass
class Timing:
    embed_ms: float = 0.0
    dense_ms: float = 0.0
    lexical_ms: float = 0.0
    rerank_ms: float = 0.0


class CaseRetriever:
    def __init__(
        self, store: ChunkStore, embedder: Embedder, config: RetrievalConfig = RetrievalConfig(), *,
        lexical_cache: Path | None = None,
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

    def _lexical(self, query: str, ok, n: int) -> list[tuple[str, str, float]]:
        hits = self.lexical.search(query, n * 4, allowed=lambda row: ok(self.chunks[row].metadata))
        return best_per_case([(self._case_of[r], self.chunks[r].id, s) for r, s in hits])[:n]

    def _dense(self, query: str, ok, n: int, product: str | None, exclude: Collection[str]) -> list[tuple[str, str, float]]:
        t0 = time.perf_counter()
        vector = self.embedder.embed([query], "query")[0]
        t1 = time.perf_counter()
        clauses: list[dict] = []
        if product:
            clauses.append({"product": product})
        if exclude:
            clauses.append({"case_id": {"$nin": list(exclude)}})
        where = clauses[0] if len(clauses) == 1 else ({"$and": clauses} if clauses else None)
        matches = self.store.query(vector, n * 4, where=where)
        self.last_timing.embed_ms = (t1 - t0) * 1000
        self.last_timing.dense_ms = (time.perf_counter() - t1) * 1000
        for m in matches:
            # A chunk ingested after this retriever was built: its metadata is enough to cite it.
            self._case_meta.setdefault(str(m.metadata.get("case_id")), m.metadata)
        return best_per_case([(str(m.metadata.get("case_id")), m.id, m.similarity) for m in matches if ok(m.metadata)])[:n]

    def retrieve(
        self,
        query: str | Ticket,
        k: int = 5,
        *,
        product: str | None = None,
        scenario: str | None = None,
        exclude: Collection[str] = (),
    ) -> list[Hit]:
        text = query.query_text if isinstance(query, Ticket) else query
        if isinstance(query, Ticket) and product is None:
            product = query.product
        text = rewrite_query(text)
        cfg = self.config
        ok = self._allowed(product, scenario, set(exclude))
        self.last_timing = Timing()
        n = max(cfg.candidates, k)
        rankings: dict[str, list[tuple[str, str, float]]] = {}
        if cfg.mode in ("lexical", "fused"):
            t0 = time.perf_counter()
            rankings["lexical"] = self._lexical(text, ok, n)
            self.last_timing.lexical_ms = (time.perf_counter() - t0) * 1000
        if cfg.mode in ("dense", "fused"):
            rankings["dense"] = self._dense(text, ok, n, product, set(exclude))
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
        t0 = time.perf_counter()
        top = ordered[: max(cfg.consensus_top, k)]
        scores = [fused[c] for c in top]
        if cfg.consensus_weight > 0 and len(top) > 1:
            voters = ordered[: max(cfg.voters, len(top))]
            answers = [str(self._case_meta[c].get("answer", "")) for c in voters]
            final = rerank([fused[c] for c in voters], answers, cfg.consensus_weight)[: len(top)]
            top = [top[i] for i in np.argsort(-final, kind="stable")]
            scores = sorted(final.tolist(), reverse=True)
        self.last_timing.rerank_ms = (time.perf_counter() - t0) * 1000
        return [self._hit(c, s, matched.get(c, ("", {})), fused.get(c, 0.0)) for c, s in zip(top[:k], scores[:k])]

    def _hit(self, case_id: str, score: float, match: tuple[str, dict[str, float]], fused: float) -> Hit:
        meta = self._case_meta[case_id]
        chunk_id, components = match
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
        )
