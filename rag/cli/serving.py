"""``rag serve``: the HTTP API and the agents' web page, after the store is ingested."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from rag.cli.console import ProgressBar, domain_errors, err, err_console

if TYPE_CHECKING:
    from rag.configs import ServiceConfig


@domain_errors
def serve(
    host: Annotated[str, typer.Option(help="bind address; without RAG_SERVICE_TOKEN only loopback clients are served")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
) -> None:
    """Serve the HTTP API and the agents' web page (OpenAPI at /docs).

    One process on the embedded defaults: the embedded Chroma store and the SQLite feedback file are this
    machine's. To scale out, point several processes at one Chroma server (RAG_CHROMA_URL) and one PostgreSQL
    (RAG_FEEDBACK_URL, after `rag feedback migrate`) behind a proxy.
    """
    import uvicorn

    from rag.pipeline import Pipeline
    from rag.service import create_app
    from rag.settings import load_settings

    settings = load_settings()
    _check_feedback(settings.service)
    with ProgressBar() as bar:  # ingest before serving, so a bad corpus is one clear line, not a failed start-up
        Pipeline(settings).ensure_ingested(progress=bar)
    err_console().print(f"serving on http://{host}:{port}  (web page /, API /v1, OpenAPI /docs)", highlight=False, markup=False)
    from rag.service.security import uvicorn_proxy_options
    from rag.service.slow_clients import uvicorn_options

    # Proxy headers only from RAG_TRUSTED_PROXIES: uvicorn's default trusts X-Forwarded-For from loopback. The HTTP
    # protocol cuts clients that send headers too slowly or stop reading (RAG_HEADER_TIMEOUT, RAG_SEND_TIMEOUT).
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info",
                **uvicorn_proxy_options(settings.service), **uvicorn_options(settings.service))


def _check_feedback(service: ServiceConfig) -> None:
    """A feedback database behind its migrations stops `rag serve` (exit 2: `rag feedback migrate` is the
    operator's step, never run behind their back by a replica starting). One that is down does not: replicas
    start, their drafts and feedback answer 503 until it is back, and no write is acknowledged meanwhile."""
    from rag.errors import FeedbackStoreError
    from rag.feedback.migrations import SchemaBehindError
    from rag.feedback.store import open_feedback

    with open_feedback(service) as store:
        try:
            store.check()
        except SchemaBehindError:
            raise
        except FeedbackStoreError as exc:
            err("[yellow]warning:[/]", f"{exc}; serving anyway: drafts and feedback answer 503 until it is back")
