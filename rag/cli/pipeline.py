"""The ``Pipeline`` a command works on, built from the settings read once (overrides from its options)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the pipeline pulls in Chroma and numpy: imported when a command runs, so --help stays fast
    from rag.pipeline import Pipeline


def open_pipeline(**overrides: Any) -> "Pipeline":
    """``overrides`` are ``load_settings``' (nested by group: ``ingest={"strict": True}``)."""
    from rag.pipeline import Pipeline
    from rag.settings import load_settings

    return Pipeline(load_settings(**overrides))
