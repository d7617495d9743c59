"""HTTP posture: Host allow-list, body caps before parsing, invalid Unicode, draft caps, proxy trust.

The app is served with a stand-in pipeline: every refusal here happens before a route runs, which is
the point (a route that ran would need the pipeline and fail differently).
"""

from __future__ import annotations

import asyncio
import json

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from rag.configs import ServiceConfig
from rag.service.security import SecurityMiddleware, uvicorn_proxy_options
from rag.settings import load_settings


def _app(**overrides):
    settings = load_settings(**overrides)
    app = FastAPI()
    app.add_middleware(SecurityMiddleware, config=ServiceConfig.from_settings(settings))

    @app.post("/v1/drafts")
    async def drafts(body: dict) -> dict:
        return {"ok": True, "keys": sorted(body)}

    @app.get("/healthz")
    def health() -> dict:
        return {"status": "ok"}

    return app


@pytest.fixture
def client():
    with TestClient(_app(), base_url="http://127.0.0.1:8000") as c:
        yield c


def test_loopback_names_are_served_and_other_hosts_refused():
    app = _app(allowed_hosts=("127.0.0.1", "localhost", "::1"))
    for base in ("http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000"):
        assert TestClient(app, base_url=base).get("/healthz").status_code == 200, base
    r = TestClient(app, base_url="http://evil.example:8000").get("/healthz")  # DNS rebinding
    assert r.status_code == 400 and r.headers["content-type"] == "application/json"
    assert "RAG_ALLOWED_HOSTS" in r.json()["error"]["message"]


def test_a_declared_oversized_body_is_refused_before_it_is_read():
    app = _app(max_body_bytes=4096)
    received = []

    async def run():
        sent = []

        async def receive():
            received.append(1)
            return {"type": "http.request", "body": b"x" * 1024, "more_body": True}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/v1/drafts", "headers": [
            (b"host", b"127.0.0.1"), (b"content-type", b"application/json"), (b"content-length", str(100 * 1024 * 1024).encode())]}
        await SecurityMiddleware(app, ServiceConfig.from_settings(load_settings(max_body_bytes=4096)))(scope, receive, send)
        return sent

    sent = asyncio.run(run())
    assert sent[0]["status"] == 413 and received == []  # not one byte of the 100 MB was read


def test_a_streamed_body_is_cut_at_the_cap():
    async def run():
        sent, reads = [], []

        async def receive():
            reads.append(1)
            return {"type": "http.request", "body": b"x" * 1024, "more_body": True}  # endless, no length

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/v1/drafts", "headers": [(b"host", b"127.0.0.1")]}
        await SecurityMiddleware(_app(), ServiceConfig.from_settings(load_settings(max_body_bytes=4096)))(scope, receive, send)
        return sent, reads

    sent, reads = asyncio.run(run())
    assert sent[0]["status"] == 413 and len(reads) == 5


def test_lone_surrogate_is_a_400_in_json(client):
    r = client.post("/v1/drafts", content=b'{"text": "\\ud800 hello"}', headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.headers["content-type"] == "application/json"
    assert "surrogate" in r.json()["error"]["message"]
    r = client.post("/v1/drafts", content=b'{"text": "\xff\xfe"}', headers={"content-type": "application/json"})
    assert r.status_code == 400 and "UTF-8" in r.json()["error"]["message"]
    ok = client.post("/v1/drafts", content=json.dumps({"text": "😀 \ud83d\ude00"}).encode(), headers={"content-type": "application/json"})
    assert ok.status_code == 200  # a paired surrogate escape is a valid character


@pytest.mark.parametrize("body,field", [
    ({"text": "x", "title": "标" * 3_000_000}, "title"),
    ({"text": "x", "history": [{"role": "customer", "text": "a"}] * 51}, "history"),
    ({"text": "x", "history": [{"role": "customer", "text": "a" * 5000}] * 10}, "history"),
])
def test_draft_caps_name_the_field(body, field):
    app = _app(max_body_bytes=64 * 1024 * 1024)
    r = TestClient(app, base_url="http://127.0.0.1").post("/v1/drafts", json=body)
    assert r.status_code == 413 and r.json()["error"]["message"].startswith(f"{field}:")


def test_a_3mb_title_is_refused_by_the_default_body_cap(client):
    r = client.post("/v1/drafts", json={"text": "x", "title": "标" * 1_000_000})
    assert r.status_code == 413 and "RAG_MAX_BODY_BYTES" in r.json()["error"]["message"]


def test_proxy_headers_are_trusted_only_when_configured():
    assert uvicorn_proxy_options(ServiceConfig.from_settings(load_settings())) == {"proxy_headers": False, "forwarded_allow_ips": ""}
    opts = uvicorn_proxy_options(ServiceConfig.from_settings(load_settings(trusted_proxies=("10.0.0.5",))))
    assert opts == {"proxy_headers": True, "forwarded_allow_ips": "10.0.0.5"}


def test_forwarded_for_does_not_make_a_remote_client_loopback(tmp_path):
    """Without trusted proxies the app sees the socket peer, whatever X-Forwarded-For claims."""
    from rag.service.deps import authorise
    from starlette.requests import Request

    app = FastAPI()
    app.state.service = ServiceConfig.from_settings(load_settings(feedback_db=tmp_path / "f.sqlite3"))
    scope = {"type": "http", "method": "GET", "path": "/v1/x", "app": app, "client": ("10.1.2.3", 5000),
             "headers": [(b"x-forwarded-for", b"127.0.0.1"), (b"host", b"127.0.0.1")]}
    with pytest.raises(Exception) as exc:
        authorise(Request(scope))
    assert getattr(exc.value, "status_code", None) == 403


def test_docs_page_loads_no_external_script(tmp_path):
    from rag.service import create_app

    app = create_app(load_settings(feedback_db=tmp_path / "f.sqlite3", store_path=tmp_path / "chroma"))
    r = TestClient(app, base_url="http://127.0.0.1").get("/docs")  # no lifespan: the page needs no pipeline
    assert r.status_code == 200 and "<script" not in r.text.lower() and "http" not in r.text.replace("/openapi.json", "")
    assert "/v1/drafts" in r.text and "default-src 'none'" in r.headers["content-security-policy"]
