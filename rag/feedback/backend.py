"""Where feedback rows live: the small protocol ``FeedbackStore`` (``rag.feedback.store``) writes and reads through.

Two implementations sit beside it: ``SqliteBackend`` (``rag/feedback/sqlite.py``, the embedded default: a file
under ``RAG_HOME``) and ``PostgresBackend`` (``rag/feedback/postgres.py``, ``RAG_FEEDBACK_URL``: what service
replicas share). A backend stores and returns rows and nothing else; ids, timestamps, which verdict counts, the
review rules, statistics and every check on what comes in belong to ``FeedbackStore``, above it, so both
databases behave alike.

A write returns only once it is committed; when it cannot be, it raises (``FeedbackStoreError`` when the
database is unreachable), so an acknowledged write is never lost and a failed one is never silent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from rag.errors import RagError
from rag.feedback.migrations import Migration, SchemaStatus


class UnknownDraftError(RagError):
    """Feedback on a draft id no draft has (404 from the service)."""


@dataclass(frozen=True, slots=True)
class DraftRow:
    """A draft the service returned, with the ticket it answered."""

    id: str
    created: datetime
    product: str
    subcategory: str
    title: str
    ticket: str
    draft_text: str
    draft_json: str  # the whole draft as JSON (``records.draft_dict``)


@dataclass(frozen=True, slots=True)
class VerdictRow:
    """One verdict an agent gave on a draft; every verdict is kept."""

    draft_id: str
    created: datetime
    verdict: str  # accepted | edited | rejected
    final_text: str | None
    reason: str | None
    product: str | None = None  # the agent's correction, checked by the caller
    scenarios: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StoredVerdict:
    id: int
    row: VerdictRow


@dataclass(frozen=True, slots=True)
class ReviewRow:
    """A person's decision on one feedback entry."""

    feedback_id: int
    created: datetime
    decision: str  # approved | rejected
    reviewer: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class LatestVerdict:
    """The latest verdict on one draft, with the draft and the latest review of that verdict.

    ``verdict.final_text`` is the agent's last text on the draft: a later verdict without text ("accepted") keeps
    the text the agent wrote before, so an edit is never lost to a later click."""

    draft: DraftRow
    feedback_id: int
    verdict: VerdictRow
    review: ReviewRow | None


class FeedbackBackend(Protocol):
    @property
    def where(self) -> str:
        """The database as messages name it: the file's path, or the URL with its password hidden."""
        ...

    def status(self) -> SchemaStatus:
        """The schema version against the shipped migrations; raises ``FeedbackStoreError`` when unreachable."""
        ...

    def migrate(self) -> tuple[Migration, ...]:
        """Apply the missing migrations in order; returns those applied (none: it was current)."""
        ...

    def insert_draft(self, row: DraftRow) -> None: ...

    def insert_verdict(self, row: VerdictRow) -> int:
        """The new feedback id; ``UnknownDraftError`` when no draft has ``row.draft_id``."""
        ...

    def insert_review(self, row: ReviewRow) -> int: ...

    def latest(self) -> list[LatestVerdict]:
        """The latest verdict on every draft that has one, by feedback id."""
        ...

    def verdicts(self, draft_id: str) -> list[StoredVerdict]:
        """Every verdict on one draft, oldest first."""
        ...

    def drafts_per_product(self) -> dict[str, int]: ...

    def counts(self) -> tuple[int, int]:
        """Drafts and feedback entries stored."""
        ...

    def close(self) -> None: ...
