"""The library's front door: one object that wires settings → embedder → store → retriever → drafter.

The CLI, the HTTP service, the evaluation harness and notebooks all go through it, so they see
the same behaviour; ``make_drafter`` is the one place a drafter is built. Nothing is opened until it
is first needed.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterable

import httpx

from rag.configs import Components, DraftConfig
from rag.draft.chat import ChatModel
from rag.draft.drafter import Drafter
from rag.draft.llm import LLMClient
from rag.draft.llm_cache import CachedLLM
from rag.draft.prompts import PromptPair
from rag.embed import Embedder, make_embedder
from rag.ingest import IngestSummary, Progress, no_progress, ingest
from rag.cases import CaseRepository
from rag.retrieve import CaseRetriever
from rag.settings import Settings
from rag.store import ChunkStore
from rag.store_health import check_store


class Pipeline:
    def __init__(self, settings: Settings, *, http_client: httpx.Client | None = None, fresh_store: bool = False) -> None:
        self.settings = settings
        self.components = Components.from_settings(settings)  # each adapter gets only its own part
        self._http_client = http_client
        self._lock = threading.RLock()  # the service's threads may ask for the drafter at once
        self._embedder: Embedder | None = None
        # What an ingest makes stale: opened on first use, dropped by ``ingest``.
        self._store: ChunkStore | None = None
        self._cases: CaseRepository | None = None
        self._retriever: CaseRetriever | None = None
        self._drafter: Drafter | None = None
        # A reload after another process's ingest must not reuse this process's cached embedded store.
        self._fresh_store = fresh_store

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = make_embedder(self.components.embedding, http_client=self._http_client)
            return self._embedder

    def ingest(self, paths: Iterable[Path] | None = None, *, prune: bool = False, rebuild: bool = False,
               progress: Progress = no_progress) -> IngestSummary:
        config = self.components.ingest
        summary = ingest(list(paths or [config.data_dir]), config, self.embedder, prune=prune, rebuild=rebuild,
                         progress=progress)
        self._forget_store()
        return summary

    def _forget_store(self) -> None:
        with self._lock:
            self._store = self._cases = self._retriever = self._drafter = None

    def ensure_ingested(self, progress: Progress = no_progress) -> IngestSummary | None:
        """On first use with an empty store, ingest the dataset (``RAG_DATA_DIR``) so a new user gets a draft at once."""
        check_store(self.components.store)
        store = ChunkStore(self.components.store, self.embedder.name, fresh=self._fresh_store)
        if store.count() > 0:
            return None
        return self.ingest(progress=progress)

    @property
    def store(self) -> ChunkStore:
        with self._lock:
            if self._store is None:
                check_store(self.components.store)  # a damaged file: one line naming it, before native code reads it
                self._store = ChunkStore(self.components.store, self.embedder.name, create=False, fresh=self._fresh_store)
            return self._store

    @property
    def cases(self) -> CaseRepository:
        """The cases of the store, read once: every face asks this, never Chroma's metadata."""
        with self._lock:
            if self._cases is None:
                self._cases = CaseRepository.from_store(self.store)
            return self._cases

    @property
    def retriever(self) -> CaseRetriever:
        with self._lock:
            if self._retriever is None:
                self._retriever = CaseRetriever(self.store, self.embedder, self.components.retrieval,
                                                cases=self.cases, lexical_cache=self.settings.cache_dir / "bm25")
            return self._retriever

    def warm_up(self) -> None:
        """Pay the one-time loads (jieba's dictionary, the embedding model) now, not in a request."""
        from rag.tokens import warm_up as load_jieba

        load_jieba()
        warm = getattr(self.embedder, "warm_up", None)
        if warm is not None:
            warm()

    def llm(self) -> ChatModel | None:
        """The configured chat model, or None: offline drafting."""
        config = self.components.llm
        return LLMClient(config, http_client=self._http_client) if config.configured else None

    def cached_llm(self) -> CachedLLM | None:
        """The configured chat model behind the on-disk completion cache (evaluation replays the same prompts)."""
        inner = self.llm()
        return CachedLLM(inner, self.settings.cache_dir, self.components.llm) if inner is not None else None

    @property
    def drafter(self) -> Drafter:
        """The default drafter (configured variant and LLM), built once per ingested store."""
        with self._lock:
            if self._drafter is None:
                self._drafter = self.make_drafter()
            return self._drafter

    def make_drafter(self, *, variant: str | None = None, offline: bool = False,
                     llm: ChatModel | None = None, draft: DraftConfig | None = None) -> Drafter:
        """The one place a drafter is built. ``llm`` replaces the configured model (evaluation passes the
        cached one, a benchmark its timing wrapper); ``offline`` means none at all; ``draft`` replaces the
        configured draft settings (a test's deadlines and slots over the same retriever)."""
        draft = draft or self.components.draft
        prompts = PromptPair.load(draft.prompts_dir, variant or draft.prompt_variant)
        chat = None if offline else llm if llm is not None else self.llm()
        return Drafter(draft, self.retriever, llm=chat, prompts=prompts)
