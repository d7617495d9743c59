"""Where defaults point: a checkout's own files, or the wheel's copies and the user's home."""

from pathlib import Path

from rag import paths
from rag.settings import load_settings


def test_a_checkout_uses_its_own_files_and_state_folder(monkeypatch):
    monkeypatch.delenv("RAG_HOME")
    root = paths.checkout_root()
    assert root is not None and (root / "pyproject.toml").is_file()
    s = load_settings()
    assert s.data_dir == root / "data" and s.prompts_dir == root / "prompts"
    assert s.baseline_path == root / "eval" / "baseline.json" and s.store_path == root / ".rag" / "chroma"


def test_rag_home_moves_every_piece_of_state(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_HOME", str(tmp_path / "h"))
    s = load_settings()
    assert (s.store_path, s.cache_dir, s.feedback_db) == (tmp_path / "h" / "chroma", tmp_path / "h" / "cache",
                                                          tmp_path / "h" / "feedback.sqlite3")
    assert load_settings(store_path=tmp_path / "x").store_path == tmp_path / "x"  # an explicit path still wins


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
