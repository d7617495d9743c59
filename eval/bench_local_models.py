"""Serving cost of the local models side by side: start-up, memory, first token and tokens/s on 2 cores.

    python eval/bench_local_models.py [--models 0.5b 1.5b] [--rounds 3] [--max-tokens 220]

Each round starts every model's llama.cpp server in turn (the order alternates between rounds), measures the
time from launch to the first answer of ``/v1/models`` (the model file's hash check is timed apart), the
server's RSS once ready and after the draft, then streams one drafting request: the prompt the drafter builds
for the README's ticket with its one fitting case (``small`` variant, the case cut to 400 characters; see
``rag.llm.local.SMALL_MODEL_ENV``), greedy, ``--max-tokens`` tokens at most; then stops the server. A new
server per round keeps llama.cpp's prompt cache from turning later first tokens into cache hits.

The machine is shared and its load moves from minute to minute, so every measurement is paired with a yardstick
taken just before it: a fixed pure-Python loop (3M multiply-adds, one core). Figures are printed raw and as
multiples of that yardstick; compare models by the ratios of one round, not by raw seconds across rounds.
The server's own CPU seconds (all its threads, from /proc) are reported too: with ``--threads 1`` they measure
the work per token with little regard to the load, and so compare the models better than wall time does.
Tokens are stream chunks (llama.cpp sends one token per chunk). A benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import httpx

from rag import Pipeline, load_settings
from rag.llm import local as local_llm
from rag.draft.writers.llm import LLMWriter
from rag.records import Ticket
from rag.settings import from_variables

TICKET = "我的CDN域名证书过期了，怎么更换免费证书？"


def yardstick() -> float:
    started = time.perf_counter()
    total = 0
    for i in range(3_000_000):
        total += i * i
    return time.perf_counter() - started


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s(pid: int) -> float:
    """CPU seconds the process has used (every thread): unlike wall time, barely moved by other load when the
    server runs one thread (with two, a thread spinning at a barrier while its partner is descheduled counts)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drafting_messages(info: local_llm.ServerInfo) -> list[dict[str, str]]:
    """What the drafter sends this server for the README's ticket, with one fitting case."""
    small = local_llm.SMALL_MODEL_ENV
    settings = load_settings(**from_variables({**{k: small[k] for k in ("RAG_PROMPT_VARIANT", "RAG_LLM_CASE_CHARS")},
                                               "RAG_LLM_BASE_URL": info.base_url, "RAG_LLM_MODEL": info.model}))
    pipeline = Pipeline(settings)
    pipeline.ensure_ingested()
    drafter = pipeline.make_drafter()
    ticket = Ticket(TICKET)
    hits = pipeline.retriever.retrieve(ticket).hits[:1]
    verdict = drafter.policy.decide(ticket, hits)
    if verdict.action != "answer" or not isinstance(drafter.writer, LLMWriter):
        raise SystemExit("the README's ticket no longer gets a fitting case: pick another ticket for this benchmark")
    return drafter.writer.messages(ticket, hits, verdict)


def one_draft(info: local_llm.ServerInfo, messages: list[dict[str, str]], max_tokens: int) -> dict[str, float | str]:
    body = {"model": info.model, "messages": messages, "max_tokens": max_tokens, "temperature": 0, "seed": 0,
            "stream": True}
    cpu0 = cpu_s(info.pid)
    started = time.perf_counter()
    first = None
    cpu_first = 0.0
    tokens = 0
    text: list[str] = []
    with httpx.stream("POST", f"{info.base_url}/chat/completions", json=body, timeout=900) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            delta = json.loads(line[6:])["choices"][0].get("delta", {}).get("content")
            if delta:
                text.append(delta)
                tokens += 1
                if first is None:
                    first = time.perf_counter() - started
                    cpu_first = cpu_s(info.pid) - cpu0
    total = time.perf_counter() - started
    cpu_total = cpu_s(info.pid) - cpu0
    first = first if first is not None else total
    generating = total - first
    return {"ttft": first, "total": total, "tokens": tokens, "text": "".join(text), "cpu_ttft": cpu_first,
            "cpu_tok_s": (tokens - 1) / (cpu_total - cpu_first) if tokens > 1 and cpu_total > cpu_first else 0.0,
            "tok_s": (tokens - 1) / generating if tokens > 1 and generating > 0 else 0.0}


