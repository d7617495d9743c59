"""Top rows of a score vector over every chunk, with a row filter: the lexical and the dense sources share it."""

from __future__ import annotations

from typing import Callable

import numpy as np


def top_rows(scores: np.ndarray, n: int, allowed: Callable[[int], bool] | None = None, *,
             positive: bool = False) -> list[tuple[int, float]]:
    """Top-``n`` (row, score), best first, skipping rows ``allowed`` rejects (and, with ``positive``, scores <= 0)."""
    size = len(scores)
    # Partial sort: on 100k chunks a full argsort costs more than the scoring itself. Widen the window only when
    # the filter rejected too many of the best rows.
    m = min(size, max(4 * n, 256))
    while True:
        head = np.argpartition(-scores, m - 1)[:m] if m < size else np.arange(size)
        order = head[np.argsort(-scores[head], kind="stable")]
        out: list[tuple[int, float]] = []
        for row in order:
            s = float(scores[row])
            if positive and s <= 0:
                return out
            if allowed is None or allowed(int(row)):
                out.append((int(row), s))
                if len(out) >= n:
                    return out
        if m >= size:
            return out
        m = min(size, m * 4)
