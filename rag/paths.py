"""Where things live: the one place that resolves default paths.

Two kinds of files:

- **Read-only resources** (prompts, the sample corpus, the evaluation baseline, the web page). In a source
  checkout the checkout's own ``prompts/``, ``data/`` and ``eval/baseline.json`` win, so editing them takes
  effect at once; an installed wheel carries copies as package data under ``rag/_bundled`` (copied there at
  build time by ``setup.py``), read through ``importlib.resources``.
- **User state** (the Chroma store, caches, the feedback database, the evaluation's scratch stores): under
  ``RAG_HOME`` when set; else in a checkout its ``.rag/`` folder (each checkout keeps its own store, so two
  clones never share a single-writer store); else the platform's user data directory (``platformdirs``),
  never inside site-packages.
- **The local model** (``rag.llm.local``, 491 MB assembled from PyPI packages): ``LOCAL_LLM_DIR`` when set;
  else under ``RAG_HOME`` when set; else the platform's user cache directory, outside any checkout, so every
  worktree shares one copy instead of assembling its own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

APP_NAME = "qiniu-support-rag"
_SOURCE_ROOT = Path(__file__).resolve().parent.parent


def checkout_root() -> Path | None:
    """The source checkout this package runs from, or None when it runs from an installed wheel."""
    root = _SOURCE_ROOT
    if (root / "pyproject.toml").is_file() and (root / "prompts").is_dir() and (root / "rag" / "__init__.py").is_file():
        return root
    return None


def bundled(name: str) -> Path:
    """A resource shipped inside the wheel (``rag/_bundled/<name>``), as a filesystem path.

    Prompts and the corpus are folders, read with ``Path`` APIs downstream; a wheel installed on disk
    always gives a real path here (zip imports are not supported).
    """
    return Path(str(resources.files("rag") / "_bundled" / name))


# Resources whose checkout path differs from their bundled name.
_IN_CHECKOUT = {"baseline.json": "eval/baseline.json", "relevance": "eval/relevance"}


def resource(name: str) -> Path:
    """``prompts``, ``data``, ``baseline.json`` or ``relevance`` (the labels): the checkout's copy when running
    from one, else the bundled one."""
    root = checkout_root()
    if root is not None:
        return root / _IN_CHECKOUT.get(name, name)
    return bundled(name)


def state_home(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("RAG_HOME"):
        return Path(env["RAG_HOME"]).expanduser()
    root = checkout_root()
    if root is not None:
        return root / ".rag"
    from platformdirs import user_data_path

    return user_data_path(APP_NAME, appauthor=False)


def loo_store(home: Path) -> Path:
    """The leave-one-out retrieval evaluation's scratch store (``rag.evaluation.retrieval_loo``, ``eval/fit_match.py``):
    a store of its own, beside the main one, so re-ingesting it never touches what ``rag`` serves."""
    return home / "eval-loo" / "chroma"


def local_llm_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where ``rag.llm.local`` assembles the model and keeps its server's state file."""
    env = os.environ if env is None else env
    if env.get("LOCAL_LLM_DIR"):
        return Path(env["LOCAL_LLM_DIR"]).expanduser() / "local-llm"
    if env.get("RAG_HOME"):
        return Path(env["RAG_HOME"]).expanduser() / "local-llm"
    from platformdirs import user_cache_path

    return user_cache_path(APP_NAME) / "local-llm"


@dataclass(frozen=True)
class DefaultPaths:
    home: Path
    data_dir: Path
    prompts_dir: Path
    baseline: Path
    labels_dir: Path
    store_path: Path
    cache_dir: Path
    feedback_db: Path


def default_paths(home: Path | str | None = None) -> DefaultPaths:
    h = Path(home).expanduser() if home else state_home()
    # An installed rag writes `rag eval --update-baseline` to its home (never site-packages); read it back from there.
    own_baseline = h / "baseline.json"
    return DefaultPaths(
        home=h,
        data_dir=resource("data"),
        prompts_dir=resource("prompts"),
        baseline=own_baseline if checkout_root() is None and own_baseline.is_file() else resource("baseline.json"),
        labels_dir=resource("relevance"),
        store_path=h / "chroma",
        cache_dir=h / "cache",
        feedback_db=h / "feedback.sqlite3",
    )
