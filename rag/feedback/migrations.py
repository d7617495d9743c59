"""The feedback database's schema, as numbered SQL files applied in order and recorded once applied.

``rag/feedback/sql/<database>/NNNN_name.sql``: one folder per database (``sqlite``, ``postgres``), numbered from
0001 without gaps. A database records each file it applied in ``schema_migrations`` (version, name, when); its
version is the highest applied. ``rag feedback migrate`` applies what is missing, each file with its record in one
transaction, so a failed file leaves neither half its tables nor a record. A file, once released, is never edited:
a change is a new file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Literal

from rag.errors import FeedbackStoreError

Dialect = Literal["sqlite", "postgres"]

_FILE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str  # the file's name without its number and suffix: "initial"
    sql: str


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    """Where a database stands against the migrations this code ships."""

    where: str  # the database, as messages name it (a path, or the URL with its password hidden)
    version: int  # highest applied; 0: none (a new database)
    pending: tuple[Migration, ...]  # shipped and not applied, in order

    @property
    def current(self) -> bool:
        return not self.pending

    def behind(self) -> str:
        """The one line for a database that lacks migrations."""
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in self.pending)
        return (f"feedback database {self.where} is at schema version {self.version}, this rag needs "
                f"{self.pending[-1].version} ({names} not applied): run `rag feedback migrate`")


class SchemaBehindError(FeedbackStoreError):
    """The database lacks migrations this code needs: `rag feedback migrate` (never applied behind an operator's back)."""


def shipped(dialect: Dialect, folder: Traversable | None = None) -> tuple[Migration, ...]:
    """The migrations of one database, in order; ``folder`` replaces the shipped one (tests)."""
    root = folder if folder is not None else resources.files("rag.feedback") / "sql" / dialect
    found: dict[int, Migration] = {}
    for entry in root.iterdir():
        m = _FILE.fullmatch(entry.name)
        if m is None:
            continue
        version = int(m.group(1))
        if version in found:
            raise FeedbackStoreError(f"two feedback migrations numbered {version:04d} in {root}")
        found[version] = Migration(version, m.group(2), entry.read_text(encoding="utf-8"))
    ordered = tuple(found[v] for v in sorted(found))
    if [m.version for m in ordered] != list(range(1, len(ordered) + 1)):
        raise FeedbackStoreError(f"feedback migrations in {root} must be numbered 0001, 0002, … without gaps; "
                                 f"found {', '.join(f'{m.version:04d}' for m in ordered) or 'none'}")
    return ordered


def pending(migrations: tuple[Migration, ...], applied: set[int]) -> tuple[Migration, ...]:
    return tuple(m for m in migrations if m.version not in applied)
