"""Retrieve past cases for a ticket: sources (lexical, dense) → fuser (RRF) → rerankers (match, consensus),
composed by ``HybridRetriever``; every retriever implements ``Retriever``:
``retrieve(query, filters, k) -> Retrieval``. ``rag.pipeline`` wires the default setup."""

from rag.retrieve.base import NO_FILTERS, Candidates, Filters, Query, Retrieval, Retriever, Timing
from rag.retrieve.hybrid import HybridRetriever

__all__ = ["Candidates", "Filters", "HybridRetriever", "NO_FILTERS", "Query", "Retrieval", "Retriever", "Timing"]
