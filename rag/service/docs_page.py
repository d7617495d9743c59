"""``/docs`` without external scripts: FastAPI's default page loads Swagger UI from a public CDN,
so a reachable-from-the-agent's-browser CDN could run script on the service's origin. This page is
built from the OpenAPI schema on the server, escaped, with no script at all; the full schema stays
at ``/openapi.json``."""

from __future__ import annotations

from html import escape

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

_CSP = "default-src 'none'; style-src 'unsafe-inline'"


def docs_page(app: FastAPI) -> HTMLResponse:
    spec = app.openapi()
    rows = []
    for path, ops in sorted(spec.get("paths", {}).items()):
        for method, op in ops.items():
            rows.append(f"<tr><td><code>{escape(method.upper())}</code></td><td><code>{escape(path)}</code></td>"
                        f"<td>{escape(op.get('summary', ''))}</td></tr>")
    info = spec.get("info", {})
    html = (
        "<!doctype html><meta charset=utf-8><title>API</title>"
        "<style>body{font:14px sans-serif;margin:2em}td{padding:.2em 1em;border-bottom:1px solid #ddd}</style>"
        f"<h1>{escape(info.get('title', 'API'))} {escape(str(info.get('version', '')))}</h1>"
        f"<p>{escape(info.get('description', ''))}</p>"
        "<p>The machine-readable schema: <a href=/openapi.json>/openapi.json</a></p>"
        f"<table>{''.join(rows)}</table>"
    )
    return HTMLResponse(html, headers={"Content-Security-Policy": _CSP})
