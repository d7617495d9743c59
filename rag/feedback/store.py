"""Feedback on drafts, stored durably, and turned back into corpus cases.

Every draft the service returns is recorded with an id; an agent then accepts it, edits it (the final
text is kept) or rejects it (with a reason). ``FeedbackStore`` is what every face uses (the service's routes,
``rag feedback``, review, export); it writes and reads rows through a ``FeedbackBackend``
(``rag.feedback.backend``): a SQLite file by default (``RAG_FEEDBACK_DB``), PostgreSQL with ``RAG_FEEDBACK_URL``
(``open_feedback``). A write returns once committed; concurrent requests queue instead of losing writes.

Feedback is a proposal, not a corpus edit: an accepted or edited draft waits for a person's review
(``reviews``: approved or rejected, by whom, when, bound to that exact feedback entry); only approved
items are exported to the dataset format (``rag.feedback.export``). SQLite files written before the
review step open unchanged: the new table and columns are added, nothing is rewritten.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from rapidfuzz.distance import Levenshtein

from rag.errors import RagError
from rag.feedback.backend import (DraftRow, FeedbackBackend, LatestVerdict, ReviewRow, UnknownDraftError,
                                  VerdictRow)
from rag.feedback.migrations import Migration, SchemaStatus
from rag.records import Draft, Ticket, draft_dict
from rag.text.normalise import strip_controls

if TYPE_CHECKING:
    from rag.configs import ServiceConfig

__all__ = ["Decision", "FeedbackItem", "FeedbackStore", "ProductStats", "ReviewError", "UnknownDraftError", "Verdict",
           "open_feedback"]

Verdict = Literal["accepted", "edited", "rejected"]

Decision = Literal["approved", "rejected"]


class ReviewError(RagError):
    """A review of a feedback entry that is not pending review (unknown id, rejected verdict)."""


@dataclass(frozen=True)
class FeedbackItem:
    """The latest verdict on one draft, with the text it stands for and its review, if any."""

    feedback_id: int
    draft_id: str
    created: str
    verdict: str
    title: str
    ticket: str
    draft_text: str
    final_text: str
    product: str
    subcategory: str
    scenarios: tuple[str, ...]
    decision: str | None = None  # None: pending review
    reviewer: str | None = None
    reviewed_at: str | None = None
    review_reason: str | None = None


@dataclass(frozen=True)
class ProductStats:
    product: str
    drafts: int
    feedback: int
    accepted: int
    edited: int
    rejected: int
    acceptance_rate: float | None
    mean_edit_distance: float | None


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _shown(when: datetime) -> str:
    """How a time reads in items and history: UTC, to the second (the SQLite file's own form)."""
    return when.astimezone(timezone.utc).isoformat(timespec="seconds")


def open_feedback(config: ServiceConfig) -> FeedbackStore:
    """The configured store: PostgreSQL when ``RAG_FEEDBACK_URL`` is set, else the SQLite file ``RAG_FEEDBACK_DB``."""
    url = config.feedback_url.get_secret_value()
    if url:
        from rag.feedback.postgres import PostgresBackend

        return FeedbackStore(PostgresBackend(url, pool_size=config.feedback_pool_size, timeout=config.feedback_timeout))
    return FeedbackStore(config.feedback_db)


class FeedbackStore:
    """Feedback through one backend. A path opens the SQLite file there (migrated as it opens): the embedded
    default, and what tests and scripts name directly."""

    def __init__(self, where: Path | FeedbackBackend) -> None:
        if isinstance(where, Path):
            from rag.feedback.sqlite import SqliteBackend

            where = SqliteBackend(where)
        self.backend: FeedbackBackend = where

    def __enter__(self) -> FeedbackStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.backend.close()

    @property
    def where(self) -> str:
        return self.backend.where

    def check(self) -> SchemaStatus:
        """Reach the database and compare its schema with this code's migrations: ``FeedbackStoreError`` when it
        cannot be reached, ``SchemaBehindError`` when it lacks migrations (``rag feedback migrate``)."""
        from rag.feedback.migrations import SchemaBehindError

        status = self.backend.status()
        if status.pending:
            raise SchemaBehindError(status.behind())
        return status

    def migrate(self) -> tuple[Migration, ...]:
        return self.backend.migrate()

    def record_draft(self, ticket: Ticket, draft: Draft, product: str, subcategory: str) -> str:
        # Everything stored here can reach a reviewer's terminal and the exported dataset: control characters
        # (ESC sequences that hide or erase lines) go at input (issue 24), as do lone surrogates (a 500 before).
        draft_id = uuid.uuid4().hex
        self.backend.insert_draft(DraftRow(
            draft_id, _now(), strip_controls(product), strip_controls(subcategory), strip_controls(ticket.title),
            strip_controls(ticket.text), strip_controls(draft.text),
            strip_controls(json.dumps(draft_dict(draft), ensure_ascii=False)),
        ))
        return draft_id

    def add_feedback(self, draft_id: str, verdict: Verdict, final_text: str | None = None, reason: str | None = None,
                     *, product: str | None = None, scenarios: tuple[str, ...] = ()) -> int:
        """``product``/``scenarios``: the agent's correction, already checked against the known set by the caller.
        Control characters are removed from the free text (``strip_controls``), whoever sent it."""
        final_text = strip_controls(final_text) if final_text is not None else None
        reason = strip_controls(reason) if reason is not None else None
        return self.backend.insert_verdict(VerdictRow(draft_id, _now(), verdict, final_text, reason, product, scenarios))

    def items(self) -> list[FeedbackItem]:
        """The latest accepted or edited verdict per draft, oldest first, with its latest review."""
        return [_item(r) for r in self.backend.latest() if r.verdict.verdict in ("accepted", "edited")]

    def review(self, feedback_id: int, decision: Decision, reviewer: str, reason: str | None = None) -> FeedbackItem:
        """Approve or reject one item. Only the latest verdict on a draft can be reviewed: an agent who
        changes the text afterwards makes a new item, pending again, so approval covers exactly one text."""
        item = next((i for i in self.items() if i.feedback_id == feedback_id), None)
        if item is None:
            raise ReviewError(f"feedback {feedback_id} is not an item to review (unknown id, a rejected draft, "
                              "or a draft that has a newer verdict): see `rag feedback review`")
        self.backend.insert_review(ReviewRow(feedback_id, _now(), decision, reviewer, reason))
        return next(i for i in self.items() if i.feedback_id == feedback_id)

    def counts(self) -> tuple[int, int]:
        return self.backend.counts()

    def history(self, draft_id: str) -> list[dict]:
        """Every verdict given on a draft, oldest first."""
        return [{"id": v.id, "created": _shown(v.row.created), "verdict": v.row.verdict,
                 "final_text": v.row.final_text, "reason": v.row.reason} for v in self.backend.verdicts(draft_id)]

    def stats(self) -> list[ProductStats]:
        drafts = self.backend.drafts_per_product()
        per: dict[str, list[LatestVerdict]] = defaultdict(list)
        for r in self.backend.latest():
            per[r.draft.product].append(r)
        out = []
        for product in sorted(set(drafts) | set(per)):
            rs = per.get(product, [])
            verdicts = [r.verdict.verdict for r in rs]
            edits = [Levenshtein.normalized_distance(r.draft.draft_text, r.verdict.final_text) for r in rs
                     if r.verdict.verdict in ("edited", "accepted") and r.verdict.final_text
                     and r.verdict.final_text != r.draft.draft_text]
            out.append(ProductStats(
                product=product, drafts=drafts.get(product, 0), feedback=len(rs),
                accepted=verdicts.count("accepted"), edited=verdicts.count("edited"), rejected=verdicts.count("rejected"),
                acceptance_rate=round((verdicts.count("accepted") + verdicts.count("edited")) / len(rs), 3) if rs else None,
                mean_edit_distance=round(sum(edits) / len(edits), 3) if edits else None,
            ))
        return out


def _item(r: LatestVerdict) -> FeedbackItem:
    d, v, rev = r.draft, r.verdict, r.review
    return FeedbackItem(
        feedback_id=r.feedback_id, draft_id=d.id, created=_shown(v.created), verdict=v.verdict,
        title=d.title, ticket=d.ticket, draft_text=d.draft_text, final_text=v.final_text or d.draft_text,
        product=v.product or d.product, subcategory=d.subcategory, scenarios=v.scenarios,
        decision=rev.decision if rev else None, reviewer=rev.reviewer if rev else None,
        reviewed_at=_shown(rev.created) if rev else None, review_reason=rev.reason if rev else None,
    )
