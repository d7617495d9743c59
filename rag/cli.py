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
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rag.errors import RagError
from rag.pipeline import Pipeline
from rag.records import Ticket
from rag.settings import load_settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Draft replies to Qiniu support tickets from past cases.")
out = Console()
err = Console(stderr=True, soft_wrap=True)  # an error line must stay one line, whatever the terminal width


def _domain_errors(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except RagError as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
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
        err.print(f"[yellow]skipped:[/] {escape(w)}", highlight=False)


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
        t.add_row(escape(str(product)), escape(str(sub)), str(n))
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
        t.add_row(str(n), f"{h.score:.3f}", f"{escape(h.title)}\n[dim]{h.case_id}[/]", escape(f"{h.product}｜{h.subcategory}"),
                  escape(" ".join(h.chunk_text.split())[:240]))
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
        t.add_row(c.case_id, escape(c.title), f"{c.score:.3f}")
    out.print(t)
    for note in result.notes:
        err.print(f"[dim]note: {escape(note)}[/]", highlight=False)


eval_app = typer.Typer(help="Replay real tickets and score drafts against the real answers.")
app.add_typer(eval_app, name="eval")


@eval_app.callback(invoke_without_command=True)
@_domain_errors
def eval_run(
    ctx: typer.Context,
    backend: Annotated[str, typer.Option(help="offline or llm")] = "offline",
    variant: Annotated[str, typer.Option(help="prompt variant in prompts/")] = "default",
    split: Annotated[str, typer.Option(help="loo (leave-one-out) or split (seeded hold-out set)")] = "loo",
    seed: Annotated[int, typer.Option(help="seed for --split split and --limit sampling")] = 0,
    test_fraction: Annotated[float, typer.Option(help="share of cases held out with --split split")] = 0.2,
    limit: Annotated[Optional[int], typer.Option(help="replay only this many cases (seeded sample)")] = None,
    concurrency: Annotated[int, typer.Option(help="drafts in flight at once (useful with an LLM)")] = 1,
    judge: Annotated[bool, typer.Option(help="also score with the LLM judge rubric (prompts/judge.md)")] = False,
    runs_dir: Annotated[Path, typer.Option("--out", help="folder for run folders")] = Path("eval/runs"),
    gate: Annotated[bool, typer.Option(help="exit 1 when below eval/baseline.json or on any leak")] = False,
    update_baseline: Annotated[bool, typer.Option(help="write this run's scores to eval/baseline.json")] = False,
) -> None:
    """Run an evaluation (leave-one-out over data/ by default) and write a run folder."""
    if ctx.invoked_subcommand:
        return
    from rag.evaluation import EvalConfig, run_eval
    from rag.evaluation import baseline as gate_mod

    if backend not in ("offline", "llm") or split not in ("loo", "split"):
        raise RagError("--backend must be offline or llm, --split must be loo or split")
    cfg = EvalConfig(backend=backend, variant=variant, split=split, seed=seed, test_fraction=test_fraction,  # type: ignore[arg-type]
                     limit=limit, concurrency=concurrency, judge=judge)
    p = _pipeline()
    with _Bar() as bar:
        p.ensure_ingested(progress=bar)
        result = run_eval(p, cfg, runs_dir, progress=lambda done, total: bar("draft", done, total))
    o = result.summary["overall"]
    t = Table(title=f"{result.summary['cases']} cases · {result.summary['backend']} · {result.summary['seconds']} s")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for m, v in o.items():
        if v is not None:
            t.add_row(m, f"{v:.3f}")
    for name, total in result.summary["totals"].items():
        t.add_row(f"{name.replace('_', ' ')} (total)", str(total))
    out.print(t)
    out.print(f"run folder: {result.folder}  (report.md, summary.json, scores.png, cases/)")
    if update_baseline:
        if backend != "offline" or split != "loo" or limit:
            raise RagError("the baseline is the offline backend, leave-one-out, on every case: drop --backend/--split/--limit")
        gate_mod.save(gate_mod.make_baseline(result.summary))
        out.print(f"baseline written: {gate_mod.BASELINE}")
    if gate:
        verdict = gate_mod.check(result.summary, gate_mod.load())
        for f in verdict.failures:
            err.print(f"[red]gate:[/] {escape(f)}", highlight=False)
        if not verdict.ok:
            raise typer.Exit(1)
        out.print("[green]gate passed[/]")


@eval_app.command("compare")
@_domain_errors
def eval_compare(run_a: Path, run_b: Path, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Metric deltas from RUN_A to RUN_B, and the cases that moved most."""
    from rag.evaluation.compare import compare
    from rag.evaluation.runner import load_run

    for folder in (run_a, run_b):
        if not (folder / "summary.json").is_file():
            raise RagError(f"{folder} is not an evaluation run folder (no summary.json)")
    result = compare(load_run(run_a), load_run(run_b))
    if as_json:
        out.print_json(json.dumps(result, ensure_ascii=False))
        return
    t = Table(title=f"{run_a.name} → {run_b.name}")
    for col in ("metric", "A", "B", "Δ"):
        t.add_column(col, justify="right" if col != "metric" else "left")
    for m, d in result["metrics"].items():
        if d["a"] is None and d["b"] is None:
            continue
        delta = d["delta"]
        style = "" if delta in (None, 0) else ("green" if delta > 0 else "red")
        if m in ("leaked_identifiers", "invented_links", "leaks_independent", "defects") and delta:
            style = "red" if delta > 0 else "green"
        t.add_row(m, str(d["a"]), str(d["b"]), f"[{style}]{delta:+.4f}[/]" if delta is not None else "–")
    out.print(t)
    moved = Table(title="cases that moved most (ROUGE-L)")
    for col in ("case", "title", "A", "B", "Δ"):
        moved.add_column(col)
    for c in result["moved"]:
        moved.add_row(c["case_id"], escape(c["title"]), f"{c['a']:.3f}", f"{c['b']:.3f}", f"{c['delta']:+.3f}")
    out.print(moved)


@app.command()
@_domain_errors
def serve(
    host: Annotated[str, typer.Option(help="bind address; without RAG_SERVICE_TOKEN only loopback clients are served")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
) -> None:
    """Serve the HTTP API and the agents' web page (OpenAPI at /docs).

    One process: the embedded Chroma store is single-writer. To scale out, point several processes at a
    Chroma server (RAG_CHROMA_URL) behind a proxy.
    """
    import uvicorn

    from rag.service import create_app

    settings = load_settings()
    with _Bar() as bar:  # ingest before serving, so a bad corpus is one clear line, not a failed start-up
        Pipeline(settings).ensure_ingested(progress=bar)
    err.print(f"serving on http://{host}:{port}  (web page /, API /v1, OpenAPI /docs)")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


feedback_app = typer.Typer(help="Feedback on drafts: statistics and export to the dataset format.")
app.add_typer(feedback_app, name="feedback")


@feedback_app.command("stats")
@_domain_errors
def feedback_stats() -> None:
    """Acceptance rate and edit distance per product."""
    from rag.feedback import FeedbackStore

    store = FeedbackStore(load_settings().feedback_db)
    drafts, feedback = store.counts()
    t = Table(title=f"{drafts} drafts, {feedback} feedback entries")
    for col in ("product", "drafts", "feedback", "accepted", "edited", "rejected", "acceptance", "edit distance"):
        t.add_column(col, justify="left" if col == "product" else "right")
    fmt = lambda v: "–" if v is None else f"{v:.2f}"  # noqa: E731
    for row in store.stats():
        t.add_row(escape(row.product or "(unknown)"), str(row.drafts), str(row.feedback), str(row.accepted), str(row.edited),
                  str(row.rejected), fmt(row.acceptance_rate), fmt(row.mean_edit_distance))
    out.print(t)


@feedback_app.command("export")
@_domain_errors
def feedback_export(
    out_file: Annotated[Path, typer.Option("--out", help="dataset file to write")] = Path("data/feedback_cases.md"),
) -> None:
    """Write accepted and edited drafts as new cases in the dataset format (ingested by the next `rag ingest`)."""
    from rag.feedback import FeedbackStore
    from rag.parse import parse_text

    text = FeedbackStore(load_settings().feedback_db).export_cases()
    cases = parse_text(text, out_file.name, strict=True)  # never write a file the next ingest would reject
    out_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_file.with_suffix(out_file.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out_file)
    out.print(f"wrote {len(cases)} case(s) to {out_file}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
