"""The ``rag`` command: a thin client of the library (``rag.Pipeline``).

Domain errors (``RagError``) become one red line and exit code 2; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rag.errors import RagError
from rag.pipeline import Pipeline
from rag.records import Ticket
from rag.settings import load_settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Draft replies to Qiniu support tickets from past cases.")
out = Console()
err = Console(stderr=True)


def _domain_errors(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except RagError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
            raise typer.Exit(2) from None

    return wrapper


def _pipeline(**overrides) -> Pipeline:
    return Pipeline(load_settings(**{k: v for k, v in overrides.items() if v is not None}))


class _Bar:
    """Adapts the library's progress callback to a rich progress bar (on stderr, so --json stays clean)."""

    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("{task.description:<8}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=err, transient=False,
        )
        self._tasks: dict[str, int] = {}

    def __enter__(self):
        self._progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self._progress.__exit__(*exc)

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self._tasks:
            self._tasks[stage] = self._progress.add_task(stage, total=total or 1)
        self._progress.update(self._tasks[stage], completed=done if total else 1, total=total or 1)


def _print_summary(summary) -> None:
    t = Table(title="ingest", show_header=False)
    for name in ("files", "cases", "chunks", "added", "deleted", "unchanged", "skipped"):
        t.add_row(name, str(getattr(summary, name)))
    t.add_row("seconds", f"{summary.seconds:.1f}")
    out.print(t)
    for w in summary.warnings:
        err.print(f"[yellow]skipped:[/] {w}", highlight=False)


@app.command()
@_domain_errors
def ingest(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="dataset files or folders (default: data/)")] = None,
    prune: Annotated[bool, typer.Option(help="remove cases of files that are no longer given")] = False,
    rebuild: Annotated[bool, typer.Option(help="drop the collection and build it again")] = False,
    strict: Annotated[bool, typer.Option(help="stop at the first malformed case instead of skipping it")] = False,
) -> None:
    """Parse, chunk, embed and store the dataset; re-running changes only what changed."""
    p = _pipeline(strict=strict or None)
    with _Bar() as bar:
        summary = p.ingest(paths or None, prune=prune, rebuild=rebuild, progress=bar)
    _print_summary(summary)


@app.command()
@_domain_errors
def stats() -> None:
    """Cases per product and subcategory in the store."""
    p = _pipeline()
    cases = {c.metadata["case_id"]: c.metadata for c in p.store.all_chunks()}
    counts = Counter((m.get("product", ""), m.get("subcategory", "")) for m in cases.values())
    t = Table(title=f"{len(cases)} cases, {p.store.count()} chunks")
    t.add_column("product")
    t.add_column("subcategory")
    t.add_column("cases", justify="right")
    for (product, sub), n in sorted(counts.items(), key=lambda kv: (-sum(v for k, v in counts.items() if k[0] == kv[0][0]), kv[0][0], -kv[1])):
        t.add_row(str(product), str(sub), str(n))
    out.print(t)
    by_product = Counter(m.get("product", "") for m in cases.values())
    out.print("  ".join(f"{k}: {v}" for k, v in by_product.most_common()))


@app.command()
@_domain_errors
def search(
    query: Annotated[str, typer.Argument(help="the ticket text")],
    product: Annotated[Optional[str], typer.Option(help="only cases of this product, e.g. CDN")] = None,
    scenario: Annotated[Optional[str], typer.Option(help="only cases with this 适用场景")] = None,
    k: Annotated[int, typer.Option("-k", help="how many cases")] = 5,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The past cases most similar to a ticket."""
    p = _pipeline()
    p.ensure_ingested(progress=_Bar())
    hits = p.retriever.retrieve(query, k, product=product, scenario=scenario)
    if as_json:
        out.print_json(json.dumps([asdict(h) for h in hits], ensure_ascii=False))
        return
    t = Table(show_lines=True)
    for col in ("#", "score", "case", "product", "matched text"):
        t.add_column(col)
    for n, h in enumerate(hits, start=1):
        t.add_row(str(n), f"{h.score:.3f}", f"{h.title}\n[dim]{h.case_id}[/]", f"{h.product}｜{h.subcategory}", " ".join(h.chunk_text.split())[:240])
    out.print(t)


def _read_ticket(text: Optional[str], file: Optional[Path]) -> str:
    if file is not None:
        try:
            return file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RagError(f"cannot read ticket file {file}: {exc}") from None
    if text:
        return text
    if not sys.stdin.isatty():
        return sys.stdin.read()
    raise RagError("give the ticket text as an argument, with --file, or on stdin")


@app.command()
@_domain_errors
def draft(
    text: Annotated[Optional[str], typer.Argument(help="the customer's message")] = None,
    file: Annotated[Optional[Path], typer.Option("--file", "-f", help="read the message from a file")] = None,
    title: Annotated[str, typer.Option(help="the ticket's title")] = "",
    product: Annotated[Optional[str], typer.Option(help="the product, e.g. CDN")] = None,
    fallback: Annotated[str, typer.Option(help="'offline': use the offline draft if the LLM fails")] = "none",
    offline: Annotated[bool, typer.Option("--offline", help="never call the LLM")] = False,
    variant: Annotated[Optional[str], typer.Option(help="prompt variant in prompts/")] = None,
    stream: Annotated[bool, typer.Option(help="stream the LLM reply as it is written")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Draft a reply for a ticket, with its action, confidence and cited cases."""
    body = _read_ticket(text, file).strip()
    if not body:
        raise RagError("the ticket is empty")
    if fallback not in ("none", "offline"):
        raise RagError("--fallback must be 'none' or 'offline'")
    p = _pipeline()
    with _Bar() as bar:
        p.ensure_ingested(progress=bar)
    drafter = p.make_drafter(variant=variant, offline=offline)
    streaming = stream and not as_json and drafter.llm is not None
    on_delta = (lambda d: out.print(d, end="", highlight=False, markup=False)) if streaming else None
    if streaming:
        out.rule("draft (streaming)")
    result = drafter.draft(Ticket(text=body, title=title, product=product), fallback=fallback, on_delta=on_delta)  # type: ignore[arg-type]
    if as_json:
        out.print_json(json.dumps(asdict(result), ensure_ascii=False))
        return
    if streaming:
        out.print()
        out.rule("final draft (after safety checks)")
    else:
        out.rule("draft")
    out.print(result.text, highlight=False, markup=False)
    out.rule()
    flag = " [yellow](offline fallback)[/]" if result.fallback else ""
    out.print(f"action: [bold]{result.action}[/]   confidence: {result.confidence:.2f}   backend: {result.backend}{flag}   "
              f"prompt: {result.prompt_id}@{result.prompt_version}   {result.latency_ms:.0f} ms")
    t = Table(title="cited cases")
    for col in ("case", "title", "score"):
        t.add_column(col)
    for c in result.citations:
        t.add_row(c.case_id, c.title, f"{c.score:.3f}")
    out.print(t)
    for note in result.notes:
        err.print(f"[dim]note: {note}[/]", highlight=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
