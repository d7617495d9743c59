"""The FastAPI app: built from settings by a factory, never at import time."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from contextlib import asynccontextmanager
from importlib import resources

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag.errors import RagError
from rag.errors import FeedbackStoreError
from rag.feedback.store import open_feedback
from rag.pipeline import Pipeline
from rag.service.deps import Authorised
from rag.service.routes import cases, drafts, feedback
from rag.service.schemas import Health, error_responses
from rag.service.statuses import status_of
from rag.service.docs_page import docs_page
from rag.service.security import SecurityMiddleware
from rag.service.served import ServedPipeline
from rag.settings import Settings

log = logging.getLogger(__name__)

def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"status": status, "message": message}}, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors():
        if e.get("type") == "json_invalid":  # pydantic's "1: JSON decode error" says nothing useful
            pos = next((p for p in e.get("loc", ())[1:] if isinstance(p, int)), None)
            why = (e.get("ctx") or {}).get("error", "")
            return f"body: not valid JSON{f' at character {pos}' if pos is not None else ''}{f' ({why})' if why else ''}"
        where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
    return "; ".join(parts)


def _openapi(app: FastAPI) -> dict:
    """FastAPI's schema, plus the bearer scheme the /v1 routes accept."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes, description=app.description)
        schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {
            "type": "http", "scheme": "bearer",
            "description": "RAG_SERVICE_TOKEN; when none is configured, loopback clients are served without one"}
        for path, ops in schema["paths"].items():
            if path.startswith("/v1/"):
                for op in ops.values():
                    op["security"] = [{"bearer": []}, {}]  # {}: no token needed when none is configured (loopback)
        app.openapi_schema = schema
    return app.openapi_schema


def create_app(settings: Settings, *, http_client: httpx.Client | None = None) -> FastAPI:
    service = settings.service

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Builds the indexes now, not on the first agent's request; reloads them after an ingest.
        app.state.served = ServedPipeline(settings, http_client=http_client)
        app.state.feedback = open_feedback(service)
        try:
            app.state.feedback.check()
        except FeedbackStoreError as exc:
            # Drafting needs feedback (every draft is recorded): those routes answer 503 with this line until the
            # database is back, then serve again with no restart.
            log.error("%s; drafts and feedback answer 503 until it is back", exc)
        try:
            yield
        finally:
            app.state.feedback.close()

    app = FastAPI(title="Qiniu support reply drafter", version=_version(), lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Suggested replies for Qiniu support tickets. Every error body is "
                              '`{"error": {"status": <int>, "message": <str>}}`.')
    app.state.service = service
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]  # FastAPI's documented way to extend the schema
    app.add_middleware(SecurityMiddleware, config=service)  # Host allow-list, body caps, before parsing
    app.get("/docs", include_in_schema=False)(lambda: docs_page(app))  # no CDN script (rag/service/docs_page.py)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))  # WWW-Authenticate on a 401

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, _validation_message(exc))

    @app.exception_handler(RagError)
    async def domain_error(request: Request, exc: RagError) -> JSONResponse:
        status = status_of(exc)
        return _error(status, str(exc), {"Retry-After": "5"} if status == 503 else None)

    for router in (drafts.router, cases.router, feedback.router):
        # 400: the security middleware's refusals (a Host not served, a body that is not valid Unicode).
        app.include_router(router, dependencies=[Authorised], responses=error_responses(400, 401, 403, 422, 500, 502, 503))

    @app.get("/healthz", response_model=Health, tags=["health"], responses=error_responses(400, 500, 503))
    def healthz(request: Request) -> Health:
        served = request.app.state.served.current()  # a damaged store: 503 with its one-line message
        p: Pipeline = served.pipeline
        cases = p.cases
        return Health(status="ok", cases=len(cases), chunks=len(cases.chunks),
                      backend=p.drafter.backend, products=list(cases.catalog.products),
                      max_ticket_chars=service.max_ticket_chars, generation=served.generation,
                      embed_origins=list(service.embed_origins))

    static = resources.files("rag.service") / "static"
    page_html = (static / "index.html").read_text(encoding="utf-8")
    # The script and style are named with a hash of their content, so a browser never runs a cached old copy
    # against a new service.
    for name in ("app.js", "app.css"):
        digest = hashlib.sha256((static / name).read_bytes()).hexdigest()[:12]
        page_html = page_html.replace(f'"/static/{name}"', f'"/static/{name}?v={digest}"')
    page_headers = page_security_headers(page_html, service.embed_origins)

    @app.get("/", include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(page_html, headers=page_headers)

    # The page's script and style are files, not inline, so a Content-Security-Policy of script-src 'self' and
    # style-src 'self' holds for it.
    app.mount("/static", StaticFiles(packages=[("rag.service", "static")]), name="static")

    return app


_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.S)


def page_security_headers(html: str, embed_origins: tuple[str, ...] = ()) -> dict[str, str]:
    """The agents' page may run only its own script and style (the files under /static, or an inline block
    allowed by its sha256, so an injected one is not), talk only to this origin, and be framed only by the help
    desks of ``RAG_EMBED_ORIGINS`` (issue 24: it sent no CSP; issue 23: a help desk's sidebar embeds it)."""
    hashes: dict[str, list[str]] = {"script": [], "style": []}
    for kind, body in _INLINE.findall(html):
        digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode("ascii")
        hashes[kind].append(f"'sha256-{digest}'")
    ancestors = " ".join(embed_origins) or "'none'"
    csp = "; ".join([
        "default-src 'none'", f"script-src 'self' {' '.join(hashes['script'])}".strip(),
        f"style-src 'self' {' '.join(hashes['style'])}".strip(), "connect-src 'self'", "img-src 'self' data:",
        "base-uri 'none'", "form-action 'none'", f"frame-ancestors {ancestors}",
    ])
    headers = {"Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
    if not embed_origins:
        headers["X-Frame-Options"] = "DENY"  # older browsers; frame-ancestors supersedes it where understood
    return headers


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("qiniu-support-rag")
    except PackageNotFoundError:
        return "0+checkout"
