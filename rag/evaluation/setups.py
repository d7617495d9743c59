"""Retrieval setups the research scripts compare, composed from the same parts ``rag.pipeline`` wires: sources,
a fuser and rerankers. Each setup is a function of the parts; the parts are built once per store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from rag.configs import RetrievalConfig
from rag.pipeline import Pipeline, build_retriever, build_sources
from rag.retrieve import HybridRetriever
from rag.retrieve.fusion import RRF, Passthrough
from rag.retrieve.rerank.consensus import ConsensusReranker
from rag.retrieve.rerank.match import MatchReranker
from rag.retrieve.sources.dense import DenseSource
from rag.retrieve.sources.lexical import LexicalSource
from rag.store.cases import CaseRepository


@dataclass(frozen=True)
class Parts:
    pipeline: Pipeline
    cases: CaseRepository
    lexical: LexicalSource        # question side and answer
    lexical_key: LexicalSource    # question side only
    dense: DenseSource
    config: RetrievalConfig

    @classmethod
    def of(cls, pipeline: Pipeline, config: RetrievalConfig = RetrievalConfig(), *, lexical_cache=None) -> "Parts":
        cases = pipeline.cases
        # The pipeline's own sources (one place builds them); the dense index is cached beside the store's.
        lexical, dense = build_sources(cases, pipeline.store, pipeline.embedder, config,
                                       lexical_cache=lexical_cache or pipeline.settings.store.cache_dir / "bm25")
        return cls(pipeline, cases, lexical, LexicalSource(cases, field="key", kinds=config.chunk_kinds), dense, config)

    def retriever(self, sources, rerankers=()) -> HybridRetriever:
        c = self.config
        fuser = RRF(c.rrf_k, {"lexical": c.lexical_weight, "dense": c.dense_weight}) if len(sources) > 1 else Passthrough()
        return HybridRetriever(self.cases, sources, fuser, rerankers, candidates=c.candidates,
                               query_max_chars=c.query_max_chars)

    @property
    def consensus(self) -> ConsensusReranker:
        c = self.config
        return ConsensusReranker(self.cases, weight=c.consensus_weight, top=c.consensus_top, voters=c.consensus_voters)

    def match(self, *, reorder: bool = True) -> MatchReranker:
        return MatchReranker(self.pipeline.match_model, self.cases, self.lexical, self.dense, voters=self.config.consensus_voters,
                             reorder=reorder)


Setup = Callable[[Parts], HybridRetriever]

SETUPS: dict[str, Setup] = {
    "lexical (bm25s, jieba+bigrams, question+answer)": lambda p: p.retriever([p.lexical]),
    "lexical (bm25s, jieba+bigrams, question only)": lambda p: p.retriever([p.lexical_key]),
    "dense (e5, question vs question)": lambda p: p.retriever([p.dense]),
    "fused RRF (lexical + dense)": lambda p: p.retriever([p.lexical, p.dense]),
    "lexical + consensus rerank": lambda p: p.retriever([p.lexical], [p.consensus]),
    "dense + consensus rerank": lambda p: p.retriever([p.dense], [p.consensus]),
    "fused + consensus rerank (the previous default)": lambda p: p.retriever([p.lexical, p.dense], [p.consensus]),
    # The pipeline's own wiring: what `rag` runs.
    "fused + match rerank (default; shipped model, in-sample)": lambda p: build_retriever(
        p.cases, p.pipeline.store, p.pipeline.embedder, p.config, match_model=p.pipeline.match_model),
}
DEFAULT_SETUP = "fused + match rerank (default; shipped model, in-sample)"
