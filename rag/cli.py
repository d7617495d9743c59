"""The ``rag`` command: a thin client of the library (``rag.Pipeline``).

Domain errors (``RagError``) become one red line and exit code 2; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Callable, Optional

import typer

from rag.errors import RagError
from rag.terminal import Output

if TYPE_CHECKING:  # the pipeline pulls in Chroma and numpy: imported inside the commands, so --help stays fast
    from rag.pipeline import Pipeline

app = typer.Typer(add_completion=False, rich_markup_mode=None, help="Draft replies to Qiniu support tickets from past cases.")


def _out() -> Output:
    return Output(sys.stdout)


@functools.cache
def _err_console():
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)  # an error line must stay one line, whatever the terminal width


def _err(markup: str, message: str) -> None:
    from rich.markup import escape

    _err_console().print(f"{markup} {escape(message)}", highlight=False)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            v = version("qiniu-support-rag")
        except PackageNotFoundError:  # running from a checkout that was never pip-installed
            v = "unknown"
        typer.echo(f"rag {v}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")] = False,
) -> None:
    """Draft replies to Qiniu support tickets from past cases."""
    if ctx.invoked_subcommand is None:  # bare `rag`: the help, and success
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


def _domain_errors(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except RagError as exc:
            _err("[bold red]error:[/]", str(exc))
            raise typer.Exit(2) from None

    return wrapper


def _pipeline(**overrides) -> "Pipeline":
    from rag.pipeline import Pipeline
    from rag.settings import load_settings

    return Pipeline(load_settings(**{k: v for k, v in overrides.items() if v is not None}))


class _Bar:
    """Adapts the library's progress callback to a rich progress bar (on stderr, so --json stays clean)."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("{task.description:<8}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=_err_console(), transient=False,
        )
        self._tasks: dict[str, TaskID] = {}

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
    rows = [(name, str(getattr(summary, name)))
            for name in ("files", "cases", "chunks", "added", "deleted", "unchanged", "skipped", "generation")]
    if summary.migrated:  # chunks an older version stored, given this version's metadata in place
        rows.append(("migrated", str(summary.migrated)))
    _out().table("ingest", ("item", "value"), [*rows, ("seconds", f"{summary.seconds:.1f}")], right=("value",))
    for w in summary.warnings:
        _err("[yellow]skipped:[/]", w)
    for note in summary.notes:
        _err("[yellow]note:[/]", note)


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
    """Cases per product and subcategory in the store, and the scenarios (适用场景) --scenario accepts."""
    from collections import Counter

    p = _pipeline()
    cases = p.cases
    counts = Counter((c.product, c.subcategory) for c in cases)
    by_product = Counter(c.product for c in cases)
    rows = [(str(product), str(sub), str(n)) for (product, sub), n in
            sorted(counts.items(), key=lambda kv: (-by_product[kv[0][0]], kv[0][0], -kv[1]))]
    o = _out()
    o.table(f"{len(cases)} cases, {len(cases.chunks)} chunks", ("product", "subcategory", "cases"), rows, right=("cases",))
    o.text("  ".join(f"{k}: {v}" for k, v in by_product.most_common()))
    catalog = cases.catalog
    o.text(f"scenarios ({len(catalog.scenarios)}): " + ", ".join(catalog.scenarios))


def _filters(p: "Pipeline", product: Optional[str], scenario: Optional[str]) -> tuple[Optional[str], Optional[str]]:
    """Check --product and --scenario against the store (exit 2 listing the valid values), case-insensitively."""
    if product is None and scenario is None:
        return None, None
    catalog = p.cases.catalog
    return catalog.product(product), catalog.scenario(scenario)


_K = Annotated[Optional[int], typer.Option("-k", min=1, max=50, help="how many cases (1-50; default RAG_TOP_K)")]


