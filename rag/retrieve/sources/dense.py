"""The dense source: the ticket's embedding against the stored question-side vectors, per case.

Search is exact, in process: the chunks' vectors, read from the store once, are a matrix aligned with the case
repository's rows, and a query is one matrix-vector product and a partial sort. Chroma's HNSW answered the same
query several times slower than numpy over the same vectors (a client call, a lock, an index built for
millions), and the match features re-read each candidate's vectors from Chroma on every request. The matrix is
saved under the cache folder keyed by the embedder and the exact chunk ids and texts (a vector is a function of
them), so the next start maps it from disk: it lives in the page cache, shared by the replicas of one machine.
"""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from rag.retrieve.base import Query, Ranked, Ranking
from rag.retrieve.fusion import best_per_case
from rag.retrieve.sources.rows import top_rows
from rag.store.cache import keep_newest, write_replacing
from rag.store.embed import Embedder, fit_text

if TYPE_CHECKING:
    from rag.store.cases import CaseRepository
    from rag.store.chroma import ChunkStore

KEEP_CACHED_MATRICES = 4


class DenseSource:
    name = "dense"

    def __init__(self, cases: "CaseRepository", store: "ChunkStore", embedder: Embedder, *,
                 kinds: tuple[str, ...] = ("case", "exchange"), cache_dir: Path | None = None) -> None:
        self.cases = cases
        self.store = store
        self.embedder = embedder
        self.kinds = kinds
        self.cache_dir = cache_dir
        self._matrix: np.ndarray | None = None
        self._lock = threading.Lock()

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

    @property
    def matrix(self) -> np.ndarray:
        """Every chunk's unit vector, row for row with ``cases.chunks`` (zeros for a chunk the store has no vector
        of), read once."""
        with self._lock:
            if self._matrix is None:
                self._matrix = self._load()
            return self._matrix

    def _key(self) -> str:
        h = hashlib.sha256(f"{self.embedder.name}\x00{len(self.cases.chunks)}".encode())
        for c in self.cases.chunks:
            h.update(f"{c.id}\x00{c.key_text}\x00".encode("utf-8"))
        return h.hexdigest()[:24]

    def _load(self) -> np.ndarray:
        path = self.cache_dir / f"{self._key()}.npy" if self.cache_dir is not None else None
        if path is not None and path.is_file():
            try:
                saved = np.load(path, mmap_mode="r", allow_pickle=False)
                if saved.shape[0] == len(self.cases.chunks):
                    path.touch()
                    return saved
            except (OSError, ValueError):
                pass  # a damaged cache entry is read again from the store, never trusted
        matrix = self._read()
        if path is not None:
            self._save(matrix, path)
        return matrix

    def _read(self) -> np.ndarray:
        ids = [c.id for c in self.cases.chunks]
        found = self.store.vectors(ids)
        dim = len(next(iter(found.values()))) if found else 0
        matrix = np.zeros((len(ids), dim), dtype=np.float32)
        for row, chunk_id in enumerate(ids):
            v = found.get(chunk_id)
            if v is not None:
                matrix[row] = v
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return matrix / np.where(norms > 0, norms, 1.0)  # cosine, as the store's index measures it

    def _save(self, matrix: np.ndarray, path: Path) -> None:
        write_replacing(path, lambda f: np.save(f, matrix))
        keep_newest(path.parent, KEEP_CACHED_MATRICES, "*.npy")

    def similarities(self, query: Query) -> np.ndarray:
        """Cosine of the query with every chunk row, once per request."""
        def compute() -> np.ndarray:
            vector, _ = self.vector(query)
            v = np.asarray(vector, dtype=np.float32)
            norm = float(np.linalg.norm(v))
            return self.matrix @ (v / norm if norm > 0 else v) if len(self.matrix) else np.zeros(0, np.float32)
        return query.once("dense_similarities", compute)

    def rank(self, query: Query, n: int) -> Ranking:
        _, embed_ms = self.vector(query)
        t0 = time.perf_counter()
        sims = self.similarities(query)
        chunks, kinds, filters = self.cases.chunks, self.kinds, query.filters

        def allowed(row: int) -> bool:
            return chunks[row].kind in kinds and filters.allows(self.cases.case_of_row(row))

        top = top_rows(sims, n * 4, allowed)
        ranked = best_per_case([(chunks[r].case_id, chunks[r].id, s) for r, s in top])[:n]
        return Ranking(self.name, tuple(Ranked(c, chunk, s) for c, chunk, s in ranked),
                       (time.perf_counter() - t0) * 1000, embed_ms)

    def best_scores(self, query: Query, rows: Sequence[Sequence[int]]) -> np.ndarray:
        """Per candidate, the best cosine between the query and its chunk ``rows`` (the match features read it)."""
        sims = self.similarities(query)
        return np.asarray([max((float(sims[r]) for r in rs), default=0.0) for rs in rows])
