"""BM25 (bm25s) over Chinese-aware tokens of each chunk's question side and answer; the lexical source.

Tokenising is the slow part (jieba over every chunk: ~16 s per 10k chunks on 2 cores), so a built
index is saved under the cache folder, keyed by the exact texts, tokenizer version and parameters;
the next start with unchanged chunks maps it from disk instead of tokenising again. Keyed by content, a
saved index can never be served for other chunks: a new generation's texts are a new key.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Literal, Sequence

import numpy as np

from rag.retrieve.base import Query, Ranked, Ranking
from rag.retrieve.fusion import best_per_case
from rag.retrieve.sources.rows import top_rows
from rag.store.cache import keep_newest
from rag.text.tokens import TOKENIZER_VERSION, tokenize

if TYPE_CHECKING:
    from rag.store.cases import CaseRepository

KEEP_CACHED_INDEXES = 4


class LexicalIndex:
    def __init__(
        self, texts: Sequence[str], *, k1: float = 1.2, b: float = 0.75, tokenizer: Callable[[str], list[str]] = tokenize,
        _loaded=None,
    ) -> None:
        import bm25s

        self._tokenize = tokenizer
        self.size = len(texts)
        if _loaded is not None:
            self._bm25 = _loaded
            return
        self._bm25 = bm25s.BM25(k1=k1, b=b)
        if texts:
            self._bm25.index([tokenizer(t) or ["\x00"] for t in texts], show_progress=False)

    @classmethod
    def cached(cls, texts: Sequence[str], cache_dir: Path | None, *, k1: float = 1.2, b: float = 0.75) -> "LexicalIndex":
        """The default-tokenizer index for ``texts``, loaded from ``cache_dir`` when it was built before."""
        if cache_dir is None or not texts:
            return cls(texts, k1=k1, b=b)
        import bm25s

        h = hashlib.sha256(f"{TOKENIZER_VERSION}\x00{k1}\x00{b}\x00{len(texts)}".encode())
        for t in texts:
            h.update(t.encode("utf-8"))
            h.update(b"\x00")
        folder = cache_dir / h.hexdigest()[:24]
        if (folder / "params.index.json").is_file():
            try:
                # Memory-mapped: the score matrix stays in the page cache, shared by every replica on the machine,
                # instead of a private copy in each process (at 100k chunks the largest part of a replica).
                loaded = bm25s.BM25.load(str(folder), mmap=True, show_progress=False)
                folder.touch()
                return cls(texts, _loaded=loaded)
            except (OSError, ValueError, KeyError):
                shutil.rmtree(folder, ignore_errors=True)  # a damaged cache entry is rebuilt, never trusted
        index = cls(texts, k1=k1, b=b)
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=cache_dir, prefix=".building-"))
        index._bm25.save(str(tmp), show_progress=False)
        try:
            tmp.rename(folder)
        except OSError:  # another process saved the same index first
            shutil.rmtree(tmp, ignore_errors=True)
        keep_newest(cache_dir, KEEP_CACHED_INDEXES)
        return index

    def scores(self, query: str) -> np.ndarray:
        if not self.size:
            return np.zeros(0, dtype=np.float32)
        tokens = self._tokenize(query)
        if not tokens:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)

    def doc_freq(self, query: str) -> dict[str, int]:
        """How many indexed texts hold each of the query's tokens (bm25s keeps scores per token, CSC)."""
        vocab = getattr(self._bm25, "vocab_dict", None) or {}
        indptr = self._bm25.scores["indptr"] if self.size else None
        out = {}
        for t in set(self._tokenize(query)):
            i = vocab.get(t)
            out[t] = int(indptr[i + 1] - indptr[i]) if i is not None and indptr is not None else 0
        return out

    def search(self, query: str, n: int, allowed: Callable[[int], bool] | None = None) -> list[tuple[int, float]]:
        """Top-``n`` (row, score) with a positive score, skipping rows ``allowed`` rejects."""
        return self.top(self.scores(query), n, allowed)

    def top(self, scores: np.ndarray, n: int, allowed: Callable[[int], bool] | None = None) -> list[tuple[int, float]]:
        """Top-``n`` rows of precomputed ``scores`` (see ``search``)."""
        return top_rows(scores, n, allowed, positive=True)


class LexicalSource:
    """BM25 over the repository's chunks (question side, plus the chunk text for ``field="full"``), per case."""

    name = "lexical"

    def __init__(self, cases: "CaseRepository", *, field: Literal["key", "full"] = "full",
                 cache_dir: Path | None = None, kinds: tuple[str, ...] = ("case", "exchange")) -> None:
        self.cases = cases
        self.kinds = kinds
        texts = [c.key_text if field == "key" else f"{c.key_text}\n{c.text}" for c in cases.chunks]
        self.index = LexicalIndex.cached(texts, cache_dir)

    def scores(self, query: Query) -> np.ndarray:
        """BM25 score of every chunk row for the query, computed once per request."""
        return query.once("lexical_scores", lambda: self.index.scores(query.text))

    def rank(self, query: Query, n: int) -> Ranking:
        t0 = time.perf_counter()
        scores = self.scores(query)
        chunks, kinds, filters = self.cases.chunks, self.kinds, query.filters

        def allowed(row: int) -> bool:
            return chunks[row].kind in kinds and filters.allows(self.cases.case_of_row(row))

        top = self.index.top(scores, n * 4, allowed=allowed)
        ranked = best_per_case([(chunks[r].case_id, chunks[r].id, s) for r, s in top])[:n]
        return Ranking(self.name, tuple(Ranked(c, chunk, s) for c, chunk, s in ranked),
                       ms=(time.perf_counter() - t0) * 1000)

    def best_scores(self, query: Query, rows: Sequence[Sequence[int]]) -> np.ndarray:
        """Per candidate, the best BM25 score among its chunk ``rows`` (the match features read it)."""
        scores = self.scores(query)
        return np.asarray([max((float(scores[r]) for r in rs), default=0.0) for rs in rows])
