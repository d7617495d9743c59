"""The library's front door: one object that wires settings → embedder → store → retriever → drafter.

The CLI, the HTTP service, the evaluation harness and notebooks all go through it, so they see
the same behaviour. Nothing is opened until it is first needed.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Iterable

import httpx

from rag.draft.drafter import Drafter
from rag.draft.llm import LLMClient
from rag.draft.prompts import PromptPair
from rag.embed import Embedder, make_embedder
from rag.ingest import IngestSummary, Progress, no_progress, ingest
from rag.retrieve import CaseRetriever, RetrievalConfig
from rag.settings import Settings
from rag.store import ChunkStore


class Pipeline:
    def __init__(self, settings: Settings, *, http_client: httpx.Client | None = None) -> None:
        self.settings = settings
        self._http_client = http_client

    @cached_property
    def embedder(self) -> Embedder:
        return make_embedder(self.settings, http_client=self._http_client)

    def ingest(self, paths: Iterable[Path] | None = None, *, prune: bool = False, rebuild: bool = False,
               progress: Progress = no_progress) -> IngestSummary:
        summary = ingest(list(paths or [self.settings.data_dir]), self.settings, self.embedder,
                         prune=prune, rebuild=rebuild, progress=progress)
        self.__dict__.pop("store", None)
        self.__dict__.pop("retriever", None)
        self.__dict__.pop("drafter", None)
        return summary

    def ensure_ingested(self, progress: Progress = no_progress) -> IngestSummary | None:
        """On first use with an empty store, ingest ``data/`` so a new user gets a draft at once."""
        store = ChunkStore(self.settings, self.embedder.name)
        if store.count() > 0:
            return None
        return self.ingest(progress=progress)

    @cached_property
    def store(self) -> ChunkStore:
        return ChunkStore(self.settings, self.embedder.name, create=False)

    @cached_property
    def retriever(self) -> CaseRetriever:
        return CaseRetriever(self.store, self.embedder, RetrievalConfig.from_settings(self.settings),
                             lexical_cache=self.settings.cache_dir / "bm25")

    def llm(self) -> LLMClient | None:
        return LLMClient(self.settings, http_client=self._http_client) if self.settings.llm_configured else None

    @cached_property
    def drafter(self) -> Drafter:
        return self.make_drafter()

    def make_drafter(self, *, variant: str | None = None, offline: bool = False) -> Drafter:
        prompts = PromptPair.load(self.settings.prompts_dir, variant or self.settings.prompt_variant)
        return Drafter(self.settings, self.retriever, llm=None if offline else self.llm(), prompts=prompts)
