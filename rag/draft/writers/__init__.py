"""Reply writers: given the ticket, the retrieved cases and the policy's verdict, write the reply. The drafter
guards whatever they write (``rag.draft.guards.Guard``).

- ``offline.OfflineWriter``: composes from the past answers themselves, no LLM (the default, and the fallback);
- ``llm.LLMWriter``: any ``ChatModel`` through a prompt variant, streamed sentence by sentence through the guard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

from rag.draft.output_checks import ReplyVerdict
from rag.draft.policy import Verdict
from rag.notes import Note
from rag.records import Action, Hint, Hit, Passage, Ticket, Usage


@dataclass(frozen=True)
class Reply:
    """What a writer wrote, before the guard: the text, what it does, and what it rests on."""

    text: str
    action: Action
    confidence: float
    used: tuple[Hit, ...]       # the cases the reply is built from (cited as sources)
    related: tuple[Hit, ...]    # the closest cases, shown to the agent as related
    backend: str
    prompt_id: str
    prompt_version: str
    usage: Usage = Usage()
    notes: tuple[Note, ...] = ()
    checks: ReplyVerdict | None = None  # an LLM reply's output checks, applied after the guard
    passages: tuple[Passage, ...] = ()  # the reply's sentences taken from a past case, before the guard
    hint: Hint | None = None            # for the agent only: the related case's resolution, when one is close


class Writer(Protocol):
    @property
    def backend(self) -> str: ...

    @property
    def streams(self) -> bool:
        """True when ``on_delta`` receives the reply piece by piece as it is written (an LLM)."""
        ...

    def write(self, ticket: Ticket, hits: Sequence[Hit], verdict: Verdict, *, k: int,
              on_delta: Callable[[str], None] | None = None) -> Reply: ...
