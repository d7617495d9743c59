"""Retrieve past cases for a ticket: lexical (bm25s over jieba + bigrams) and dense (Chroma) retrievers,
composed by the hybrid ``CaseRetriever`` (reciprocal rank fusion, then the match rerank). Every one
implements ``Retriever``: ``retrieve(query, filters, k) -> Retrieval``. Its knobs are
``rag.configs.RetrievalConfig``."""

from rag.retrieve.retrieval import NO_FILTERS, Filters, Retrieval, Retriever, Timing
from rag.retrieve.retriever import CaseRetriever

__all__ = ["CaseRetriever", "Filters", "NO_FILTERS", "Retrieval", "Retriever", "Timing"]
