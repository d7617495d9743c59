"""The prompt-tuning notebook: it runs headless from outside the checkout, so it never rots, and the committed copy
carries its outputs, so it reads on GitHub."""

import json
import re

import pytest

from rag.settings import PROJECT_ROOT

NOTEBOOK = PROJECT_ROOT / "eval" / "notebooks" / "prompt_tuning.ipynb"


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)  # on disk, multi-line text is a list of lines


def _outputs(cells) -> str:
    return "".join(_text(o.get("text", "")) + _text(o.get("data", {}).get("text/markdown", ""))
                   for c in cells if c["cell_type"] == "code" for o in c["outputs"])


@pytest.mark.e2e
def test_prompt_tuning_notebook_executes_outside_the_checkout(corpus_settings, monkeypatch, tmp_path):
    monkeypatch.setenv("RAG_STORE_PATH", str(corpus_settings.store.store_path))
    monkeypatch.setenv("RAG_COLLECTION", corpus_settings.store.collection)
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("RAG_NOTEBOOK_SUBSET", "6")
    monkeypatch.setenv("RAG_NOTEBOOK_MODEL", "replay")  # never the local model a developer may have running
    monkeypatch.setenv("MPLBACKEND", "Agg")
    import nbformat  # here: collection imports this module on every run, and these cost 0.4 s
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    # The kernel starts in a folder outside the checkout: the notebook used to walk up from there looking for
    # pyproject.toml, forever once it reached "/".
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = _outputs(nb.cells)
    assert "Drafts written by the REPLAY STAND-IN" in outputs
    assert outputs.count("#### ") == 6  # one side-by-side table per ticket
    for name in ("default", "concise", "edit", "small", "team", "offline"):
        assert outputs.count(f"| {name} | ") >= 6, name
    assert "value (Δ [95% interval])" in outputs and re.search(r"\([+-]\d\.\d{3} \[[+-]\d\.\d{3}, [+-]\d\.\d{3}\]\)", outputs)
    assert "Highest ROUGE-L" in outputs
    runs = tmp_path / "rag-home" / "runs" / "notebook"  # RAG_HOME: user state, not the checkout
    assert {p.name for p in runs.iterdir()} == {"default", "concise", "edit", "small", "team", "offline"}


def test_the_committed_notebook_carries_its_outputs():
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(c["execution_count"] and c["outputs"] for c in code if "".join(c["source"]).strip())
    assert not any(o.get("output_type") == "error" for c in code for o in c["outputs"])
    outputs = _outputs(nb["cells"])
    assert "Drafts written by" in outputs and outputs.count("#### ") >= 4
    assert "value (Δ [95% interval])" in outputs
    assert any("image/png" in o.get("data", {}) for c in code for o in c["outputs"])  # the interval plot
    source = "".join("".join(c["source"]) for c in code)
    assert "pyproject.toml" not in source and "Path.cwd()" not in source  # no search for a checkout
