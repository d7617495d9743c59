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

from rag.service.security import SecurityMiddleware, uvicorn_proxy_options
from rag.settings import load_settings


def _app(**service):
    settings = load_settings(service=service)
    app = FastAPI()
    app.add_middleware(SecurityMiddleware, config=settings.service)

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
        await SecurityMiddleware(app, load_settings(service={"max_body_bytes": 4096}).service)(scope, receive, send)
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
        await SecurityMiddleware(_app(), load_settings(service={"max_body_bytes": 4096}).service)(scope, receive, send)
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
    assert uvicorn_proxy_options(load_settings().service) == {"proxy_headers": False, "forwarded_allow_ips": ""}
    opts = uvicorn_proxy_options(load_settings(service={"trusted_proxies": ("10.0.0.5",)}).service)
    assert opts == {"proxy_headers": True, "forwarded_allow_ips": "10.0.0.5"}


def test_forwarded_for_does_not_make_a_remote_client_loopback(tmp_path):
    """Without trusted proxies the app sees the socket peer, whatever X-Forwarded-For claims."""
    from rag.service.deps import authorise
    from starlette.requests import Request

    app = FastAPI()
    app.state.service = load_settings(service={"feedback_db": tmp_path / "f.sqlite3"}).service
    scope = {"type": "http", "method": "GET", "path": "/v1/x", "app": app, "client": ("10.1.2.3", 5000),
             "headers": [(b"x-forwarded-for", b"127.0.0.1"), (b"host", b"127.0.0.1")]}
    with pytest.raises(Exception) as exc:
        authorise(Request(scope))
    assert getattr(exc.value, "status_code", None) == 403


def test_docs_page_loads_no_external_script(tmp_path):
    from rag.service import create_app

    app = create_app(load_settings(service={"feedback_db": tmp_path / "f.sqlite3"},
                                   store={"store_path": tmp_path / "chroma"}))
    r = TestClient(app, base_url="http://127.0.0.1").get("/docs")  # no lifespan: the page needs no pipeline
    assert r.status_code == 200 and "<script" not in r.text.lower() and "http" not in r.text.replace("/openapi.json", "")
    assert "/v1/drafts" in r.text and "default-src 'none'" in r.headers["content-security-policy"]


# -- Issue 24: every body is checked whatever its Content-Type spelling, or refused ---------------------------

# FastAPI parses each of these as JSON, so the middleware must check each (it once skipped all but the
# lowercase spellings). Everything else, no header included (None: FastAPI 0.165 reads none as JSON), is 415.
JSON_SPELLINGS = ["application/json", "application/JSON", "Application/Json; charset=UTF-8", "APPLICATION/JSON",
                  "application/problem+json"]
NOT_JSON = ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
            "application/xml", None]


def _post(app, body: bytes, content_type: str | None):
    headers = {"content-type": content_type} if content_type is not None else {}
    return TestClient(app, base_url="http://127.0.0.1").post("/v1/drafts", content=body, headers=headers)


CHECKS = [
    ("lone surrogate", b'{"text": "\\ud800 hello"}', 400, "surrogate"),
    ("invalid UTF-8", b'{"text": "\xff\xfe"}', 400, "UTF-8"),
    ("title cap", json.dumps({"text": "x", "title": "标" * 301}).encode(), 413, "title:"),
    ("history turns cap", json.dumps({"text": "x", "history": [{"role": "customer", "text": "a"}] * 50}).encode(), 413, "history:"),
    ("history characters cap", json.dumps({"text": "x", "history": [{"role": "customer", "text": "a" * 5000}] * 4}).encode(), 413, "history:"),
    ("body cap", json.dumps({"text": "x" * 300_000}).encode(), 413, "RAG_MAX_BODY_BYTES"),
]


@pytest.mark.parametrize("content_type", JSON_SPELLINGS)
@pytest.mark.parametrize("name,body,status,message", CHECKS, ids=[c[0] for c in CHECKS])
def test_every_cap_and_check_holds_under_every_json_spelling(name, body, status, message, content_type):
    r = _post(_app(), body, content_type)
    assert r.status_code == status and r.headers["content-type"] == "application/json", (r.status_code, r.text[:200])
    assert message in r.json()["error"]["message"]


@pytest.mark.parametrize("content_type", NOT_JSON, ids=lambda c: c or "no header")
@pytest.mark.parametrize("name,body,status,message", CHECKS, ids=[c[0] for c in CHECKS])
def test_a_body_that_is_not_json_is_refused_with_415_whatever_it_holds(name, body, status, message, content_type):
    r = _post(_app(), body, content_type)
    if name == "body cap":  # the declared length is refused before the media type is even read
        assert r.status_code == 413
        return
    assert r.status_code == 415 and "application/json" in r.json()["error"]["message"], r.text[:200]


def test_a_post_without_a_body_or_a_header_reaches_the_route():
    r = TestClient(_app(), base_url="http://127.0.0.1").post("/v1/drafts")
    assert r.status_code == 422  # FastAPI's own "body: field required", not a 415 for a body never sent


@pytest.mark.parametrize("content_type", JSON_SPELLINGS)
def test_a_valid_body_passes_under_every_json_spelling(content_type):
    r = _post(_app(), json.dumps({"text": "证书过期了", "title": "t"}).encode(), content_type)
    assert r.status_code == 200 and r.json()["keys"] == ["text", "title"]
