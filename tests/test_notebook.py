"""The prompt-tuning notebook runs headless, so it never rots."""

import pytest

from rag.settings import PROJECT_ROOT

pytestmark = pytest.mark.e2e


def test_prompt_tuning_notebook_executes(corpus_settings, monkeypatch, tmp_path):
    monkeypatch.setenv("RAG_STORE_PATH", str(corpus_settings.store_path))
    monkeypatch.setenv("RAG_COLLECTION", corpus_settings.collection)
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("RAG_NOTEBOOK_SUBSET", "6")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    path = PROJECT_ROOT / "eval" / "notebooks" / "prompt_tuning.ipynb"
    import nbformat  # here: collection imports this module on every run, and these cost 0.4 s
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = "".join(
        o.get("text", "") + str(o.get("data", {}).get("text/markdown", "")) for c in nb.cells if c.cell_type == "code" for o in c.outputs
    )
    assert "| default |" in outputs and "| concise |" in outputs and "| offline |" in outputs
    assert "Best variant" in outputs
