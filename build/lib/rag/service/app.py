"""The FastAPI app: built from settings by a factory, never at import time."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag.errors import RagError
from rag.feedback import FeedbackStore
from rag.pipeline import Pipeline
from rag.service.deps import Authorised
from rag.service.routes import cases, drafts, feedback
from rag.service.schemas import Health
from rag.settings import Settings

STATIC = Path(__file__).parent / "static"


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"status": status, "message": message}})


def create_app(settings: Settings, *, http_client: httpx.Client | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        pipeline = Pipeline(settings, http_client=http_client)
        pipeline.ensure_ingested()
        pipeline.drafter  # build the indexes now, not on the first agent's request  # noqa: B018
        app.state.pipeline = pipeline
        app.state.feedback = FeedbackStore(settings.feedback_db)
        yield

    app = FastAPI(title="Qiniu support reply drafter", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
            parts.append(f"{where}: {e.get('msg', 'invalid')}")
        return _error(422, "; ".join(parts))

    @app.exception_handler(RagError)
    async def domain_error(request: Request, exc: RagError) -> JSONResponse:
        return _error(503, str(exc))

    for router in (drafts.router, cases.router, feedback.router):
        app.include_router(router, dependencies=[Authorised])

    @app.get("/healthz", response_model=Health, tags=["health"])
    def healthz(request: Request) -> Health:
        p: Pipeline = request.app.state.pipeline
        products = sorted({str((p.retriever.case_metadata(c) or {}).get("product", "")) for c in p.retriever.case_ids} - {""})
        return Health(status="ok", cases=len(p.retriever.case_ids), chunks=len(p.retriever.chunks),
                      backend=p.drafter.backend, products=products)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    return app
