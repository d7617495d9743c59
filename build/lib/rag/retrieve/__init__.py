"""Retrieve past cases for a ticket: lexical (bm25s over jieba + bigrams) and dense (Chroma),
fused by reciprocal rank, then a consensus rerank over the candidates' answers."""

from rag.retrieve.retriever import CaseRetriever, RetrievalConfig

__all__ = ["CaseRetriever", "RetrievalConfig"]
