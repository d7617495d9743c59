"""Feedback in a SQLite file (the embedded default): ``FeedbackBackend`` over ``rag.store.sqlite.connect``.

One connection per call, WAL with a busy timeout: concurrent requests queue instead of losing writes, and each
write is one autocommitted statement, committed before it returns. The file is migrated when opened (embedded:
no operator runs a command first); files written before ``schema_migrations`` existed are brought to the same
tables by the same files (see ``sql/sqlite/0001_initial.sql``) and then carry the record.
"""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

from rag.errors import FeedbackStoreError
from rag.feedback.backend import (DraftRow, LatestVerdict, ReviewRow, StoredVerdict, UnknownDraftError,
                                  VerdictRow)
from rag.feedback.migrations import Migration, SchemaStatus, pending, shipped
from rag.store.sqlite import connect

_LEDGER = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied TEXT NOT NULL)"""
# SQLite has no ADD COLUMN IF NOT EXISTS; a file from before the ledger may hold the column already.
_ADD_COLUMN = re.compile(r"\s*ALTER\s+TABLE\s+(\w+)\s+ADD\s+COLUMN\s+(\w+)\b", re.I)

_LATEST = """
SELECT d.id, d.created, d.product, d.subcategory, d.title, d.ticket, d.draft_text, d.draft_json,
       f.id AS feedback_id, f.created AS feedback_created, f.verdict, f.reason,
       f.product AS feedback_product, f.scenarios AS feedback_scenarios,
       COALESCE(f.final_text, (SELECT g.final_text FROM feedback g WHERE g.draft_id = d.id
                               AND g.final_text IS NOT NULL ORDER BY g.id DESC LIMIT 1)) AS final_text,
       r.created AS review_created, r.decision, r.reviewer, r.reason AS review_reason
FROM drafts d
JOIN feedback f ON f.id = (SELECT MAX(id) FROM feedback WHERE draft_id = d.id)
LEFT JOIN reviews r ON r.id = (SELECT MAX(id) FROM reviews WHERE feedback_id = f.id)
ORDER BY f.id"""


def _text(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat(timespec="seconds")


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _scenarios(joined: str | None) -> tuple[str, ...]:
    return tuple(s for s in (joined or "").split("|") if s)


def statements(sql: str) -> list[str]:
    """A migration file's statements, without its comment lines, split where SQLite says one is complete."""
    out: list[str] = []
    buf = ""
    for line in sql.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():  # a last statement without ';': SQLite would run it, so do we
        out.append(buf.strip())
    return out


class SqliteBackend:
    def __init__(self, path: Path, *, migrations: tuple[Migration, ...] | None = None) -> None:
        self.path = path
        self._migrations = migrations if migrations is not None else shipped("sqlite")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.migrate()

    @property
    def where(self) -> str:
        return str(self.path)

    def _connect(self) -> sqlite3.Connection:
        return connect(self.path, autocommit=True)

    def _applied(self, db: sqlite3.Connection) -> set[int]:
        if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").fetchone() is None:
            return set()
        return {int(v) for (v,) in db.execute("SELECT version FROM schema_migrations")}

    def status(self) -> SchemaStatus:
        with closing(self._connect()) as db:
            applied = self._applied(db)
        return SchemaStatus(self.where, max(applied, default=0), pending(self._migrations, applied))

    def migrate(self) -> tuple[Migration, ...]:
        with closing(self._connect()) as db:
            # BEGIN IMMEDIATE takes the write lock first: a service and a CLI opening a new file at once queue here,
            # and the second finds the first one's record instead of applying a file twice.
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(_LEDGER)
                todo = pending(self._migrations, self._applied(db))
                for m in todo:
                    try:
                        for stmt in statements(m.sql):
                            add = _ADD_COLUMN.match(stmt)
                            if add and add.group(2) in {r[1] for r in db.execute(f"PRAGMA table_info({add.group(1)})")}:
                                continue
                            db.execute(stmt)
                    except sqlite3.Error as exc:
                        raise FeedbackStoreError(f"feedback migration {m.version:04d}_{m.name} failed on {self.where}: "
                                                 f"{exc}; nothing was applied") from None
                    db.execute("INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)",
                               (m.version, m.name, _text(datetime.now(timezone.utc))))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return todo

    def insert_draft(self, row: DraftRow) -> None:
        with closing(self._connect()) as db:
            db.execute("INSERT INTO drafts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (row.id, _text(row.created), row.product, row.subcategory, row.title, row.ticket,
                        row.draft_text, row.draft_json))

    def insert_verdict(self, row: VerdictRow) -> int:
        with closing(self._connect()) as db:
            if db.execute("SELECT 1 FROM drafts WHERE id = ?", (row.draft_id,)).fetchone() is None:
                raise UnknownDraftError(f"no draft with id {row.draft_id!r}")
            cur = db.execute(
                "INSERT INTO feedback (draft_id, created, verdict, final_text, reason, product, scenarios) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (row.draft_id, _text(row.created), row.verdict, row.final_text, row.reason, row.product,
                 "|".join(row.scenarios) or None),
            )
            return int(cur.lastrowid or 0)

    def insert_review(self, row: ReviewRow) -> int:
        with closing(self._connect()) as db:
            cur = db.execute("INSERT INTO reviews (feedback_id, created, decision, reviewer, reason) VALUES (?, ?, ?, ?, ?)",
                             (row.feedback_id, _text(row.created), row.decision, row.reviewer, row.reason))
            return int(cur.lastrowid or 0)

    def latest(self) -> list[LatestVerdict]:
        with closing(self._connect()) as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(_LATEST).fetchall()
        return [LatestVerdict(
            draft=DraftRow(r["id"], _when(r["created"]), r["product"], r["subcategory"], r["title"], r["ticket"],
                           r["draft_text"], r["draft_json"]),
            feedback_id=int(r["feedback_id"]),
            verdict=VerdictRow(r["id"], _when(r["feedback_created"]), r["verdict"], r["final_text"], r["reason"],
                               r["feedback_product"], _scenarios(r["feedback_scenarios"])),
            review=None if r["decision"] is None else ReviewRow(
                int(r["feedback_id"]), _when(r["review_created"]), r["decision"], r["reviewer"], r["review_reason"]),
        ) for r in rows]

    def verdicts(self, draft_id: str) -> list[StoredVerdict]:
        with closing(self._connect()) as db:
            rows = db.execute("SELECT id, created, verdict, final_text, reason, product, scenarios FROM feedback "
                              "WHERE draft_id = ? ORDER BY id", (draft_id,)).fetchall()
        return [StoredVerdict(int(i), VerdictRow(draft_id, _when(c), v, t, why, p, _scenarios(s)))
                for i, c, v, t, why, p, s in rows]

    def drafts_per_product(self) -> dict[str, int]:
        with closing(self._connect()) as db:
            return {str(p): int(n) for p, n in db.execute("SELECT product, COUNT(*) FROM drafts GROUP BY product")}

    def counts(self) -> tuple[int, int]:
        with closing(self._connect()) as db:
            return (int(db.execute("SELECT COUNT(*) FROM drafts").fetchone()[0]),
                    int(db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0]))

    def close(self) -> None:
        """Nothing to release: every call opens and closes its own connection."""
