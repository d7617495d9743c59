"""One way to open the project's SQLite files (caches, feedback): WAL, so readers never block the
writer, and a busy timeout, so concurrent writers queue instead of failing."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def connect(path: Path, *, autocommit: bool = False) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=30, isolation_level=None if autocommit else "DEFERRED")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA busy_timeout=30000")
    db.execute("PRAGMA foreign_keys=ON")
    return db
