"""The HTTP status of each domain error."""

from __future__ import annotations

from rag import errors
from rag.errors import RagError

# A domain error's status says whose problem it is: the request's (4xx), an upstream's (502), a busy
# store (503, try again), or this server's setup (500). The first matching class wins.
DOMAIN_STATUS: tuple[tuple[type[RagError], int], ...] = (
    (errors.UnknownValueError, 422),
    (errors.ParseError, 422),
    (errors.ContextLengthError, 413),
    (errors.LLMError, 502),
    (errors.EmbeddingError, 502),
    (errors.StoreLockedError, 503),
    (errors.EmbeddingMismatchError, 500),
    (errors.StoreError, 503),
    (errors.FeedbackStoreError, 503),
    (errors.ConfigError, 500),
    (errors.PromptError, 500),
)


def status_of(exc: RagError) -> int:
    return next((status for cls, status in DOMAIN_STATUS if isinstance(exc, cls)), 500)
