"""Two `rag serve` replicas on one `chroma run` server and one PostgreSQL, loaded together, on loopback only.

    python eval/load_replicas.py [--clients 8] [--seconds 20] [--data DIR] [--no-kill]
    (or: python -m rag.evaluation.load_replicas)

It starts everything in a temporary folder and stops it after: a PostgreSQL server (initdb + pg_ctl; `rag feedback
migrate` sets up its schema), a `chroma run` server, one `rag ingest` into it, and replicas A and B, each with its
own RAG_HOME (nothing shared but the two servers). Then:

1. writes: each client drafts on one replica and sends four verdicts on that draft, alternating replicas, for
   ``--seconds``; halfway, replica B is killed (SIGKILL) and started again. Every 201 is an acknowledged write,
   by its feedback id. Afterwards PostgreSQL is read: every acknowledged id must be there (lost = 0). A request
   the dead replica could not answer is a failure its client saw, never counted as acknowledged.
2. rebuild: `rag ingest --rebuild` runs while two clients keep drafting on both replicas; both must serve the
   new generation (``/healthz``), with no failed draft.

Prints the figures; exits 1 on a lost write, a failure outside B's dead window, or a replica that did not follow.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from rag.evaluation.load_service import TICKETS
from rag.llm.local import free_port

VERDICTS = ("accepted", "edited", "rejected", "edited")
START_SECONDS = 300.0


@dataclass
class Replica:
    name: str
    home: Path
    port: int
    env: dict[str, str]
    proc: subprocess.Popen | None = None
    down: list[tuple[float, float]] = field(default_factory=list)  # (killed, serving again), monotonic
    killed_at: float | None = None  # set while it is down

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = (self.home / "serve.log").open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--port", str(self.port)],
                                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env)
        _wait_healthy(self.url, self.proc, self.home / "serve.log")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.killed_at = time.monotonic()
            self.proc.kill()  # SIGKILL: no shutdown, no flush; what a crash or an OOM kill does
            self.proc.wait(timeout=30)

    def restart(self) -> None:
        self.start()
        if self.killed_at is not None:
            self.down.append((self.killed_at, time.monotonic()))
            self.killed_at = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def was_down(self, t0: float, t1: float) -> bool:
        """Whether it was down at some moment between ``t0`` and ``t1``."""
        return self.killed_at is not None or any(t0 <= end and t1 >= start for start, end in self.down)


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url} exited ({proc.returncode}): {log.read_text(errors='replace')[-1500:]}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} did not serve within {START_SECONDS:.0f} s")


def _rag(env: dict[str, str], *args: str, log: Path) -> None:
    with log.open("ab") as out:
        done = subprocess.run([sys.executable, "-m", "rag.cli", *args], stdout=out, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, env=env, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"rag {' '.join(args)} failed ({done.returncode}): {log.read_text(errors='replace')[-1500:]}")


@dataclass
class Tally:
    drafts: int = 0
    sent: int = 0
    acknowledged: list[int] = field(default_factory=list)
    writes_failed: int = 0  # feedback writes that failed while replica B was down: seen by the client, expected
    drafts_failed: int = 0  # drafts that failed the same way
    unexpected: list[str] = field(default_factory=list)
    write_ms: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _writes(replicas: list[Replica], clients: int, seconds: float, max_drafts: int, kill: bool) -> tuple[Tally, float]:
    tally = Tally()
    stop_at = time.monotonic() + seconds

    def outcome(replica: Replica, t0: float, problem: str, *, write: bool) -> None:
        with tally.lock:
            if replica.was_down(t0, time.monotonic()):
                if write:
                    tally.writes_failed += 1
                else:
                    tally.drafts_failed += 1
            else:
                tally.unexpected.append(f"{replica.name}: {problem}")

    def client(n: int) -> None:
        i = n
        with httpx.Client(timeout=30) as http:
            while time.monotonic() < stop_at:
                with tally.lock:
                    if tally.drafts >= max_drafts:
                        return
                first, other = replicas[i % 2], replicas[(i + 1) % 2]
                i += 1
                t0 = time.monotonic()
                try:
                    r = http.post(first.url + "/v1/drafts", json=TICKETS[i % len(TICKETS)])
                except httpx.HTTPError as exc:
                    outcome(first, t0, repr(exc), write=False)
                    time.sleep(0.05)
                    continue
                if r.status_code != 200:
                    outcome(first, t0, f"draft HTTP {r.status_code}: {r.text[:120]}", write=False)
                    continue
                draft_id = r.json()["draft_id"]
                with tally.lock:
                    tally.drafts += 1
                for k, verdict in enumerate(VERDICTS):
                    replica = (other, first)[k % 2]
                    body: dict[str, str] = {"draft_id": draft_id, "verdict": verdict}
                    if verdict == "edited":
                        body["final_text"] = f"负载测试 {n}-{i}-{k}：客服改过的回复。"
                    elif verdict == "rejected":
                        body["reason"] = "load"
                    with tally.lock:
                        tally.sent += 1
                    t1 = time.monotonic()
                    try:
                        w = http.post(replica.url + "/v1/feedback", json=body)
                    except httpx.HTTPError as exc:
                        outcome(replica, t1, repr(exc), write=True)
                        continue
                    if w.status_code == 201:
                        with tally.lock:
                            tally.acknowledged.append(int(w.json()["id"]))
                            tally.write_ms.append((time.monotonic() - t1) * 1000)
                    else:
                        outcome(replica, t1, f"feedback HTTP {w.status_code}: {w.text[:120]}", write=True)

    def killer() -> None:
        time.sleep(seconds / 2)
        b = replicas[1]
        b.kill()
        time.sleep(1.0)
        b.restart()

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    if kill:
        threads.append(threading.Thread(target=killer))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return tally, time.monotonic() - started


def _generation(replica: Replica) -> int:
    return int(httpx.get(replica.url + "/healthz", timeout=30).json()["generation"])


def _rebuild(replicas: list[Replica], ingest_env: dict[str, str], log: Path) -> tuple[int, int, list[float], int, list[str]]:
    """Rebuild while two clients draft on both replicas; (before, after, seconds each replica took to follow after
    the ingest ended, drafts served meanwhile, failures)."""
    before = [_generation(r) for r in replicas]
    if len(set(before)) != 1:
        raise SystemExit(f"the replicas serve different generations before the rebuild: {before}")
    done = threading.Event()
    served = [0]
    failures: list[str] = []

    def drafting(n: int) -> None:
        with httpx.Client(timeout=60) as http:
            i = n
            while not done.is_set():
                replica = replicas[i % 2]
                i += 1
                try:
                    r = http.post(replica.url + "/v1/drafts", json=TICKETS[i % len(TICKETS)])
                    if r.status_code == 200:
                        served[0] += 1
                    else:
                        failures.append(f"{replica.name}: HTTP {r.status_code}: {r.text[:120]}")
                except httpx.HTTPError as exc:
                    failures.append(f"{replica.name}: {exc!r}")

    threads = [threading.Thread(target=drafting, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    try:
        _rag(ingest_env, "ingest", "--rebuild", log=log)
        ended = time.monotonic()
        follow: list[float] = []
        for replica in replicas:  # /healthz reads the generation and reloads on a new one, as any request does
            deadline = ended + 120
            while _generation(replica) == before[0]:
                if time.monotonic() > deadline:
                    raise SystemExit(f"replica {replica.name} still serves generation {before[0]} 120 s after the rebuild")
                time.sleep(0.1)
            follow.append(time.monotonic() - ended)
        time.sleep(1.0)  # drafts on the new generation, from both replicas
    finally:
        done.set()
        for t in threads:
            t.join()
    after = [_generation(r) for r in replicas]
    if len(set(after)) != 1 or after[0] <= before[0]:
        raise SystemExit(f"the replicas serve generations {after} after the rebuild (before: {before[0]})")
    return before[0], after[0], follow, served[0], failures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--max-drafts", type=int, default=5000)
    ap.add_argument("--data", type=Path, help="corpus folder to ingest (default: RAG_DATA_DIR, else the checkout's data/)")
    ap.add_argument("--no-kill", action="store_true", help="do not kill replica B halfway")
    args = ap.parse_args(argv)

    import psycopg

    from rag.evaluation.postgres_server import TemporaryPostgres
    from rag.feedback.postgres import redact
    from rag.settings import load_settings

    data = args.data or load_settings().ingest.data_dir
    root = Path(tempfile.mkdtemp(prefix="rag-replicas-"))
    chroma: subprocess.Popen | None = None
    replicas: list[Replica] = []
    with TemporaryPostgres() as pg:
        try:
            url = pg.create_database("rag")
            chroma_port = free_port()
            chroma_bin = Path(sys.executable).parent / "chroma"
            with (root / "chroma.log").open("ab") as chroma_log:
                chroma = subprocess.Popen([str(chroma_bin if chroma_bin.exists() else "chroma"), "run", "--path",
                                           str(root / "chroma-data"), "--host", "127.0.0.1", "--port", str(chroma_port)],
                                          stdout=chroma_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            base = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
            base.update(ANONYMIZED_TELEMETRY="False", RAG_CHROMA_URL=f"http://127.0.0.1:{chroma_port}",
                        RAG_FEEDBACK_URL=url, RAG_DATA_DIR=str(data), RAG_COLLECTION="replicas")

            def role(name: str) -> dict[str, str]:
                (root / name).mkdir()
                return {**base, "RAG_HOME": str(root / name)}

            ingest_env = role("ingest")
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{chroma_port}/api/v2/heartbeat", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or chroma.poll() is not None:
                    raise SystemExit(f"chroma run did not start: {(root / 'chroma.log').read_text(errors='replace')[-800:]}")
                time.sleep(0.3)
            _rag(ingest_env, "feedback", "migrate", log=root / "ingest" / "cli.log")
            _rag(ingest_env, "ingest", log=root / "ingest" / "cli.log")
            replicas = [Replica(n, root / n, free_port(), role(n)) for n in ("A", "B")]
            for r in replicas:
                r.start()

            tally, elapsed = _writes(replicas, args.clients, args.seconds, args.max_drafts, kill=not args.no_kill)
            with psycopg.connect(url) as conn:
                stored = {int(i) for (i,) in conn.execute("SELECT id FROM feedback")}
            acked = set(tally.acknowledged)
            lost = acked - stored
            g0, g1, follow, rebuild_drafts, rebuild_failures = _rebuild(replicas, ingest_env, root / "ingest" / "cli.log")
        finally:
            for r in replicas:
                r.stop()
            if chroma is not None and chroma.poll() is None:
                chroma.terminate()
                chroma.wait(timeout=30)

    b = replicas[1]
    print(f"2 replicas of rag serve on one chroma run server and one PostgreSQL ({redact(url)}), "
          f"{args.clients} clients, {elapsed:.1f} s")
    window = ""
    if b.down:
        killed, back = b.down[0]
        window = f"; replica B killed (SIGKILL) and serving again {back - killed:.1f} s later"
    print(f"writes: {tally.sent} feedback writes sent on {tally.drafts} drafts, {len(acked)} acknowledged (201), "
          f"{tally.writes_failed} failed while B was down (the client saw the failure; "
          f"{tally.drafts_failed} drafts too){window}")
    print(f"found: {len(acked & stored)} of {len(acked)} acknowledged writes in PostgreSQL, {len(lost)} lost; "
          f"{len(stored - acked)} committed without an acknowledgement (the client saw an error)")
    if tally.write_ms:
        print(f"feedback write ms: p50 {np.percentile(tally.write_ms, 50):.0f}, p95 {np.percentile(tally.write_ms, 95):.0f}, "
              f"max {max(tally.write_ms):.0f}; {len(acked) / elapsed:.1f} acknowledged writes/s")
    print(f"rebuild: generation {g0} -> {g1}; replica A followed {follow[0]:.2f} s and B {follow[1]:.2f} s after "
          f"`rag ingest --rebuild` ended; {rebuild_drafts} drafts served during it, {len(rebuild_failures)} failed")
    for problem in (tally.unexpected + rebuild_failures)[:5]:
        print("error:", problem)
    failed = bool(lost or tally.unexpected or rebuild_failures or not acked)
    if failed:
        print(f"logs kept in {root} (serve.log per replica, ingest/cli.log, chroma.log)")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
