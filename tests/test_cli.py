"""The CLI as a user runs it: real commands on a temporary store."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from rag.cli import app

from conftest import TEST_DATA

runner = CliRunner()


@pytest.fixture
def env(tmp_path, embedding_cache, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(TEST_DATA / "small.md", data / "part1.md")
    monkeypatch.setenv("RAG_STORE_PATH", str(tmp_path / "chroma"))
    monkeypatch.setenv("RAG_CACHE_DIR", str(embedding_cache))
    monkeypatch.setenv("RAG_DATA_DIR", str(data))
    return data


def test_ingest_stats_search(env):
    r = runner.invoke(app, ["ingest", str(env)])
    assert r.exit_code == 0, r.output
    assert "cases" in r.output and "chunks" in r.output and "seconds" in r.output
    r = runner.invoke(app, ["stats"])
    assert r.exit_code == 0 and "刷新缓存问题" in r.output and "3 cases" in r.output
    r = runner.invoke(app, ["search", "证书过期", "-k", "2", "--json"])
    hits = json.loads(r.stdout)
    assert r.exit_code == 0 and hits[0]["title"] == "证书过期怎么办" and len(hits) == 2
    r = runner.invoke(app, ["search", "证书过期", "--product", "账户与财务", "--json"])
    assert {h["product"] for h in json.loads(r.stdout)} == {"账户与财务"}


def test_draft_ingests_on_first_use_and_prints_json(env):
    r = runner.invoke(app, ["draft", "--json", "证书过期了怎么重新申请？"])
    assert r.exit_code == 0, r.output
    draft = json.loads(r.stdout)
    assert draft["text"].startswith("您好") and draft["action"] in ("answer", "ask_for_info", "escalate")
    assert draft["citations"] and draft["backend"] == "offline"


def test_draft_from_file_and_stdin(env, tmp_path):
    f = tmp_path / "ticket.txt"
    f.write_text("CDN 刷新缓存多久生效", encoding="utf-8")
    r = runner.invoke(app, ["draft", "--file", str(f)])
    assert r.exit_code == 0 and "action:" in r.output and "cited cases" in r.output
    r = runner.invoke(app, ["draft", "--json"], input="怎么开发票")
    assert r.exit_code == 0 and json.loads(r.stdout)["text"]


def test_bad_input_is_one_clear_line(env, tmp_path):
    bad = tmp_path / "bad.md"
    bad.write_text("---\n## 标题\n**问题分类**: CDN｜证书问题\n### 问题描述\nx\n### 客服解答\n**经理**：hi\n---\n", encoding="utf-8")
    r = runner.invoke(app, ["ingest", "--strict", str(bad)])
    assert r.exit_code == 2
    assert "bad.md:7: unknown role" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["ingest", str(bad)])
    assert r.exit_code == 0 and "skipped" in r.output
    r = runner.invoke(app, ["draft", "--json", "   "])
    assert r.exit_code == 2 and "empty" in r.output
    r = runner.invoke(app, ["draft", "--file", str(tmp_path / "missing.txt")])
    assert r.exit_code == 2 and "cannot read ticket file" in r.output


def test_bad_settings_name_the_field(env, monkeypatch):
    monkeypatch.setenv("RAG_TOP_K", "many")
    r = runner.invoke(app, ["stats"])
    assert r.exit_code == 2 and "top_k" in r.output and "Traceback" not in r.output


def test_eval_update_baseline_gate_and_compare(env, tmp_path, monkeypatch):
    from rag.evaluation import baseline as gate

    monkeypatch.setattr(gate, "BASELINE", tmp_path / "baseline.json")
    runs = tmp_path / "runs"
    r = runner.invoke(app, ["eval", "--out", str(runs), "--update-baseline"])
    assert r.exit_code == 0, r.output
    assert "rouge_l" in r.output and "baseline written" in r.output
    saved = json.loads((tmp_path / "baseline.json").read_text(encoding="utf-8"))
    assert saved["backend"] == "offline" and saved["cases"] == 3 and "rouge_l" in saved["metrics"]
    r = runner.invoke(app, ["eval", "--out", str(runs), "--gate"])
    assert r.exit_code == 0 and "gate passed" in r.output
    saved["metrics"]["rouge_l"] = 0.99
    (tmp_path / "baseline.json").write_text(json.dumps(saved), encoding="utf-8")
    r = runner.invoke(app, ["eval", "--out", str(runs), "--gate"])
    assert r.exit_code == 1 and "rouge_l" in r.output
    r = runner.invoke(app, ["eval", "--out", str(runs), "--limit", "2", "--update-baseline"])
    assert r.exit_code == 2 and "every case" in r.output
    a, b = sorted(p for p in runs.iterdir() if p.is_dir())[:2]
    r = runner.invoke(app, ["eval", "compare", str(a), str(b), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["common_cases"] == 3
    r = runner.invoke(app, ["eval", "compare", str(a), str(tmp_path)])
    assert r.exit_code == 2 and "not an evaluation run folder" in r.output


def test_draft_streams_from_an_llm(env, monkeypatch):
    import httpx
    import respx

    from test_llm_draft import sse

    monkeypatch.setenv("RAG_LLM_BASE_URL", "http://llm.test/v1")
    monkeypatch.setenv("RAG_LLM_MODEL", "m")
    with respx.mock() as mock:
        route = mock.post("http://llm.test/v1/chat/completions").mock(return_value=httpx.Response(
            200, headers={"content-type": "text/event-stream"},
            content=sse("ACTION: answer\n", "您好，免费证书申请：", "https://portal.qiniu.com/certificate/apply")))
        r = runner.invoke(app, ["draft", "证书过期了怎么办"])
    assert r.exit_code == 0, r.output
    assert route.called and "draft (streaming)" in r.output and "final draft" in r.output
    assert "backend: llm:m" in r.output


def test_draft_llm_failure_without_and_with_fallback(env, monkeypatch):
    import httpx
    import respx

    monkeypatch.setenv("RAG_LLM_BASE_URL", "http://llm.test/v1")
    monkeypatch.setenv("RAG_LLM_MODEL", "m")
    monkeypatch.setenv("RAG_LLM_MAX_ATTEMPTS", "1")
    with respx.mock() as mock:
        mock.post("http://llm.test/v1/chat/completions").mock(return_value=httpx.Response(500, json={"error": {"message": "down"}}))
        r = runner.invoke(app, ["draft", "--no-stream", "证书过期了怎么办"])
        assert r.exit_code == 2 and "HTTP 500" in r.output and "Traceback" not in r.output
        r = runner.invoke(app, ["draft", "--no-stream", "--fallback", "offline", "证书过期了怎么办"])
    assert r.exit_code == 0 and "offline fallback" in r.output


def test_markup_like_text_is_printed_literally(env):
    r = runner.invoke(app, ["draft", "[/bold] 证书过期 [red]怎么办"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["search", "[/bold] [域名管理]"])
    assert r.exit_code == 0, r.output


def test_bad_collection_name_is_reported_before_chroma_sees_it(env, monkeypatch):
    monkeypatch.setenv("RAG_COLLECTION", "x")
    r = runner.invoke(app, ["stats"])
    assert r.exit_code == 2 and "RAG_COLLECTION" in r.output and "[a-zA-Z0-9._-]" in r.output
