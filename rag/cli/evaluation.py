"""``rag eval`` (replay the store's cases and score the drafts, with the baseline gate) and ``rag eval compare``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from rag.cli.console import ProgressBar, domain_errors, err, out
from rag.cli.pipeline import open_pipeline
from rag.errors import RagError

eval_app = typer.Typer(rich_markup_mode=None, help="Replay real tickets and score drafts against the real answers.")


def _variant(prompts_dir: Path, name: str) -> str:
    """A prompt variant that exists, checked before a run starts (exit 2 listing the ones there are)."""
    from rag.llm.prompts import variants

    known = variants(prompts_dir) if prompts_dir.is_dir() else []
    if name not in known:
        raise RagError(f"--variant: no prompt variant '{name}' in {prompts_dir}; available: {', '.join(known) or 'none'}")
    return name


@eval_app.callback(invoke_without_command=True)
@domain_errors
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
    as_json: Annotated[bool, typer.Option("--json", help="print the run's summary (and the gate's verdict) as JSON")] = False,
) -> None:
    """Run an evaluation (leave-one-out over the cases in the store by default) and write a run folder."""
    if ctx.invoked_subcommand:
        return
    import time

    began = time.perf_counter()  # the header's time is the command's: opening the store included
    from dataclasses import asdict

    from rag.evaluation import EvalConfig, run_eval
    from rag.evaluation import baseline as gate_mod
    from rag.paths import bundled

    if backend not in ("offline", "llm") or split not in ("loo", "split"):
        raise RagError("--backend must be offline or llm, --split must be loo or split")
    p = open_pipeline()
    variant = _variant(p.settings.draft.prompts_dir, variant or p.settings.draft.prompt_variant)
    cfg = EvalConfig(backend=backend, variant=variant, split=split, seed=seed, test_fraction=test_fraction,  # type: ignore[arg-type]  # strs checked against the Literals above
                     limit=limit, concurrency=concurrency, judge=judge)
    if runs_dir is None:
        from rag.paths import checkout_root

        root = checkout_root()
        runs_dir = root / "eval" / "runs" if root is not None else p.settings.home / "runs"
    baseline_path = baseline_file or p.settings.evaluation.baseline_path
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
    with ProgressBar() as bar:
        p.ensure_ingested(progress=bar)
        opened = time.perf_counter()
        result = run_eval(p, cfg, runs_dir, progress=lambda done, total: bar("draft", done, total))
    wall = time.perf_counter() - began
    summary = result.summary
    printed = out()
    verdict = gate_mod.check(summary, base) if gate and base is not None else None
    if update_baseline:
        gate_mod.save(gate_mod.make_baseline(summary), baseline_path)
    if as_json:
        printed.json({"folder": str(result.folder), "wall_seconds": round(wall, 1), **summary,
                      **({"gate": {"ok": verdict.ok, "failures": list(verdict.failures)}} if verdict else {}),
                      **({"baseline_written": str(baseline_path)} if update_baseline else {})})
    else:
        from rag.evaluation.report import sets_text

        rows = [(m, f"{v:.3f}") for m, v in summary["overall"].items() if v is not None]
        rows += [(f"{name.replace('_', ' ')} (total)", str(total)) for name, total in summary["totals"].items()]
        if summary.get("judge_errors"):
            rows.append(("judge failures (cases)", str(summary["judge_errors"])))
        t = summary["timings"]
        printed.table(f"{summary['cases']} cases · {summary['sets']['tickets']['replayed']} tickets · "
                      f"{summary['backend']} · {wall:.1f} s", ("metric", "value"), rows, right=("value",))
        printed.text(sets_text(summary))
        printed.text(f"time: {wall:.1f} s in all (opening the store {opened - began:.1f}, setup {t['setup']}, "
                     f"cases {t['cases']}, tickets {t['tickets']}, report {t['report']})")
        printed.text(f"run folder: {result.folder}  (report.md, summary.json, scores.png, cases/)")
        if update_baseline:
            printed.text(f"baseline written: {baseline_path}")
    if verdict is not None:
        for f in verdict.failures:
            err("[red]gate:[/]", f)
        if not verdict.ok:
            raise typer.Exit(1)
        if not as_json:
            printed.styled("[green]gate passed[/]", "gate passed")


@eval_app.command("compare")
@domain_errors
def eval_compare(
    run_a: Path,
    run_b: Path,
    common: Annotated[bool, typer.Option("--common", help="compare only the cases and tickets both runs graded "
                                                          "(runs over different ones are refused without it)")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Metric deltas from RUN_A to RUN_B, each with a paired bootstrap 95% interval, and the cases that moved most."""
    from rag.evaluation.compare import compare
    from rag.evaluation.runner import load_run

    for folder in (run_a, run_b):
        if not (folder / "summary.json").is_file():
            raise RagError(f"{folder} is not an evaluation run folder (no summary.json)")
    result = compare(load_run(run_a), load_run(run_b), common=common)
    printed = out()
    if as_json:
        printed.json(result)
        return
    f = lambda v, sign="": "–" if v is None else f"{v:{sign}.4f}"  # noqa: E731
    rows = []
    for m, d in [*result["metrics"].items(), *((f"{m} (total)", d) for m, d in result["totals"].items())]:
        if d["a"] is None and d["b"] is None:
            continue
        interval = "–" if d["low"] is None else f"[{d['low']:+.4f}, {d['high']:+.4f}]"
        beyond = "–" if d["low"] is None else "yes" if d["low"] > 0 or d["high"] < 0 else "no"
        rows.append((m, f(d["a"]), f(d["b"]), f(d["delta"], "+"), interval, beyond))
    c, boot = result["compared"], result["bootstrap"]
    title = (f"{run_a.name} → {run_b.name} · {c['cases']} cases, {c['tickets']} tickets"
             + (" (common to both runs only)" if c["common_only"] else ""))
    printed.table(title, ("metric", "A", "B", "Δ", f"{boot['level']:.0%} interval", "beyond noise"), rows,
                  right=("A", "B", "Δ"))
    printed.text(f"intervals: {boot['method']}; {boot['resamples']} resamples, seed {boot['seed']}. "
                 "'beyond noise': the interval excludes 0.")
    for why in c["differences"]:
        err("[yellow]note:[/]", f"compared the common part only; {why}")
    printed.table("cases that moved most (ROUGE-L)", ("case", "title", "A", "B", "Δ"),
                  [(m["case_id"], m["title"], f"{m['a']:.3f}", f"{m['b']:.3f}", f"{m['delta']:+.3f}") for m in result["moved"]],
                  right=("A", "B", "Δ"))
