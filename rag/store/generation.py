"""Which Chroma collection holds the store, and its generation number.

A store named ``qiniu_support`` is served from one physical collection: ``qiniu_support`` itself (a
store built before generations existed, or never rebuilt) or ``qiniu_support.g<N>`` (built by a
rebuild). A pointer collection, ``qiniu_support.active``, holds no records, only metadata: the
physical collection's name and the generation. Every ingest that changes the store raises the
generation; a rebuild fills a new physical collection first and then rewrites the pointer in one
metadata write, so a reader sees the old store or the new one, never half of one. The pointer lives
in Chroma, not beside the files, so the same code works on the embedded store and on a
``chroma run`` server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

POINTER_SUFFIX = ".active"


@dataclass(frozen=True, slots=True)
class Active:
    collection: str
    generation: int


def pointer_name(store: str) -> str:
    return f"{store}{POINTER_SUFFIX}"


def _physical(store: str) -> re.Pattern[str]:
    return re.compile(rf"{re.escape(store)}(\.g\d+)?")


def read_active(client: Any, store: str) -> Active:
    """The served collection; a store without a pointer is served from its own name, generation 0."""
    from chromadb.errors import NotFoundError

    try:
        meta = client.get_collection(pointer_name(store), embedding_function=None).metadata or {}
    except NotFoundError:
        return Active(store, 0)
    name = str(meta.get("collection") or store)
    if not _physical(store).fullmatch(name):
        raise ValueError(f"the pointer {pointer_name(store)!r} names {name!r}, which is not a collection of this store")
    return Active(name, int(meta.get("generation") or 0))


def write_active(client: Any, store: str, active: Active) -> None:
    meta = {"collection": active.collection, "generation": active.generation}
    client.get_or_create_collection(pointer_name(store), metadata=meta, embedding_function=None).modify(metadata=meta)


def next_collection(client: Any, store: str, active: Active) -> str:
    """The name a rebuild fills; a leftover of an interrupted rebuild under that name is dropped first."""
    name = f"{store}.g{active.generation + 1}"
    if name == active.collection:  # cannot happen with a consistent pointer; never drop what is served
        raise ValueError(f"collection {name!r} is the active one")
    if name in _names(client):
        client.delete_collection(name)
    return name


def drop_inactive(client: Any, store: str, active: Active) -> list[str]:
    """Drop every physical collection of this store but the active one (what a rebuild replaced)."""
    pattern = _physical(store)
    dropped = []
    for name in _names(client):
        if pattern.fullmatch(name) and name != active.collection:
            client.delete_collection(name)
            dropped.append(name)
    return dropped


def _names(client: Any) -> list[str]:
    return [c if isinstance(c, str) else c.name for c in client.list_collections()]


_SEGMENT_DIR = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def remove_orphan_segments(store_path: Path) -> list[str]:
    """Delete index folders no collection uses any more; Chroma 1.5 leaves a dropped collection's on disk."""
    import shutil
    import sqlite3

    db = store_path / "chroma.sqlite3"
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        used = {str(row[0]) for row in conn.execute("SELECT id FROM segments")}
    finally:
        conn.close()
    removed = []
    for entry in store_path.iterdir():
        if entry.is_dir() and _SEGMENT_DIR.fullmatch(entry.name) and entry.name not in used:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
    return removed
