"""The library's front door, and the one place the ticket path is wired:

    settings → embedder → store → cases
    sources (lexical, dense) → fuser (RRF) → rerankers (match) = the retriever
    answer policy (the match model's threshold) → writer (offline, or an LLM with the offline fallback)
    guard (built once per store) → the drafter

The CLI, the HTTP service, the evaluation harness and notebooks all go through ``Pipeline``, so they see the
same behaviour; ``make_drafter`` is the one place a drafter is built. Nothing is opened until it is first needed.
Each component takes its own settings group; a value declared in one group and needed by another component (the
cache folder, the embedding batch, top-k, the LLM deadline) is passed along here.
A new source, reranker or verifier is one class in its role's package and one line below.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import httpx

from rag.configs import DraftConfig, RetrievalConfig
from rag.draft.deferral import VerdictTexts
from rag.draft.drafter import Drafter
from rag.draft.guards import Guard
from rag.draft.policy import AnswerPolicy
from rag.draft.writers import Writer
from rag.draft.writers.offline import OfflineWriter
from rag.llm.cache import CachedLLM
from rag.llm.chat import ChatModel
from rag.llm.prompts import PromptPair
from rag.retrieve import HybridRetriever
from rag.retrieve.fusion import RRF
from rag.retrieve.rerank import Reranker
from rag.retrieve.rerank.consensus import ConsensusReranker
from rag.retrieve.rerank.match import MatchReranker
from rag.retrieve.rerank.match_model import SIDES_MODEL_FILE, MatchModel
from rag.retrieve.sources.dense import DenseSource
from rag.retrieve.sources.lexical import LexicalSource
from rag.settings import Settings
from rag.store.cases import CaseRepository
from rag.store.chroma import ChunkStore
from rag.store.embed import Embedder, make_embedder
from rag.store.health import check_store
from rag.store.ingest import IngestSummary, Progress, ingest, no_progress

if TYPE_CHECKING:
    from rag.retrieve.sources.sides import SideSignals


def build_sources(cases: CaseRepository, store: ChunkStore, embedder: Embedder, config: RetrievalConfig, *,
                  lexical_cache: Path | None = None) -> tuple[LexicalSource, DenseSource]:
    """The lexical and dense sources; their saved indexes live side by side (``bm25/`` and ``dense/``)."""
    lexical = LexicalSource(cases, cache_dir=lexical_cache, kinds=config.chunk_kinds)
    dense = DenseSource(cases, store, embedder, kinds=config.chunk_kinds,
                        cache_dir=lexical_cache.parent / "dense" if lexical_cache is not None else None)
    return lexical, dense


def build_retriever(cases: CaseRepository, store: ChunkStore, embedder: Embedder,
                    config: RetrievalConfig = RetrievalConfig(), *, lexical_cache: Path | None = None,
                    match_model: MatchModel | None = None, sides: "SideSignals | None" = None) -> HybridRetriever:
    """The default retriever: lexical and dense sources, RRF, then ``config.rerank``'s rerankers. The match model
    rates the candidates under any rerank (the answer policy reads ``Hit.match``); it orders them under "match".
    ``sides``: a second embedder's side features, for a match model fitted with them (``RAG_JUDGE=gemma``)."""
    lexical, dense = build_sources(cases, store, embedder, config, lexical_cache=lexical_cache)
    model = match_model or MatchModel.load()
    rerankers: list[Reranker] = [MatchReranker(model, cases, lexical, dense, voters=config.consensus_voters,
                                               reorder=config.rerank == "match", sides=sides)]
    if config.rerank == "consensus":
        rerankers.append(ConsensusReranker(cases, weight=config.consensus_weight, top=config.consensus_top,
                                           voters=config.consensus_voters))
    return HybridRetriever(cases, [lexical, dense],
                           RRF(config.rrf_k, {"lexical": config.lexical_weight, "dense": config.dense_weight}),
                           rerankers, candidates=config.candidates, query_max_chars=config.query_max_chars)


