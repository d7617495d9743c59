"""A normal (non-editable) install works from any folder: build the wheel, install it into a fresh virtualenv,
and draft from a temporary folder.

Offline and quick: the wheel is built without build isolation, installed with ``--no-deps --no-index``, and
the fresh virtualenv sees the already-installed dependencies through a ``.pth`` line pointing at this
environment's site-packages (a line in a .pth file only extends sys.path; this environment's editable-install
hook is not run, so ``import rag`` can only find the installed wheel).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from rag.settings import PROJECT_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

IGNORE = shutil.ignore_patterns(".git", ".venv", ".rag", "build", "dist", "*.egg-info", "__pycache__", "test-artifacts",
                                "runs", ".pytest_cache", ".hypothesis", ".mypy_cache", "notebooks")


def _run(args: list, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{args}: exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src") / "project"
    shutil.copytree(PROJECT_ROOT, src, ignore=IGNORE)  # never build inside the checkout (build/, egg-info)
    dist = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index", "-w", dist, src])
    (whl,) = dist.glob("qiniu_support_rag-*.whl")
    return whl


def test_wheel_carries_prompts_corpus_baseline_and_page(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("rag/_bundled/prompts/default/system.md", "rag/_bundled/prompts/default/user.md",
                   "rag/_bundled/prompts/judge.md", "rag/_bundled/data/qiniu_support_tickets_part15.md",
                   "rag/_bundled/data/qiniu_support_tickets_part15.asked.jsonl",
                   "rag/_bundled/baseline.json", "rag/service/static/index.html", "rag/service/static/app.js",
                   "rag/service/static/app.css"):
        assert needed in names, needed
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    requires = [line for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    core = [r for r in requires if "extra ==" not in r]
    assert not any("llama-index" in r or "rouge-chinese" in r for r in core)  # only in extras
    assert any("llama-index-core" in r and 'extra == "llama-index"' in r for r in requires)


def test_installed_wheel_drafts_from_any_folder(wheel, tmp_path, embedding_cache):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    py = venv / "bin" / "python"
    site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    _run([sys.executable, "-m", "pip", "--python", py, "install", "-q", "--no-deps", "--no-index", wheel])

    work = tmp_path / "somewhere"  # not the checkout: nothing of it is on the path
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(HOME=str(tmp_path / "home"), XDG_DATA_HOME=str(tmp_path / "xdg"), ANONYMIZED_TELEMETRY="False",
               PYTHONPATH="")
    where = _run([py, "-c", "import rag, rag.paths as p; print(rag.__file__); print(p.checkout_root())"], cwd=work, env=env)
    rag_file, root = where.stdout.split()
    assert rag_file.startswith(str(site)) and root == "None"
    before = sorted(p.relative_to(site) for p in (site / "rag").rglob("*") if "__pycache__" not in p.parts)

    assert _run([venv / "bin" / "rag", "--version"], cwd=work, env=env).stdout.strip() == "rag 0.1.0"
    paths = _run([py, "-c", "from rag.settings import load_settings as l; s = l(); print(s.store.store_path, s.store.cache_dir, s.service.feedback_db, s.draft.prompts_dir)"],
                 cwd=work, env=env).stdout.split()
    home = tmp_path / "xdg" / "qiniu-support-rag"  # platformdirs' user data dir
    assert paths[:3] == [str(home / "chroma"), str(home / "cache"), str(home / "feedback.sqlite3")]
    assert paths[3] == str(site / "rag" / "_bundled" / "prompts")
    # the session's embedding cache only saves the minute of embedding the corpus again
    r = _run([venv / "bin" / "rag", "draft", "--json", "CDN缓存怎么刷新"], cwd=work, env={**env, "RAG_CACHE_DIR": str(embedding_cache)},
             timeout=600)
    draft = json.loads(r.stdout)
    assert draft["text"].startswith("您好") and draft["citations"] and draft["backend"] == "offline"

    assert (home / "chroma").is_dir()
    after = sorted(p.relative_to(site) for p in (site / "rag").rglob("*") if "__pycache__" not in p.parts)
    assert after == before  # nothing written into site-packages
    assert list(work.iterdir()) == []  # nor into the folder it ran from

    # RAG_HOME moves all user state; the read-only resources still come from the wheel
    env["RAG_HOME"] = str(tmp_path / "elsewhere")
    env["RAG_CACHE_DIR"] = str(embedding_cache)
    r = _run([venv / "bin" / "rag", "search", "--json", "-k", "2", "证书过期"], cwd=work, env=env, timeout=600)
    assert len(json.loads(r.stdout)) == 2 and (tmp_path / "elsewhere" / "chroma").is_dir()
