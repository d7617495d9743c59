"""Benchmark the drafters side by side on labelled tickets: offline, and each local model (or any endpoint).

    python eval/bench_llm.py [--tickets heldout|dev] [--covered 30] [--uncovered 30] [--seed 0]
                             [--drafters offline 0.5b 1.5b] [--variant team] [--threads 2]
                             [--plot docs/img/bench-llm.png] [--table FILE]
    python eval/bench_llm.py --report FOLDER     # the table of a finished run, from its records

Draws ``--covered`` tickets a past case answers and ``--uncovered`` others from the set (one fixed shuffle per
seed: a larger sample holds the smaller), drafts each with every drafter (an LLM failure becomes the flagged
offline draft, as in the service) and grades it with the grader's own checks (``rag/evaluation/llm_bench.py``).
A local model (``0.5b``, ``1.5b``; ``1.5b:small`` picks a prompt variant for that one) is started for its run
(``rag.llm.local``, the folder of ``LOCAL_LLM_DIR``) and stopped after it unless it was already running;
``--base-url URL --model NAME`` adds an endpoint as ``endpoint``. The generation settings are the local models'
(``rag.llm.local.SMALL_MODEL_ENV``) unless given. Completions are cached with their timing
(``$RAG_CACHE_DIR/bench-llm``): a rerun with unchanged prompts costs nothing and reports the stored timing.
Records go to ``--out`` (one JSON line per ticket and drafter), the summary to ``summary.json``, the table to stdout.
It prints figures and ticket ids, never a ticket's text: the held-out tickets are measured here, not read.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rag import Pipeline, load_settings
from rag.errors import RagError
from rag.evaluation.llm_bench import Grader, TimedCachedLLM, plot, records_of, run, sample, summarise, table, team_lengths
from rag.llm import local as local_llm
from rag.llm.client import LLMClient
from rag.score.labels import load_tickets

ROOT = Path(__file__).resolve().parent.parent
SETS = {"heldout2": ("heldout2_tickets.jsonl", "heldout2"), "heldout": ("heldout_tickets.jsonl", "heldout"),
        "dev": ("new_tickets.jsonl", None)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tickets", choices=tuple(SETS), default="heldout2")
    ap.add_argument("--covered", type=int, default=30)
    ap.add_argument("--uncovered", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--drafters", nargs="+", default=["offline", "0.5b", "1.5b"],
                    help="offline, a local model (0.5b, 1.5b) with an optional :variant, endpoint (--base-url)")
    ap.add_argument("--base-url")
    ap.add_argument("--model")
    small = {k.removeprefix("RAG_").lower(): v for k, v in local_llm.SMALL_MODEL_ENV.items()}
    ap.add_argument("--variant", default=small["prompt_variant"])
    ap.add_argument("--max-tokens", type=int, default=int(small["llm_max_tokens"]))
    ap.add_argument("--context-cases", type=int, default=int(small["llm_context_cases"]))
    ap.add_argument("--case-chars", type=int, default=int(small["llm_case_chars"]))
    ap.add_argument("--temperature", type=float, default=float(small["llm_temperature"]))
    ap.add_argument("--llm-seed", type=int, default=int(small["llm_seed"]))
    ap.add_argument("--deadline", type=float, default=300.0, help="per draft; generous: two shared cores")
    ap.add_argument("--threads", type=int, default=2, help="llama.cpp threads of a local server this run starts")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--plot", type=Path)
    ap.add_argument("--table", type=Path)
    ap.add_argument("--report", type=Path, metavar="FOLDER", help="print the table of a finished run; draft nothing")
    args = ap.parse_args()
    if args.report:
        report_only(args.report)
        return 0

    base = load_settings()
    file, split = SETS[args.tickets]
    tickets = sample(load_tickets(base.evaluation.labels_dir / file, split), args.covered, args.uncovered, args.seed)
    name = f"{args.tickets}-c{args.covered}-u{args.uncovered}-s{args.seed}"
    out = args.out or base.store.cache_dir.parent / "runs" / "bench-llm" / name
    out.mkdir(parents=True, exist_ok=True)
    pipeline = Pipeline(base)
    pipeline.ensure_ingested()
    cases = list(pipeline.cases.replay_cases())
    grader = Grader.from_cases(cases, base.draft.link_allowlist)
    team = team_lengths(cases)
    print(f"{len(tickets)} {args.tickets} tickets ({sum(t.covered for t in tickets)} covered), seed {args.seed}; "
          f"team answers: median {team[1]:.0f} chars, IQR {team[0]:.0f}–{team[2]:.0f}; records in {out}", flush=True)

    runs: dict[str, list[dict]] = {}
    for spec in args.drafters:
        key, _, variant = spec.partition(":")
        variant = variant or args.variant
        started = time.perf_counter()
        if key == "offline":
            label = "offline"
            records = run(pipeline.make_drafter(offline=True), tickets, grader, None, progress=_progress(label))
        else:
            label, records = _llm_run(key, variant, args, base, pipeline, tickets, grader)
        (out / f"{label}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                                            encoding="utf-8")
        runs[label] = records
        print(f"{label}: {len(records)} drafts in {time.perf_counter() - started:.0f} s", flush=True)

    summaries = {label: summarise(records) for label, records in runs.items()}
    (out / "summary.json").write_text(json.dumps({"tickets": args.tickets, "seed": args.seed, "team": team,
                                                  "summaries": summaries}, ensure_ascii=False, indent=1),
                                      encoding="utf-8")
    text = table(summaries, team)
    print()
    print(text)
    if args.table:
        args.table.write_text(text + "\n", encoding="utf-8")
    if args.plot:
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        plot(runs, team, args.plot)
        print(f"plot: {args.plot}")
    return 0


def _progress(label: str):
    def show(done: int, total: int, record: dict) -> None:
        call = record["llm"]
        how = "offline fallback" if record["draft"]["fallback"] else record["draft"]["action"]
        cached = " (cached)" if call and call["cached"] else ""
        print(f"  {label} {done}/{total} {record['id']}: {how}, {record['seconds']:.1f} s{cached}", flush=True)

    return show


def _llm_run(key, variant, args, base, pipeline, tickets, grader) -> tuple[str, list[dict]]:
    if key == "endpoint":
        if not (args.base_url and args.model):
            raise SystemExit("error: the endpoint drafter needs --base-url and --model")
        base_url, model, endpoint, started = args.base_url, args.model, args.base_url, None
    else:
        model_spec = local_llm.get_model(key)
        already = local_llm.running(model=model_spec)
        info = local_llm.start(model=model_spec, threads=args.threads)
        base_url, model, endpoint = info.base_url, info.model, f"local:{model_spec.key}"
        started = None if already else info.pid
    label = f"{key} {variant}"
    settings = base.updated(
        llm={"base_url": base_url, "model": model, "max_tokens": args.max_tokens, "temperature": args.temperature,
             "seed": args.llm_seed, "deadline": args.deadline, "timeout": args.deadline},
        draft={"llm_context_cases": args.context_cases, "llm_case_chars": args.case_chars})
    try:
        llm = TimedCachedLLM(LLMClient(settings.llm), settings.store.cache_dir / "bench-llm", settings.llm,
                             endpoint=endpoint)
        drafter = pipeline.make_drafter(variant=variant, llm=llm, settings=settings)
        records = run(drafter, tickets, grader, llm, progress=_progress(label))
    finally:
        if started is not None:
            local_llm.stop_pid(started)  # only the server this run started
    return label, records


def report_only(folder: Path) -> None:
    """The table of a finished run again, from its records (no drafting)."""
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    runs = {p.stem: records_of(p) for p in sorted(folder.glob("*.jsonl"))}
    print(table({n: summarise(r) for n, r in runs.items()}, summary["team"]))


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
