"""Is the embedded Chroma store intact? One line naming the damaged file and the fix, never a traceback.

Two kinds of damage, checked before the store is used:

- ``chroma.sqlite3`` (records, metadata, the write log): SQLite's own ``PRAGMA quick_check``, read-only,
  in this process; Chroma's "database disk image is malformed" errors are mapped to the same message.
- a collection's vector index (the HNSW files in ``<store>/<segment id>/``): Chroma loads them in native
  code, and a file damaged mid-way made the reading process crash (SIGSEGV) or answer from wrong
  vectors. So a separate process probes the index: it queries a spread sample of stored vectors and
  expects each to find itself at distance ~0. A crash or a miss names the segment folder. The probe
  is skipped when the index files and the generation are byte-for-byte those of the last good probe
  (a digest kept in the cache folder), because starting it costs a Python start-up and a Chroma import.

A ``chroma run`` server owns its files; its store is not checked here.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rag.errors import StoreDamagedError
from rag.configs import StoreConfig

SQLITE_NAME = "chroma.sqlite3"
FIX = "rebuild it with `rag ingest --rebuild`"
# SQLite's words for a damaged file (SQLITE_CORRUPT, SQLITE_NOTADB); Chroma passes them through.
_DAMAGE_WORDS = ("malformed", "not a database", "file is encrypted", "disk image", "btreeinitpage", "corrupt")
SAMPLE = 1000
PROBE_TIMEOUT = 300.0
DISTANCE_TOLERANCE = 1e-3
WIDE_SEARCH = 100  # how wide the second look at a vector that did not find itself searches (see _probe)


def damaged(path: Path, why: str) -> StoreDamagedError:
    why = " ".join(why.replace("*** in database main ***", " ").split())[:200]  # one line, whatever SQLite says
    return StoreDamagedError(f"the Chroma store file {path} is damaged ({why}); {FIX}", path=str(path))


def damaged_store_error(config: StoreConfig, exc: BaseException) -> StoreDamagedError | None:
    """Chroma's error, when it says the embedded store's SQLite file is damaged, as our one-line error."""
    if config.chroma_url:
        return None
    text = str(exc).lower()
    if not any(word in text for word in _DAMAGE_WORDS):
        return None
    return damaged(config.store_path / SQLITE_NAME, str(exc))


def sqlite_check(config: StoreConfig) -> None:
    """``PRAGMA quick_check`` on the store's SQLite file, read-only; raises naming the file."""
    path = config.store_path / SQLITE_NAME
    if config.chroma_url or not path.exists():
        return
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        rows = conn.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as exc:
        raise damaged(path, str(exc)) from None
    finally:
        conn.close()
    problems = [str(r[0]) for r in rows if r and r[0] != "ok"]
    if problems:
        raise damaged(path, f"SQLite quick_check: {problems[0]}")


def vector_segment(store_path: Path, collection: str) -> Path | None:
    """The folder of a collection's vector index, from Chroma's own tables (read-only)."""
    path = store_path / SQLITE_NAME
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        row = conn.execute(
            "SELECT s.id FROM segments s JOIN collections c ON s.collection = c.id WHERE c.name = ? AND s.scope = 'VECTOR'",
            (collection,)).fetchone()
    except sqlite3.DatabaseError as exc:
        raise damaged(path, str(exc)) from None
    finally:
        conn.close()
    return store_path / str(row[0]) if row else None


# Chroma rewrites this file each time a process opens the index, and its bytes differ every time (measured:
# pointer-sized garbage in its padding), so its bytes would send every start back to the child-process probe.
# Its size still keys the stamp; the other files' bytes are stable across opens.
_REWRITTEN_ON_OPEN = frozenset({"length.bin"})


def _digest(folder: Path | None, collection: str, generation: int) -> str:
    h = hashlib.sha256(f"{collection}\0{generation}".encode())
    if folder is not None and folder.is_dir():
        for f in sorted(folder.iterdir()):
            if f.is_file():
                h.update(f.name.encode() + b"\0")
                if f.name in _REWRITTEN_ON_OPEN:
                    h.update(str(f.stat().st_size).encode())
                    continue
                with f.open("rb") as fh:
                    for block in iter(lambda: fh.read(1 << 20), b""):
                        h.update(block)
    return h.hexdigest()


def _stamp_path(config: StoreConfig) -> Path:
    key = hashlib.sha256(f"{config.store_path.resolve()}\0{config.collection}".encode()).hexdigest()[:16]
    return config.cache_dir / "store-checks" / f"{key}.json"


def check_store(config: StoreConfig) -> None:
    """Raise ``StoreDamagedError`` (one line: the file, the fix) when the embedded store is damaged."""
    if config.chroma_url or not (config.store_path / SQLITE_NAME).exists():
        return
    sqlite_check(config)
    result = _run_probe(config)
    if result is None:
        return
    if not result.get("ok"):
        folder = result.get("segment") or str(config.store_path)
        raise damaged(Path(folder), str(result.get("why", "the vector index check failed")))


