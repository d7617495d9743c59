"""Issue 24's slow-client burst against a real `rag serve`, with /healthz timed throughout. Prints figures; not a test.

    python eval/slow_clients.py [--seconds 45] [--slow-headers 300] [--slow-bodies 200] [--streams 50]

It starts `rag serve` on a free loopback port (the environment's store: ingest first, or it ingests), then opens
at once: connections that send a request's headers a byte every 2 s, connections that send full headers and then
a JSON body a byte every 2 s, and streamed drafts whose client reads the status line and nothing more. Meanwhile
it asks /healthz every 200 ms on a fresh connection. Every loop is bounded in count and time; it talks only to
127.0.0.1 and stops the server at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable

import httpx

from rag.evaluation.load_service import start_server

TICKET = json.dumps({"text": "我的CDN域名证书过期了，怎么更换免费证书？"}, ensure_ascii=False).encode("utf-8")


async def _closed_within(reader: asyncio.StreamReader, limit: float) -> tuple[float | None, bytes]:
    """Seconds until the server ended the connection (None: still open at ``limit``), and what it sent."""
    started = time.monotonic()
    got = b""
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(4096), max(0.01, limit - (time.monotonic() - started)))
            if not chunk:
                return time.monotonic() - started, got
            got += chunk
    except (asyncio.TimeoutError, ConnectionError):
        return (None if time.monotonic() - started >= limit else time.monotonic() - started), got


async def dripping(port: int, limit: float, head: bytes, drop: bytes) -> tuple[float | None, bytes]:
    """A client that sends ``head``, then one ``drop`` every 2 s: how long until the server closes on it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)
    await writer.drain()

    async def drip() -> None:
        for _ in range(int(limit / 2)):
            await asyncio.sleep(2)
            writer.write(drop)
            await writer.drain()

    task = asyncio.create_task(drip())
    try:
        return await _closed_within(reader, limit)
    finally:
        task.cancel()
        writer.close()


def slow_header(port: int, limit: float) -> Awaitable[tuple[float | None, bytes]]:
    return dripping(port, limit, b"POST /v1/drafts HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"X")


def slow_body(port: int, limit: float) -> Awaitable[tuple[float | None, bytes]]:
    return dripping(port, limit, b"POST /v1/drafts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 1000\r\n\r\n{", b" ")


async def idle_stream(port: int, limit: float) -> tuple[bytes, float | None]:
    """A streamed draft whose client reads the status line only (a tiny receive buffer), then stops reading."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    await loop.sock_sendall(sock, b"POST /v1/drafts/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                  + f"Content-Length: {len(TICKET)}\r\n\r\n".encode() + TICKET)
    status = await asyncio.wait_for(loop.sock_recv(sock, 12), limit)
    started = time.monotonic()
    await asyncio.sleep(limit)  # reads nothing more
    try:
        sock.setblocking(True)
        sock.settimeout(0.5)
        while sock.recv(65536):  # drain what was buffered: EOF or a reset means the server ended it
            pass
        ended: float | None = time.monotonic() - started
    except (socket.timeout, BlockingIOError):
        ended = None
    except ConnectionError:
        ended = time.monotonic() - started
    finally:
        sock.close()
    return status, ended


async def health(port: int, seconds: float) -> list[float]:
    times: list[float] = []
    end = time.monotonic() + seconds
    async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        while time.monotonic() < end:
            started = time.perf_counter()
            r = await client.get(f"http://127.0.0.1:{port}/healthz")
            times.append((time.perf_counter() - started) * 1000 if r.status_code == 200 else float("inf"))
            await asyncio.sleep(0.2)
    return times


def _summary(name: str, results: list[tuple[float | None, bytes]]) -> str:
    closed = [t for t, _ in results if t is not None]
    statuses = {}
    for _, got in results:
        key = got[9:12].decode("latin-1") if got.startswith(b"HTTP/1.1") else "none"
        statuses[key] = statuses.get(key, 0) + 1
    when = f"median {statistics.median(closed):.1f} s, max {max(closed):.1f} s" if closed else "-"
    return f"{name}: {len(results)} opened, {len(closed)} cut by the server ({when}); responses {statuses}"


async def burst(port: int, args: argparse.Namespace) -> None:
    limit = args.seconds
    tasks = [slow_header(port, limit) for _ in range(args.slow_headers)]
    tasks += [slow_body(port, limit) for _ in range(args.slow_bodies)]
    streams = [idle_stream(port, min(limit, 40)) for _ in range(args.streams)]
    started = time.monotonic()
    h, *rest = await asyncio.gather(health(port, limit), asyncio.gather(*tasks, return_exceptions=True),
                                    asyncio.gather(*streams, return_exceptions=True))
    opened, stream_results = rest
    headers = [r for r in opened[: args.slow_headers] if not isinstance(r, BaseException)]
    bodies = [r for r in opened[args.slow_headers:] if not isinstance(r, BaseException)]
    errors = sum(isinstance(r, BaseException) for r in list(opened) + list(stream_results))
    print(f"burst of {args.seconds:.0f} s on 127.0.0.1:{port}, load {os.getloadavg()[0]:.1f} (1-min)")
    finite = [t for t in h if t != float("inf")]
    print(f"/healthz: {len(h)} requests, {len(h) - len(finite)} failed, median {statistics.median(finite):.0f} ms, "
          f"p95 {sorted(finite)[int(0.95 * (len(finite) - 1))]:.0f} ms, max {max(finite):.0f} ms")
    print(_summary("slow headers", headers))
    print(_summary("slow bodies", bodies))
    ok = [r for r in stream_results if not isinstance(r, BaseException)]
    codes: dict[str, int] = {}
    for status, _ in ok:
        codes[status[9:12].decode("latin-1")] = codes.get(status[9:12].decode("latin-1"), 0) + 1
    held = sum(1 for _, ended in ok if ended is None)
    print(f"non-reading streams: {len(ok)} opened, status {codes}; still open after the wait: {held}")
    print(f"client-side errors (refused or reset connections): {errors}; wall {time.monotonic() - started:.0f} s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=45.0)
    ap.add_argument("--slow-headers", type=int, default=300)
    ap.add_argument("--slow-bodies", type=int, default=200)
    ap.add_argument("--streams", type=int, default=50)
    args = ap.parse_args(argv)
    proc, url = start_server()
    port = int(url.rsplit(":", 1)[1])
    try:
        asyncio.run(burst(port, args))
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