def prompt_tokens(info: local_llm.ServerInfo, messages: list[dict[str, str]]) -> int:
    text = "\n".join(m["content"] for m in messages)  # without the chat template's dozen tokens
    r = httpx.post(f"{info.base_url.removesuffix('/v1')}/extras/tokenize", json={"input": text}, timeout=60)
    return len(r.json()["tokens"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=list(local_llm.MODELS), choices=list(local_llm.MODELS))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=220)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dir", type=Path, default=None, help="model folder (default: rag.paths.local_llm_dir)")
    args = ap.parse_args()
    folder = args.dir or local_llm.default_dir()
    messages: list[dict[str, str]] | None = None
    rows: list[dict] = []
    for n in range(args.rounds):
        order = args.models if n % 2 == 0 else list(reversed(args.models))
        for key in order:
            model = local_llm.MODELS[key]
            if local_llm.running(folder, model) is not None:
                raise SystemExit(f"a {key} server already runs from {folder}: stop it first (its prompt cache would skew the figures)")
            row: dict = {"round": n + 1, "model": key, "yard": yardstick(),
                         "load": float(Path("/proc/loadavg").read_text().split()[0])}
            started = time.perf_counter()
            local_llm.model_path(folder, model)
            row["hash_s"] = time.perf_counter() - started
            started = time.perf_counter()
            info = local_llm.start(folder, model=model, threads=args.threads)
            row["start_s"] = time.perf_counter() - started
            try:
                row["rss_ready"] = rss_mb(info.pid)
                messages = messages or drafting_messages(info)  # the same prompt for every model and round
                row["prompt_tokens"] = prompt_tokens(info, messages)
                row["yard2"] = yardstick()
                row.update(one_draft(info, messages, args.max_tokens))
                row["rss_after"] = rss_mb(info.pid)
                row["yard3"] = yardstick()
            finally:
                local_llm.stop(folder, model)
            rows.append(row)
            print(f"round {row['round']} {key}: load {row['load']:.1f}, yardstick {row['yard']:.2f}/{row['yard2']:.2f}/{row['yard3']:.2f} s, hash {row['hash_s']:.1f} s, "
                  f"start {row['start_s']:.1f} s (hash included), RSS {row['rss_ready']:.0f}->{row['rss_after']:.0f} MB, "
                  f"prompt {row['prompt_tokens']} tokens, first token {row['ttft']:.1f} s, {row['tokens']} tokens at "
                  f"{row['tok_s']:.1f}/s, {row['total']:.1f} s; CPU: first token {row['cpu_ttft']:.1f} s, "
                  f"{row['cpu_tok_s']:.1f} tokens per CPU-second", flush=True)
    for key in args.models:  # greedy: the same reply every round, unless the load changed llama.cpp's batching
        print(f"\n{key} wrote (round 1):\n{next(r['text'] for r in rows if r['model'] == key)}")
    print()
    print("| model | start s (× yard) | RSS MB ready / after | first token s (× yard) | tokens/s (× yard) | draft s | tokens "
          "| CPU s to first token | tokens per CPU-s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for key in args.models:
        mine = [r for r in rows if r["model"] == key]

        def med(k: str, scale: str | None = None) -> float:
            return statistics.median(r[k] / r[scale] if scale else r[k] for r in mine)

        def med_mul(k: str, scale: str) -> float:  # tokens/s × yardstick seconds: load-adjusted throughput
            return statistics.median(r[k] * r[scale] for r in mine)

        print(f"| {key} | {med('start_s'):.1f} ({med('start_s', 'yard'):.1f}) | {med('rss_ready'):.0f} / {med('rss_after'):.0f} | "
              f"{med('ttft'):.1f} ({med('ttft', 'yard2'):.1f}) | {med('tok_s'):.1f} ({med_mul('tok_s', 'yard2'):.1f}) | "
              f"{med('total'):.1f} | {med('tokens'):.0f} | {med('cpu_ttft'):.1f} | {med('cpu_tok_s'):.1f} |")
    if len(args.models) == 2:
        a, b = args.models
        print()
        for k, label in (("ttft", "first token"), ("total", "draft time"), ("cpu_ttft", "CPU to first token")):
            ratios = [rb[k] / ra[k] for n in range(1, args.rounds + 1)
                      for ra in rows if ra["round"] == n and ra["model"] == a
                      for rb in rows if rb["round"] == n and rb["model"] == b]
            print(f"{label}, {b} / {a} within each round: {', '.join(f'{x:.2f}' for x in ratios)}")
        for k, label in (("tok_s", "tokens/s"), ("cpu_tok_s", "tokens per CPU-second")):
            ratios = [ra[k] / rb[k] for n in range(1, args.rounds + 1)
                      for ra in rows if ra["round"] == n and ra["model"] == a
                      for rb in rows if rb["round"] == n and rb["model"] == b and rb[k]]
            print(f"{label}, {a} / {b} within each round: {', '.join(f'{x:.2f}' for x in ratios)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
