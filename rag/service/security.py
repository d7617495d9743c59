"""HTTP protections that run before FastAPI reads a request: one ASGI middleware.

- Host allow-list (``RAG_ALLOWED_HOSTS``, loopback names by default): a page on another site that
  rebinds its DNS name to 127.0.0.1 sends its own Host header and is refused (400).
- Raw body cap (``RAG_MAX_BODY_BYTES``): a declared ``Content-Length`` over the cap is refused before
  a byte is read; a body without one is counted as it streams and cut at the cap (413). A 100 MB body
  is never held in memory.
- Content-Type: a body is JSON to FastAPI whatever the header's spelling (``application/JSON``,
  ``Application/Json; charset=utf-8``, ``application/problem+json``), so every such body is checked
  below; any other media type (``text/plain``, a form) and a body without the header (FastAPI 0.165
  reads none as JSON: it would be a puzzling 422) are refused with 415 before the body is read. (Issue 24: the checks once ran only when the header held a lowercase "json", and FastAPI parsed
  ``application/JSON`` bodies unchecked.) ``text/plain`` is also what a cross-site page can post without
  a preflight, so refusing it closes that door too.
- Invalid Unicode: a body that is not UTF-8, or JSON whose strings hold lone surrogates (``\\ud800``),
  is a 400 in JSON, not a 500 in text/plain.
- Draft caps, enforced on the raw JSON before the model is built: title length
  (``RAG_MAX_TITLE_CHARS``), history turns and total characters (``RAG_MAX_HISTORY_TURNS``,
  ``RAG_MAX_HISTORY_CHARS``), each a 413 naming the field. The draft routes check them again on the
  parsed model (``draft_caps_problem``), so an app mounted without this middleware keeps them.

- Slow clients (issue 24): the whole body must arrive within ``RAG_BODY_TIMEOUT`` seconds (a body sent a
  byte at a time is cut with 408), and each client address has at most ``RAG_MAX_STREAMS_PER_CLIENT``
  streamed drafts in flight (429 with ``Retry-After`` beyond). Headers and unread responses are bounded at
  the connection (``rag.service.slow_clients``).

Proxy headers are trusted only from ``RAG_TRUSTED_PROXIES`` (empty by default): ``rag serve`` passes
that list to uvicorn as ``forwarded_allow_ips``, so the peer the loopback-only check sees is the real
socket peer unless a configured proxy vouches for another.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any, Awaitable, Callable

from rag.configs import ServiceConfig

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class _TooLarge(Exception):
    pass


class _TooSlow(Exception):
    pass


STREAM_PATH = "/v1/drafts/stream"


def _host_name(header: str) -> str:
    header = header.strip().lower()
    if header.startswith("["):  # [::1]:8000
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def uvicorn_proxy_options(config: ServiceConfig) -> dict[str, Any]:
    """uvicorn's proxy-header options: none trusted unless configured."""
    trusted = list(config.trusted_proxies)
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": ",".join(trusted) if trusted else ""}


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


def json_media_type(content_type: str | None) -> bool:
    """True when FastAPI reads the body as JSON: a JSON media type in any letter case."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def draft_caps_problem(body: Any, config: ServiceConfig) -> str | None:
    """The first cap a draft request breaks, named by field, or None."""
    if not isinstance(body, dict):
        return None
    title = body.get("title")
    if isinstance(title, str) and len(title) > config.max_title_chars:
        return f"title: {len(title)} characters; the limit is {config.max_title_chars} (RAG_MAX_TITLE_CHARS)"
    history = body.get("history")
    if isinstance(history, list):
        if len(history) > config.max_history_turns:
            return f"history: {len(history)} turns; the limit is {config.max_history_turns} (RAG_MAX_HISTORY_TURNS)"
        total = sum(len(t.get("text", "")) for t in history if isinstance(t, dict) and isinstance(t.get("text"), str))
        if total > config.max_history_chars:
            return f"history: {total} characters in all; the limit is {config.max_history_chars} (RAG_MAX_HISTORY_CHARS)"
    return None


class SecurityMiddleware:
    def __init__(self, app, config: ServiceConfig) -> None:
        self.app = app
        self.config = config
        self.allowed_hosts = {h.lower().strip("[]") for h in config.allowed_hosts}
        self.streams: Counter[str] = Counter()  # streamed drafts in flight, by client address (one event loop)

    async def _reply(self, send: Send, status: int, message: str, headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        body = json.dumps({"error": {"status": status, "message": message}}, ensure_ascii=False).encode("utf-8")
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                *headers]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = _host_name(headers.get("host", ""))
        if "*" not in self.allowed_hosts and host not in self.allowed_hosts:
            await self._reply(send, 400, f"host {host!r} is not served; allowed: {', '.join(sorted(self.allowed_hosts))} (RAG_ALLOWED_HOSTS)")
            return
        if scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        cap = self.config.max_body_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            await self._reply(send, 413, f"body: {declared} bytes; the limit is {cap} (RAG_MAX_BODY_BYTES)")
            return
        content_type = headers.get("content-type")
        if not json_media_type(content_type) and (content_type or declared not in ("", "0")):
            shown = f"Content-Type {content_type[:80]!r} is not JSON" if content_type else "no Content-Type"
            await self._reply(send, 415, f"body: {shown}; send application/json")
            return
        try:
            body = await self._read(receive, cap, self.config.body_timeout)
        except _TooLarge:
            await self._reply(send, 413, f"body: more than {cap} bytes; the limit is {cap} (RAG_MAX_BODY_BYTES)")
            return
        except _TooSlow:
            await self._reply(send, 408, f"body: not received within {self.config.body_timeout:g} s (RAG_BODY_TIMEOUT)",
                              ((b"connection", b"close"),))
            return
        if body:  # JSON whatever the header's spelling (anything else was refused above)
            problem = self._check_json(body, scope.get("path", ""))
            if problem is not None:
                await self._reply(send, *problem)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        if scope.get("path", "").rstrip("/") != STREAM_PATH:
            await self.app(scope, replay, send)
            return
        # A stream holds a draft's worker and a connection for its whole length: a few per client at once.
        client = (scope.get("client") or ("?", 0))[0]
        if self.streams[client] >= self.config.max_streams_per_client:
            await self._reply(send, 429, f"{self.streams[client]} streamed drafts already in flight from this client; "
                                         f"the limit is {self.config.max_streams_per_client} (RAG_MAX_STREAMS_PER_CLIENT)",
                              ((b"retry-after", b"5"),))
            return
        self.streams[client] += 1
        try:
            await self.app(scope, replay, send)
        finally:
            self.streams[client] -= 1
            if self.streams[client] <= 0:
                del self.streams[client]

    @staticmethod
    async def _read(receive: Receive, cap: int, timeout: float) -> bytes:
        """The whole body, within ``cap`` bytes and ``timeout`` seconds for all of it (a byte every few seconds
        keeps each read short, so the deadline is for the body, not for each read)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        parts: list[bytes] = []
        size = 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                raise _TooSlow from None
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > cap:
                raise _TooLarge
            parts.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(parts)

    def _check_json(self, body: bytes, path: str) -> tuple[int, str] | None:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            return 400, f"body: not valid UTF-8 (byte {exc.start})"
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):
            return None  # malformed JSON: FastAPI's own 422 names it
        if _has_lone_surrogate(parsed):
            return 400, "body: a string holds an unpaired surrogate (for example \\ud800); send valid Unicode"
        if path.rstrip("/").startswith("/v1/drafts"):
            problem = draft_caps_problem(parsed, self.config)
            if problem:
                return 413, problem
        return None
