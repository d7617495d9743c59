"""The LLM path is bounded in time and size whatever the server does.

A tiny misbehaving server on loopback (started by the test) does what respx cannot: a body that
drips one byte at a time, an SSE stream that never ends, a 50 MB reply, a server that never answers.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient

from rag.draft.drafter import Drafter
from rag.notes import LLMFallback
from rag.llm.bounds import LLMDeadlineError, ReplyTooLargeError
from rag.records import Ticket
from rag.service import create_app

# End-to-end: every test drafts over the real corpus (the session's ingested store) and waits out real
# deadlines, ~45 s of wall time that is mostly waiting; the fast tier leaves them to the full run.
pytestmark = pytest.mark.e2e

TICKET = Ticket("证书过期了，怎么重新申请免费证书？", product="CDN")


def _chunk(text: str) -> bytes:
    event = {"id": "s", "object": "chat.completion.chunk", "created": 0, "model": "m",
             "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
    return f"data: {json.dumps(event, ensure_ascii=False)}\n\n".encode()


class Misbehaving(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, drip_seconds: float) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.drip_seconds = drip_seconds
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.active = 0
        self.max_active = 0
        self.requests = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Misbehaving

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        mode = self.path.strip("/").split("/")[0]
        s = self.server
        with s.lock:
            s.active += 1
            s.requests += 1
            s.max_active = max(s.max_active, s.active)
        try:
            getattr(self, f"_{mode.replace('-', '_')}")()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up: what the tests want
        finally:
            with s.lock:
                s.active -= 1

    def _drip(self) -> None:  # a JSON body, one byte every drip_seconds, never complete
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        while not self.server.stop.wait(self.server.drip_seconds):
            self.wfile.write(b" ")
            self.wfile.flush()

    def _sse_forever(self) -> None:  # valid deltas, never a finish_reason or [DONE]
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        while not self.server.stop.wait(0.05):
            self.wfile.write(_chunk("您好，"))
            self.wfile.flush()

    def _huge(self, announce: bool = True) -> None:  # a 50 MB completion
        content = "您好，" + "很" * (50 * 1024 * 1024 // 3)
        body = json.dumps({"id": "c", "object": "chat.completion", "created": 0, "model": "m",
                           "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                        "finish_reason": "stop"}]}, ensure_ascii=False).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        if announce:
            self.send_header("content-length", str(len(body)))
        self.end_headers()
        for i in range(0, len(body), 1 << 16):
            if self.server.stop.is_set():
                return
            self.wfile.write(body[i : i + (1 << 16)])

    def _huge_chunked(self) -> None:
        self._huge(announce=False)

    def _silent(self) -> None:
        self.server.stop.wait(120)


@pytest.fixture
def bad_server():
    server = Misbehaving(drip_seconds=0.5)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.stop.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def make_drafter(corpus_settings, corpus_pipeline, corpus_drafter, bad_server):
    def make(mode: str, **llm) -> Drafter:
        """``llm``: changes to the LLM group (``deadline=2.5``, ``retry={"max_attempts": 10}``)."""
        s = corpus_settings.updated(llm={"base_url": f"{bad_server.url}/{mode}/v1", "model": "m", "deadline": 2.0,
                                         "timeout": 30.0,
                                         "retry": {"max_attempts": 3, "backoff_initial": 0.01, "backoff_max": 0.05}})
        s = s.updated(llm=llm)
        corpus_pipeline.retriever.retrieve(TICKET, k=5)  # indexes built now, so the timings below are the LLM's
        return corpus_drafter(s)

    return make


@pytest.mark.parametrize("mode, streamed", [("drip", False), ("drip", True), ("sse-forever", True), ("silent", False)])
def test_the_deadline_ends_any_reply(make_drafter, mode, streamed):
    drafter = make_drafter(mode)
    shown: list[str] = []
    for timed in (False, True):  # the first call also pays one-time imports and model building
        t0 = time.monotonic()
        with pytest.raises(LLMDeadlineError, match="2 s deadline"):
            drafter.draft(TICKET, on_delta=shown.append if streamed else None)
    assert time.monotonic() - t0 < 3.5  # deadline 2 s + one drip interval + retrieval
    t0 = time.monotonic()
    draft = drafter.draft(TICKET, fallback="offline", on_delta=shown.append if streamed else None)
    assert time.monotonic() - t0 < 3.5
    assert draft.fallback and draft.backend == "offline" and draft.text.startswith("您好")
    assert any(isinstance(n, LLMFallback) and "RAG_LLM_DEADLINE" in n.error for n in draft.notes)


def test_deadline_covers_all_attempts(make_drafter, bad_server):
    # each attempt is cut by its own read timeout (1 s); the 2.5 s deadline stops the third one short
    drafter = make_drafter("silent", deadline=2.5, timeout=1.0, retry={"max_attempts": 10})
    t0 = time.monotonic()
    with pytest.raises(LLMDeadlineError):
        drafter.draft(TICKET)
    assert time.monotonic() - t0 < 4.0
    assert 2 <= bad_server.requests <= 3


@pytest.mark.parametrize("mode", ["huge", "huge-chunked"])
def test_a_huge_reply_is_refused_without_reading_it(make_drafter, bad_server, mode):
    drafter = make_drafter(mode, deadline=30.0)
    t0 = time.monotonic()
    with pytest.raises(ReplyTooLargeError, match="bytes"):
        drafter.draft(TICKET)
    assert time.monotonic() - t0 < 5.0
    assert bad_server.requests == 1  # too large is not transient: never retried
    draft = drafter.draft(TICKET, fallback="offline")
    assert draft.fallback and len(draft.text) < 5000


def test_a_long_stream_is_cut_at_the_reply_cap(make_drafter):
    drafter = make_drafter("sse-forever", deadline=30.0, max_reply_chars=200)
    shown: list[str] = []
    t0 = time.monotonic()
    with pytest.raises(ReplyTooLargeError, match="200 characters"):
        drafter.draft(TICKET, on_delta=shown.append)
    assert time.monotonic() - t0 < 10.0


def test_the_service_keeps_answering_while_every_llm_call_hangs(corpus_settings, bad_server, tmp_path):
    settings = corpus_settings.updated(llm={"base_url": f"{bad_server.url}/drip/v1", "model": "m", "deadline": 4.0,
                                            "retry": {"max_attempts": 1}},
                                       draft={"llm_max_concurrent": 2, "llm_queue_seconds": 0.2},
                                       service={"feedback_db": tmp_path / "feedback.sqlite3"})
    with TestClient(create_app(settings), client=("127.0.0.1", 50000)) as client:
        def post(_):
            t0 = time.monotonic()
            r = client.post("/v1/drafts", json={"text": "证书过期了，怎么重新申请免费证书？"})
            return r, time.monotonic() - t0

        with ThreadPoolExecutor(max_workers=6) as pool:
            futures = [pool.submit(post, n) for n in range(6)]
            time.sleep(1.0)  # the two slots now hang on the dripping server
            t0 = time.monotonic()
            health = client.get("/healthz")
            health_seconds = time.monotonic() - t0
            results = [f.result() for f in futures]
    assert health.status_code == 200 and health_seconds < 1.0
    assert all(r.status_code == 200 and r.json()["fallback"] for r, _ in results)
    busy = [(r, s) for r, s in results if any("slots are busy" in n for n in r.json()["notes"])]
    timed_out = [(r, s) for r, s in results if any("RAG_LLM_DEADLINE" in n for n in r.json()["notes"])]
    assert len(timed_out) == 2 and len(busy) == 4
    assert all(s < 2.5 for _, s in busy)  # offline at once, not after the LLM deadline
    assert bad_server.max_active <= 2

