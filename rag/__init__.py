"""Support reply drafter for Qiniu Cloud tickets.

    from rag import Pipeline, load_settings, Ticket
    p = Pipeline(load_settings())
    p.ensure_ingested()
    draft = p.drafter.draft(Ticket("证书过期了，怎么更换？", product="CDN"))

The names below are imported on first use (module ``__getattr__``), so ``import rag`` and ``rag --help``
stay fast: the pipeline pulls in Chroma, numpy and the embedding model.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {
    "Case": "rag.records", "Chunk": "rag.records", "Citation": "rag.records", "Draft": "rag.records",
    "Hit": "rag.records", "Ticket": "rag.records", "Turn": "rag.records",
    "Pipeline": "rag.pipeline", "RagError": "rag.errors", "Settings": "rag.settings", "load_settings": "rag.settings",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rag' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:
    from rag.errors import RagError
    from rag.pipeline import Pipeline
    from rag.records import Case, Chunk, Citation, Draft, Hit, Ticket, Turn
    from rag.settings import Settings, load_settings
