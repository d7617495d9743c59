"""Sources: each ranks past cases for a query on its own signal. A new source is one class here and one line
in ``rag.pipeline``'s wiring.

- ``lexical.LexicalSource``: BM25 (bm25s) over Chinese-aware tokens of each chunk;
- ``dense.DenseSource``: the query's embedding against the stored question-side vectors (Chroma).
"""

from __future__ import annotations

from typing import Protocol

from rag.retrieve.base import Query, Ranking


class Source(Protocol):
    """Ranks cases for a query, best first: at most ``n``, one entry per case (its best chunk)."""

    name: str

    def rank(self, query: Query, n: int) -> Ranking: ...