def answer_policy(draft: DraftConfig, match_model: MatchModel) -> AnswerPolicy:
    """The threshold the match model was fitted with, unless ``RAG_ANSWER_THRESHOLD`` sets one."""
    return AnswerPolicy(draft.answer_threshold if draft.answer_threshold is not None else match_model.threshold)


class Pipeline:
    def __init__(self, settings: Settings, *, http_client: httpx.Client | None = None, fresh_store: bool = False) -> None:
        self.settings = settings
        self._http_client = http_client
        self._lock = threading.RLock()  # the service's threads may ask for the drafter at once
        self._embedder: Embedder | None = None
        self._match_model: MatchModel | None = None
        # What an ingest makes stale: opened on first use, dropped by ``ingest``.
        self._store: ChunkStore | None = None
        self._cases: CaseRepository | None = None
        self._retriever: HybridRetriever | None = None
        self._guard: Guard | None = None
        self._drafter: Drafter | None = None
        # A reload after another process's ingest must not reuse this process's cached embedded store.
        self._fresh_store = fresh_store

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = make_embedder(self.settings.embedding, cache_dir=self.settings.store.cache_dir,
                                               http_client=self._http_client)
            return self._embedder

    @property
    def match_model(self) -> MatchModel:
        with self._lock:
            if self._match_model is None:
                gemma = self.settings.retrieval.judge == "gemma"
                self._match_model = MatchModel.load(packaged=SIDES_MODEL_FILE) if gemma else MatchModel.load()
            return self._match_model

    @property
    def retrieval(self) -> RetrievalConfig:
        """The retrieval settings the judge was fitted with: the Gemma judge's model predates the cases' asked
        wordings (rag.corpus.asked), so under it the sources and its sides read the cases' own chunks only."""
        config = self.settings.retrieval
        if config.judge != "gemma":
            return config
        return config.model_copy(update={"chunk_kinds": tuple(k for k in config.chunk_kinds if k != "asked")})

    def _sides(self) -> "SideSignals | None":
        """EmbeddingGemma's side features when ``RAG_JUDGE=gemma``: its vectors of every case are computed here, once
        (the embeddings cache keeps them across processes); per draft, one ticket vector."""
        if self.settings.retrieval.judge != "gemma":
            return None
        from rag.retrieve.sources.sides import SideSignals
        from rag.store.embed import CachedEmbedder
        from rag.store.gemma import GemmaEmbedder

        embedder = CachedEmbedder(GemmaEmbedder(self.settings.retrieval.judge_dir), self.settings.store.cache_dir)
        return SideSignals(self.cases, embedder, kinds=self.retrieval.chunk_kinds)

    def ingest(self, paths: Iterable[Path] | None = None, *, prune: bool = False, rebuild: bool = False,
               progress: Progress = no_progress) -> IngestSummary:
        s = self.settings
        summary = ingest(list(paths or [s.ingest.data_dir]), s.ingest, s.store, self.embedder,
                         batch_size=s.embedding.batch_size, prune=prune, rebuild=rebuild, progress=progress)
        self._forget_store()
        self.prepare()
        return summary

    def prepare(self) -> None:
        """Build what the ticket path reads and save it under the cache folder, keyed by the store's contents: the
        cases' local copy, the BM25 index and the dense matrix. Ingest calls it, so the first draft (and every
        replica that starts on this store) maps them from disk instead of building them."""
        # The BM25 index is saved as it is built; the dense matrix when it is first read.
        _, dense = build_sources(self.cases, self.store, self.embedder, self.retrieval,
                                 lexical_cache=self.settings.store.cache_dir / "bm25")
        dense.matrix  # noqa: B018

    def _forget_store(self) -> None:
        with self._lock:
            self._store = self._cases = self._retriever = self._guard = self._drafter = None

    def ensure_ingested(self, progress: Progress = no_progress) -> IngestSummary | None:
        """On first use with an empty store, ingest the dataset (``RAG_DATA_DIR``) so a new user gets a draft at once."""
        check_store(self.settings.store)
        store = ChunkStore(self.settings.store, self.embedder.name, fresh=self._fresh_store)
        if store.count() > 0:
            with self._lock:
                # Checked and open: kept, so `store` neither opens Chroma twice nor checks again. Opening the
                # index rewrites one of its files, so a second check would always re-run the child-process probe.
                if self._store is None:
                    self._store = store
            return None
        return self.ingest(progress=progress)

    @property
    def store(self) -> ChunkStore:
        with self._lock:
            if self._store is None:
                check_store(self.settings.store)  # a damaged file: one line naming it, before native code reads it
                self._store = ChunkStore(self.settings.store, self.embedder.name, create=False, fresh=self._fresh_store)
            return self._store

    @property
    def cases(self) -> CaseRepository:
        """The cases of the store, read once: every face asks this, never Chroma's metadata."""
        with self._lock:
            if self._cases is None:
                self._cases = CaseRepository.from_store(self.store, snapshots=self.settings.store.cache_dir / "cases")
            return self._cases

    @property
    def retriever(self) -> HybridRetriever:
        with self._lock:
            if self._retriever is None:
                self._retriever = build_retriever(self.cases, self.store, self.embedder, self.retrieval,
                                                  lexical_cache=self.settings.store.cache_dir / "bm25",
                                                  match_model=self.match_model, sides=self._sides())
            return self._retriever

    @property
    def guard(self) -> Guard:
        """The guard of this store's drafts: the links and identifiers its cases show, learned once."""
        with self._lock:
            if self._guard is None:
                self._guard = Guard(self.cases.known_links, self.settings.draft.link_allowlist, self.cases.identifiers)
            return self._guard

    def warm_up(self) -> None:
        """Pay the one-time loads (jieba's dictionary, the embedding model) now, not in a request."""
        from rag.text.tokens import warm_up as load_jieba

        load_jieba()
        warm = getattr(self.embedder, "warm_up", None)
        if warm is not None:
            warm()

    def llm(self) -> ChatModel | None:
        """The configured chat model, or None: offline drafting."""
        config = self.settings.llm
        if not config.configured:
            return None
        from rag.llm.client import LLMClient  # the openai SDK loads only when an LLM is configured

        return LLMClient(config, http_client=self._http_client)

    def cached_llm(self) -> CachedLLM | None:
        """The configured chat model behind the on-disk completion cache (evaluation replays the same prompts)."""
        inner = self.llm()
        return CachedLLM(inner, self.settings.store.cache_dir, self.settings.llm) if inner is not None else None

    @property
    def drafter(self) -> Drafter:
        """The default drafter (configured variant and LLM), built once per ingested store."""
        with self._lock:
            if self._drafter is None:
                self._drafter = self.make_drafter()
            return self._drafter

    def make_drafter(self, *, variant: str | None = None, offline: bool = False,
                     llm: ChatModel | None = None, settings: Settings | None = None) -> Drafter:
        """The one place a drafter is built. ``llm`` replaces the configured model (evaluation passes the
        cached one, a benchmark its timing wrapper); ``offline`` means none at all; ``settings`` replaces these
        for the drafter: its draft group, top-k and LLM deadline (a test's deadlines and slots over the same
        retriever)."""
        s = settings or self.settings
        draft = s.draft
        texts = VerdictTexts(draft.prompts_dir)
        prompts = PromptPair.load(draft.prompts_dir, variant or draft.prompt_variant)  # an unknown variant fails here
        fallback = OfflineWriter(texts)
        chat = None if offline else llm if llm is not None else self.llm()
        writer: Writer = fallback
        if chat is not None:
            from rag.draft.writers.llm import LLMWriter

            writer = LLMWriter(draft, chat, prompts, texts, self.guard, deadline=s.llm.deadline)
        return Drafter(draft, self.retriever, answer_policy(draft, self.match_model), writer, self.guard,
                       offline=fallback, top_k=s.retrieval.top_k)
