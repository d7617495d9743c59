"""``rag search`` and ``rag draft``: a ticket in, the similar past cases or a checked draft out."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from rag.cli.console import ProgressBar, domain_errors, err, out
from rag.cli.pipeline import open_pipeline
from rag.errors import RagError

if TYPE_CHECKING:
    from rag.configs import ServiceConfig
    from rag.pipeline import Pipeline


def _filters(p: "Pipeline", product: Optional[str], scenario: Optional[str]) -> tuple[Optional[str], Optional[str]]:
    """Check --product and --scenario against the store (exit 2 listing the valid values), case-insensitively."""
    if product is None and scenario is None:
        return None, None
    catalog = p.cases.catalog
    return catalog.product(product), catalog.scenario(scenario)


def _read_ticket(text: Optional[str], file: Optional[Path]) -> str:
    if file is not None:
        if str(file) == "-":
            return sys.stdin.read()
        try:
            return file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RagError(f"cannot read ticket file {file}: {exc}") from None
    if text is not None and text != "-":
        return text
    if text == "-" or not sys.stdin.isatty():
        return sys.stdin.read()
    raise RagError("give the ticket text as an argument, '-' for stdin, with --file, or pipe it on stdin")


_K = Annotated[Optional[int], typer.Option("-k", min=1, max=50, help="how many cases (1-50; default RAG_TOP_K)")]


@domain_errors
def search(
    query: Annotated[Optional[str], typer.Argument(help="the ticket text; '-' or nothing reads stdin")] = None,
    product: Annotated[Optional[str], typer.Option(help="only cases of this product, e.g. CDN")] = None,
    scenario: Annotated[Optional[str], typer.Option(help="only cases with this 适用场景 (see `rag stats`)")] = None,
    k: _K = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The past cases most similar to a ticket."""
    from dataclasses import asdict

    from rag.corpus.format import format_category

    text = _read_ticket(query, None).strip()
    if not text:
        raise RagError("the query is empty")
    p = open_pipeline()
    with ProgressBar() as bar:
        p.ensure_ingested(progress=bar)
    product, scenario = _filters(p, product, scenario)
    from rag.retrieve import Filters

    hits = p.retriever.retrieve(text, Filters.of(product=product, scenario=scenario), k or p.settings.retrieval.top_k).hits
    o = out()
    if as_json:
        o.json([{"case_id": h.case_id, "score": h.score, "title": h.title, "product": h.product,
                 "subcategory": h.subcategory, "chunk_id": h.chunk_id, "chunk_text": h.chunk_text, "answer": h.answer,
                 "case": asdict(h.case), "components": h.components, "match": h.match} for h in hits])
        return
    o.table("", ("#", "score", "case", "title", "product", "matched text"),
            [(str(n), f"{h.score:.3f}", h.case_id, h.title, format_category(h.product, h.subcategory), " ".join(h.chunk_text.split())[:240])
             for n, h in enumerate(hits, start=1)], lines=True)


@domain_errors
def draft(
    text: Annotated[Optional[str], typer.Argument(help="the customer's message; '-' or nothing reads stdin")] = None,
    file: Annotated[Optional[Path], typer.Option("--file", "-f", help="read the message from a file ('-': stdin)")] = None,
    title: Annotated[str, typer.Option(help="the ticket's title")] = "",
    product: Annotated[Optional[str], typer.Option(help="the product, e.g. CDN (see `rag stats`)")] = None,
    fallback: Annotated[Optional[str], typer.Option(
        help="'offline': use the offline draft if the LLM fails (default 'none'; a service always falls back)")] = None,
    offline: Annotated[bool, typer.Option("--offline", help="never call the LLM")] = False,
    variant: Annotated[Optional[str], typer.Option(help="prompt variant in prompts/")] = None,
    stream: Annotated[bool, typer.Option(help="stream the LLM reply as it is written")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Draft a reply for a ticket, with its action, confidence and cited cases."""
    from dataclasses import replace

    body = _read_ticket(text, file).strip()
    if not body:
        raise RagError("the ticket is empty")
    if fallback not in (None, "none", "offline"):
        raise RagError("--fallback must be 'none' or 'offline'")
    from rag.settings import load_settings

    settings = load_settings()  # read once: the service's address, else the pipeline's settings
    if (fallback is None and not offline and variant is None
            and _draft_by_service(settings.service, body, title, product, as_json)):
        return
    from rag.pipeline import Pipeline
    from rag.records import Ticket, draft_dict

    p = Pipeline(settings)
    with ProgressBar() as bar:
        p.ensure_ingested(progress=bar)
    product, _ = _filters(p, product, None)
    drafter = p.make_drafter(variant=variant, offline=offline)
    o = out()
    streaming = stream and not as_json and drafter.streams
    # Only sentences the guards have passed reach the terminal; the model's raw text never does.
    on_delta = (lambda d: o.text(d, end="")) if streaming else None
    if streaming:
        o.rule("draft (streaming, checked sentence by sentence)")
    result = drafter.draft(Ticket(text=body, title=title, product=product), fallback=fallback or "none", on_delta=on_delta)  # type: ignore[arg-type]  # a str checked against the Literal above
    # The drafter leaves Draft.product empty; the JSON names the product the ticket was drafted for, in the
    # store's spelling ("cdn" → "CDN"), or "" when none was given.
    result = replace(result, product=product or "")
    if as_json:
        o.json(draft_dict(result))
        return
    if streaming:
        o.text()
        o.rule("final draft (after safety checks)")
    else:
        o.rule("draft")
    _show(draft_dict(result), [getattr(p.cases.get(c.case_id), "product", "") for c in result.citations])


def _show(result: dict, products: list[str]) -> None:
    """A draft's text, its action line, the cited cases (with ``products``) and its notes (on stderr)."""
    from rich.markup import escape

    o = out()
    o.text(result["text"])
    o.rule()
    tail = (f"confidence: {result['confidence']:.2f}   backend: {result['backend']}{{flag}}   "
            f"prompt: {result['prompt_id']}@{result['prompt_version']}   {result['latency_ms']:.0f} ms")
    fallback = bool(result["fallback"])
    o.styled(f"action: [bold]{result['action']}[/]   " + escape(tail).format(flag=" [yellow](offline fallback)[/]" if fallback else ""),
             f"action: {result['action']}   " + tail.format(flag=" (offline fallback)" if fallback else ""))
    o.table("cited cases", ("case", "title", "product", "score"),
            [(c["case_id"], c["title"], product, f"{c['score']:.3f}") for c, product in zip(result["citations"], products)],
            right=("score",))
    for note in result["notes"]:
        err("[dim]note:[/]", note)


def _draft_by_service(service: "ServiceConfig", body: str, title: str, product: Optional[str], as_json: bool) -> bool:
    """Ask the running service at ``RAG_SERVICE_URL`` for the draft and print it; False when none is set or none
    answers (the caller drafts in process, after a note saying so)."""
    if not service.service_url:
        return False
    from rag.cli.service_client import ServiceClient, ServiceUnreachable

    with ServiceClient(service.service_url, service.service_token.get_secret_value()) as client:
        try:
            result = client.draft(body, title, product)
        except ServiceUnreachable as exc:
            err("[yellow]note:[/]", f"{exc}: drafting in this process")
            return False
    if as_json:
        out().json(result)
        return True
    out().rule(f"draft (from the service at {client.url})")
    _show(result, [c.get("product", "") for c in result["citations"]])
    return True
