"""The server path: the same ingest and retrieval code against a real `chroma run` process on loopback."""

import shutil
from pathlib import Path

import pytest

from rag.store.embed import make_embedder
from rag.store.ingest import ingest
from rag.pipeline import build_retriever
from rag.store.cases import CaseRepository
from rag.store.chroma import ChunkStore

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
    s = make_settings(store={"chroma_url": f"http://127.0.0.1:{port}", "store_path": tmp_path / "unused"})
    e = make_embedder(s.embedding, cache_dir=s.store.cache_dir)
    return data, s, e


def test_ingest_and_search_through_a_chroma_server(tmp_path, served_corpus):
    data, s, e = served_corpus
    first = ingest([data], s.ingest, s.store, e, batch_size=s.embedding.batch_size)
    again = ingest([data], s.ingest, s.store, e, batch_size=s.embedding.batch_size)
    assert first.added == first.chunks > 0 and again.added == 0
    assert not (tmp_path / "unused" / "chroma.sqlite3").exists()  # nothing went to the embedded store
    store = ChunkStore(s.store, e.name, create=False)
    hits = build_retriever(CaseRepository.from_store(store), store, e).retrieve("证书过期了怎么续", k=2).hits
    assert hits[0].title == "证书过期怎么办"


def test_generations_and_a_rebuild_switch_through_a_chroma_server(served_corpus):
    data, s, e = served_corpus
    first = ingest([data], s.ingest, s.store, e, batch_size=s.embedding.batch_size)
    reader = ChunkStore(s.store, e.name, create=False)  # opened before the rebuild, like a running service's
    assert ingest([data], s.ingest, s.store, e,
                  batch_size=s.embedding.batch_size).generation == first.generation  # nothing changed
    rebuilt = ingest([data], s.ingest, s.store, e, batch_size=s.embedding.batch_size, rebuild=True)
    assert rebuilt.generation == first.generation + 1 == reader.current_generation()
    assert reader.count() == first.chunks  # its collection was dropped: it follows the pointer
    assert reader.active.collection == f"{s.store.collection}.g{rebuilt.generation}"


def test_a_read_failing_mid_drop_on_a_server_follows_the_moved_pointer(served_corpus):
    """Under load, a query on the collection a rebuild is dropping got ChromaError('Missing field: [Missing metadata
    segment]') from the server, not NotFoundError, and the replica answered 500: a moved pointer now means reopen."""
    from chromadb.errors import ChromaError

    data, s, e = served_corpus
    first = ingest([data], s.ingest, s.store, e, batch_size=s.embedding.batch_size)
    reader = ChunkStore(s.store, e.name, create=False)
    ingest([data], s.ingest, s.store, e, batch_size=s.embedding.batch_size, rebuild=True)
    calls = []

    def read():
        calls.append(reader.active.collection)
        if len(calls) == 1:
            raise ChromaError("Missing field: [Missing metadata segment]")
        return reader._col.count()

    assert reader._follow(read) == first.chunks
    assert calls == [s.store.collection, f"{s.store.collection}.g{first.generation + 1}"]
    with pytest.raises(ChromaError):  # the same error with the pointer where it was is not a drop
        reader._follow(lambda: (_ for _ in ()).throw(ChromaError("Missing field: [Missing metadata segment]")))
