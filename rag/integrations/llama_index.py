"""The case retriever as a llama-index retriever, and a query engine that drafts through the project's drafter.

    pip install "qiniu-support-rag[llama-index]"

    from rag.integrations.llama_index import make_retriever, make_query_engine
    nodes = make_retriever(product="CDN").retrieve("证书过期了怎么办")
    response = make_query_engine().query("证书过期了怎么办")    # offline, or RAG_LLM_*, or llm=<any llama-index LLM>
    response.metadata["action"]                                   # answer | ask_for_info | escalate

The retrieval is the project's (hybrid lexical + dense, match rerank), not llama-index's: each result is a
``NodeWithScore`` over a ``TextNode`` whose id is the case id and whose text is the past case (title,
question, the agent's substantive answer), with the case's metadata. llama-index ``MetadataFilters`` map onto
the project's ``Filters``; a filter they cannot express is refused, never dropped.

The query engine is the project's ``Drafter``, built by ``Pipeline.make_drafter``: the answer policy decides
whether to answer, ask for details or escalate, the project's prompts word the reply, and the guards check it.
An LLM passed as ``llm=`` (any llama-index LLM) only writes the words, through ``LlamaIndexChat``, an adapter
to the project's ``ChatModel``; it can make a reply more cautious, never turn a deferral into an answer. No
network at import or construction.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Iterator, Literal, Sequence

from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.base.response.schema import Response
from llama_index.core.callbacks import CallbackManager
from llama_index.core.llms import LLM, ChatMessage
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from llama_index.core.vector_stores import FilterCondition, FilterOperator, MetadataFilter, MetadataFilters

from rag.errors import ConfigError, LLMError, UnsupportedFilterError
from rag.llm.bounds import Deadline
from rag.llm.chat import Completion, Message
from rag.records import CaseRecord, Citation, Draft, Ticket, Usage, draft_dict
from rag.retrieve.base import Filters

if TYPE_CHECKING:
    from rag.draft.drafter import Drafter
    from rag.pipeline import Pipeline
    from rag.settings import Settings

# Shown to the LLM with each case; the rest (ids, file, line, matched passage) is for the caller.
_LLM_METADATA = ("title", "product", "subcategory")

_FILTERS_HELP = ("the case filters are: product == P (or in [P]), scenarios contains S / == S / all [S…], "
                 "case_id != C / nin [C…], joined with AND")


def to_filters(filters: MetadataFilters | None, pipeline: "Pipeline") -> Filters:
    """llama-index ``MetadataFilters`` as the project's ``Filters`` (products and scenarios in the store's spelling).

    Raises ``UnsupportedFilterError`` naming the first filter that has no equivalent: dropping it would return
    cases the caller excluded."""
    if filters is None or not filters.filters:
        return Filters()
    if filters.condition not in (None, FilterCondition.AND) and len(filters.filters) > 1:
        raise UnsupportedFilterError(f"MetadataFilters with condition {filters.condition.value}: {_FILTERS_HELP}")
    catalog = pipeline.cases.catalog
    product: str | None = None
    scenarios: list[str] = []
    exclude: list[str] = []
    for f in filters.filters:
        if not isinstance(f, MetadataFilter):
            raise UnsupportedFilterError(f"nested MetadataFilters: {_FILTERS_HELP}")
        values = f.value if isinstance(f.value, list) else [f.value]
        op = f.operator
        if f.key == "product" and (op == FilterOperator.EQ or (op == FilterOperator.IN and len(values) == 1)):
            named = catalog.product(str(values[0]))
            if product not in (None, named):
                raise UnsupportedFilterError(f"two products ({product}, {named}): a case has one product")
            product = named
        elif f.key in ("scenarios", "scenario") and op in (FilterOperator.EQ, FilterOperator.CONTAINS, FilterOperator.ALL):
            scenarios += [s for s in (catalog.scenario(str(v)) for v in values) if s]
        elif f.key in ("case_id", "id") and op in (FilterOperator.NE, FilterOperator.NIN):
            exclude += [str(v) for v in values]
        else:
            raise UnsupportedFilterError(f"MetadataFilter {f.key} {op.value} {f.value!r}: {_FILTERS_HELP}")
    return Filters(product, tuple(dict.fromkeys(scenarios)), frozenset(exclude))


def _merge(filters: Filters, product: str | None, scenario: str | None, pipeline: "Pipeline") -> Filters:
    """The constructor's ``product``/``scenario`` with the ``MetadataFilters``; a contradiction is refused."""
    catalog = pipeline.cases.catalog
    named = catalog.product(product)
    if named and filters.product not in (None, named):
        raise UnsupportedFilterError(f"product={named!r} and a MetadataFilter product == {filters.product!r}")
    scenarios = filters.scenarios + ((s,) if (s := catalog.scenario(scenario)) and s not in filters.scenarios else ())
    return Filters(named or filters.product, scenarios, filters.exclude)


