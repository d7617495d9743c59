"""The LLM client: any OpenAI-compatible chat endpoint through the openai SDK.

The SDK gets a plain ``httpx.Client`` (the HTTP layer respx intercepts in tests), its own retries
off and our timeout; ``rag.retry`` owns retries. A stream cut mid-way raises ``LLMError``: a
partial draft is never handed back as complete. Every call runs under a ``Deadline`` (all attempts,
back-off waits and the stream) and a reply-size cap (``rag.llm.bounds``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterator, Sequence, TypeVar, cast

from tenacity import RetryCallState, retry_if_exception

import httpx
import openai
from openai import OpenAI

from rag.configs import LLMConfig
from rag.llm.chat import Completion, Message
from rag.llm.bounds import (
    CallBounds,
    Deadline,
    LLMDeadlineError,
    ReplyTooLargeError,
    bound_client,
    bounded,
    cause_is_bound,
)
from rag.errors import ContextLengthError, LLMError
from rag.records import Usage
from rag.retry import is_transient, retrying

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam

_T = TypeVar("_T")


def _sdk_messages(messages: Sequence[Message]) -> list[ChatCompletionMessageParam]:
    # Our messages are plain {"role", "content"} dicts, the shape the SDK's TypedDicts describe; the cast
    # only names that for the type checker (the SDK sends the dicts as they are).
    return cast("list[ChatCompletionMessageParam]", list(messages))


_CONTEXT_MARKERS = ("context_length_exceeded", "maximum context length", "context length", "too many tokens", "prompt is too long",
                    "context window")  # llama.cpp: "Requested tokens (N) exceed context window of 4096"


def _is_context_error(exc: openai.APIStatusError) -> bool:
    if exc.status_code not in (400, 413, 422):
        return False
    code = str(getattr(exc, "code", "") or "")
    text = f"{code} {exc.message}".lower()
    return any(m in text for m in _CONTEXT_MARKERS)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}: {exc.message}"
    if isinstance(exc, openai.APITimeoutError):
        return "the request timed out"
    if isinstance(exc, openai.APIConnectionError):
        return f"cannot connect: {exc.__cause__ or exc}"
    return f"{type(exc).__name__}: {exc}"


class LLMClient:
    """A ``ChatModel`` (``rag.llm.chat``) over an OpenAI-compatible endpoint."""

    def __init__(self, config: LLMConfig, *, http_client: httpx.Client | None = None) -> None:
        if not config.configured:
            raise LLMError("no LLM endpoint configured (set RAG_LLM_BASE_URL and RAG_LLM_MODEL)")
        self.config = config
        self.model = str(config.model)
        self.base_url = str(config.base_url)
        timeout = httpx.Timeout(config.timeout, connect=min(10.0, config.timeout))
        self._client = OpenAI(
            base_url=self.base_url,
            api_key=config.api_key.get_secret_value() or "not-needed",
            timeout=timeout,
            max_retries=0,
            http_client=bound_client(http_client or httpx.Client(timeout=timeout)),
        )
        # JSON may escape every CJK character as \uXXXX (6 bytes) and SSE wraps each token in ~200 bytes.
        self.max_bytes = max(1 << 20, 64 * config.max_reply_chars)

    @property
    def _seed(self) -> int | openai.Omit:
        return openai.omit if self.config.seed is None else self.config.seed

    def deadline(self) -> Deadline:
        return Deadline.after(self.config.deadline)

    def _timeout(self, deadline: Deadline) -> httpx.Timeout:
        """No single read may wait longer than the time left when the attempt starts."""
        left = max(0.05, min(self.config.timeout, deadline.remaining()))
        return httpx.Timeout(left, connect=min(10.0, left))

    def _check_size(self, chars: int) -> None:
        if chars > self.config.max_reply_chars:
            raise ReplyTooLargeError(f"the LLM reply has more than {self.config.max_reply_chars} characters; refused "
                                     "(RAG_LLM_MAX_REPLY_CHARS)")

    def _call(self, fn: Callable[[], _T], deadline: Deadline) -> _T:
        base = retrying(self.config.retry)

        def out_of_time(state: RetryCallState) -> bool:  # the next wait would end past the deadline
            return deadline.remaining() <= (state.upcoming_sleep or 0.0)

        policy = base.copy(stop=lambda state: bool(base.stop(state)) or out_of_time(state),
                           retry=retry_if_exception(lambda e: is_transient(e) and cause_is_bound(e) is None))
        try:
            for attempt in policy:
                with attempt:
                    deadline.check()
                    with bounded(CallBounds(deadline, self.max_bytes)):
                        return fn()
        except LLMError:
            raise
        except openai.OpenAIError as exc:
            if (bound := cause_is_bound(exc)) is not None:
                raise bound from exc
            if deadline.expired:
                raise LLMDeadlineError(f"the LLM did not finish within the {deadline.seconds:g} s deadline "
                                       f"(RAG_LLM_DEADLINE); last error: {_describe(exc)}") from exc
            self._raise_for(exc)
        except (ValueError, KeyError, TypeError) as exc:  # a body that is not the chat-completions shape
            raise LLMError(f"LLM endpoint {self.base_url} returned a malformed response: {exc}") from exc
        raise LLMError("unreachable")  # pragma: no cover

    def _raise_for(self, exc: openai.OpenAIError) -> None:
        if isinstance(exc, openai.APIStatusError) and _is_context_error(exc):
            raise ContextLengthError(f"the prompt is too long for {self.model}: {exc.message}") from exc
        raise LLMError(f"LLM endpoint {self.base_url} failed: {_describe(exc)}") from exc

    def complete(self, messages: Sequence[Message], *, max_tokens: int | None = None, temperature: float | None = None,
                 deadline: Deadline | None = None) -> Completion:
        deadline = deadline or self.deadline()
        resp = self._call(
            lambda: self._client.chat.completions.create(
                model=self.model,
                messages=_sdk_messages(messages),
                temperature=self.config.temperature if temperature is None else temperature,
                max_tokens=max_tokens or self.config.max_tokens,
                seed=self._seed,
                timeout=self._timeout(deadline),
            ),
            deadline,
        )
        try:
            choice = resp.choices[0]
            text = choice.message.content
        except (AttributeError, IndexError, TypeError) as exc:
            raise LLMError(f"LLM endpoint {self.base_url} returned a malformed response: no choices") from exc
        if not isinstance(text, str) or not text.strip():
            raise LLMError(f"LLM endpoint {self.base_url} returned an empty reply")
        self._check_size(len(text))
        if getattr(choice, "finish_reason", None) == "length":
            raise LLMError(f"the reply was cut at max_tokens={self.config.max_tokens}; raise RAG_LLM_MAX_TOKENS")
        u = getattr(resp, "usage", None)
        usage = Usage(getattr(u, "prompt_tokens", 0) or 0, getattr(u, "completion_tokens", 0) or 0)
        return Completion(text, usage, str(getattr(resp, "model", self.model)))

    def stream(self, messages: Sequence[Message], *, deadline: Deadline | None = None) -> Iterator[str]:
        """Yield text deltas. Retries happen only before the first delta; a cut afterwards raises LLMError."""
        deadline = deadline or self.deadline()
        stream = self._call(
            lambda: self._client.chat.completions.create(
                model=self.model,
                messages=_sdk_messages(messages),
                temperature=self.config.temperature,
                max_tokens=self.config.max_tokens,
                seed=self._seed,
                stream=True,
                timeout=self._timeout(deadline),
            ),
            deadline,
        )
        finished: str | None = None
        size = 0
        events = iter(stream)
        try:
            while True:
                with bounded(CallBounds(deadline, self.max_bytes)):  # every read of the body is bounded
                    event = next(events, None)
                if event is None:
                    break
                deadline.check()  # between events too: a stream of empty deltas must end as well
                for choice in getattr(event, "choices", None) or []:
                    delta = getattr(choice.delta, "content", None)
                    if delta:
                        size += len(delta)
                        self._check_size(size)
                        yield delta
                    if choice.finish_reason:
                        finished = choice.finish_reason
        except LLMError:
            stream.close()
            raise
        except (httpx.HTTPError, openai.OpenAIError) as exc:
            if (bound := cause_is_bound(exc)) is not None:
                raise bound from exc
            raise LLMError(f"the reply stream from {self.base_url} was cut: {_describe(exc)}") from exc
        if not finished:
            raise LLMError(f"the reply stream from {self.base_url} ended without a finish reason (incomplete)")
        if finished == "length":
            raise LLMError(f"the reply was cut at max_tokens={self.config.max_tokens}; raise RAG_LLM_MAX_TOKENS")


__all__ = ["LLMClient", "Completion", "is_transient"]
