"""Read a GGUF file's header and tensor table, without loading it: what a model file claims to be.

The pinned sha256 in ``rag.llm.local`` is what guards a start; this is how a new pin is checked before it is
written down (``python -m rag.llm.local inspect --model M``): the header parses as GGUF, names the architecture
and quantisation expected, and the last tensor ends exactly where the file does (a part missing, repeated or out
of order shows up as a tensor table that does not fit the file). Format: the GGUF spec in ggml's repository
(little-endian; v2 and v3 share this layout).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32

# Metadata value types: struct format of the scalars; 8 = string, 9 = array.
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9

# ggml tensor types: (elements per block, bytes per block). Only the types llama.cpp's K-quant and legacy
# quantisations write; an unknown one is reported, not guessed.
BLOCKS = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34), 9: (32, 36),
    10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210), 15: (256, 292), 30: (1, 2),
}
# general.file_type (llama.cpp's LLAMA_FTYPE) for the names a model card uses.
FILE_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
              11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M",
              18: "Q6_K", 32: "BF16"}


class GGUFError(ValueError):
    """Not a GGUF file, or one whose tensor table does not fit the file."""


@dataclass(frozen=True)
class Layout:
    version: int
    metadata: dict[str, object]  # arrays are kept as their length: the tokenizer's vocabulary is 150k strings
    tensor_count: int
    data_start: int
    data_end: int  # where the last tensor's bytes end
    file_size: int

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "?"))

    @property
    def file_type(self) -> str:
        ft = self.metadata.get("general.file_type")
        return FILE_TYPES.get(ft, str(ft)) if isinstance(ft, int) else "?"

    @property
    def complete(self) -> bool:
        return self.data_end == self.file_size


def _read(f: BinaryIO, fmt: str) -> object:
    size = struct.calcsize(fmt)
    raw = f.read(size)
    if len(raw) != size:
        raise GGUFError("the file ends inside its header")
    return struct.unpack(fmt, raw)[0]


def _int(f: BinaryIO, fmt: str) -> int:
    value = _read(f, fmt)
    assert isinstance(value, int)
    return value


def _string(f: BinaryIO) -> str:
    n = _int(f, "<Q")
    raw = f.read(n)
    if len(raw) != n:
        raise GGUFError("the file ends inside its header")
    return raw.decode("utf-8", errors="replace")


def _value(f: BinaryIO, kind: int) -> object:
    if kind in _SCALARS:
        return _read(f, _SCALARS[kind])
    if kind == _STRING:
        return _string(f)
    if kind == _ARRAY:
        item, count = _int(f, "<I"), _int(f, "<Q")
        if item in _SCALARS:  # skip the items: only their count is kept
            f.seek(struct.calcsize(_SCALARS[item]) * count, 1)
        else:
            for _ in range(count):
                _value(f, item)
        return count
    raise GGUFError(f"unknown metadata value type {kind}")


def read_layout(path: Path) -> Layout:
    """Parse ``path``'s header and tensor table; raise GGUFError when it is not GGUF or cannot be read."""
    file_size = path.stat().st_size
    with path.open("rb") as f:
        if f.read(4) != MAGIC:
            raise GGUFError(f"{path} does not start with the GGUF magic")
        version = _int(f, "<I")
        if version not in (2, 3):
            raise GGUFError(f"{path}: GGUF version {version}, this reader knows 2 and 3")
        tensor_count, kv_count = _int(f, "<Q"), _int(f, "<Q")
        metadata: dict[str, object] = {}
        for _ in range(kv_count):
            key = _string(f)
            metadata[key] = _value(f, _int(f, "<I"))
        end = 0
        for _ in range(tensor_count):
            name = _string(f)
            dims = [_int(f, "<Q") for _ in range(_int(f, "<I"))]
            kind, offset = _int(f, "<I"), _int(f, "<Q")
            if kind not in BLOCKS:
                raise GGUFError(f"{path}: tensor {name} has ggml type {kind}, unknown to this reader")
            per_block, block_bytes = BLOCKS[kind]
            elements = 1
            for d in dims:
                elements *= d
            end = max(end, offset + elements // per_block * block_bytes)
        align = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
        align = align if isinstance(align, int) and align > 0 else DEFAULT_ALIGNMENT
        data_start = -(-f.tell() // align) * align
    return Layout(version, metadata, tensor_count, data_start, data_start + end, file_size)
