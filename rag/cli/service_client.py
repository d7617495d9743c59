"""A running ``rag serve``, asked for a draft over HTTP: what ``rag draft`` does when ``RAG_SERVICE_URL`` is set.

A cold process that opens the store pays for Chroma's import, jieba's dictionary and the indexes (about three
times ``import chromadb``); asking a service that holds them warm costs an HTTP round trip. This module imports
httpx only, never the pipeline.
"""

from __future__ import annotations

from typing import Any

import httpx

from rag.errors import RagError

# The service answers a warm offline draft in tens of milliseconds: a connection that takes longer than this is
# no service at all, and the CLI drafts in process instead.
CONNECT_SECONDS = 1.0


class ServiceUnreachable(RagError):
    """No service answered at the URL: the caller may draft in process instead."""


class ServiceRefused(RagError):
    """The service answered with an error status: its message is the user's answer, no fallback hides it."""


class ServiceClient:
    """``POST /v1/drafts`` on one service, with its bearer token when one is configured."""

    def __init__(self, url: str, token: str = "", *, read_seconds: float = 300.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, transport=transport, follow_redirects=False,
                                  timeout=httpx.Timeout(read_seconds, connect=CONNECT_SECONDS))

    def __enter__(self) -> "ServiceClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def draft(self, text: str, title: str = "", product: str | None = None) -> dict[str, Any]:
        """The service's draft (its ``DraftResponse`` body: every field of ``rag draft --json`` and its ``draft_id``)."""
        try:
            r = self._http.post("/v1/drafts", json={"text": text, "title": title, "product": product})
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ServiceUnreachable(f"no service at {self.url} ({_reason(exc)})") from None
        except httpx.HTTPError as exc:
            raise ServiceRefused(f"the service at {self.url} failed mid-request ({_reason(exc)})") from None
        try:
            body = r.json()
        except ValueError:
            body = None
        if r.status_code != 200:
            message = body.get("error", {}).get("message") if isinstance(body, dict) else None
            raise ServiceRefused(f"the service at {self.url} answered {r.status_code}: "
                                 f"{message or r.text[:200] or r.reason_phrase}")
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            raise ServiceRefused(f"the service at {self.url} answered 200 without a draft (is it `rag serve`?)")
        return body


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
