"""The one retry policy for calls to remote endpoints (LLM and embeddings).

Only transient failures are retried: 429, 5xx, timeouts and connection errors. The SDK's own
retries are off (``max_retries=0``) so attempts never multiply. A ``Retry-After`` header is honoured
up to the backoff cap; total time is bounded as well as the number of attempts.
"""

from __future__ import annotations

from typing import Any

import openai
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from rag.configs import RetryConfig


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError)):
        return True
    if isinstance(exc, openai.RateLimitError):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code >= 500 or exc.status_code == 408
    return False


def retry_after_seconds(exc: BaseException | None) -> float | None:
    response = getattr(exc, "response", None)
    if response is None:
        return None
    value = response.headers.get("retry-after-ms")
    if value:
        try:
            return float(value) / 1000
        except ValueError:
            return None
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime
        from datetime import datetime, timezone

        try:
            return max(0.0, (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds())
        except (TypeError, ValueError):
            return None


class _Wait:
    def __init__(self, policy: RetryConfig) -> None:
        self._backoff = wait_exponential_jitter(
            initial=policy.backoff_initial, max=policy.backoff_max, jitter=policy.backoff_initial
        )
        self._cap = max(policy.backoff_max, 0.0)

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hinted = retry_after_seconds(exc)
        if hinted is not None:
            return min(hinted, self._cap)
        return self._backoff(state)


def retrying(policy: RetryConfig, **overrides: Any) -> Retrying:
    """Each endpoint passes its own bounds: the LLM's and the embedder's are separate settings."""
    return Retrying(
        retry=retry_if_exception(is_transient),
        wait=_Wait(policy),
        stop=stop_after_attempt(policy.max_attempts) | stop_after_delay(policy.max_retry_seconds),
        reraise=True,
        **overrides,
    )
