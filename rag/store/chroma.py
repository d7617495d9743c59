"""The chunk store: a Chroma collection, embedded on local disk or on a ``chroma run`` server.

Both go through the same code; only the client differs. Vectors are always computed by the
project's embedder and passed in, so Chroma's default embedding function (an ONNX download) is
never used. The collection records the embedding model that built it; opening it with another
model is refused rather than mixing vector spaces.

Generations: every ingest that changes the store bumps a generation number kept in a small pointer
collection (``rag.store.generation``), and ``--rebuild`` fills a new collection before the pointer
switches to it, so a running service sees a whole store, old or new, never a half-built one.
"""

from __future__ import annotations

import hashlib
import uuid
import time
from dataclasses import dataclass
from typing import Any, Iterator, Sequence
from urllib.parse import urlsplit

import numpy as np
from filelock import FileLock, Timeout

from rag.store.cases import encode_chunk
from rag.errors import EmbeddingMismatchError, StoreError, StoreLockedError
from rag.records import Chunk
from rag.configs import StoreConfig
from rag.store.generation import Active, drop_inactive, next_collection, read_active, write_active
from rag.store.health import damaged_store_error

_SETTLE_SECONDS = 0.5  # how long a read waits before retrying a collection a rebuild has just switched to

SCHEMA_VERSION = 1
_PAGE = 2000
_STAMP = "content_stamp"


@dataclass(frozen=True, slots=True)
class StoredChunk:
    id: str
    text: str
    metadata: dict[str, Any]


def _client(config: StoreConfig, *, fresh: bool = False):
    """A Chroma client; ``fresh`` drops this process's cached embedded system for the path first.

    The embedded client caches each collection's vector index in memory and never sees what another
    process (an ingest) wrote to it later; a fresh system reads the files again.
    """
    import chromadb
    from chromadb.api.shared_system_client import SharedSystemClient
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    try:
        if config.chroma_url:
            url = urlsplit(config.chroma_url)
            if not url.hostname:
                raise StoreError(f"RAG_CHROMA_URL is not a URL: {config.chroma_url!r}")
            return chromadb.HttpClient(
                host=url.hostname,
                port=url.port or (443 if url.scheme == "https" else 8000),
                ssl=url.scheme == "https",
                settings=chroma_settings,
            )
        config.store_path.mkdir(parents=True, exist_ok=True)
        if fresh:
            SharedSystemClient._identifier_to_system.pop(str(config.store_path), None)
        return chromadb.PersistentClient(path=str(config.store_path), settings=chroma_settings)
    except StoreError:
        raise
    except Exception as exc:  # chromadb raises bare ValueError/ConnectionError variants
        if damaged := damaged_store_error(config, exc):
            raise damaged from exc
        raise StoreError(f"cannot open the Chroma store at {config.location}: {exc}") from exc


def ingest_lock(config: StoreConfig) -> FileLock:
    """A per-store lock: the embedded client is single-writer per path, and two ingests would race."""
    if config.chroma_url:
        key = hashlib.sha256(f"{config.chroma_url}/{config.collection}".encode()).hexdigest()[:16]
        config.cache_dir.mkdir(parents=True, exist_ok=True)
        path = config.cache_dir / f"ingest-{key}.lock"
    else:
        config.store_path.mkdir(parents=True, exist_ok=True)
        path = config.store_path / f".{config.collection}.ingest.lock"
    return FileLock(str(path))


