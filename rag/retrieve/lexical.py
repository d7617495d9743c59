"""BM25 (bm25s) over Chinese-aware tokens of each chunk's question side and answer."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from rag.tokens import tokenize


class LexicalIndex:
    def __init__(
        self, texts: Sequence[str], *, k1: float = 1.2, b: float = 0.75, tokenizer: Callable[[str], list[str]] = tokenize
    ) -> None:
        import bm25s

        self._tokenize = tokenizer
        self._bm25 = bm25s.BM25(k1=k1, b=b)
        self.size = len(texts)
        if texts:
            self._bm25.index([tokenizer(t) or ["\x00"] for t in texts], show_progress=False)

    def scores(self, query: str) -> np.ndarray:
        if not self.size:
            return np.zeros(0, dtype=np.float32)
        tokens = self._tokenize(query)
        if not tokens:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)

    def search(self, query: str, n: int, allowed: Callable[[int], bool] | None = None) -> list[tuple[int, float]]:
        """Top-``n`` (row, score) with a positive score, skipping rows ``allowed`` rejects."""
        scores = self.scores(query)
        # Partial sort: on 100k chunks a full argsort costs more than the BM25 scoring itself.
        # Widen the window only when filters rejected too many of the best rows.
        m = min(self.size, max(4 * n, 256))
        while True:
            head = np.argpartition(-scores, m - 1)[:m] if m < self.size else np.arange(self.size)
            order = head[np.argsort(-scores[head], kind="stable")]
            out: list[tuple[int, float]] = []
            for row in order:
                s = float(scores[row])
                if s <= 0:
                    return out
                if allowed is None or allowed(int(row)):
                    out.append((int(row), s))
                    if len(out) >= n:
                        return out
            if m >= self.size:
                return out
            m = min(self.size, m * 4)
