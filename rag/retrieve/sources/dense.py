"""The dense source: the ticket's embedding against the stored question-side vectors (Chroma), per case."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Sequence

import numpy as np

from rag.retrieve.base import Query, Ranked, Ranking
from rag.retrieve.fusion import best_per_case
from rag.store.cases import dense_where
from rag.store.embed import Embedder, fit_text

if TYPE_CHECKING:
    from rag.store.cases import CaseRepository
    from rag.store.chroma import ChunkStore


class DenseSource:
    name = "dense"

    def __init__(self, cases: "CaseRepository", store: "ChunkStore", embedder: Embedder, *,
                 kinds: tuple[str, ...] = ("case", "exchange")) -> None:
        self.cases = cases
        self.store = store
        self.embedder = embedder
        self.kinds = kinds

    def embed(self, text: str) -> np.ndarray:
        """A ticket's query vector, the query first cut to the embedder's per-request bound (issue 12)."""
        return self.embedder.embed([fit_text(self.embedder, text, "query")], "query")[0]

    def vector(self, query: Query) -> tuple[np.ndarray, float]:
        """The query's embedding, computed once per request, and the milliseconds it took (0 when reused)."""
        if "dense_vector" in query.memo:
            return query.memo["dense_vector"], 0.0  # type: ignore[return-value]  # set below only
        t0 = time.perf_counter()
        vector = query.once("dense_vector", lambda: self.embed(query.text))
        return vector, (time.perf_counter() - t0) * 1000

    def rank(self, query: Query, n: int) -> Ranking:
        vector, embed_ms = self.vector(query)
        filters = query.filters
        # The filters as a Chroma ``where``: product and scenarios are stored on the case chunk only, so a
        # narrowing filter becomes the list of the cases it allows.
        only = [c.id for c in self.cases if filters.allows(c)] if filters.narrows else None
        if only == []:
            return Ranking(self.name, (), 0.0, embed_ms)
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
        ranked = best_per_case(kept)[:n]
        return Ranking(self.name, tuple(Ranked(c, chunk, s) for c, chunk, s in ranked), ms, embed_ms)

    def best_scores(self, query: Query, rows: Sequence[Sequence[int]]) -> np.ndarray:
        """Per candidate, the best cosine between the query and its chunk ``rows`` (the match features read it)."""
        vector, _ = self.vector(query)
        chunks = self.cases.chunks
        vectors = self.store.vectors([chunks[r].id for rs in rows for r in rs])
        return np.asarray([max((float(np.dot(vectors[chunks[r].id], vector)) for r in rs if chunks[r].id in vectors),
                               default=0.0) for rs in rows])
