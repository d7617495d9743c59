"""The pipeline the service serves, reloaded when an ingest changed the store.

Every request asks the store for its generation (one small metadata read). When it differs from the
served one, the request that noticed builds a new pipeline (a fresh store client, the BM25 index, the
case list, the match data) and swaps it in; requests arriving meanwhile keep the old pipeline rather
than wait. A store that cannot be served (damaged, not ingested) is remembered as its error: every
request answers it (503 with the one-line message) until the store changes again.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import httpx

from rag.errors import RagError, StoreError
from rag.pipeline import Pipeline
from rag.settings import Settings
from rag.store.health import SQLITE_NAME

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Served:
    pipeline: Pipeline
    generation: int


class ServedPipeline:
    def __init__(self, settings: Settings, *, http_client: httpx.Client | None = None) -> None:
        self._settings = settings
        self._store = settings.store  # what the generation and damage checks read
        self._http_client = http_client
        self._lock = threading.Lock()
        self._served: Served | None = None
        self._error: RagError | None = None
        self._error_mark: object = None
        self._load(first=True)

    def _load(self, *, first: bool = False) -> None:
        try:
            pipeline = Pipeline(self._settings, http_client=self._http_client, fresh_store=not first)
            if first:
                pipeline.ensure_ingested()
            generation = pipeline.store.generation
            pipeline.drafter  # build the indexes now, not on an agent's request  # noqa: B018
            pipeline.warm_up()
        except StoreError as exc:
            self._error, self._error_mark = exc, self._mark()
            log.error("%s", exc)
            return
        self._served, self._error = Served(pipeline, generation), None
        log.info("serving store generation %d", generation)

    def _mark(self) -> object:
        """What tells a failed store from a repaired one: its generation if readable, and its SQLite file's identity."""
        path = self._store.store_path / SQLITE_NAME
        try:
            st = path.stat()
            stat: tuple[int, int, int] | None = (st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError:
            stat = None
        return self._generation_now(), None if self._store.chroma_url else stat

    def _generation_now(self) -> int | None:
        served = self._served
        try:
            if served is not None:
                return served.pipeline.store.current_generation()
            from rag.store.chroma import ChunkStore

            return ChunkStore.peek_generation(self._store)
        except RagError:
            return None

    def current(self) -> Served:
        """The pipeline to answer this request with; raises the store's error when none can be served."""
        if self._error is not None:
            if self._mark() != self._error_mark and self._lock.acquire(blocking=False):
                try:
                    self._load()
                finally:
                    self._lock.release()
            if self._error is not None:
                raise self._error
        served = self._served
        assert served is not None
        try:
            generation = served.pipeline.store.current_generation()
        except StoreError as exc:
            # A store gone bad under a running service: say so rather than serve from memory forever.
            self._error, self._error_mark = exc, self._mark()
            raise
        if generation != served.generation and self._lock.acquire(blocking=False):
            try:
                if self._served is served:
                    self._load()
                    if self._error is not None:
                        raise self._error
            finally:
                self._lock.release()
        return self._served or served
