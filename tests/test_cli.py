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
