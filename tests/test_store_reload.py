"""Ingest and serve together; a damaged store says which file and how to fix it.

The ingests run in another process (`rag ingest`), as they would beside `rag serve`: the embedded
Chroma client of the service never sees another process's writes through its cached index, which is
what these tests guard.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from rag.errors import StoreDamagedError
from rag.corpus.parse import parse_paths
from rag.service.app import create_app
from rag.store.generation import pointer_name
from rag.store.health import SQLITE_NAME, check_store, vector_segment

LOCAL = ("127.0.0.1", 50000)
NEW_CASE = """# 测试数据集 - Part 2

---

## 退款怎么申请

**问题分类**: 账户与财务｜退款问题

**适用场景**: 财务

### 问题描述

余额退款怎么申请？

### 客服解答

**客户**：余额退款怎么申请？
**客服**：您好，可以在控制台财务中心提交退款申请，审核后原路退回

### 根本原因分析

退款需在财务中心提交申请
"""


@pytest.fixture
def settings(make_settings, dataset, tmp_path):
    return make_settings(ingest={"data_dir": dataset}, service={"feedback_db": tmp_path / "feedback.sqlite3"})


def rag(settings, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAG_STORE_PATH": str(settings.store.store_path), "RAG_CACHE_DIR": str(settings.store.cache_dir),
           "RAG_COLLECTION": settings.store.collection, "RAG_DATA_DIR": str(settings.ingest.data_dir), "ANONYMIZED_TELEMETRY": "False"}
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], capture_output=True, text=True, env=env, timeout=600)


def collections(settings) -> set[str]:
    conn = sqlite3.connect(f"file:{settings.store.store_path / SQLITE_NAME}?mode=ro", uri=True)
    try:
        return {name for (name,) in conn.execute("SELECT name FROM collections")}
    finally:
        conn.close()


def test_a_store_opened_before_a_rebuild_follows_the_switch(settings, dataset):
    from rag.store.embed import make_embedder
    from rag.store.ingest import ingest
    from rag.store.chroma import ChunkStore

    e = make_embedder(settings.embedding, cache_dir=settings.store.cache_dir)
    first = ingest([dataset], settings.ingest, settings.store, e, batch_size=settings.embedding.batch_size)
    old = ChunkStore(settings.store, e.name, create=False)
    again = ingest([dataset], settings.ingest, settings.store, e,
                   batch_size=settings.embedding.batch_size)  # nothing changed: same generation
    assert again.generation == first.generation == old.current_generation()
    rebuilt = ingest([dataset], settings.ingest, settings.store, e, batch_size=settings.embedding.batch_size, rebuild=True)
    assert rebuilt.generation == first.generation + 1 == old.current_generation()
    assert old.count() == first.chunks  # its collection was dropped; it reopened the active one
    assert old.active.collection == f"{settings.store.collection}.g{rebuilt.generation}"


def segments(settings) -> set[str]:
    conn = sqlite3.connect(f"file:{settings.store.store_path / SQLITE_NAME}?mode=ro", uri=True)
    try:
        return {str(i) for (i,) in conn.execute("SELECT id FROM segments")}
    finally:
        conn.close()


@pytest.mark.e2e  # runs `rag` in child processes (each imports Chroma and probes the store)
def test_the_service_serves_what_each_ingest_left_and_a_rebuild_never_fails_a_draft(settings, dataset):
    with TestClient(create_app(settings), client=LOCAL) as client:
        first = client.get("/healthz").json()
        assert first["cases"] == 3 and first["generation"] >= 1

        (dataset / "part2.md").write_text(NEW_CASE, encoding="utf-8")
        new_id = parse_paths([dataset / "part2.md"])[0][0].id
        assert client.get(f"/v1/cases/{new_id}").status_code == 404
        done = rag(settings, "ingest", str(dataset))
        assert done.returncode == 0, done.stderr
        added = client.get("/healthz").json()
        assert (added["cases"], added["generation"]) == (4, first["generation"] + 1)
        assert client.get(f"/v1/cases/{new_id}").json()["title"] == "退款怎么申请"
        r = client.post("/v1/drafts", json={"text": "余额退款怎么申请？"})
        assert new_id in [c["case_id"] for c in r.json()["citations"]]

        # A pruned case (say, a poisoned one) stops being served without a restart.
        (dataset / "part2.md").unlink()
        done = rag(settings, "ingest", str(dataset), "--prune")
        assert done.returncode == 0, done.stderr
        pruned = client.get("/healthz").json()
        assert (pruned["cases"], pruned["generation"]) == (3, first["generation"] + 2)
        assert client.get(f"/v1/cases/{new_id}").status_code == 404
        r = client.post("/v1/drafts", json={"text": "余额退款怎么申请？"})
        assert r.status_code == 200 and new_id not in [c["case_id"] for c in r.json()["citations"]]

        # Drafts all through a rebuild in another process: every one answered, none a 500.
        statuses: list[int] = []
        stop = threading.Event()

        def hammer() -> None:
            while not stop.is_set():
                statuses.append(client.post("/v1/drafts", json={"text": "证书过期了怎么办"}).status_code)

        worker = threading.Thread(target=hammer)
        worker.start()
        try:
            done = rag(settings, "ingest", str(dataset), "--rebuild")
        finally:
            after, waited = len(statuses), time.monotonic()
            while len(statuses) < after + 3 and worker.is_alive() and time.monotonic() - waited < 120:
                time.sleep(0.05)  # a few drafts after the switch too
            stop.set()
            worker.join()
        assert done.returncode == 0, done.stderr
        assert statuses and set(statuses) == {200}, statuses
        rebuilt = client.get("/healthz").json()
        assert rebuilt["cases"] == 3 and rebuilt["generation"] == first["generation"] + 3
    names = collections(settings)
    assert names == {f"{settings.store.collection}.g{rebuilt['generation']}", pointer_name(settings.store.collection)}
    assert {p.name for p in settings.store.store_path.iterdir() if p.is_dir()} <= segments(settings)  # no dropped index left


def _corrupt_a_used_page_mid_file(path) -> None:
    """Overwrite the first page from the middle of the file on that SQLite really uses (free pages hold nothing)."""
    original = path.read_bytes()
    page = 4096
    start = (len(original) // 2) // page * page
    rng = np.random.default_rng(0)
    for offset in range(start, len(original), page):
        damaged = original[:offset] + rng.bytes(page) + original[offset + page:]
        path.write_bytes(damaged)
        conn = sqlite3.connect(str(path))
        try:
            if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                return
        except sqlite3.DatabaseError:
            return
        finally:
            conn.close()
    pytest.fail("no page from the middle on is in use")


def _assert_one_line_naming(text: str, name: str) -> None:
    assert "Traceback" not in text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and name in lines[0] and "rag ingest --rebuild" in lines[0], text


@pytest.mark.e2e  # runs `rag` in child processes (each imports Chroma and probes the store)
def test_a_damaged_sqlite_file_is_named_with_the_fix_by_the_cli_and_the_service(settings, dataset):
    done = rag(settings, "ingest", str(dataset))
    assert done.returncode == 0, done.stderr
    _corrupt_a_used_page_mid_file(settings.store.store_path / SQLITE_NAME)

    cli = rag(settings, "stats")
    assert cli.returncode == 2
    _assert_one_line_naming(cli.stderr + cli.stdout, str(settings.store.store_path / SQLITE_NAME))

    with TestClient(create_app(settings), client=LOCAL) as client:
        for r in (client.get("/healthz"), client.post("/v1/drafts", json={"text": "证书过期了怎么办"})):
            assert r.status_code == 503 and r.headers["content-type"] == "application/json"
            message = r.json()["error"]["message"]
            assert SQLITE_NAME in message and "rag ingest --rebuild" in message
        fixed = rag(settings, "ingest", str(dataset), "--rebuild")
        assert fixed.returncode == 0, fixed.stderr
        assert "moved to" in fixed.stdout + fixed.stderr  # the damaged files are kept, and where is said
        health = client.get("/healthz")
        assert health.status_code == 200 and health.json()["cases"] == 3
        assert client.post("/v1/drafts", json={"text": "证书过期了怎么办"}).status_code == 200


def _big_store(settings, n: int = 1500) -> None:
    """A collection past Chroma's HNSW sync threshold (1000), so its index files are what a reader loads."""
    from rag.store.embed import make_embedder
    from rag.store.chroma import ChunkStore

    store = ChunkStore(settings.store, make_embedder(settings.embedding, cache_dir=settings.store.cache_dir).name)
    vectors = np.random.default_rng(1).normal(size=(n, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store._col.upsert(ids=[f"c{i}" for i in range(n)], embeddings=vectors, documents=["x"] * n,
                      metadatas=[{"case_id": f"{i:016x}", "kind": "case", "source": "synthetic.md"} for i in range(n)])


@pytest.mark.e2e  # runs `rag` in child processes (each imports Chroma and probes the store)
def test_a_damaged_vector_index_is_named_with_the_fix_instead_of_crashing(settings, dataset):
    _big_store(settings)
    check_store(settings.store)  # intact: the probe passes and remembers it
    folder = vector_segment(settings.store.store_path, settings.store.collection)
    data = folder / "data_level0.bin"
    raw = bytearray(data.read_bytes())
    mid = len(raw) // 2
    raw[mid: mid + 65536] = np.random.default_rng(2).bytes(len(raw[mid: mid + 65536]))
    data.write_bytes(bytes(raw))

    with pytest.raises(StoreDamagedError) as info:
        check_store(settings.store)
    assert str(folder) in str(info.value) and "rag ingest --rebuild" in str(info.value)

    cli = rag(settings, "search", "证书过期")
    assert cli.returncode == 2
    _assert_one_line_naming(cli.stderr + cli.stdout, str(folder))

    with TestClient(create_app(settings), client=LOCAL) as client:
        r = client.get("/healthz")
        assert r.status_code == 503 and str(folder) in r.json()["error"]["message"]
        fixed = rag(settings, "ingest", str(dataset), "--rebuild")
        assert fixed.returncode == 0, fixed.stderr
        health = client.get("/healthz")
        assert health.status_code == 200 and health.json()["cases"] == 3
    # The damaged collection was dropped after the switch, and its files with it (Chroma leaves them).
    assert settings.store.collection not in collections(settings) and not folder.exists()


def test_a_vector_a_narrow_search_misses_is_looked_for_again_before_the_store_is_called_damaged(tmp_path):
    """HNSW search is approximate: a healthy index may not return a vector as its own nearest at a narrow breadth
    (the corpus's 805 vectors once did, and a CI run said the store was damaged). The probe looks again, wider."""
    import chromadb
    import numpy as np
    from chromadb.config import Settings as ChromaSettings

    from rag.store.health import DISTANCE_TOLERANCE, unfound

    client = chromadb.PersistentClient(path=str(tmp_path), settings=ChromaSettings(anonymized_telemetry=False))
    col = client.create_collection("narrow", embedding_function=None,
                                   metadata={"hnsw:space": "cosine", "hnsw:search_ef": 1})
    vectors = np.random.default_rng(0).normal(size=(1200, 64)).astype(np.float32)
    ids = [str(i) for i in range(len(vectors))]
    col.add(ids=ids, embeddings=vectors)
    narrow = col.query(query_embeddings=vectors, n_results=1, include=["distances"])["distances"]
    assert sum(d[0] > DISTANCE_TOLERANCE for d in narrow) > 0  # the first look misses some
    assert unfound(col, ids, vectors, len(ids)) == []
    col.delete(ids=ids[:5])  # gone from the index: no search finds them
    assert unfound(col, ids[:10], vectors[:10], col.count()) == ids[:5]