@app.command()
@_domain_errors
def search(
    query: Annotated[Optional[str], typer.Argument(help="the ticket text; '-' or nothing reads stdin")] = None,
    product: Annotated[Optional[str], typer.Option(help="only cases of this product, e.g. CDN")] = None,
    scenario: Annotated[Optional[str], typer.Option(help="only cases with this 适用场景 (see `rag stats`)")] = None,
    k: _K = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The past cases most similar to a ticket."""
    from dataclasses import asdict

    from rag.dataset_format import format_category

    text = _read_ticket(query, None).strip()
    if not text:
        raise RagError("the query is empty")
    p = _pipeline()
    with _Bar() as bar:
        p.ensure_ingested(progress=bar)
    product, scenario = _filters(p, product, scenario)
    from rag.retrieve import Filters

    hits = p.retriever.retrieve(text, Filters.of(product=product, scenario=scenario), k or p.settings.top_k).hits
    o = _out()
    if as_json:
        o.json([{"case_id": h.case_id, "score": h.score, "title": h.title, "product": h.product,
                 "subcategory": h.subcategory, "chunk_id": h.chunk_id, "chunk_text": h.chunk_text, "answer": h.answer,
                 "case": asdict(h.case), "components": h.components, "match": h.match} for h in hits])
        return
    o.table("", ("#", "score", "case", "title", "product", "matched text"),
            [(str(n), f"{h.score:.3f}", h.case_id, h.title, format_category(h.product, h.subcategory), " ".join(h.chunk_text.split())[:240])
             for n, h in enumerate(hits, start=1)], lines=True)


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


@app.command()
@_domain_errors
def draft(
    text: Annotated[Optional[str], typer.Argument(help="the customer's message; '-' or nothing reads stdin")] = None,
    file: Annotated[Optional[Path], typer.Option("--file", "-f", help="read the message from a file ('-': stdin)")] = None,
    title: Annotated[str, typer.Option(help="the ticket's title")] = "",
    product: Annotated[Optional[str], typer.Option(help="the product, e.g. CDN (see `rag stats`)")] = None,
    fallback: Annotated[str, typer.Option(help="'offline': use the offline draft if the LLM fails")] = "none",
    offline: Annotated[bool, typer.Option("--offline", help="never call the LLM")] = False,
    variant: Annotated[Optional[str], typer.Option(help="prompt variant in prompts/")] = None,
    stream: Annotated[bool, typer.Option(help="stream the LLM reply as it is written")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Draft a reply for a ticket, with its action, confidence and cited cases."""
    from dataclasses import asdict

    from rag.records import Ticket

    body = _read_ticket(text, file).strip()
    if not body:
        raise RagError("the ticket is empty")
    if fallback not in ("none", "offline"):
        raise RagError("--fallback must be 'none' or 'offline'")
    p = _pipeline()
    with _Bar() as bar:
        p.ensure_ingested(progress=bar)
    product, _ = _filters(p, product, None)
    drafter = p.make_drafter(variant=variant, offline=offline)
    o = _out()
    streaming = stream and not as_json and drafter.llm is not None
    # Only sentences the guards have passed reach the terminal; the model's raw text never does.
    on_delta = (lambda d: o.text(d, end="")) if streaming else None
    if streaming:
        o.rule("draft (streaming, checked sentence by sentence)")
    result = drafter.draft(Ticket(text=body, title=title, product=product), fallback=fallback, on_delta=on_delta)  # type: ignore[arg-type]  # a str checked against the Literal above
    if as_json:
        o.json(asdict(result))
        return
    if streaming:
        o.text()
        o.rule("final draft (after safety checks)")
    else:
        o.rule("draft")
    o.text(result.text)
    o.rule()
    from rich.markup import escape

    tail = (f"confidence: {result.confidence:.2f}   backend: {result.backend}{{flag}}   "
            f"prompt: {result.prompt_id}@{result.prompt_version}   {result.latency_ms:.0f} ms")
    o.styled(f"action: [bold]{result.action}[/]   " + escape(tail).format(flag=" [yellow](offline fallback)[/]" if result.fallback else ""),
             f"action: {result.action}   " + tail.format(flag=" (offline fallback)" if result.fallback else ""))
    o.table("cited cases", ("case", "title", "product", "score"),
            [(c.case_id, c.title, getattr(p.cases.get(c.case_id), "product", ""), f"{c.score:.3f}")
             for c in result.citations], right=("score",))
    for note in result.notes:
        _err("[dim]note:[/]", note)


def _variant(prompts_dir: Path, name: str) -> str:
    """A prompt variant that exists, checked before a run starts (exit 2 listing the ones there are)."""
    from rag.draft.prompts import variants

    known = variants(prompts_dir) if prompts_dir.is_dir() else []
    if name not in known:
        raise RagError(f"--variant: no prompt variant '{name}' in {prompts_dir}; available: {', '.join(known) or 'none'}")
    return name


eval_app = typer.Typer(rich_markup_mode=None, help="Replay real tickets and score drafts against the real answers.")
app.add_typer(eval_app, name="eval")


@eval_app.callback(invoke_without_command=True)
@_domain_errors
def eval_run(
    ctx: typer.Context,
    backend: Annotated[str, typer.Option(help="offline or llm")] = "offline",
    variant: Annotated[Optional[str], typer.Option(help="prompt variant: a folder in prompts/ (default RAG_PROMPT_VARIANT)")] = None,
    split: Annotated[str, typer.Option(help="loo (leave-one-out) or split (seeded hold-out set)")] = "loo",
    seed: Annotated[int, typer.Option(help="seed for --split split and --limit sampling")] = 0,
    test_fraction: Annotated[float, typer.Option(help="share of cases held out with --split split")] = 0.2,
    limit: Annotated[Optional[int], typer.Option(min=1, help="replay only this many cases (seeded sample)")] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="drafts in flight at once (useful with an LLM)")] = 1,
    judge: Annotated[bool, typer.Option(help="also score with the LLM judge rubric (prompts/judge.md)")] = False,
    runs_dir: Annotated[Optional[Path], typer.Option("--out", help="folder for run folders (default: eval/runs in a checkout, else $RAG_HOME/runs)")] = None,
    gate: Annotated[bool, typer.Option(help="exit 1 when below the baseline or on any leak (same kind of run only)")] = False,
    baseline_file: Annotated[Optional[Path], typer.Option("--baseline", help="baseline file (default: eval/baseline.json)")] = None,
    update_baseline: Annotated[bool, typer.Option(help="write this run's scores to the baseline")] = False,
) -> None:
    """Run an evaluation (leave-one-out over data/ by default) and write a run folder."""
    if ctx.invoked_subcommand:
        return
    from dataclasses import asdict

    from rag.evaluation import EvalConfig, run_eval
    from rag.evaluation import baseline as gate_mod
    from rag.paths import bundled

    if backend not in ("offline", "llm") or split not in ("loo", "split"):
        raise RagError("--backend must be offline or llm, --split must be loo or split")
    p = _pipeline()
    variant = _variant(p.settings.prompts_dir, variant or p.settings.prompt_variant)
    cfg = EvalConfig(backend=backend, variant=variant, split=split, seed=seed, test_fraction=test_fraction,  # type: ignore[arg-type]  # strs checked against the Literals above
                     limit=limit, concurrency=concurrency, judge=judge)
    if runs_dir is None:
        from rag.paths import checkout_root

        root = checkout_root()
        runs_dir = root / "eval" / "runs" if root is not None else p.settings.home / "runs"
    baseline_path = baseline_file or p.settings.baseline_path
    # Refuse before spending minutes on a run whose result could not be used.
    if update_baseline and (backend != "offline" or split != "loo" or limit or variant != "default"):
        raise RagError("the baseline is the offline backend, default variant, leave-one-out, on every case: "
                       "drop --backend/--variant/--split/--limit")
    if update_baseline and baseline_file is None and baseline_path.resolve().is_relative_to(bundled("").resolve()):
        baseline_path = p.settings.home / "baseline.json"  # never write into site-packages
    base = None
    if gate:
        base = gate_mod.load(baseline_path)
        why = gate_mod.mismatch(asdict(cfg), base)
        if why:
            raise RagError(f"--gate compares like with like: {why}; run without --limit/--split, or pass a "
                           f"--baseline measured the same way")
    with _Bar() as bar:
        p.ensure_ingested(progress=bar)
        result = run_eval(p, cfg, runs_dir, progress=lambda done, total: bar("draft", done, total))
    o = result.summary["overall"]
    rows = [(m, f"{v:.3f}") for m, v in o.items() if v is not None]
    rows += [(f"{name.replace('_', ' ')} (total)", str(total)) for name, total in result.summary["totals"].items()]
    if result.summary.get("judge_errors"):
        rows.append(("judge failures (cases)", str(result.summary["judge_errors"])))
    out = _out()
    out.table(f"{result.summary['cases']} cases · {result.summary['backend']} · {result.summary['seconds']} s",
              ("metric", "value"), rows, right=("value",))
    out.text(f"run folder: {result.folder}  (report.md, summary.json, scores.png, cases/)")
    if update_baseline:
        gate_mod.save(gate_mod.make_baseline(result.summary), baseline_path)
        out.text(f"baseline written: {baseline_path}")
    if gate and base is not None:
        verdict = gate_mod.check(result.summary, base)
        for f in verdict.failures:
            _err("[red]gate:[/]", f)
        if not verdict.ok:
            raise typer.Exit(1)
        out.styled("[green]gate passed[/]", "gate passed")


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
    out = _out()
    if as_json:
        out.json(result)
        return
    rows = []
    for m, d in result["metrics"].items():
        if d["a"] is None and d["b"] is None:
            continue
        delta = d["delta"]
        rows.append((m, "–" if d["a"] is None else str(d["a"]), "–" if d["b"] is None else str(d["b"]),
                     "–" if delta is None else f"{delta:+.4f}"))
    out.table(f"{run_a.name} → {run_b.name}", ("metric", "A", "B", "Δ"), rows, right=("A", "B", "Δ"))
    out.table("cases that moved most (ROUGE-L)", ("case", "title", "A", "B", "Δ"),
              [(c["case_id"], c["title"], f"{c['a']:.3f}", f"{c['b']:.3f}", f"{c['delta']:+.3f}") for c in result["moved"]],
              right=("A", "B", "Δ"))


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

    from rag.configs import ServiceConfig
    from rag.pipeline import Pipeline
    from rag.service import create_app
    from rag.settings import load_settings

    settings = load_settings()
    with _Bar() as bar:  # ingest before serving, so a bad corpus is one clear line, not a failed start-up
        Pipeline(settings).ensure_ingested(progress=bar)
    _err_console().print(f"serving on http://{host}:{port}  (web page /, API /v1, OpenAPI /docs)", highlight=False, markup=False)
    from rag.service.security import uvicorn_proxy_options

    # Proxy headers only from RAG_TRUSTED_PROXIES: uvicorn's default trusts X-Forwarded-For from loopback.
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info", **uvicorn_proxy_options(ServiceConfig.from_settings(settings)))


