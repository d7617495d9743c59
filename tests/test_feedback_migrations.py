"""The SQLite feedback file's versioned migrations: new files, files from before the ledger, and new migrations.

(PostgreSQL's are in tests/test_feedback_postgres.py, on a real server.)"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag.cli import app
from rag.errors import FeedbackStoreError
from rag.feedback.migrations import shipped
from rag.feedback.sqlite import SqliteBackend, statements
from rag.feedback.store import FeedbackStore

SHIPPED = Path(__file__).parents[1] / "rag" / "feedback" / "sql" / "sqlite"

# What the code before the ledger created on every open (the last legacy shape: reviews and both columns).
LEGACY = """
CREATE TABLE drafts (id TEXT PRIMARY KEY, created TEXT NOT NULL, product TEXT NOT NULL, subcategory TEXT NOT NULL,
    title TEXT NOT NULL, ticket TEXT NOT NULL, draft_text TEXT NOT NULL, draft_json TEXT NOT NULL);
CREATE TABLE feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, draft_id TEXT NOT NULL REFERENCES drafts(id),
    created TEXT NOT NULL, verdict TEXT NOT NULL CHECK (verdict IN ('accepted', 'edited', 'rejected')),
    final_text TEXT, reason TEXT, product TEXT, scenarios TEXT);
CREATE INDEX feedback_draft ON feedback(draft_id);
CREATE TABLE reviews (id INTEGER PRIMARY KEY AUTOINCREMENT, feedback_id INTEGER NOT NULL REFERENCES feedback(id),
    created TEXT NOT NULL, decision TEXT NOT NULL CHECK (decision IN ('approved', 'rejected')), reviewer TEXT NOT NULL,
    reason TEXT);
CREATE INDEX reviews_feedback ON reviews(feedback_id);
INSERT INTO drafts VALUES ('abc', '2026-01-01T00:00:00+00:00', 'CDN', '证书问题', 't', '证书过期', '草稿', '{}');
INSERT INTO feedback (draft_id, created, verdict, final_text, product, scenarios)
    VALUES ('abc', '2026-01-01T00:00:01+00:00', 'edited', '您好，改过的。', 'CDN', 'SSL证书');
INSERT INTO reviews (feedback_id, created, decision, reviewer) VALUES (1, '2026-01-02T00:00:00+00:00', 'approved', 'lead');
"""


def _ledger(path: Path) -> list[tuple[int, str]]:
    with closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()


def test_a_new_file_gets_every_migration_once(tmp_path):
    path = tmp_path / "fb.sqlite3"
    FeedbackStore(path)
    FeedbackStore(path)
    assert _ledger(path) == [(1, "initial"), (2, "reviews")]
    assert FeedbackStore(path).check().version == 2


def test_a_file_from_before_the_ledger_opens_with_its_data_and_gets_the_record(tmp_path):
    path = tmp_path / "fb.sqlite3"
    with closing(sqlite3.connect(path)) as db:
        db.executescript(LEGACY)
    store = FeedbackStore(path)  # the columns exist: ADD COLUMN is skipped, not an error
    assert _ledger(path) == [(1, "initial"), (2, "reviews")]
    (item,) = store.items()
    assert (item.final_text, item.scenarios, item.decision, item.reviewer) == ("您好，改过的。", ("SSL证书",), "approved", "lead")
    assert item.created == "2026-01-01T00:00:01+00:00" and item.reviewed_at == "2026-01-02T00:00:00+00:00"


def test_a_new_migration_is_applied_once_and_a_failing_one_leaves_the_file_as_it_was(tmp_path):
    folder = tmp_path / "sql"
    folder.mkdir()
    for f in SHIPPED.glob("*.sql"):
        (folder / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    path = tmp_path / "fb.sqlite3"
    FeedbackStore(path)
    (folder / "0003_tags.sql").write_text("-- tags\nALTER TABLE feedback ADD COLUMN tags TEXT;\n", encoding="utf-8")
    (folder / "0004_broken.sql").write_text("CREATE TABLE half (x INTEGER);\nINSERT INTO nowhere VALUES (1);\n",
                                            encoding="utf-8")
    with pytest.raises(FeedbackStoreError, match="0004_broken failed on .*no such table: nowhere; nothing was applied"):
        SqliteBackend(path, migrations=shipped("sqlite", folder))
    assert [v for v, _ in _ledger(path)] == [1, 2]  # 0003 and 0004 rolled back together
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT name FROM sqlite_master WHERE name = 'half'").fetchone() is None
    (folder / "0004_broken.sql").unlink()
    assert [m.version for m in SqliteBackend(path, migrations=shipped("sqlite", folder)).status().pending] == []
    assert _ledger(path)[-1] == (3, "tags")


def test_statements_split_where_sqlite_says_and_drop_comment_lines():
    sql = "-- a comment; with a semicolon\nCREATE TABLE a (x TEXT DEFAULT ';');\n\nALTER TABLE a ADD COLUMN b TEXT;"
    assert statements(sql) == ["CREATE TABLE a (x TEXT DEFAULT ';');", "ALTER TABLE a ADD COLUMN b TEXT;"]


def test_migration_files_must_be_numbered_without_gaps(tmp_path):
    (tmp_path / "0001_a.sql").write_text("SELECT 1;", encoding="utf-8")
    (tmp_path / "0003_c.sql").write_text("SELECT 1;", encoding="utf-8")
    with pytest.raises(FeedbackStoreError, match="without gaps; found 0001, 0003"):
        shipped("sqlite", tmp_path)


def test_rag_feedback_migrate_on_the_sqlite_file(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_FEEDBACK_DB", str(tmp_path / "fb.sqlite3"))
    r = CliRunner().invoke(app, ["feedback", "migrate"])
    assert r.exit_code == 0 and f"feedback database {tmp_path / 'fb.sqlite3'}" in r.output
    assert "at schema version 2" in r.output