def case_node(case: CaseRecord, matched_text: str = "", extra: dict[str, Any] | None = None) -> TextNode:
    metadata: dict[str, Any] = {
        "case_id": case.id, "title": case.title, "product": case.product, "subcategory": case.subcategory,
        "scenarios": list(case.scenarios), "source": case.source, "line": case.line, "matched_text": matched_text,
        **(extra or {}),
    }
    hidden = [k for k in metadata if k not in _LLM_METADATA]
    return TextNode(id_=case.id, text=f"{case.title}\n问题：{case.question}\n解答：{case.answer}", metadata=metadata,
                    excluded_llm_metadata_keys=hidden, excluded_embed_metadata_keys=list(metadata))


class CaseRetriever(BaseRetriever):
    """A llama-index ``BaseRetriever`` over the project's retriever."""

    def __init__(self, pipeline: "Pipeline", *, product: str | None = None, scenario: str | None = None,
                 top_k: int | None = None, exclude: tuple[str, ...] = (), filters: MetadataFilters | None = None,
                 callback_manager: CallbackManager | None = None) -> None:
        # Unset: RAG_TOP_K, as `rag search` without -k.
        top_k = pipeline.settings.retrieval.top_k if top_k is None else top_k
        if top_k < 1:
            raise ConfigError("top_k must be >= 1")
        self.pipeline = pipeline
        self.filters = _merge(to_filters(filters, pipeline), product, scenario, pipeline)
        self.top_k = top_k
        self.exclude = tuple(exclude)  # case ids never returned: a leave-one-out evaluation sets it per query
        super().__init__(callback_manager=callback_manager)

    @property
    def product(self) -> str | None:
        return self.filters.product

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        filters = Filters(self.filters.product, self.filters.scenarios, self.filters.exclude | set(self.exclude))
        hits = self.pipeline.retriever.retrieve(query_bundle.query_str, filters, self.top_k).hits
        return [NodeWithScore(node=case_node(h.case, h.chunk_text), score=h.score) for h in hits]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        # Retrieval is CPU and disk work (BM25, the embedder, Chroma): a worker thread keeps the event loop free,
        # where BaseRetriever's default would run it on the loop and stall every other coroutine.
        return await asyncio.to_thread(self._retrieve, query_bundle)


class LlamaIndexChat:
    """Any llama-index ``LLM`` as the project's ``ChatModel``: the drafter's prompts go in as chat messages, the
    reply comes back as text. A failure of the LLM is an ``LLMError`` (so the drafter can fall back), and the
    draft's deadline is checked before the call and between streamed pieces. The LLM's own settings
    (temperature, output length) apply."""

    def __init__(self, llm: LLM) -> None:
        self.llm = llm
        self.model = llm.metadata.model_name or type(llm).__name__

    @staticmethod
    def _messages(messages: Sequence[Message]) -> list[ChatMessage]:
        return [ChatMessage(role=m["role"], content=m["content"]) for m in messages]

    def complete(self, messages: Sequence[Message], *, max_tokens: int | None = None,
                 temperature: float | None = None, deadline: Deadline | None = None) -> Completion:
        if deadline is not None:
            deadline.check()
        try:
            reply = self.llm.chat(self._messages(messages))
        except LLMError:
            raise
        except Exception as exc:  # noqa: BLE001 - any provider's failure is an LLM failure to the drafter
            raise LLMError(f"the llama-index LLM {self.model} failed: {type(exc).__name__}: {exc}") from exc
        return Completion(reply.message.content or "", _usage(reply.raw), self.model)

    def stream(self, messages: Sequence[Message], *, deadline: Deadline | None = None) -> Iterator[str]:
        if deadline is not None:
            deadline.check()
        try:
            for piece in self.llm.stream_chat(self._messages(messages)):
                if deadline is not None:
                    deadline.check()
                if piece.delta:
                    yield piece.delta
        except LLMError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise LLMError(f"the llama-index LLM {self.model} failed: {type(exc).__name__}: {exc}") from exc


def _usage(raw: Any) -> Usage:
    """Token counts when the provider reports them the OpenAI way (``raw.usage``), else zeros."""
    usage = raw.get("usage") if isinstance(raw, dict) else getattr(raw, "usage", None)
    get = (lambda k: usage.get(k)) if isinstance(usage, dict) else (lambda k: getattr(usage, k, None))
    return Usage(int(get("prompt_tokens") or 0), int(get("completion_tokens") or 0)) if usage is not None else Usage()


