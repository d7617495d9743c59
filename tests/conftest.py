"""Shared fixtures.

The network is blocked for every test except loopback (``--allow-hosts`` in pyproject, from
pytest-socket), so a hidden download fails here instead of hanging on a user's machine. Each test
gets its own store and settings; the embedding cache is shared by the session and kept between runs,
so the real corpus is embedded once.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from typing import TYPE_CHECKING, Callable

import httpx
import pytest

from rag.settings import PROJECT_ROOT, Settings, load_settings

if TYPE_CHECKING:
    from rag.draft.drafter import Drafter
    from rag.pipeline import Pipeline

DATA_DIR = PROJECT_ROOT / "data"
CORPUS = DATA_DIR / "qiniu_support_tickets_part15.md"
TEST_DATA = Path(__file__).parent / "data"

for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(var, "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


TEST_HOSTS = '["127.0.0.1", "localhost", "::1", "testserver"]'


# Tests run on two xdist workers (`-n auto --dist loadgroup` in pyproject), and each worker builds its own
# session and module fixtures. Tests that share an expensive one are kept on one worker, so it is built once:
# the corpus ingest (349 chunks; ~28 s of embedding on a cold cache) and the real local model's server
# (which reads the corpus settings), the wheel built and installed by test_install.py, and the PostgreSQL server
# the `postgres` tests share (each test gets its own database on it). The 1.5B model's test joins the local
# model's worker so that the two models never generate at once on two cores.
_SHARED_BUILDS = {"corpus_settings": "corpus", "local_server": "corpus", "local_model_1_5b": "corpus", "wheel": "wheel",
                  "postgres_server": "postgres"}


@pytest.hookimpl(tryfirst=True)  # before xdist's worker reads the marks to group the tests
def pytest_collection_modifyitems(config, items):
    for item in items:
        group = next((g for name, g in _SHARED_BUILDS.items() if name in item.fixturenames), None)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session", autouse=True)
def _testclient_host():
    """Starlette's TestClient sends Host: testserver; session settings are built before per-test env."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAG_ALLOWED_HOSTS", TEST_HOSTS)
        yield


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No RAG_* variable of the developer's shell leaks into a test, and no test writes the checkout's .rag/."""
    for key in list(os.environ):
        if key.startswith("RAG_"):
            monkeypatch.delenv(key)
    # Starlette's TestClient sends Host: testserver; the Host allow-list has its own tests.
    monkeypatch.setenv("RAG_ALLOWED_HOSTS", TEST_HOSTS)
    monkeypatch.setenv("RAG_HOME", str(tmp_path / "rag-home"))


@pytest.fixture(scope="session")
def embedding_cache(request, tmp_path_factory) -> Path:
    """Kept between runs in pytest's cache folder (.pytest_cache/d/): the cache is keyed by model and exact
    text, so a reused vector is the vector the model gives, and a rerun does not embed the corpus again
    (its 349 chunks were ~20 s of a fast-tier run's CPU). `pytest --cache-clear` or `-p no:cacheprovider`
    starts from an empty one."""
    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    return cache.mkdir("embedding-cache") if cache is not None else tmp_path_factory.mktemp("embedding-cache")


@pytest.fixture
def make_settings(tmp_path, embedding_cache):
    def make(**overrides) -> Settings:
        store = {"store_path": tmp_path / "chroma", "cache_dir": embedding_cache, "collection": "test",
                 **overrides.pop("store", {})}
        return load_settings(store=store, **overrides)

    return make



@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server (initdb + pg_ctl) in a temporary folder on a free loopback port, for the session."""
    from rag.evaluation.postgres_server import PostgresUnavailable, TemporaryPostgres

    try:
        server = TemporaryPostgres(fsync=False)  # thrown away after the session
    except PostgresUnavailable as exc:
        pytest.fail(f"{exc} (scripts/test.sh installs it)")
    yield server
    server.close()


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A new, empty (unmigrated) database on the session's server, with the password in its URL."""
    import uuid

    return postgres_server.create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def without_index_probe(monkeypatch):
    """Skips the vector-index probe's child process; the SQLite check still runs.

    Every new or changed store starts a child interpreter that imports Chroma and queries the index
    (rag/store/health.py; it survives a reader that crashes): 1.6-2 s of CPU each time, two or three
    times per CLI test. The modules that opt in (``pytestmark``) test other things on healthy stores;
    the probe itself, healthy and damaged, is tested in tests/test_store_reload.py (``e2e``)."""
    import rag.store.health

    monkeypatch.setattr(rag.store.health, "_run_probe", lambda config: None)

@pytest.fixture
def dataset(tmp_path) -> Path:
    """A data folder holding one small dataset file (tests/data/small.md as part1.md)."""
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(Path(__file__).parent / "data" / "small.md", folder / "part1.md")
    return folder


@pytest.fixture
def cli_env(tmp_path, embedding_cache, monkeypatch) -> None:
    """What a CLI command reads from the environment besides RAG_HOME: a store under tmp_path and the
    session's embedding cache (commands build their settings themselves)."""
    monkeypatch.setenv("RAG_STORE_PATH", str(tmp_path / "chroma"))
    monkeypatch.setenv("RAG_CACHE_DIR", str(embedding_cache))


@pytest.fixture(scope="session")
def corpus_settings(tmp_path_factory, embedding_cache) -> Settings:
    root = tmp_path_factory.mktemp("corpus-store")
    return load_settings(home=root, store={"store_path": root / "chroma", "cache_dir": embedding_cache, "collection": "corpus"},
                         ingest={"data_dir": DATA_DIR})


@pytest.fixture(scope="session")
def corpus_pipeline(corpus_settings) -> Pipeline:
    """The real corpus, ingested once for the session; treat it as read-only."""
    from rag.pipeline import Pipeline  # here, not at the top: xdist's controller process runs no test (1.5 s)

    p = Pipeline(corpus_settings)
    p.ensure_ingested()
    return p


@pytest.fixture
def corpus_drafter(corpus_pipeline) -> Callable[[Settings], Drafter]:
    """A drafter over the session's corpus for settings a test changed (an LLM endpoint, its bounds, the prompt),
    built by the one factory, ``Pipeline.make_drafter``, with those settings' draft group, LLM deadline and client."""
    from rag.llm.client import LLMClient

    def make(settings: Settings) -> Drafter:
        llm = LLMClient(settings.llm, http_client=httpx.Client()) if settings.llm.configured else None
        return corpus_pipeline.make_drafter(settings=settings, llm=llm, offline=llm is None)

    return make


def _sse_body(*chunks: str, finish: bool = True) -> bytes:
    """An OpenAI chat-completions stream carrying ``chunks`` as deltas (cut before the finish when not ``finish``)."""
    events = []
    for text in chunks:
        events.append({"id": "s", "object": "chat.completion.chunk", "created": 0, "model": "qwen-test",
                       "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]})
    if finish:
        events.append({"id": "s", "object": "chat.completion.chunk", "created": 0, "model": "qwen-test",
                       "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    body = "".join(f"data: {json.dumps(e, ensure_ascii=False)}\n\n" for e in events)
    return (body + ("data: [DONE]\n\n" if finish else "")).encode()


@pytest.fixture
def sse() -> Callable[..., bytes]:
    """Builds an SSE body for respx: ``sse("ACTION: answer\\n", "您好，…", finish=True)``."""
    return _sse_body


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def free_port() -> Callable[[], int]:
    """A function returning a free loopback port."""
    return _free_port


def _bin_path(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed in this environment")
    return found


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            pytest.fail(f"server exited early ({proc.returncode}): {out[-2000:]}")
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail(f"server at {url} did not come up in {timeout}s")


@pytest.fixture
def bin_path() -> Callable[[str], str]:
    """A function returning the path of a console script of this environment (fails the test if missing)."""
    return _bin_path


@pytest.fixture
def start_server():
    procs: list[subprocess.Popen] = []

    def start(args: list[str], health_url: str, timeout: float = 90.0) -> subprocess.Popen:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "ANONYMIZED_TELEMETRY": "False"})
        procs.append(proc)
        wait_http(health_url, proc, timeout)
        return proc

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def live_server(tmp_path, embedding_cache, start_server, monkeypatch):
    """A real `rag serve` process on a loopback port, with its own store and feedback database."""
    port = _free_port()
    env = {"RAG_STORE_PATH": str(tmp_path / "chroma"), "RAG_CACHE_DIR": str(embedding_cache),
           "RAG_DATA_DIR": str(DATA_DIR), "RAG_FEEDBACK_DB": str(tmp_path / "feedback.sqlite3")}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    start_server([sys.executable, "-m", "rag.cli", "serve", "--port", str(port)], f"http://127.0.0.1:{port}/healthz", timeout=180)
    return f"http://127.0.0.1:{port}", tmp_path / "feedback.sqlite3"


