"""The one disk cache: values come back as stored, and caches written before it stay readable."""

from __future__ import annotations

import hashlib
import sqlite3

import numpy as np
import pytest

from rag.store.cache import DiskCache, digest
from rag.store.embed import CachedEmbedder


def test_values_round_trip_as_stored(tmp_path):
    c = DiskCache(tmp_path / "c.sqlite3", "t", "v", "BLOB")
    c.put_many([("a", b"\x00\x01"), ("b", "文本")])
    assert c.get_many(["a", "b", "missing", "a"]) == {"a": b"\x00\x01", "b": "文本"}
    c.put("a", b"new")  # a key is replaced, never duplicated
    assert DiskCache(tmp_path / "c.sqlite3", "t", "v").get("a") == b"new"
    assert c.get("missing") is None
    assert c.get_many([f"k{i}" for i in range(1200)]) == {}  # more keys than one SELECT may bind


def test_only_sql_names_reach_the_sql(tmp_path):
    with pytest.raises(ValueError, match="not an SQL name"):
        DiskCache(tmp_path / "c.sqlite3", "t; DROP TABLE x", "v")


def test_digest_separates_its_parts():
    assert digest("ab", "c") != digest("a", "bc")
    assert digest("m", "query", "t") == hashlib.sha256("m\x00query\x00t".encode()).hexdigest()


class _Never:
    name = "model-x"

    def embed(self, texts, kind):
        raise AssertionError(f"embedded again: {texts}")


def test_an_embedding_cache_written_before_this_module_is_read(tmp_path):
    # the schema and key the hand-written cache used: table emb(key, vec), sha256(name NUL kind NUL text)
    vec = np.array([0.6, 0.8], dtype=np.float32)
    db = sqlite3.connect(tmp_path / "embeddings.sqlite3")
    db.execute("CREATE TABLE emb (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")
    db.execute("INSERT INTO emb VALUES (?, ?)", (hashlib.sha256("model-x\x00query\x00证书".encode()).hexdigest(), vec.tobytes()))
    db.commit()
    db.close()
    assert np.allclose(CachedEmbedder(_Never(), tmp_path).embed(["证书"], "query"), [vec])
