"""Feedback on drafts, stored durably in SQLite, and turned back into corpus cases.

Every draft the service returns is recorded with an id; an agent then accepts it, edits it (the final
text is kept) or rejects it (with a reason). Writes are single statements in WAL mode with a busy
timeout, so concurrent requests queue instead of losing writes.

Feedback is a proposal, not a corpus edit: an accepted or edited draft waits for a person's review
(``reviews``: approved or rejected, by whom, when, bound to that exact feedback entry); only approved
items are exported to the dataset format (``rag.feedback_export``). Databases written before the
review step open unchanged: the new table and columns are added, nothing is rewritten.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections import defaultdict
from contextlib import closing
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from rapidfuzz.distance import Levenshtein

from rag.errors import RagError
from rag.records import Draft, Ticket
from rag.sqlite_db import connect

Verdict = Literal["accepted", "edited", "rejected"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS drafts (
    id TEXT PRIMARY KEY, created TEXT NOT NULL, product TEXT NOT NULL, subcategory TEXT NOT NULL,
    title TEXT NOT NULL, ticket TEXT NOT NULL, draft_text TEXT NOT NULL, draft_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT, draft_id TEXT NOT NULL REFERENCES drafts(id), created TEXT NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('accepted', 'edited', 'rejected')),
    final_text TEXT, reason TEXT
);
CREATE INDEX IF NOT EXISTS feedback_draft ON feedback(draft_id);
CREATE TABLE IF NOT EXISTS reviews (
    id INTEGER PRIMARY KEY AUTOINCREMENT, feedback_id INTEGER NOT NULL REFERENCES feedback(id), created TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('approved', 'rejected')), reviewer TEXT NOT NULL, reason TEXT
);
CREATE INDEX IF NOT EXISTS reviews_feedback ON reviews(feedback_id);
"""
# Columns added after the first release: (table, column, declaration). Added when missing, never dropped.
_ADDED_COLUMNS = (
    ("feedback", "product", "TEXT"),    # the agent's correction of the product, validated against the store's set
    ("feedback", "scenarios", "TEXT"),  # the agent's scenarios, joined by '|', validated the same way
)

Decision = Literal["approved", "rejected"]


