"""HTTP protections that run before FastAPI reads a request: one ASGI middleware.

- Host allow-list (``RAG_ALLOWED_HOSTS``, loopback names by default): a page on another site that
  rebinds its DNS name to 127.0.0.1 sends its own Host header and is refused (400).
- Raw body cap (``RAG_MAX_BODY_BYTES``): a declared ``Content-Length`` over the cap is refused before
  a byte is read; a body without one is counted as it streams and cut at the cap (413). A 100 MB body
  is never held in memory.
- Invalid Unicode: a body that is not UTF-8, or JSON whose strings hold lone surrogates (``\\ud800``),
  is a 400 in JSON, not a 500 in text/plain.
- Draft caps, enforced on the raw JSON before the model is built: title length
  (``RAG_MAX_TITLE_CHARS``), history turns and total characters (``RAG_MAX_HISTORY_TURNS``,
  ``RAG_MAX_HISTORY_CHARS``), each a 413 naming the field.

Proxy headers are trusted only from ``RAG_TRUSTED_PROXIES`` (empty by default): ``rag serve`` passes
that list to uvicorn as ``forwarded_allow_ips``, so the peer the loopback-only check sees is the real
socket peer unless a configured proxy vouches for another.
"""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

from rag.configs import ServiceConfig

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class _TooLarge(Exception):
    pass


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

    async def _reply(self, send: Send, status: int, message: str) -> None:
        body = json.dumps({"error": {"status": status, "message": message}}, ensure_ascii=False).encode("utf-8")
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
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
        try:
            body = await self._read(receive, cap)
        except _TooLarge:
            await self._reply(send, 413, f"body: more than {cap} bytes; the limit is {cap} (RAG_MAX_BODY_BYTES)")
            return
        if "json" in headers.get("content-type", "") and body:
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

        await self.app(scope, replay, send)

    @staticmethod
    async def _read(receive: Receive, cap: int) -> bytes:
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
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
