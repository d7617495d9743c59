"""A copy of the store's decoded chunks on local disk, so a replica starts without reading every chunk back.

At 100k chunks, reading the documents and metadata back from Chroma took 10 s and decoding them 6 s: most of a
replica's start-up. The copy is keyed by the collection and its content stamp (``ChunkStore.stamp``: a new one
is written before every change), so a copy is used only for exactly the contents it was made from, and a
collection without a stamp is always read from the store. It is a pickle of plain values, read with an
unpickler that refuses every global (a file planted in the cache folder cannot run code through it); a damaged
or refused copy is read again from the store, never trusted.

The records are written as plain tuples of strings and numbers, no class at all: unpickling a million slotted
dataclass objects one ``__setstate__`` at a time took 4.9 s at 100k chunks; building them from tuples is the
constructors' cost only.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from pathlib import Path
from typing import Sequence

from rag.records import CaseRecord, Chunk, Dialogue, Provenance, Turn
from rag.store.cache import keep_newest, write_replacing

SNAPSHOT_VERSION = 2  # bump when a record's fields change: an old copy is then another key
KEEP_SNAPSHOTS = 4


class _PlainValuesOnly(pickle.Unpickler):
    """Tuples, lists, strings and numbers only: any class or function named in the file is refused."""

    def find_class(self, module: str, name: str) -> type:
        raise pickle.UnpicklingError(f"{module}.{name}: a snapshot holds plain values only")


def _turn(t: Turn) -> tuple:
    return (t.role, t.text, t.line, t.is_filler, t.has_image)


def _case(c: CaseRecord) -> tuple:
    p, d = c.provenance, c.dialogue
    return (c.id, c.title, c.product, c.subcategory, c.scenarios, c.root_cause, c.source, c.line, c.question,
            c.answer, c.has_links,
            None if p is None else (p.origin, p.feedback_ids, p.draft_ids, p.verdict, p.reviewer, p.reviewed_at,
                                    p.copies),
            None if d is None else (d.question, tuple(_turn(t) for t in d.turns), d.links))


def _chunk(c: Chunk) -> tuple:
    return (c.id, c.case_id, c.kind, c.text, c.key_text, c.exchange, None if c.case is None else _case(c.case))


def _record(v: tuple) -> CaseRecord:
    p, d = v[11], v[12]
    return CaseRecord(id=v[0], title=v[1], product=v[2], subcategory=v[3], scenarios=v[4], root_cause=v[5],
                      source=v[6], line=v[7], question=v[8], answer=v[9], has_links=v[10],
                      provenance=None if p is None else Provenance(*p),
                      dialogue=None if d is None else Dialogue(d[0], tuple(Turn(*t) for t in d[1]), d[2]))


def _decoded(v: tuple) -> Chunk:
    return Chunk(id=v[0], case_id=v[1], kind=v[2], text=v[3], key_text=v[4], exchange=v[5],
                 case=None if v[6] is None else _record(v[6]))


def snapshot_path(folder: Path, collection: str, stamp: str, schema: int) -> Path:
    key = hashlib.sha256(f"{SNAPSHOT_VERSION}\x00{schema}\x00{collection}\x00{stamp}".encode()).hexdigest()[:24]
    return folder / f"{key}.pickle"


def load(path: Path) -> list[Chunk] | None:
    """The chunks saved at ``path``, or None when there is none, or it is damaged or holds anything else."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    try:
        chunks = [_decoded(v) for v in _PlainValuesOnly(io.BytesIO(data)).load()]
    except Exception:  # any damage or any other shape: the store is read instead
        return None
    path.touch()
    return chunks


def save(path: Path, chunks: Sequence[Chunk]) -> None:
    """Written whole or not at all (a temporary file renamed over); the oldest copies beyond a few are removed."""
    write_replacing(path, lambda f: pickle.dump([_chunk(c) for c in chunks], f, protocol=pickle.HIGHEST_PROTOCOL))
    keep_newest(path.parent, KEEP_SNAPSHOTS, "*.pickle")
