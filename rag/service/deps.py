"""Dependencies shared by the routers, as ``Annotated`` aliases."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from rag.configs import ServiceConfig
from rag.feedback.store import FeedbackStore
from rag.pipeline import Pipeline

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def _service(request: Request) -> ServiceConfig:
    return request.app.state.service


def _pipeline(request: Request) -> Pipeline:
    return request.app.state.served.current().pipeline  # reloaded when an ingest changed the store


def _feedback(request: Request) -> FeedbackStore:
    return request.app.state.feedback


def authorise(request: Request) -> None:
    """A bearer token when one is configured; with none configured, loopback clients only."""
    config: ServiceConfig = request.app.state.service
    token = config.service_token.get_secret_value()
    if token:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            # RFC 6750: a 401 names the scheme it wants; a token that was sent and is wrong says so.
            challenge = 'Bearer realm="rag"' + (', error="invalid_token"' if given else "")
            raise HTTPException(status_code=401, detail="missing or wrong bearer token",
                                headers={"WWW-Authenticate": challenge})
        return
    host = request.client.host if request.client else ""
    if host not in LOOPBACK:
        raise HTTPException(status_code=403, detail="no RAG_SERVICE_TOKEN is set, so only loopback clients are served")


ServiceDep = Annotated[ServiceConfig, Depends(_service)]
PipelineDep = Annotated[Pipeline, Depends(_pipeline)]
FeedbackDep = Annotated[FeedbackStore, Depends(_feedback)]
Authorised = Depends(authorise)
