"""Every error the library raises on purpose derives from ``RagError``.

The CLI and the HTTP service catch ``RagError`` and show its message; anything
else is a bug and keeps its traceback.

    RagError
    ├── ConfigError              settings that cannot work together
    ├── ParseError               a dataset file that does not follow the format (file + line)
    ├── StoreError               the vector store cannot be opened or written
    │   ├── StoreLockedError     another ingest holds the store
    │   ├── StoreDamagedError    a store file is damaged (names it; the fix is `rag ingest --rebuild`)
    │   └── EmbeddingMismatchError  the store was built with another embedding model
    ├── FeedbackStoreError       the feedback database cannot be reached or is not migrated (names it, password hidden)
    ├── EmbeddingError           the embedding backend failed
    ├── PromptError              a prompt template is missing, or a variable is missing/unknown
    ├── UnknownValueError        a product or scenario no case has (lists the valid ones)
    ├── UnsupportedFilterError   a llama-index MetadataFilter the case filters cannot express
    └── LLMError                 the LLM endpoint failed after retries
        └── ContextLengthError   the prompt is longer than the model accepts
"""

from __future__ import annotations


class RagError(Exception):
    """Root of the library's own errors; its message is meant for the user."""


class ConfigError(RagError):
    pass


class ParseError(RagError):
    def __init__(self, message: str, *, source: str, line: int) -> None:
        self.source = source
        self.line = line
        self.reason = message
        super().__init__(f"{source}:{line}: {message}")


class StoreError(RagError):
    pass


class StoreLockedError(StoreError):
    pass


class StoreDamagedError(StoreError):
    def __init__(self, message: str, *, path: str) -> None:
        self.path = path
        super().__init__(message)


class EmbeddingMismatchError(StoreError):
    pass


class FeedbackStoreError(RagError):
    """Feedback cannot be read or written now: the database is down, out of connections or behind its migrations.
    Nothing was written (a write that raises this was not acknowledged)."""


class EmbeddingError(RagError):
    pass


class PromptError(RagError):
    pass


class LLMError(RagError):
    pass


class ContextLengthError(LLMError):
    pass


class UnsupportedFilterError(RagError):
    """A filter the case filters (``rag.retrieve.Filters``) cannot express; refused rather than dropped."""


class UnknownValueError(RagError):
    """A filter value (product, scenario) that no case has; the message lists the valid ones."""

    def __init__(self, field: str, value: str, allowed: list[str]) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"unknown {field} {value!r}; valid values: {', '.join(allowed) or '(none: the store is empty)'}")
