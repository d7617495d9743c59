"""Issue 24 item 8: slow clients are cut, each client has a few streams at once, the page sends a CSP.

The deadlines are set to fractions of a second here; what is asserted is behaviour (cut or not, which status),
never a timing. The figures under a real burst come from ``python eval/slow_clients.py``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import socket
import threading
import time
from importlib import resources

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient

from rag.configs import ServiceConfig
from rag.service.security import SecurityMiddleware
from rag.settings import load_settings


def _config(**overrides) -> ServiceConfig:
    return load_settings(service=overrides).service


async def _call(middleware: SecurityMiddleware, scope: dict, messages) -> list[dict]:
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    await middleware(scope, messages, send)
    return sent


def _scope(path: str, client: str = "127.0.0.1") -> dict:
    return {"type": "http", "method": "POST", "path": path, "client": (client, 5000),
            "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"), (b"content-length", b"1000")]}


def test_a_body_sent_a_byte_at_a_time_is_cut_with_408():
    async def app(scope, receive, send):  # never reached
        raise AssertionError("the app ran")

    async def drip():
        await asyncio.sleep(0.1)  # each read is quick; the body as a whole never ends
        return {"type": "http.request", "body": b" ", "more_body": True}

    # bounded here too: without a body deadline the middleware would read 256 KiB a byte at a time (7 hours)
    sent = asyncio.run(asyncio.wait_for(_call(SecurityMiddleware(app, _config(body_timeout=0.5)), _scope("/v1/drafts"), drip), 20))
    assert sent[0]["status"] == 408 and b"RAG_BODY_TIMEOUT" in sent[1]["body"]
    assert (b"connection", b"close") in sent[0]["headers"]


def test_each_client_has_at_most_its_streams_in_flight():
    release = asyncio.Event()
    ran: list[str] = []

    async def app(scope, receive, send):
        ran.append(scope["client"][0])
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def body():
        return {"type": "http.request", "body": b'{"text": "x"}', "more_body": False}

    async def run():
        mw = SecurityMiddleware(app, _config(max_streams_per_client=2))
        first = [asyncio.create_task(_call(mw, _scope("/v1/drafts/stream"), body)) for _ in range(2)]
        await asyncio.sleep(0.05)
        refused = await _call(mw, _scope("/v1/drafts/stream"), body)
        other_client = asyncio.create_task(_call(mw, _scope("/v1/drafts/stream", "10.0.0.9"), body))
        plain = asyncio.create_task(_call(mw, _scope("/v1/drafts"), body))  # the limit is for streams only
        await asyncio.sleep(0.05)
        release.set()
        done = await asyncio.gather(*first, other_client, plain)
        after = await _call(mw, _scope("/v1/drafts/stream"), body)  # the count went back down
        return refused, done, after, mw.streams

    refused, done, after, streams = asyncio.run(asyncio.wait_for(run(), 20))  # unrefused, the third would wait forever
    assert refused[0]["status"] == 429 and (b"retry-after", b"5") in refused[0]["headers"]
    assert b"RAG_MAX_STREAMS_PER_CLIENT" in refused[1]["body"]
    assert [d[0]["status"] for d in done] == [200, 200, 200, 200] and after[0]["status"] == 200
    assert not streams and ran.count("10.0.0.9") == 1


def test_the_page_sends_a_csp_that_allows_only_its_own_script_and_style(tmp_path):
    from rag.service import create_app

    app = create_app(load_settings(service={"feedback_db": tmp_path / "f.sqlite3"}, store={"store_path": tmp_path / "chroma"}))
    r = TestClient(app, base_url="http://127.0.0.1").get("/")  # no lifespan: the page needs no pipeline
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp and "'unsafe-inline'" not in csp
    assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
    html = (resources.files("rag.service") / "static" / "index.html").read_text(encoding="utf-8")
    for kind, inline in re.findall(r"<(script|style)>(.*?)</\1>", html, re.S):
        digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
        assert f"{kind}-src 'sha256-{digest}'" in csp


# -- at the connection: a real uvicorn server on loopback ---------------------------------------------------------

def _serve(app, free_port, **overrides):
    from rag.service.slow_clients import uvicorn_options

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **uvicorn_options(_config(**overrides)))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    return server, thread, port


def _closed_by_server(sock: socket.socket, wait: float) -> bool:
    """True when the server ended the connection within ``wait`` seconds (EOF or reset)."""
    sock.settimeout(wait)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except socket.timeout:
        return False
    except ConnectionError:
        return True


@pytest.mark.server
def test_request_headers_sent_too_slowly_are_cut_at_the_connection(free_port):
    app = FastAPI()
    app.get("/x")(lambda: {"ok": True})
    server, thread, port = _serve(app, free_port, header_timeout=0.5)
    try:
        slow = socket.create_connection(("127.0.0.1", port))
        slow.sendall(b"GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finishes its headers
        assert _closed_by_server(slow, 10)
        # a client that finishes in time is served, and again on the same connection
        ok = socket.create_connection(("127.0.0.1", port))
        ok.settimeout(10)
        for _ in range(2):
            ok.sendall(b"GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            reply = b""
            while b'{"ok":true}' not in reply:
                reply += ok.recv(65536)
            assert reply.startswith(b"HTTP/1.1 200")
        ok.close()
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.mark.server
def test_a_client_that_stops_reading_is_aborted(free_port):
    app = FastAPI()

    @app.get("/big")
    def big() -> StreamingResponse:
        return StreamingResponse((b"x" * 65536 for _ in range(2000)), media_type="text/plain")  # 128 MB

    server, thread, port = _serve(app, free_port, send_timeout=0.5, header_timeout=30)
    try:
        idle = socket.socket()
        idle.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        idle.connect(("127.0.0.1", port))
        idle.sendall(b"GET /big HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        time.sleep(3)  # reads nothing while the server's writes stall
        received = 0
        idle.settimeout(5)
        try:
            while chunk := idle.recv(1 << 20):
                received += len(chunk)
        except ConnectionError:
            pass
        assert received < 64 * 1024 * 1024  # the server gave up long before the 128 MB were sent
    finally:
        server.should_exit = True
        thread.join(10)
