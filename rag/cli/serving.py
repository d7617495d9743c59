"""``rag serve``: the HTTP API and the agents' web page, after the store is ingested."""

from __future__ import annotations

from typing import Annotated

import typer

from rag.cli.console import ProgressBar, domain_errors, err_console


@domain_errors
def serve(
    host: Annotated[str, typer.Option(help="bind address; without RAG_SERVICE_TOKEN only loopback clients are served")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
) -> None:
    """Serve the HTTP API and the agents' web page (OpenAPI at /docs).

    One process: the embedded Chroma store is single-writer. To scale out, point several processes at a
    Chroma server (RAG_CHROMA_URL) behind a proxy.
    """
    import uvicorn

    from rag.configs import ServiceConfig
    from rag.pipeline import Pipeline
    from rag.service import create_app
    from rag.settings import load_settings

    settings = load_settings()
    with ProgressBar() as bar:  # ingest before serving, so a bad corpus is one clear line, not a failed start-up
        Pipeline(settings).ensure_ingested(progress=bar)
    err_console().print(f"serving on http://{host}:{port}  (web page /, API /v1, OpenAPI /docs)", highlight=False, markup=False)
    from rag.service.security import uvicorn_proxy_options

    # Proxy headers only from RAG_TRUSTED_PROXIES: uvicorn's default trusts X-Forwarded-For from loopback.
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info", **uvicorn_proxy_options(ServiceConfig.from_settings(settings)))
