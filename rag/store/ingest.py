"""Ingest: parse dataset files, chunk the cases, embed what is new and reconcile the store.

Reconciliation is per source file: chunks of cases that are no longer in a file are deleted, so a
changed case (new content, new id) replaces its chunks and leaves no orphans. Chunks already in
the store are neither re-embedded nor re-written, so re-ingesting the same data changes nothing.

An ingest that changed the store raises its generation, which a running service watches. A rebuild
fills a new collection while the old one is still served, switches to it, then drops the old one; a
damaged embedded store is checked first: a rebuild moves damaged files aside (kept), any other
ingest stops with the one-line message.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from rag.store.cases import covered_sources, encode_chunk, ids_by_source
from rag.corpus.chunk import chunk_cases
from rag.configs import IngestConfig, StoreConfig
from rag.store.embed import Embedder
from rag.corpus.parse import parse_paths
from rag.records import Chunk
from rag.errors import StoreDamagedError
from rag.store.chroma import ChunkStore, acquire, ingest_lock
from rag.store.generation import remove_orphan_segments
from rag.store.health import check_store, set_aside, sqlite_check

# (stage, done, total): the CLI draws a progress bar from it; the library stays UI-free.
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class IngestSummary:
    files: int
    cases: int
    chunks: int
    added: int
    deleted: int
    unchanged: int
    skipped: int
    seconds: float
    warnings: tuple[str, ...] = field(default=())
    generation: int = 0  # the store's generation after this ingest (a running service reloads on a new one)
    notes: tuple[str, ...] = field(default=())  # what the ingest did besides the cases (a damaged store moved aside)
    migrated: int = 0  # stored chunks whose metadata an older version wrote, rewritten in place


def no_progress(stage: str, done: int, total: int) -> None:
    pass


def plan(chunks: Sequence[Chunk], existing_by_source: dict[str, set[str]], sources: set[str], prune: bool) -> tuple[list[Chunk], list[str]]:
    """Which chunks to add and which stored ids to delete."""
    existing = set().union(*existing_by_source.values()) if existing_by_source else set()
    wanted = {c.id for c in chunks}
    to_add = [c for c in chunks if c.id not in existing]
    to_delete: set[str] = set()
    for source, ids in existing_by_source.items():
        if source in sources or prune:
            to_delete |= ids - wanted
    return to_add, sorted(to_delete)


def ingest(
    paths: Iterable[Path],
    config: IngestConfig,
    where: StoreConfig,
    embedder: Embedder,
    *,
    batch_size: int,
    prune: bool = False,
    rebuild: bool = False,
    progress: Progress = no_progress,
    wait_for_lock: float = 0.0,
) -> IngestSummary:
    """Ingest ``paths`` into the store at ``where``, embedding ``batch_size`` chunks at a time
    (``RAG_EMBEDDING_BATCH_SIZE``, passed along from the embedding settings)."""
    started = time.perf_counter()
    paths = list(paths)
    progress("parse", 0, len(paths))
    cases, report = parse_paths(paths, strict=config.strict, root=config.data_dir)
    progress("parse", len(paths), len(paths))
    chunks = chunk_cases(cases)
    lock = ingest_lock(where)
    acquire(lock, wait=wait_for_lock)
    notes: list[str] = []
    try:
        if rebuild:
            store = _rebuild_target(where, embedder.name, notes)
            stored: dict[str, dict[str, Any]] = {}
            existing: dict[str, set[str]] = {}
        else:
            check_store(where)
            store = ChunkStore(where, embedder.name)
            stored = store.metadata()
            existing = ids_by_source(stored)
        # A file that could not be read at all says nothing about its cases: keep what the store has.
        sources = covered_sources(stored, set(report.sources) - set(report.unreadable))
        to_add, to_delete = plan(chunks, existing, sources, prune and not report.unreadable)
        stale = [c for c in chunks if c.id in stored and stored[c.id] != encode_chunk(c)]
        batch = max(1, batch_size)
        progress("embed", 0, len(to_add))
        for start in range(0, len(to_add), batch):
            part = to_add[start : start + batch]
            vectors = embedder.embed([c.key_text for c in part], "query")
            store.upsert(part, vectors)
            progress("embed", start + len(part), len(to_add))
        # Add before delete: a changed case's new chunks have new ids, so an ingest stopped halfway
        # leaves old and new side by side (the next ingest removes the old), never neither.
        store.delete(to_delete)
        store.rewrite_metadata(stale)
        if rebuild:
            store.activate()  # the switch: one metadata write; readers move to the new collection
            store.drop_inactive()
            if not where.chroma_url:
                remove_orphan_segments(where.store_path)
        elif to_add or to_delete or stale:
            store.bump_generation()
    finally:
        lock.release()
    return IngestSummary(
        files=report.files,
        cases=report.cases,
        chunks=len(chunks),
        added=len(to_add),
        deleted=len(to_delete),
        unchanged=len(chunks) - len(to_add),
        skipped=report.skipped,
        seconds=time.perf_counter() - started,
        warnings=report.warnings,
        generation=store.generation,
        notes=tuple(notes),
        migrated=len(stale),
    )


def _rebuild_target(config: StoreConfig, model: str, notes: list[str]) -> ChunkStore:
    """An empty collection of the next generation; the served one stays until the switch.

    A store whose SQLite file is damaged cannot hold a new collection: its files are moved aside first.
    """
    if not config.chroma_url:
        try:
            sqlite_check(config)
        except StoreDamagedError as exc:
            notes.append(f"{exc.path} was damaged; the old store's files were moved to {set_aside(config)}")
            return ChunkStore.next_generation(config, model, fresh=True)
    try:
        return ChunkStore.next_generation(config, model)
    except StoreDamagedError:
        if config.chroma_url:
            raise
        notes.append(f"the store could not be opened; its files were moved to {set_aside(config)}")
        return ChunkStore.next_generation(config, model, fresh=True)
