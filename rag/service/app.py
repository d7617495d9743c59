"""The FastAPI app: built from settings by a factory, never at import time."""

from __future__ import annotations

from contextlib import asynccontextmanager
from importlib import resources

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag.configs import ServiceConfig
from rag.errors import RagError
from rag.feedback import FeedbackStore
from rag.pipeline import Pipeline
from rag.service.deps import Authorised
from rag.service.routes import cases, drafts, feedback
from rag.service.schemas import Health, error_responses
from rag.service.statuses import status_of
from rag.service.docs_page import docs_page
from rag.service.security import SecurityMiddleware
from rag.service.served import ServedPipeline
from rag.settings import Settings

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
    service = ServiceConfig.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Builds the indexes now, not on the first agent's request; reloads them after an ingest.
        app.state.served = ServedPipeline(settings, http_client=http_client)
        app.state.feedback = FeedbackStore(service.feedback_db)
        yield

    app = FastAPI(title="Qiniu support reply drafter", version=_version(), lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Suggested replies for Qiniu support tickets. Every error body is "
                              '`{"error": {"status": <int>, "message": <str>}}`.')
    app.state.service = service
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]  # FastAPI's documented way to extend the schema
    app.add_middleware(SecurityMiddleware, config=service)  # Host allow-list, body caps, before parsing
    app.get("/docs", include_in_schema=False)(lambda: docs_page(app))  # no CDN script (rag/service/docs_page.py)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, _validation_message(exc))

    @app.exception_handler(RagError)
    async def domain_error(request: Request, exc: RagError) -> JSONResponse:
        status = status_of(exc)
        return _error(status, str(exc), {"Retry-After": "5"} if status == 503 else None)

    for router in (drafts.router, cases.router, feedback.router):
        app.include_router(router, dependencies=[Authorised], responses=error_responses(401, 403, 422, 500, 502, 503))

    @app.get("/healthz", response_model=Health, tags=["health"], responses=error_responses(500, 503))
    def healthz(request: Request) -> Health:
        served = request.app.state.served.current()  # a damaged store: 503 with its one-line message
        p: Pipeline = served.pipeline
        cases = p.cases
        return Health(status="ok", cases=len(cases), chunks=len(cases.chunks),
                      backend=p.drafter.backend, products=list(cases.catalog.products),
                      max_ticket_chars=service.max_ticket_chars, generation=served.generation)

    page_html = (resources.files("rag.service") / "static" / "index.html").read_text(encoding="utf-8")

    @app.get("/", include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(page_html)

    return app


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("qiniu-support-rag")
    except PackageNotFoundError:
        return "0+checkout"
