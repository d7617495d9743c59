"""How fast a draft is, cold and warm, as ratios against yardsticks measured in the same run. Prints figures; not a test.

    python eval/bench_speed.py [--cold-runs 5] [--warm-tickets 60]

- cold: `rag draft "证书过期怎么办"` in a new process (store already built), wall seconds, median of --cold-runs;
  the yardstick is `python -c "import chromadb"` run alternately with it, so both see the same load;
- HTTP: `rag serve` in its own process, 1 then 4 clients posting drafts for --http-seconds each
  (rag/evaluation/load_service.py); then, with that service running, cold `rag draft` with `RAG_SERVICE_URL` set
  (the CLI asks the service instead of opening the store), against the same yardstick;
- warm: in one process, Pipeline warmed up, then drafts for the development tickets (eval/relevance/new_tickets.jsonl)
  twice over: the first pass is a service's first sight of each ticket, the second what a repeat costs. The
  yardstick is a fixed pure-Python loop timed between the passes; milliseconds are given beside the ratio.

To time another commit, run a copy of it in that commit's worktree, with that worktree's `rag` importable (the cold
runs use the working folder's code; the in-process part imports `rag`).

Issue 25's aims: cold ≤ 1.5x the chromadb import; warm p50 < 30 ms, p95 < 60 ms (2 cores, load about 1).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TICKET = "证书过期怎么办"


def _wall(cmd: list[str], **env: str) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
                   env={**os.environ, "ANONYMIZED_TELEMETRY": "False", **env})
    return time.perf_counter() - start


def _yardstick_ms() -> float:
    start = time.perf_counter()
    total = 0
    for i in range(2_000_000):
        total += i % 7
    return (time.perf_counter() - start) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cold-runs", type=int, default=5)
    ap.add_argument("--warm-tickets", type=int, default=60)
    ap.add_argument("--http-seconds", type=float, default=15.0, help="per client count; 0 skips HTTP")
    args = ap.parse_args()

    rag_cli = [sys.executable, "-m", "rag.cli"]  # this checkout's code (cwd), also from a second worktree
    _wall([*rag_cli, "draft", TICKET])  # builds the store on a fresh checkout; not timed
    cold, chroma = [], []
    for _ in range(args.cold_runs):
        chroma.append(_wall([sys.executable, "-c", "import chromadb"]))
        cold.append(_wall([*rag_cli, "draft", TICKET]))
    c, y = statistics.median(cold), statistics.median(chroma)
    print(f"cold `rag draft`: median {c:.2f} s wall; `import chromadb` {y:.2f} s; ratio {c / y:.1f}x (aim <= 1.5x)")

    from rag import Pipeline, Ticket, load_settings
    from rag.score.labels import load_tickets

    tickets = load_tickets(ROOT / "eval" / "relevance" / "new_tickets.jsonl")[: args.warm_tickets]
    pipeline = Pipeline(load_settings())
    pipeline.ensure_ingested()
    pipeline.warm_up()
    drafter = pipeline.drafter
    passes: list[list[float]] = []
    for _ in range(2):
        times = []
        for t in tickets:
            start = time.perf_counter()
            drafter.draft(Ticket(t.text, product=t.product))
            times.append((time.perf_counter() - start) * 1000)
        passes.append(times)
    yard = statistics.median(_yardstick_ms() for _ in range(5))
    print(f"yardstick (2M-step Python loop): {yard:.0f} ms")
    for name, times in zip(("first sight", "repeat"), passes):
        p50, p95 = np.percentile(times, [50, 95])  # as eval/load_service.py reports them
        print(f"warm in-process, {name} ({len(times)} tickets): p50 {p50:.0f} ms ({p50 / yard:.2f} yardsticks), "
              f"p95 {p95:.0f} ms ({p95 / yard:.2f}) (aim < 30 / 60 ms)")
    if args.http_seconds > 0:
        from rag.evaluation import load_service

        # The service in its own process, as deployed; the same six tickets as eval/load_service.py.
        proc, url = load_service.start_server()
        try:
            for clients in (1, 4):
                print(f"HTTP POST /v1/drafts, {clients} client(s) (aim: 1 client p50 < 30 ms; 4 clients >= 40 req/s):")
                load_service.main(["--url", url, "--clients", str(clients), "--seconds", str(args.http_seconds)])
            served, chroma = [], []
            for _ in range(args.cold_runs):
                chroma.append(_wall([sys.executable, "-c", "import chromadb"]))
                served.append(_wall([*rag_cli, "draft", TICKET], RAG_SERVICE_URL=url))
            c, y = statistics.median(served), statistics.median(chroma)
            print(f"cold `rag draft` asking the running service (RAG_SERVICE_URL): median {c:.2f} s wall; "
                  f"`import chromadb` {y:.2f} s; ratio {c / y:.1f}x (aim <= 1.5x)")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