feedback_app = typer.Typer(rich_markup_mode=None, help="Feedback on drafts: statistics, review (approve/reject) and export of approved items to the dataset format.")
app.add_typer(feedback_app, name="feedback")


@feedback_app.command("stats")
@_domain_errors
def feedback_stats() -> None:
    """Acceptance rate and edit distance per product."""
    from rag.feedback import FeedbackStore
    from rag.settings import load_settings

    store = FeedbackStore(load_settings().feedback_db)
    drafts, feedback = store.counts()
    fmt = lambda v: "–" if v is None else f"{v:.2f}"  # noqa: E731
    cols = ("product", "drafts", "feedback", "accepted", "edited", "rejected", "acceptance", "edit distance")
    _out().table(f"{drafts} drafts, {feedback} feedback entries", cols,
                 [(row.product or "(unknown)", str(row.drafts), str(row.feedback), str(row.accepted), str(row.edited),
                   str(row.rejected), fmt(row.acceptance_rate), fmt(row.mean_edit_distance)) for row in store.stats()],
                 right=cols[1:])


@feedback_app.command("review")
@_domain_errors
def feedback_review(
    as_json: Annotated[bool, typer.Option("--json", help="the pending items as JSON")] = False,
) -> None:
    """List accepted and edited drafts waiting for review, each with its diff against the draft."""
    from dataclasses import asdict

    from rag.dataset_format import format_category
    from rag.feedback import FeedbackStore
    from rag.feedback_review import pending
    from rag.settings import load_settings

    items = pending(FeedbackStore(load_settings().feedback_db))
    if as_json:
        _out().json([{**asdict(p.item), "diff": p.diff} for p in items])
        return
    out = _out()
    out.text(f"{len(items)} item(s) pending review (approve: rag feedback approve ID; reject: rag feedback reject ID --reason …)")
    for p in items:
        i = p.item
        out.rule(f"feedback {i.feedback_id} · {i.verdict} · {format_category(i.product, i.subcategory)} · {i.created}")
        out.text(f"ticket: {' '.join(i.ticket.split())[:300]}")
        out.text(p.diff or f"(accepted as drafted)\n{i.final_text}")


