"""`rag draft` with RAG_SERVICE_URL: the CLI asks a running `rag serve` instead of opening the store."""

import json
import os
import sqlite3
import subprocess
import sys

import httpx
import pytest
import respx
from typer.testing import CliRunner

from rag.cli import app

runner = CliRunner()
URL = "http://127.0.0.1:8799"


@pytest.fixture
def env(cli_env, dataset, monkeypatch, without_index_probe):
    monkeypatch.setenv("RAG_DATA_DIR", str(dataset))
    monkeypatch.setenv("RAG_SERVICE_URL", URL)
    return dataset


def _served(text: str = "您好，证书过期后请重新申请免费证书。") -> dict:
    """A body shaped as the service's DraftResponse (the live test below checks the real one)."""
    return {"draft_id": "d-1", "text": text, "action": "answer", "confidence": 0.9, "verdict": "fits",
            "citations": [{"case_id": "c1", "title": "证书过期怎么办", "product": "CDN", "passage": "p", "score": 0.9,
                           "relation": "source", "match": 0.9, "provenance": None}],
            "links": [], "backend": "offline", "fallback": False, "prompt_id": "offline", "prompt_version": "offline-1",
            "latency_ms": 12.0, "usage": {"prompt_tokens": 0, "completion_tokens": 0}, "removed": [],
            "notes": ["composed from case c1"], "notes_zh": [], "passages": [], "hint": None, "retrieved": ["c1"],
            "product": ""}


@respx.mock
def test_draft_is_asked_of_the_service_with_its_token(env, monkeypatch):
    monkeypatch.setenv("RAG_SERVICE_TOKEN", "s3cret-token-value")
    route = respx.post(f"{URL}/v1/drafts").mock(return_value=httpx.Response(200, json=_served()))
    r = runner.invoke(app, ["draft", "证书过期了怎么重新申请？", "--title", "证书", "--product", "CDN"])
    assert r.exit_code == 0, r.output
    sent = route.calls.last.request
    assert sent.headers["Authorization"] == "Bearer s3cret-token-value"
    assert json.loads(sent.content) == {"text": "证书过期了怎么重新申请？", "title": "证书", "product": "CDN"}
    assert "from the service at http://127.0.0.1:8799" in r.output and "您好，证书过期后" in r.output
    assert "action: answer" in r.output and "证书过期怎么办" in r.output and "CDN" in r.output
    r = runner.invoke(app, ["draft", "--json", "证书过期了怎么重新申请？"])
    assert json.loads(r.stdout)["draft_id"] == "d-1"


@respx.mock
def test_an_error_from_the_service_is_one_line_and_not_hidden(env):
    respx.post(f"{URL}/v1/drafts").mock(return_value=httpx.Response(
        422, json={"error": {"status": 422, "message": "unknown product 'nosuch'; valid values: CDN"}}))
    r = runner.invoke(app, ["draft", "证书过期", "--product", "nosuch"])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "answered 422: unknown product 'nosuch'" in r.output
    respx.post(f"{URL}/v1/drafts").mock(return_value=httpx.Response(200, json={"hello": "world"}))
    r = runner.invoke(app, ["draft", "证书过期"])
    assert r.exit_code == 2 and "without a draft" in r.output


@respx.mock
def test_no_service_listening_drafts_in_process_after_a_note(env):
    respx.post(f"{URL}/v1/drafts").mock(side_effect=httpx.ConnectError("Connection refused"))
    r = runner.invoke(app, ["draft", "--json", "证书过期了怎么重新申请？"])
    assert r.exit_code == 0, r.output
    assert "no service at http://127.0.0.1:8799" in r.stderr and "drafting in this process" in r.stderr
    draft = json.loads(r.stdout)
    assert draft["text"].startswith("您好") and "draft_id" not in draft


@respx.mock
def test_options_a_service_cannot_honour_draft_in_process(env):
    route = respx.post(f"{URL}/v1/drafts").mock(return_value=httpx.Response(200, json=_served()))
    for options in (["--offline"], ["--fallback", "offline"], ["--variant", "small"]):
        r = runner.invoke(app, ["draft", "--json", *options, "证书过期了怎么重新申请？"])
        assert r.exit_code == 0, (options, r.output)
        assert "draft_id" not in json.loads(r.stdout)
    assert not route.called


def test_a_malformed_service_url_names_the_variable(env, monkeypatch):
    monkeypatch.setenv("RAG_SERVICE_URL", "127.0.0.1:8000")
    r = runner.invoke(app, ["draft", "证书过期"])
    assert r.exit_code == 2 and "RAG_SERVICE_URL" in r.output and "Traceback" not in r.output


@pytest.mark.server
def test_a_real_service_answers_the_cli_and_records_the_draft(live_server, monkeypatch):
    url, feedback_db = live_server
    ticket = "证书过期了，网站提示不安全，怎么重新申请免费证书"
    served = subprocess.run([sys.executable, "-m", "rag.cli", "draft", "--json", ticket], capture_output=True,
                            text=True, env={**os.environ, "RAG_SERVICE_URL": url}, timeout=120)
    assert served.returncode == 0, served.stderr
    body = json.loads(served.stdout)
    with sqlite3.connect(feedback_db) as db:  # the service recorded it: feedback can name this draft
        assert db.execute("select count(*) from drafts where id = ?", (body["draft_id"],)).fetchone()[0] == 1
    assert body["text"].startswith("您好") and body["retrieved"] and body["citations"]
    # Every field of the in-process JSON is there, with the same draft (the same store, the same code).
    local = subprocess.run([sys.executable, "-m", "rag.cli", "draft", "--json", ticket],
                           capture_output=True, text=True, timeout=300)
    assert local.returncode == 0, local.stderr
    mine = json.loads(local.stdout)
    assert set(mine) <= set(body)
    assert (mine["text"], mine["retrieved"], mine["action"]) == (body["text"], body["retrieved"], body["action"])