class UnknownDraftError(RagError):
    pass


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


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class FeedbackStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db:
            db.executescript(_SCHEMA)
            for table, column, decl in _ADDED_COLUMNS:
                if column not in {r[1] for r in db.execute(f"PRAGMA table_info({table})")}:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")

    def _connect(self) -> sqlite3.Connection:
        return connect(self.path, autocommit=True)

    def record_draft(self, ticket: Ticket, draft: Draft, product: str, subcategory: str) -> str:
        draft_id = uuid.uuid4().hex
        with closing(self._connect()) as db:
            db.execute(
                "INSERT INTO drafts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (draft_id, _now(), product, subcategory, ticket.title, ticket.text, draft.text,
                 json.dumps(asdict(draft), ensure_ascii=False)),
            )
        return draft_id

    def add_feedback(self, draft_id: str, verdict: Verdict, final_text: str | None = None, reason: str | None = None,
                     *, product: str | None = None, scenarios: tuple[str, ...] = ()) -> int:
        """``product``/``scenarios``: the agent's correction, already checked against the known set by the caller."""
        with closing(self._connect()) as db:
            if db.execute("SELECT 1 FROM drafts WHERE id = ?", (draft_id,)).fetchone() is None:
                raise UnknownDraftError(f"no draft with id {draft_id!r}")
            cur = db.execute(
                "INSERT INTO feedback (draft_id, created, verdict, final_text, reason, product, scenarios) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (draft_id, _now(), verdict, final_text, reason, product, "|".join(scenarios) or None),
            )
            return int(cur.lastrowid or 0)

    def items(self) -> list[FeedbackItem]:
        """The latest accepted or edited verdict per draft, oldest first, with its latest review."""
        with closing(self._connect()) as db:
            rows = [r for r in self._latest(db) if r["verdict"] in ("accepted", "edited")]
            reviews = {r["feedback_id"]: r for r in db.execute(
                "SELECT * FROM reviews r WHERE r.id = (SELECT MAX(id) FROM reviews WHERE feedback_id = r.feedback_id)")}
        out = []
        for r in sorted(rows, key=lambda r: r["feedback_id"]):
            rev = reviews.get(r["feedback_id"])
            out.append(FeedbackItem(
                feedback_id=r["feedback_id"], draft_id=r["id"], created=r["feedback_created"], verdict=r["verdict"],
                title=r["title"], ticket=r["ticket"], draft_text=r["draft_text"],
                final_text=(r["final_text"] or r["draft_text"]), product=r["feedback_product"] or r["product"],
                subcategory=r["subcategory"], scenarios=tuple(s for s in (r["feedback_scenarios"] or "").split("|") if s),
                decision=rev["decision"] if rev else None, reviewer=rev["reviewer"] if rev else None,
                reviewed_at=rev["created"] if rev else None, review_reason=rev["reason"] if rev else None,
            ))
        return out

    def review(self, feedback_id: int, decision: Decision, reviewer: str, reason: str | None = None) -> FeedbackItem:
        """Approve or reject one item. Only the latest verdict on a draft can be reviewed: an agent who
        changes the text afterwards makes a new item, pending again, so approval covers exactly one text."""
        item = next((i for i in self.items() if i.feedback_id == feedback_id), None)
        if item is None:
            raise ReviewError(f"feedback {feedback_id} is not an item to review (unknown id, a rejected draft, "
                              "or a draft that has a newer verdict): see `rag feedback review`")
        with closing(self._connect()) as db:
            db.execute("INSERT INTO reviews (feedback_id, created, decision, reviewer, reason) VALUES (?, ?, ?, ?, ?)",
                       (feedback_id, _now(), decision, reviewer, reason))
        return next(i for i in self.items() if i.feedback_id == feedback_id)

    def counts(self) -> tuple[int, int]:
        with closing(self._connect()) as db:
            return (db.execute("SELECT COUNT(*) FROM drafts").fetchone()[0], db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0])

    def _latest(self, db: sqlite3.Connection) -> list[sqlite3.Row]:
        """The latest verdict per draft: an agent who edits after accepting has the last word.

        Every verdict is kept (``history``); a later verdict without text ("accepted") keeps the text the
        agent last wrote, so an edit is never lost to a later click.
        """
        db.row_factory = sqlite3.Row
        return db.execute(
            """SELECT d.*, f.id AS feedback_id, f.created AS feedback_created, f.verdict, f.reason,
                      f.product AS feedback_product, f.scenarios AS feedback_scenarios,
                      COALESCE(f.final_text, (SELECT g.final_text FROM feedback g WHERE g.draft_id = d.id
                                              AND g.final_text IS NOT NULL ORDER BY g.id DESC LIMIT 1)) AS final_text
               FROM drafts d JOIN feedback f ON f.id = (SELECT MAX(id) FROM feedback WHERE draft_id = d.id)"""
        ).fetchall()

    def history(self, draft_id: str) -> list[dict]:
        """Every verdict given on a draft, oldest first."""
        with closing(self._connect()) as db:
            db.row_factory = sqlite3.Row
            rows = db.execute("SELECT id, created, verdict, final_text, reason FROM feedback WHERE draft_id = ? ORDER BY id",
                              (draft_id,)).fetchall()
        return [dict(r) for r in rows]

    def stats(self) -> list[ProductStats]:
        with closing(self._connect()) as db:
            drafts = dict(db.execute("SELECT product, COUNT(*) FROM drafts GROUP BY product").fetchall())
            rows = self._latest(db)
        per: dict[str, list[sqlite3.Row]] = defaultdict(list)
        for r in rows:
            per[r["product"]].append(r)
        out = []
        for product in sorted(set(drafts) | set(per)):
            rs = per.get(product, [])
            verdicts = [r["verdict"] for r in rs]
            edits = [Levenshtein.normalized_distance(r["draft_text"], r["final_text"]) for r in rs
                     if r["verdict"] in ("edited", "accepted") and r["final_text"] and r["final_text"] != r["draft_text"]]
            out.append(ProductStats(
                product=product, drafts=drafts.get(product, 0), feedback=len(rs),
                accepted=verdicts.count("accepted"), edited=verdicts.count("edited"), rejected=verdicts.count("rejected"),
                acceptance_rate=round((verdicts.count("accepted") + verdicts.count("edited")) / len(rs), 3) if rs else None,
                mean_edit_distance=round(sum(edits) / len(edits), 3) if edits else None,
            ))
        return out
