"""What the drafter, the LLM cache and the judge need from a chat model: one protocol.

The real client (``rag.llm.client.LLMClient``), the on-disk cache around any chat model
(``rag.llm.cache.CachedLLM``), the benchmark's timing wrapper and test fakes all satisfy it,
so none of them has to pretend to be ``LLMClient``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Protocol, Sequence, runtime_checkable

from rag.llm.bounds import Deadline
from rag.records import Usage

Message = dict[str, str]


@dataclass(frozen=True)
class Completion:
    text: str
    usage: Usage
    model: str


@runtime_checkable
class ChatModel(Protocol):
    """``model`` names the model in ``Draft.backend``; ``stream`` yields text deltas and raises ``LLMError``
    when the reply is cut, ``complete`` returns the whole reply."""

    model: str

    def complete(self, messages: Sequence[Message], *, max_tokens: int | None = None,
                 temperature: float | None = None, deadline: Deadline | None = None) -> Completion: ...

    def stream(self, messages: Sequence[Message], *, deadline: Deadline | None = None) -> Iterator[str]: ...
