"""Where defaults point: a checkout's own files, or the wheel's copies and the user's home."""

from pathlib import Path

from rag import paths
from rag.settings import load_settings


def test_a_checkout_uses_its_own_files_and_state_folder(monkeypatch):
    monkeypatch.delenv("RAG_HOME")
    root = paths.checkout_root()
    assert root is not None and (root / "pyproject.toml").is_file()
    s = load_settings()
    assert s.ingest.data_dir == root / "data" and s.draft.prompts_dir == root / "prompts"
    assert s.evaluation.baseline_path == root / "eval" / "baseline.json" and s.store.store_path == root / ".rag" / "chroma"


def test_rag_home_moves_every_piece_of_state(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_HOME", str(tmp_path / "h"))
    s = load_settings()
    assert (s.store.store_path, s.store.cache_dir,
            s.service.feedback_db) == (tmp_path / "h" / "chroma", tmp_path / "h" / "cache",
                                                          tmp_path / "h" / "feedback.sqlite3")
    assert load_settings(store={"store_path": tmp_path / "x"}).store.store_path == tmp_path / "x"  # an explicit path still wins


def test_an_installed_rag_reads_the_wheel_and_its_own_baseline(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "checkout_root", lambda: None)
    monkeypatch.setattr(paths, "bundled", lambda name: Path("/wheel/rag/_bundled") / name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("RAG_HOME")
    d = paths.default_paths()
    assert d.home == tmp_path / "xdg" / "qiniu-support-rag" and d.prompts_dir == Path("/wheel/rag/_bundled/prompts")
    assert d.baseline == Path("/wheel/rag/_bundled/baseline.json")
    d.home.mkdir(parents=True)
    (d.home / "baseline.json").write_text("{}", encoding="utf-8")  # what `rag eval --update-baseline` wrote
    assert paths.default_paths().baseline == d.home / "baseline.json"


def test_the_leave_one_out_store_lives_under_rag_home_not_the_working_folder(tmp_path, monkeypatch):
    from rag.evaluation.retrieval_loo import loo_settings

    monkeypatch.setenv("RAG_HOME", str(tmp_path / "h"))
    monkeypatch.chdir(tmp_path)  # it used to be .rag/eval-loo/chroma relative to wherever the script ran
    s = loo_settings()
    assert s.store.store_path == paths.loo_store(tmp_path / "h") == tmp_path / "h" / "eval-loo" / "chroma"
    assert s.store.collection == "loo" and s.store.cache_dir == tmp_path / "h" / "cache"  # the embedding cache is shared
    monkeypatch.delenv("RAG_HOME")
    assert loo_settings().store.store_path == paths.checkout_root() / ".rag" / "eval-loo" / "chroma"  # as before, from the root


def test_the_local_model_folder(tmp_path, monkeypatch):
    from rag.llm import local as local_llm

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("RAG_HOME")
    monkeypatch.delenv("LOCAL_LLM_DIR", raising=False)
    # shared by every checkout: never a worktree's .rag/, which would hold one 491 MB copy per worktree
    assert local_llm.default_dir() == tmp_path / "xdg" / "qiniu-support-rag" / "local-llm"
    monkeypatch.setenv("RAG_HOME", str(tmp_path / "h"))
    assert local_llm.default_dir() == tmp_path / "h" / "local-llm"
    monkeypatch.setenv("LOCAL_LLM_DIR", str(tmp_path / "models"))
    assert local_llm.default_dir() == paths.local_llm_dir() == tmp_path / "models" / "local-llm"
