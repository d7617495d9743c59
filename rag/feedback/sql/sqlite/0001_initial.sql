-- Drafts the service returned and the agents' verdicts on them.
-- SQLite files predate the migrations table, so every SQLite migration can run on a file that already has its
-- effect: CREATE ... IF NOT EXISTS, and ADD COLUMN is skipped when the column exists (rag/feedback/sqlite.py).
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
