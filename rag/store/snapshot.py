"""A copy of the store's decoded chunks on local disk, so a replica starts without reading every chunk back.

At 100k chunks, reading the documents and metadata back from Chroma took 10 s and decoding them 6 s: most of a
replica's start-up. The copy is keyed by the collection and its content stamp (``ChunkStore.stamp``: a new one
is written before every change), so a copy is used only for exactly the contents it was made from, and a
collection without a stamp is always read from the store. It is a pickle of the project's own frozen records,
read with an unpickler that refuses every other global (a file planted in the cache folder cannot run code
through it); a damaged or refused copy is read again from the store, never trusted.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import tempfile
from pathlib import Path
from typing import Sequence

from rag.records import CaseRecord, Chunk, Dialogue, Provenance, Turn

SNAPSHOT_VERSION = 1  # bump when a record's fields change: an old copy is then another key
KEEP_SNAPSHOTS = 4
_ALLOWED = {("rag.records", c.__name__): c for c in (Chunk, CaseRecord, Dialogue, Turn, Provenance)}


class _RecordsOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> type:
        allowed = _ALLOWED.get((module, name))
        if allowed is None:
            raise pickle.UnpicklingError(f"{module}.{name} is not a record of this project")
        return allowed


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
        chunks = _RecordsOnly(io.BytesIO(data)).load()
    except Exception:  # any damage: the store is read instead
        return None
    if not isinstance(chunks, list) or not all(isinstance(c, Chunk) for c in chunks):
        return None
    path.touch()
    return chunks


def save(path: Path, chunks: Sequence[Chunk]) -> None:
    """Written whole or not at all (a temporary file renamed over); the oldest copies beyond a few are removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".building-", suffix=".pickle", delete=False) as f:
        pickle.dump(list(chunks), f, protocol=pickle.HIGHEST_PROTOCOL)
    Path(f.name).replace(path)
    saved = sorted((p for p in path.parent.glob("*.pickle") if not p.name.startswith(".")),
                   key=lambda p: p.stat().st_mtime, reverse=True)
    for old in saved[KEEP_SNAPSHOTS:]:
        old.unlink(missing_ok=True)