def _reviewer(name: str | None) -> str:
    import getpass

    from rag.dataset_format import valid_reviewer

    who = name or getpass.getuser()
    if not valid_reviewer(who):
        _err("[bold red]error:[/]", f"--by: {who[:60]!r} is not a reviewer name (letters, digits, '.', '@', '-', up to 40)")
        raise typer.Exit(2)
    return who


@feedback_app.command("approve")
@_domain_errors
def feedback_approve(
    feedback_id: Annotated[int, typer.Argument(help="the item's feedback id (see rag feedback review)")],
    by: Annotated[Optional[str], typer.Option("--by", help="reviewer name (default: the login name)")] = None,
) -> None:
    """Approve one pending item: the next `rag feedback export` writes it as a case."""
    from rag.feedback import FeedbackStore
    from rag.settings import load_settings

    item = FeedbackStore(load_settings().feedback_db).review(feedback_id, "approved", _reviewer(by))
    _out().text(f"feedback {item.feedback_id} approved by {item.reviewer}")


@feedback_app.command("reject")
@_domain_errors
def feedback_reject(
    feedback_id: Annotated[int, typer.Argument(help="the item's feedback id (see rag feedback review)")],
    reason: Annotated[str, typer.Option("--reason", help="why it must not become a case")],
    by: Annotated[Optional[str], typer.Option("--by", help="reviewer name (default: the login name)")] = None,
) -> None:
    """Reject one pending item: it is never exported."""
    from rag.feedback import FeedbackStore
    from rag.settings import load_settings

    if not reason.strip():
        _err("[bold red]error:[/]", "--reason: say why the item is rejected")
        raise typer.Exit(2)
    item = FeedbackStore(load_settings().feedback_db).review(feedback_id, "rejected", _reviewer(by), reason.strip())
    _out().text(f"feedback {item.feedback_id} rejected by {item.reviewer}")


