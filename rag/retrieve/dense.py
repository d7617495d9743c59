"""The dense retriever: the ticket's embedding against the stored question-side vectors (Chroma), per case."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Sequence

import numpy as np

from rag.cases import dense_where
from rag.embed import Embedder, fit_text
from rag.records import Ticket
from rag.retrieve.fusion import best_per_case
from rag.retrieve.hits import hit
from rag.retrieve.query import rewrite_query
from rag.retrieve.retrieval import NO_FILTERS, Filters, Retrieval, Timing, query_text

if TYPE_CHECKING:
    from rag.cases import CaseRepository
    from rag.store import ChunkStore


class DenseRetriever:
    def __init__(self, cases: "CaseRepository", store: "ChunkStore", embedder: Embedder, *,
                 kinds: tuple[str, ...] = ("case", "exchange")) -> None:
        self.cases = cases
        self.store = store
        self.embedder = embedder
        self.kinds = kinds

    def embed(self, text: str) -> np.ndarray:
        """A ticket's query vector, the query first cut to the embedder's per-request bound (issue 12)."""
        return self.embedder.embed([fit_text(self.embedder, text, "query")], "query")[0]

    def rank(self, vector: np.ndarray, filters: Filters, n: int) -> tuple[list[tuple[str, str, float]], float]:
        """The best ``n`` cases (case id, best chunk id, cosine), and the milliseconds the store query took."""
        # The filters as a Chroma ``where``: product and scenarios are stored on the case chunk only, so a
        # narrowing filter becomes the list of the cases it allows.
        only = [c.id for c in self.cases if filters.allows(c)] if filters.narrows else None
        if only == []:
            return [], 0.0
        where = dense_where(only=only, exclude=filters.exclude)
        t0 = time.perf_counter()
        matches = self.store.query(vector, n * 4, where=where)
        ms = (time.perf_counter() - t0) * 1000
        kept = []
        for m in matches:
            row = self.cases.row_of.get(m.id)
            # A chunk stored after this repository was read is not known to it: it cannot be cited yet.
            if row is not None and self.cases.chunks[row].kind in self.kinds:
                kept.append((self.cases.chunks[row].case_id, m.id, m.similarity))
        return best_per_case(kept)[:n], ms

    def vectors(self, chunk_ids: Sequence[str]) -> dict[str, np.ndarray]:
        return self.store.vectors(chunk_ids)

    def retrieve(self, query: str | Ticket, filters: Filters = NO_FILTERS, k: int = 5) -> Retrieval:
        filters = filters.for_ticket(query)
        t0 = time.perf_counter()
        vector = self.embed(rewrite_query(query_text(query)))
        embed_ms = (time.perf_counter() - t0) * 1000
        ranked, dense_ms = self.rank(vector, filters, k)
        return Retrieval(tuple(hit(self.cases, c, chunk, s, {"dense_score": s}) for c, chunk, s in ranked),
                         Timing(embed_ms=embed_ms, dense_ms=dense_ms))
