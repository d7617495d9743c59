"""Support reply drafter for Qiniu Cloud tickets.

    from rag import Pipeline, load_settings, Ticket
    p = Pipeline(load_settings())
    p.ensure_ingested()
    draft = p.drafter.draft(Ticket("证书过期了，怎么更换？", product="CDN"))
"""

from rag.errors import RagError
from rag.pipeline import Pipeline
from rag.records import Case, Chunk, Citation, Draft, Hit, Score, Ticket, Turn
from rag.settings import Settings, load_settings

__all__ = [
    "Case", "Chunk", "Citation", "Draft", "Hit", "Pipeline", "RagError", "Score", "Settings", "Ticket", "Turn",
    "load_settings",
]