class ChunkStore:
    def __init__(self, config: StoreConfig, embedding_model: str, *, create: bool = True, fresh: bool = False,
                 _active: Active | None = None) -> None:
        self.config = config
        self.embedding_model = embedding_model
        self._client = _client(config, fresh=fresh)
        self.active = _active or self._read_active()
        self._col = self._open(self.active.collection, create)

    def _read_active(self) -> Active:
        try:
            return read_active(self._client, self.config.collection)
        except Exception as exc:
            if damaged := damaged_store_error(self.config, exc):
                raise damaged from exc
            raise StoreError(f"cannot read the store's active collection: {exc}") from exc

    def _open(self, name: str, create: bool):
        try:
            if create:
                col = self._client.get_or_create_collection(
                    name,
                    configuration={"hnsw": {"space": "cosine"}},
                    metadata={"embedding_model": self.embedding_model, "schema": SCHEMA_VERSION},
                    embedding_function=None,
                )
            else:
                col = self._client.get_collection(name, embedding_function=None)
        except Exception as exc:
            if damaged := damaged_store_error(self.config, exc):
                raise damaged from exc
            if not create and "does not exist" in str(exc).lower():
                raise StoreError(f"the store has no collection '{self.config.collection}' yet: run `rag ingest` first") from exc
            raise StoreError(f"cannot open collection '{name}': {exc}") from exc
        stored_model = (col.metadata or {}).get("embedding_model")
        if stored_model and stored_model != self.embedding_model:
            raise EmbeddingMismatchError(
                f"collection '{self.config.collection}' was built with embedding model '{stored_model}', "
                f"but this run uses '{self.embedding_model}'. Use the same model, or another RAG_COLLECTION, "
                "or rebuild with `rag ingest --rebuild`."
            )
        return col

    @property
    def generation(self) -> int:
        """The generation this handle opened (see ``current_generation`` for the store's latest)."""
        return self.active.generation

    def current_generation(self) -> int:
        """The store's generation now, read afresh: a running service compares it with what it serves."""
        return self._read_active().generation

    def _follow(self, call):
        """Run a read; when a rebuild dropped this collection meanwhile, reopen the active one and retry once."""
        try:
            return call()
        except Exception as exc:
            from chromadb.errors import ChromaError, NotFoundError

            if not isinstance(exc, NotFoundError):
                if damaged := damaged_store_error(self.config, exc):
                    raise damaged from exc
                # A Chroma server answers a read on a collection a rebuild is dropping with another error too
                # ("Missing field: [Missing metadata segment]", seen under two replicas' load): when the pointer
                # moved meanwhile, it is the same drop.
                if not isinstance(exc, ChromaError) or self._read_active().collection == self.active.collection:
                    raise
            active = self._read_active()
            if active.collection == self.active.collection:
                # Just after a rebuild switched to it, a Chroma server once answered a read on the new collection
                # with "Missing field: [Missing metadata segment]" while the old one was being dropped (two
                # replicas under load, 1 read in 171): reopened after a pause, it answers. Once, then the error.
                time.sleep(_SETTLE_SECONDS)
                try:
                    self._col = self._open(active.collection, create=False)
                    return call()
                except Exception:
                    raise StoreError(f"collection '{active.collection}' disappeared: {exc}") from exc
            self.active, self._col = active, self._open(active.collection, create=False)
            return call()

    @staticmethod
    def peek_generation(config: StoreConfig) -> int:
        """The store's generation without opening its collection (a service waiting for a repaired store)."""
        client = _client(config)
        try:
            return read_active(client, config.collection).generation
        except Exception as exc:
            if damaged := damaged_store_error(config, exc):
                raise damaged from exc
            raise StoreError(f"cannot read the store's active collection: {exc}") from exc

    @classmethod
    def next_generation(cls, config: StoreConfig, embedding_model: str, *, fresh: bool = False) -> "ChunkStore":
        """An empty collection for a rebuild, served only once ``activate`` switches to it.

        The served collection is not opened: it may hold another embedding model, or be damaged.
        """
        client = _client(config, fresh=fresh)
        try:
            active = read_active(client, config.collection)
            name = next_collection(client, config.collection, active)
        except Exception as exc:
            if damaged := damaged_store_error(config, exc):
                raise damaged from exc
            raise StoreError(f"cannot prepare a new collection for '{config.collection}': {exc}") from exc
        return cls(config, embedding_model, create=True, _active=Active(name, active.generation + 1))

    def activate(self) -> None:
        """Point the store at this collection, with this handle's generation (one metadata write)."""
        write_active(self._client, self.config.collection, self.active)

    def bump_generation(self) -> None:
        """Mark the store changed: a running service reloads its indexes when it sees a new generation."""
        self.active = Active(self.active.collection, self.current_generation() + 1)
        self.activate()

    def drop_inactive(self) -> list[str]:
        """Drop the collections a rebuild replaced (never the active one); returns their names."""
        return drop_inactive(self._client, self.config.collection, self.active)

    def count(self) -> int:
        return self._follow(lambda: self._col.count())

    def stamp(self) -> str | None:
        """The collection's content stamp, read afresh: a new one is written before every change to its chunks, so
        equal stamps mean equal contents (a copy of them, say ``CaseRepository``'s snapshot, is still good). None:
        the collection was last written by a version that kept no stamp."""
        meta = self._follow(lambda: self._client.get_collection(self.active.collection, embedding_function=None).metadata)
        value = (meta or {}).get(_STAMP)
        return str(value) if value else None

    def _restamp(self) -> None:
        meta = {k: v for k, v in (self._col.metadata or {}).items() if k != "hnsw:space"}
        self._col.modify(metadata={**meta, _STAMP: uuid.uuid4().hex})

    def upsert(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        if not chunks:
            return
        if len(chunks) != len(vectors):
            raise StoreError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        self._restamp()  # before the write: a reader that sees the old stamp never sees a half-written page
        for start in range(0, len(chunks), _PAGE):
            part = chunks[start : start + _PAGE]
            self._col.upsert(
                ids=[c.id for c in part],
                embeddings=np.asarray(vectors[start : start + _PAGE], dtype=np.float32),
                documents=[c.text for c in part],
                metadatas=[encode_chunk(c) for c in part],
            )

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self._restamp()
        for start in range(0, len(ids), _PAGE):
            self._col.delete(ids=list(ids[start : start + _PAGE]))

    def _iter(self, where: dict | None = None, include: list[str] | None = None) -> Iterator[dict]:
        offset = 0
        while True:
            page = self._follow(lambda: self._col.get(where=where, limit=_PAGE, offset=offset, include=include or ["metadatas"]))
            ids = page["ids"]
            if not ids:
                return
            yield page
            offset += len(ids)

    def ids(self, where: dict | None = None) -> set[str]:
        return {i for page in self._iter(where, include=[]) for i in page["ids"]}

    def metadata(self) -> dict[str, dict[str, Any]]:
        """Every stored chunk's metadata, by id."""
        return {i: dict(m or {}) for page in self._iter() for i, m in zip(page["ids"], page["metadatas"])}

    def rewrite_metadata(self, chunks: Sequence[Chunk]) -> None:
        """Store these chunks' metadata as this version encodes it, keeping their vectors (a migration)."""
        if chunks:
            self._restamp()
        for start in range(0, len(chunks), _PAGE):
            part = chunks[start : start + _PAGE]
            ids = [c.id for c in part]
            # Chroma merges metadata on update: keys this version no longer writes are set to None to go.
            page = self._col.get(ids=ids, include=["metadatas"])
            old = {i: m or {} for i, m in zip(page["ids"], page["metadatas"])}
            metas = []
            for c in part:
                new = encode_chunk(c)
                metas.append({**{k: None for k in old.get(c.id, {}) if k not in new}, **new})
            self._col.update(ids=ids, metadatas=metas)

    def all_chunks(self) -> list[StoredChunk]:
        out: list[StoredChunk] = []
        for page in self._iter(include=["documents", "metadatas"]):
            out.extend(StoredChunk(i, d or "", dict(m or {})) for i, d, m in zip(page["ids"], page["documents"], page["metadatas"]))
        return out

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors of some chunks, by id, read a page at a time (SQLite bounds the ids of one query)."""
        unique = list(dict.fromkeys(ids))
        out: dict[str, np.ndarray] = {}
        for start in range(0, len(unique), _PAGE):
            part = unique[start : start + _PAGE]
            page = self._follow(lambda: self._col.get(ids=part, include=["embeddings"]))
            out.update((i, np.asarray(v, dtype=np.float32)) for i, v in zip(page["ids"], page["embeddings"]))
        return out


def acquire(lock: FileLock, *, wait: float = 0.0) -> None:
    try:
        lock.acquire(timeout=wait)
    except Timeout:
        raise StoreLockedError(
            f"another ingest is writing this store (lock {lock.lock_file}); wait for it to finish and retry"
        ) from None

