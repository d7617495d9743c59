"""The one on-disk key-value cache (embeddings, LLM completions): a SQLite table of ``key -> value``.

Keys are content digests the caller computes from everything that changes the value (model, text, prompt,
parameters), so an entry is never stale, only unused. Values are stored and returned as given (``bytes`` or
``str``). Each cache keeps its file, table and column names from before this module, so caches written
earlier stay readable.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from contextlib import closing
from pathlib import Path
from typing import IO, Callable, Iterable, Literal, Sequence, Union

from rag.store.sqlite import connect

Value = Union[bytes, str]
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_BATCH = 500  # keys per SELECT: under SQLite's bound-parameter limit


def digest(*parts: str) -> str:
    """A cache key: the SHA-256 of ``parts`` joined by NUL (a part cannot run into the next)."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def write_replacing(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """``path`` written whole or not at all: ``write`` fills a temporary file beside it, renamed over it (another
    process saving the same content-keyed file at once writes the same bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".building-", suffix=path.suffix, delete=False) as f:
        write(f)
    Path(f.name).replace(path)


def keep_newest(folder: Path, n: int, pattern: str = "*") -> None:
    """Of the entries (files or folders) matching ``pattern`` in ``folder``, remove all but the ``n`` used last;
    names starting with "." are work in progress and left alone. Content-keyed copies are never stale, only
    unused: this bounds the disk they take."""
    entries = sorted((p for p in folder.glob(pattern) if not p.name.startswith(".")),
                     key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[n:]:
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


class DiskCache:
    def __init__(self, path: Path, table: str, value_column: str = "value",
                 value_type: Literal["BLOB", "TEXT"] = "BLOB") -> None:
        if not (_NAME.match(table) and _NAME.match(value_column)):  # they go into SQL text: names only
            raise ValueError(f"not an SQL name: {table!r}, {value_column!r}")
        self.path = path
        self._table, self._column = table, value_column
        with closing(connect(path)) as db, db:
            db.execute(f"CREATE TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY, {value_column} {value_type} NOT NULL)")

    def get(self, key: str) -> Value | None:
        return self.get_many([key]).get(key)

    def get_many(self, keys: Sequence[str]) -> dict[str, Value]:
        found: dict[str, Value] = {}
        unique = list(dict.fromkeys(keys))
        with closing(connect(self.path)) as db:
            for start in range(0, len(unique), _BATCH):
                part = unique[start : start + _BATCH]
                rows = db.execute(f"SELECT key, {self._column} FROM {self._table} "
                                  f"WHERE key IN ({','.join('?' * len(part))})", part)
                found.update(rows)
        return found

    def put(self, key: str, value: Value) -> None:
        self.put_many([(key, value)])

    def put_many(self, items: Iterable[tuple[str, Value]]) -> None:
        with closing(connect(self.path)) as db, db:
            db.executemany(f"INSERT OR REPLACE INTO {self._table} VALUES (?, ?)", list(items))
