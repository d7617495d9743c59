"""The hybrid retriever: sources → fuser → rerankers, composed; it implements ``Retriever``.

``rag.pipeline`` wires the default setup (lexical + dense, RRF, the match reranker); the research scripts
compose their own from the same parts (``rag.evaluation.retrieval_loo.SETUPS``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from rag.records import Ticket
from rag.retrieve.base import NO_FILTERS, Candidates, Filters, Query, Retrieval, Timing
from rag.retrieve.fusion import Fuser
from rag.retrieve.hits import hit
from rag.retrieve.rerank import Reranker
from rag.retrieve.sources import Source

if TYPE_CHECKING:
    from rag.store.cases import CaseRepository


class HybridRetriever:
    def __init__(self, cases: "CaseRepository", sources: Sequence[Source], fuser: Fuser,
                 rerankers: Sequence[Reranker] = (), *, candidates: int = 20, query_max_chars: int | None = None) -> None:
        if not sources:
            raise ValueError("a retriever needs at least one source")
        self.cases = cases
        self.sources = tuple(sources)
        self.fuser = fuser
        self.rerankers = tuple(rerankers)
        self.n_candidates = candidates
        self.query_max_chars = query_max_chars

    def candidates(self, query: str | Ticket, filters: Filters = NO_FILTERS, k: int = 5) -> Candidates:
        """The fused candidates, best first, before any reranker."""
        q = Query.of(query, filters, max_chars=self.query_max_chars)
        n = max(self.n_candidates, k)
        rankings = tuple(source.rank(q, n) for source in self.sources)
        timing = Timing(embed_ms=sum(r.embed_ms for r in rankings),
                        dense_ms=sum(r.ms for r in rankings if r.source == "dense"),
                        lexical_ms=sum(r.ms for r in rankings if r.source == "lexical"))
        return Candidates(q, self.fuser.fuse(rankings)[:n], rankings, k, timing)

    def rerank(self, cands: Candidates) -> Candidates:
        for reranker in self.rerankers:
            cands = reranker.rerank(cands)
        return cands

    def retrieve(self, query: str | Ticket, filters: Filters = NO_FILTERS, k: int = 5) -> Retrieval:
        cands = self.rerank(self.candidates(query, filters, k))
        return Retrieval(tuple(hit(self.cases, c.case_id, c.chunk_id, c.score, {**c.components, "rrf": c.fused}, c.match)
                               for c in cands.items[:k]), cands.timing)
