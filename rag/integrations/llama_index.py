"""The case retriever as a llama-index retriever, and a query engine over it.

    pip install "qiniu-support-rag[llama-index]"

    from rag.integrations.llama_index import make_retriever, make_query_engine
    nodes = make_retriever(product="CDN").retrieve("证书过期了怎么办")
    answer = make_query_engine().query("证书过期了怎么办")      # needs RAG_LLM_BASE_URL / RAG_LLM_MODEL

The retrieval itself is the project's (hybrid lexical + dense, match rerank), not llama-index's: each
result is a ``NodeWithScore`` over a ``TextNode`` whose id is the case id and whose text is the past case
(title, question, the agent's substantive answer), with the case's metadata. No network at import or
construction: the LLM client is built from settings and only calls out on a query.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llama_index.core.callbacks import CallbackManager
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from rag.errors import ConfigError
from rag.records import Hit
from rag.retrieve.retrieval import Filters

if TYPE_CHECKING:
    from llama_index.core.query_engine import RetrieverQueryEngine

    from rag.pipeline import Pipeline
    from rag.settings import Settings

# Shown to the LLM with each case; the rest (ids, file, line, matched passage) is for the caller.
_LLM_METADATA = ("title", "product", "subcategory")


class CaseRetriever(BaseRetriever):
    """A llama-index ``BaseRetriever`` over the project's ``rag.retrieve.CaseRetriever``."""

    def __init__(self, pipeline: "Pipeline", *, product: str | None = None, scenario: str | None = None,
                 top_k: int | None = None, exclude: tuple[str, ...] = (),
                 callback_manager: CallbackManager | None = None) -> None:
        # Unset: RAG_TOP_K, as `rag search` without -k.
        top_k = pipeline.components.retrieval.top_k if top_k is None else top_k
        if top_k < 1:
            raise ConfigError("top_k must be >= 1")
        self.pipeline = pipeline
        catalog = pipeline.cases.catalog
        self.product = catalog.product(product)
        self.scenario = catalog.scenario(scenario)
        self.top_k = top_k
        self.exclude = tuple(exclude)  # case ids never returned: a leave-one-out evaluation sets it per query
        super().__init__(callback_manager=callback_manager)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        filters = Filters.of(product=self.product, scenario=self.scenario, exclude=self.exclude)
        hits = self.pipeline.retriever.retrieve(query_bundle.query_str, filters, self.top_k).hits
        return [NodeWithScore(node=self._node(h), score=h.score) for h in hits]

    @staticmethod
    def _node(hit: Hit) -> TextNode:
        case = hit.case
        metadata: dict[str, Any] = {
            "case_id": case.id, "title": case.title, "product": case.product, "subcategory": case.subcategory,
            "scenarios": list(case.scenarios), "source": case.source, "line": case.line,
            "matched_text": hit.chunk_text,
        }
        hidden = [k for k in metadata if k not in _LLM_METADATA]
        return TextNode(id_=case.id, text=f"{case.title}\n问题：{case.question}\n解答：{case.answer}", metadata=metadata,
                        excluded_llm_metadata_keys=hidden, excluded_embed_metadata_keys=list(metadata))


def _pipeline(settings: "Settings | None") -> "Pipeline":
    from rag.pipeline import Pipeline
    from rag.settings import load_settings

    p = Pipeline(settings or load_settings())
    p.ensure_ingested()  # a new user's first call works on the shipped sample corpus
    return p


def make_retriever(settings: "Settings | None" = None, *, product: str | None = None, top_k: int | None = None,
                   scenario: str | None = None) -> CaseRetriever:
    """The case retriever on ``settings`` (default: the environment's, i.e. the embedded store and corpus);
    ``top_k`` defaults to RAG_TOP_K."""
    return CaseRetriever(_pipeline(settings), product=product, scenario=scenario, top_k=top_k)


def make_llm(settings: "Settings"):
    """An OpenAI-compatible llama-index LLM from the project's settings (no request until it is used)."""
    if not settings.llm_configured:
        raise ConfigError("a query engine needs an LLM: set RAG_LLM_BASE_URL and RAG_LLM_MODEL")
    from llama_index.llms.openai_like import OpenAILike

    return OpenAILike(
        model=settings.llm_model, api_base=settings.llm_base_url,
        api_key=settings.llm_api_key.get_secret_value() or "none",
        temperature=settings.llm_temperature, max_tokens=settings.llm_max_tokens, timeout=settings.llm_timeout,
        max_retries=max(0, settings.llm_max_attempts - 1), is_chat_model=True, context_window=8192,
    )


def make_query_engine(settings: "Settings | None" = None, *, product: str | None = None,
                      top_k: int | None = None) -> "RetrieverQueryEngine":
    """A llama-index ``RetrieverQueryEngine``: the case retriever, answered by the configured LLM."""
    from llama_index.core.query_engine import RetrieverQueryEngine

    pipeline = _pipeline(settings)
    llm = make_llm(pipeline.settings)
    retriever = CaseRetriever(pipeline, product=product, top_k=top_k)
    return RetrieverQueryEngine.from_args(retriever, llm=llm)
