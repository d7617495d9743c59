"""Benchmark the LLM path against the local model: latency, tokens/s and scores beside the offline drafter.

    python eval/bench_llm.py [--cases 8] [--seed 0] [--base-url URL --model NAME] [--variant small ...]

Without ``--base-url`` it starts (or reuses) the local llama.cpp server (``rag.local_llm``; needs the
``local-llm`` extra: ``bash scripts/local-llm.sh start``). It runs the same evaluation as
``rag eval --backend llm --limit N --seed S`` on that fixed subset, with every call streamed and timed
(time to first token, total), no LLM cache, then ``rag eval --limit N --seed S`` offline on the same
cases, and prints one row per case and the means. Tokens are counted as stream chunks (llama.cpp sends
one token per chunk). A draft is *usable* when the model's reply became the draft: not empty, Chinese,
not cut at max_tokens, passing the output checks (anything else is an offline fallback, with its reason).
The generation settings default to the ones ``scripts/local-llm.sh start`` prints for the local model
(``rag.local_llm.SMALL_MODEL_ENV``). This is a benchmark, not a test: it prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from rag import Pipeline, load_settings
from rag import local_llm
from rag.draft.chat import ChatModel, Completion
from rag.evaluation import EvalConfig, run_eval
from rag.draft.guards import neutralise_ticket
from rag.records import Usage

_CHINESE = re.compile(r"[\u4e00-\u9fff]")
_TICKET = re.compile(r"<customer_message>\n(.*)\n</customer_message>", re.S)


class TimedLLM:
    """A ``ChatModel`` that streams every call (so the first token can be timed) and hands back a whole
    completion."""

    def __init__(self, inner: ChatModel) -> None:
        self.inner = inner
        self.model = inner.model
        self.timings: dict[str, dict] = {}

    def complete(self, messages, *, max_tokens=None, temperature=None, deadline=None) -> Completion:
        started = time.perf_counter()
        first = None
        parts: list[str] = []
        for delta in self.inner.stream(messages, deadline=deadline):
            if first is None:
                first = time.perf_counter() - started
            parts.append(delta)
        total = time.perf_counter() - started
        m = _TICKET.search(messages[-1]["content"])
        key = m.group(1).strip() if m else ""
        generating = total - (first or 0.0)
        self.timings[key] = {"ttft": first or total, "total": total, "tokens": len(parts),
                             "tok_s": (len(parts) - 1) / generating if generating > 0 and len(parts) > 1 else 0.0}
        return Completion("".join(parts), Usage(0, len(parts)), self.model)

    def stream(self, messages, *, deadline=None):
        return self.inner.stream(messages, deadline=deadline)


class TimedPipeline(Pipeline):
    timed: TimedLLM | None = None

    def llm(self) -> ChatModel | None:
        inner = super().llm()
        self.timed = TimedLLM(inner) if inner else None
        return self.timed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
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
    args = ap.parse_args()
    if args.base_url:
        base_url, model = args.base_url, args.model
    else:
        info = local_llm.start()
        base_url, model = info.base_url, info.model
    llm_cache = Path(tempfile.mkdtemp(prefix="bench-llm-"))  # no cached replies: every draft meets the model
    base = load_settings()
    settings = base.updated(llm_base_url=base_url, llm_model=model, llm_max_tokens=args.max_tokens,
                            llm_context_cases=args.context_cases, llm_case_chars=args.case_chars,
                            llm_temperature=args.temperature, llm_seed=args.llm_seed, llm_deadline=args.deadline,
                            llm_timeout=args.deadline, cache_dir=llm_cache)
    out = ROOT / "eval" / "runs"
    pipeline = TimedPipeline(settings)
    pipeline.ensure_ingested()
    print(f"model {model} at {base_url}; {args.cases} cases, seed {args.seed}; prompt variant {args.variant}, "
          f"{args.context_cases} cases of {args.case_chars} chars in the prompt, max_tokens {args.max_tokens}, "
          f"temperature {args.temperature:g}, sampling seed {args.llm_seed}")
    print(f"same cases as: rag eval --backend llm --limit {args.cases} --seed {args.seed}  (and without --backend llm)")
    started = time.perf_counter()
    llm_run = run_eval(pipeline, EvalConfig(backend="llm", variant=args.variant, limit=args.cases, seed=args.seed, k=5),
                       out)
    llm_seconds = time.perf_counter() - started
    offline_run = run_eval(Pipeline(base), EvalConfig(limit=args.cases, seed=args.seed, k=5), out)
    timings = pipeline.timed.timings if pipeline.timed else {}
    offline = {r["case_id"]: r for r in offline_run.cases}

    print()
    print("| case | TTFT s | total s | tokens | tok/s | action LLM / offline | ROUGE-L LLM / offline | chrF LLM / offline | outcome |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    usable = 0
    for r in llm_run.cases:
        t = timings.get(neutralise_ticket(r["ticket"]).strip(), {})  # the message block holds the ticket's text only
        o = offline[r["case_id"]]
        rows.append(t)
        ok = not r["draft"]["fallback"] and bool(_CHINESE.search(r["draft"]["text"]))
        usable += ok
        reason = next((n.removeprefix("LLM failed, offline fallback: ") for n in r["draft"]["notes"]
                       if n.startswith("LLM failed, offline fallback: ")), "refused")
        outcome = ("LLM draft" if ok else f"offline fallback: {reason[:60]}" if r["draft"]["fallback"]
                   else "LLM draft, not in Chinese")
        print(f"| {r['title'][:18]} | {t.get('ttft', float('nan')):.1f} | {t.get('total', float('nan')):.1f} | "
              f"{t.get('tokens', 0)} | {t.get('tok_s', 0):.1f} | {r['draft']['action']} / {o['draft']['action']} | "
              f"{r['scores']['rouge_l']:.3f} / {o['scores']['rouge_l']:.3f} | {r['scores']['chrf']:.3f} / {o['scores']['chrf']:.3f} | "
              f"{outcome} |")
    timed = [t for t in rows if t]

    def med(key: str) -> float:
        return statistics.median(t[key] for t in timed) if timed else float("nan")

    print()
    print(f"usable LLM drafts: {usable}/{len(llm_run.cases)}")
    print(f"LLM: {len(timed)} timed drafts in {llm_seconds:.0f} s; median TTFT {med('ttft'):.1f} s, median total "
          f"{med('total'):.1f} s, median {med('tok_s'):.1f} tokens/s; {llm_run.summary['errors']} fell back to offline")
    print("| backend | ROUGE-L | chrF | BLEU | action agreement | link P | link R | leaks | invented links | confidence |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, run in (("llm " + model, llm_run), ("offline", offline_run)):
        o = run.summary["overall"]
        fmt = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
        print(f"| {name} | {fmt(o['rouge_l'])} | {fmt(o['chrf'])} | {fmt(o['bleu'])} | {fmt(o['action_agreement'])} | "
              f"{fmt(o['link_precision'])} | {fmt(o['link_recall'])} | {run.summary['totals']['leaked_identifiers']} | "
              f"{run.summary['totals']['invented_links']} | {fmt(o['confidence'])} |")
    print(f"run folders: {llm_run.folder}  {offline_run.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
