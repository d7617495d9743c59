"""Bounds on an LLM call that hold whatever the server does: a deadline and a size cap.

httpx's timeouts are per read: a server that drips one byte every few seconds, or an SSE stream that
never ends, never trips them, and a 50 MB body is read whole. So every response body is read through
``_BoundedStream``, which checks the call's deadline and byte budget at every chunk it receives, and
each attempt's read timeout is at most the time left (so a silent server cannot hold a read longer).
The bounds of the call in progress travel in a context variable, set by ``LLMClient`` around each
call, because the response hook that installs the stream is per client, not per request.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Iterator

import httpx

from rag.errors import LLMError


class LLMDeadlineError(LLMError):
    """The draft's overall time (``RAG_LLM_DEADLINE``) ran out: all attempts and the stream included."""


class ReplyTooLargeError(LLMError):
    """The reply is longer than ``RAG_LLM_MAX_REPLY_CHARS`` (or its body than the byte budget)."""


@dataclass(frozen=True)
class Deadline:
    at: float  # time.monotonic() value
    seconds: float

    @classmethod
    def after(cls, seconds: float) -> "Deadline":
        return cls(time.monotonic() + seconds, seconds)

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.at

    def check(self) -> None:
        if self.expired:
            raise LLMDeadlineError(f"the LLM did not finish within the {self.seconds:g} s deadline (RAG_LLM_DEADLINE)")


@dataclass(frozen=True)
class CallBounds:
    deadline: Deadline
    max_bytes: int


_CURRENT: ContextVar[CallBounds | None] = ContextVar("rag_llm_call_bounds", default=None)


@contextmanager
def bounded(bounds: CallBounds) -> Iterator[None]:
    token = _CURRENT.set(bounds)
    try:
        yield
    finally:
        _CURRENT.reset(token)


class _BoundedStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, bounds: CallBounds) -> None:
        self._inner = inner
        self._bounds = bounds

    def __iter__(self) -> Iterator[bytes]:
        total = 0
        for chunk in self._inner:
            total += len(chunk)
            if total > self._bounds.max_bytes:
                raise ReplyTooLargeError(f"the LLM reply passed {self._bounds.max_bytes:,} bytes; refused "
                                         "(RAG_LLM_MAX_REPLY_CHARS bounds it)")
            self._bounds.deadline.check()
            yield chunk

    def close(self) -> None:
        self._inner.close()


def _bound_response(response: httpx.Response) -> None:
    bounds = _CURRENT.get()
    if bounds is None:
        return
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > bounds.max_bytes:
        response.close()
        raise ReplyTooLargeError(f"the LLM reply announces {int(length):,} bytes, over the {bounds.max_bytes:,}-byte "
                                 "budget; refused (RAG_LLM_MAX_REPLY_CHARS bounds it)")
    response.stream = _BoundedStream(response.stream, bounds)  # type: ignore[arg-type]  # a sync Client's hook: a SyncByteStream


def bound_client(client: httpx.Client) -> httpx.Client:
    """Add the bounding hook to ``client`` (once); responses outside a bounded call are untouched."""
    hooks = client.event_hooks
    if _bound_response not in hooks["response"]:
        client.event_hooks = {**hooks, "response": [*hooks["response"], _bound_response]}
    return client


def cause_is_bound(exc: BaseException) -> LLMError | None:
    """The deadline or size error behind an SDK exception (the SDK wraps what a hook or stream raises)."""
    seen: BaseException | None = exc
    visited: set[int] = set()
    while seen is not None and id(seen) not in visited:  # a chain can loop back on itself: that hung a whole run
        visited.add(id(seen))
        if isinstance(seen, (LLMDeadlineError, ReplyTooLargeError)):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
