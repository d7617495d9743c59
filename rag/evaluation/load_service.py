"""Load the HTTP service from N concurrent clients for a bounded time, on loopback only.

    python eval/load_service.py [--clients 8]   (or: python -m rag.evaluation.load_service) [--seconds 20] [--url http://127.0.0.1:PORT]

Without --url it starts `rag serve` on a free loopback port (embedded defaults) and stops it after.
Prints requests, errors, throughput and p50/p95/max latency; exits 1 on any error.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit

import httpx
import numpy as np

from rag.llm.local import free_port
from rag.text.markers import POLITE_GREETING

TICKETS = [
    {"text": "证书过期了，怎么重新申请免费证书？", "product": "CDN"},
    {"text": "CDN 刷新缓存后多久生效"},
    {"text": "怎么查看上个月的账单明细"},
    {"text": "上传文件到空间报错 403 是什么原因"},
    {"text": "域名被其他账号绑定了，提示已存在怎么办"},
    {"text": "发票怎么开具，需要什么信息"},
]


def start_server() -> tuple[subprocess.Popen, str]:
    """`rag serve` on a free loopback port (this environment's settings), once it answers /healthz."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"rag serve exited with {proc.returncode}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.terminate()
    raise SystemExit("rag serve did not answer /healthz within 300 s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--max-requests", type=int, default=5000)
    ap.add_argument("--url")
    args = ap.parse_args(argv)
    proc = None
    url = args.url
    if url is None:
        proc, url = start_server()
    elif urlsplit(url).hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("this load script only targets loopback addresses")
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + args.seconds

    def client(n: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            i = n
            while time.monotonic() < stop_at:
                with lock:
                    if len(latencies) + len(errors) >= args.max_requests:
                        return
                t0 = time.perf_counter()
                try:
                    r = http.post("/v1/drafts", json=TICKETS[i % len(TICKETS)])
                    ok = r.status_code == 200 and r.json()["text"].startswith(POLITE_GREETING)
                    outcome = None if ok else f"HTTP {r.status_code}: {r.text[:100]}"
                except httpx.HTTPError as exc:
                    outcome = repr(exc)
                with lock:
                    (errors.append(outcome) if outcome else latencies.append((time.perf_counter() - t0) * 1000))
                i += 1

    try:
        started = time.monotonic()
        threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
    total = len(latencies) + len(errors)
    print(f"{args.clients} clients, {elapsed:.1f} s, {total} requests, {len(errors)} errors, {total / elapsed:.1f} req/s")
    if latencies:
        print(f"latency ms: p50 {np.percentile(latencies, 50):.0f}, p95 {np.percentile(latencies, 95):.0f}, max {max(latencies):.0f}")
    for e in errors[:5]:
        print("error:", e)
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