@feedback_app.command("export")
@_domain_errors
def feedback_export(
    out_file: Annotated[Path, typer.Option("--out", help="dataset file to write")] = Path("data/feedback_cases.md"),
) -> None:
    """Write approved feedback as de-identified cases in the dataset format (ingested by the next `rag ingest`)."""
    from rag.feedback import FeedbackStore
    from rag.feedback_export import corpus_identifiers, export_feedback
    from rag.parse import parse_paths
    from rag.settings import load_settings

    settings = load_settings()
    # Which hosts and tokens are public is the dataset's call (used across its cases), as in the guards.
    dataset, _ = parse_paths([settings.data_dir]) if settings.data_dir.exists() else ([], None)
    result = export_feedback(FeedbackStore(settings.feedback_db), allowlist=settings.link_allowlist,
                             corpus=corpus_identifiers(dataset))
    for message in result.skipped:  # one malformed item is skipped by id, never the whole export
        _err("[yellow]skipped:[/]", message)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_file.with_suffix(out_file.suffix + ".tmp")
    tmp.write_text(result.text, encoding="utf-8")
    tmp.replace(out_file)
    _out().text(f"wrote {len(result.cases)} case(s) to {out_file}; left out: {result.pending} pending review, "
                f"{result.rejected} rejected by a reviewer, {len(result.skipped)} malformed; "
                f"{result.collapsed} near-duplicate(s) folded into another case")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