class DraftQueryEngine(BaseQueryEngine):
    """A llama-index query engine that answers with the project's ``Drafter``: the query is the ticket.

    ``str(response)`` is the checked draft; ``response.metadata["action"]`` is answer, ask_for_info or escalate
    (with ``verdict``, ``confidence``, ``fallback``, ``notes`` and the whole ``draft``); ``response.source_nodes``
    are the cited cases, those the reply is built from first (``metadata["relation"]`` "source" or "related",
    ``metadata["match"]`` the probability the case addresses the ticket)."""

    def __init__(self, pipeline: "Pipeline", drafter: "Drafter", *, filters: Filters = Filters(), top_k: int | None = None,
                 fallback: Literal["offline", "none"] = "offline", callback_manager: CallbackManager | None = None) -> None:
        if filters.scenarios:
            raise UnsupportedFilterError("the drafter retrieves by the ticket's product and excluded cases only; "
                                         "a scenario filter applies to make_retriever")
        self.pipeline = pipeline
        self.drafter = drafter
        self.filters = filters
        self.top_k = top_k
        self.fallback = fallback
        super().__init__(callback_manager=callback_manager)

    def _get_prompt_modules(self) -> dict[str, Any]:
        return {}  # the prompts are the project's files (prompts/<variant>/), not llama-index templates

    def _query(self, query_bundle: QueryBundle) -> Response:
        ticket = Ticket(text=query_bundle.query_str, product=self.filters.product)
        draft = self.drafter.draft(ticket, k=self.top_k, exclude=sorted(self.filters.exclude), fallback=self.fallback)
        return self._response(draft)

    async def _aquery(self, query_bundle: QueryBundle) -> Response:
        return await asyncio.to_thread(self._query, query_bundle)

    def _response(self, draft: Draft) -> Response:
        cited = sorted(draft.citations, key=lambda c: c.relation != "source")  # stable: the drafter's order within
        nodes = [self._node(c) for c in cited]
        return Response(response=draft.text, source_nodes=[n for n in nodes if n is not None], metadata={
            "action": draft.action, "verdict": draft.verdict, "confidence": draft.confidence,
            "backend": draft.backend, "fallback": draft.fallback, "notes": [n.text("en") for n in draft.notes],
            "sources": [c.case_id for c in draft.citations if c.relation == "source"],
            "citations": [asdict(c) for c in draft.citations], "draft": draft_dict(draft)})

    def _node(self, c: Citation) -> NodeWithScore | None:
        case = self.pipeline.cases.get(c.case_id)
        if case is None:  # a store re-ingested under the engine: the citation stays in metadata["citations"]
            return None
        return NodeWithScore(node=case_node(case, c.passage, {"relation": c.relation, "match": c.match}), score=c.score)


def _pipeline(settings: "Settings | None") -> "Pipeline":
    from rag.pipeline import Pipeline
    from rag.settings import load_settings

    p = Pipeline(settings or load_settings())
    p.ensure_ingested()  # a new user's first call works on the shipped sample corpus
    return p


def make_retriever(settings: "Settings | None" = None, *, product: str | None = None, top_k: int | None = None,
                   scenario: str | None = None, filters: MetadataFilters | None = None) -> CaseRetriever:
    """The case retriever on ``settings`` (default: the environment's, i.e. the embedded store and corpus);
    ``top_k`` defaults to RAG_TOP_K."""
    return CaseRetriever(_pipeline(settings), product=product, scenario=scenario, top_k=top_k, filters=filters)


def make_query_engine(settings: "Settings | None" = None, *, product: str | None = None, top_k: int | None = None,
                      llm: LLM | None = None, filters: MetadataFilters | None = None, variant: str | None = None,
                      fallback: Literal["offline", "none"] = "offline") -> DraftQueryEngine:
    """A query engine that drafts through the project's ``Drafter``.

    ``llm=None``: the configured model (RAG_LLM_*), else the offline writer. Any llama-index ``LLM`` writes the
    words instead, adapted by ``LlamaIndexChat``. ``fallback="offline"`` (as the service does): when the LLM
    fails, the offline draft, flagged in ``metadata["fallback"]``. ``filters``: product and excluded case ids."""
    pipeline = _pipeline(settings)
    drafter = pipeline.make_drafter(variant=variant, llm=LlamaIndexChat(llm) if llm is not None else None)
    merged = _merge(to_filters(filters, pipeline), product, None, pipeline)
    return DraftQueryEngine(pipeline, drafter, filters=merged, top_k=top_k, fallback=fallback)
