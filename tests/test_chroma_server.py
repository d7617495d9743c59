"""The server path: the same ingest and retrieval code against a real `chroma run` process on loopback."""

import shutil
from pathlib import Path

import pytest

from rag.configs import EmbeddingConfig, IngestConfig, StoreConfig
from rag.embed import make_embedder
from rag.ingest import ingest
from rag.retrieve import CaseRetriever
from rag.store import ChunkStore

TEST_DATA = Path(__file__).parent / "data"

pytestmark = pytest.mark.server


@pytest.fixture
def served_corpus(tmp_path, make_settings, start_server, free_port, bin_path):
    """A `chroma run` server on loopback, a one-file corpus, and settings and an embedder pointed at the server."""
    port = free_port()
    start_server(
        [bin_path("chroma"), "run", "--path", str(tmp_path / "server-data"), "--host", "127.0.0.1", "--port", str(port)],
        f"http://127.0.0.1:{port}/api/v2/heartbeat",
    )
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(TEST_DATA / "small.md", data / "part1.md")
    s = make_settings(chroma_url=f"http://127.0.0.1:{port}", store_path=tmp_path / "unused")
    e = make_embedder(EmbeddingConfig.from_settings(s))
    return data, s, e


def test_ingest_and_search_through_a_chroma_server(tmp_path, served_corpus):
    data, s, e = served_corpus
    first = ingest([data], IngestConfig.from_settings(s), e)
    again = ingest([data], IngestConfig.from_settings(s), e)
    assert first.added == first.chunks > 0 and again.added == 0
    assert not (tmp_path / "unused" / "chroma.sqlite3").exists()  # nothing went to the embedded store
    store = ChunkStore(StoreConfig.from_settings(s), e.name, create=False)
    hits = CaseRetriever(store, e).retrieve("证书过期了怎么续", k=2).hits
    assert hits[0].title == "证书过期怎么办"


def test_generations_and_a_rebuild_switch_through_a_chroma_server(served_corpus):
    data, s, e = served_corpus
    first = ingest([data], IngestConfig.from_settings(s), e)
    reader = ChunkStore(StoreConfig.from_settings(s), e.name, create=False)  # opened before the rebuild, like a running service's
    assert ingest([data], IngestConfig.from_settings(s), e).generation == first.generation  # nothing changed
    rebuilt = ingest([data], IngestConfig.from_settings(s), e, rebuild=True)
    assert rebuilt.generation == first.generation + 1 == reader.current_generation()
    assert reader.count() == first.chunks  # its collection was dropped: it follows the pointer
    assert reader.active.collection == f"{s.collection}.g{rebuilt.generation}"