def _run_probe(config: StoreConfig) -> dict | None:
    """The probe's verdict, or None when the index is unchanged since the last good probe."""
    stamp = _stamp_path(config)
    try:
        known = json.loads(stamp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    pointer = _pointer(config)
    if pointer is not None and known.get("digest") == _digest(vector_segment(config.store_path, pointer[0]), *pointer):
        return None
    cmd = [sys.executable, "-m", "rag.store.health", str(config.store_path), config.collection]
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PROBE_TIMEOUT, env=env)
    except subprocess.TimeoutExpired:
        return {"ok": False, "why": f"the vector index probe did not finish in {PROBE_TIMEOUT:.0f} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    result = json.loads(lines[-1]) if lines else {}
    if proc.returncode < 0:
        sig = signal.Signals(-proc.returncode).name
        segment = result.get("segment")  # printed before the index was loaded
        return {"ok": False, "segment": segment, "why": f"reading its vector index crashed the reader ({sig})"}
    if proc.returncode != 0 or not result:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]
        if any(word in tail.lower() for word in _DAMAGE_WORDS):
            return {"ok": False, "segment": str(config.store_path / SQLITE_NAME), "why": tail}
        return {"ok": False, "segment": result.get("segment"), "why": f"the vector index probe failed: {tail}"}
    pointer = _pointer(config)
    if result.get("ok") and pointer is not None:
        # Digested after the probe exits: loading an index may rewrite its files (Chroma did, for small ones).
        stamp.parent.mkdir(parents=True, exist_ok=True)
        tmp = stamp.with_suffix(f".{os.getpid()}.tmp")
        digest = _digest(vector_segment(config.store_path, pointer[0]), *pointer)
        tmp.write_text(json.dumps({"digest": digest, "checked": time.time()}), encoding="utf-8")
        tmp.replace(stamp)
    return result


def _pointer(config: StoreConfig) -> tuple[str, int] | None:
    """The active collection and generation read straight from SQLite (no Chroma import), or None."""
    from rag.store.generation import pointer_name

    path = config.store_path / SQLITE_NAME
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        rows = conn.execute(
            "SELECT m.key, m.str_value, m.int_value FROM collection_metadata m JOIN collections c ON m.collection_id = c.id "
            "WHERE c.name = ?", (pointer_name(config.collection),)).fetchall()
    except sqlite3.DatabaseError:
        return None
    finally:
        conn.close()
    meta = {k: (s if s is not None else i) for k, s, i in rows}
    if not meta:
        return config.collection, 0
    return str(meta.get("collection") or config.collection), int(meta.get("generation") or 0)


def set_aside(config: StoreConfig) -> Path:
    """Move a damaged embedded store's files into a sibling folder (kept, never deleted); returns it.

    The ingest lock files stay where they are: the ingest doing this holds one of them.
    """
    target = config.store_path.with_name(f"{config.store_path.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
    target.mkdir(parents=True, exist_ok=False)
    for entry in config.store_path.iterdir():
        if not entry.name.endswith(".lock"):
            shutil.move(str(entry), str(target / entry.name))
    return target


def unfound(col: Any, ids: list[str], vectors: Any, count: int) -> list[str]:
    """The ids among ``ids`` whose stored vector (``vectors``, row for row) the collection's index does not find.

    HNSW search is approximate: at Chroma's default breadth a healthy index of 805 vectors let one of them miss
    itself in some builds (a CI run said "damaged"). A vector the index really lost is not found by a wide search
    either; hnswlib searches at least as wide as the results asked for."""
    res = col.query(query_embeddings=vectors, n_results=1, include=["distances"])
    missed = [n for n, d in enumerate(res["distances"] or []) if not d or d[0] > DISTANCE_TOLERANCE]
    if missed:
        again = col.query(query_embeddings=vectors[missed], n_results=min(count, WIDE_SEARCH), include=["distances"])
        missed = [n for n, d in zip(missed, again["distances"] or []) if not d or d[0] > DISTANCE_TOLERANCE]
    return [ids[n] for n in missed]


def _probe(store_path: str, store: str) -> dict[str, Any]:
    """Run in a child process: query a spread sample of stored vectors; each must find itself."""
    import chromadb
    import numpy as np
    from chromadb.config import Settings as ChromaSettings

    from rag.store.generation import read_active

    client = chromadb.PersistentClient(path=store_path, settings=ChromaSettings(anonymized_telemetry=False))
    active = read_active(client, store)
    folder = vector_segment(Path(store_path), active.collection)
    # Said before the index is touched: if loading it kills this process, the parent still knows where.
    print(json.dumps({"segment": str(folder) if folder else None}), flush=True)
    col = client.get_collection(active.collection, embedding_function=None)
    ids = col.get(include=[])["ids"]
    count = col.count()
    if count != len(ids):
        return {"ok": False, "segment": str(folder), "why": f"{count} records counted but {len(ids)} listed"}
    if not ids:
        return {"ok": True, "segment": str(folder), "checked": 0}
    sample = ids[:: max(1, len(ids) // SAMPLE)][:SAMPLE]
    got = col.get(ids=sample, include=["embeddings"])
    vectors = np.asarray(got["embeddings"], dtype=np.float32)
    misses = unfound(col, got["ids"], vectors, count)
    if misses:
        return {"ok": False, "segment": str(folder),
                "why": f"{len(misses)} of {len(sample)} stored vectors are not found by the vector index"}
    return {"ok": True, "segment": str(folder), "checked": len(sample)}


if __name__ == "__main__":
    print(json.dumps(_probe(sys.argv[1], sys.argv[2])), flush=True)
