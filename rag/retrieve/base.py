"""What flows through retrieval: a ``Query`` in; per-source ``Ranking``s; fused ``Candidates``, reranked; a
``Retrieval`` (hits and their timings) out. And the ``Retriever`` protocol every face asks.

The roles (each a protocol beside its implementations): sources rank cases (``rag.retrieve.sources``), a fuser
merges their rankings (``rag.retrieve.fusion``), rerankers reorder and rate the candidates
(``rag.retrieve.rerank``); ``rag.retrieve.hybrid.HybridRetriever`` composes them. Timings are returned with
the results, never kept on a component: the service's threads share one retriever.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Collection, Mapping, Protocol, TypeVar

from rag.records import CaseRecord, Hit, Ticket
from rag.retrieve.query import rewrite_query

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Filters:
    """Which cases may be returned: one product, cases holding every one of ``scenarios``, none of ``exclude``.

    This is the one definition; each source translates it (a row mask for BM25, a Chroma ``where``
    for the dense index) and both agree with ``allows``.
    """

    product: str | None = None
    scenarios: tuple[str, ...] = ()
    exclude: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, *, product: str | None = None, scenario: str | None = None, exclude: Collection[str] = ()) -> "Filters":
        return cls(product or None, (scenario,) if scenario else (), frozenset(exclude))

    @property
    def narrows(self) -> bool:
        """True when the filter keeps only some cases (beyond the excluded ones)."""
        return bool(self.product or self.scenarios)

    def allows(self, case: CaseRecord) -> bool:
        if case.id in self.exclude:
            return False
        if self.product and case.product != self.product:
            return False
        return all(s in case.scenarios for s in self.scenarios)

    def for_ticket(self, query: "str | Ticket") -> "Filters":
        """A ticket's own product applies when no product was asked for."""
        if isinstance(query, Ticket) and query.product and not self.product:
            return replace(self, product=query.product)
        return self


NO_FILTERS = Filters()


def query_text(query: "str | Ticket") -> str:
    return query.query_text if isinstance(query, Ticket) else query


@dataclass(frozen=True)
class Query:
    """One request as every component sees it: the ticket's text rewritten once (greetings, redaction tokens,
    links and identifiers out) and bounded, and the filters with the ticket's own product applied.

    ``memo`` keeps what one request computes once and several components read (the BM25 scores of every
    chunk, the query's embedding); a ``Query`` belongs to one request, so it is never shared between threads.
    """

    text: str
    filters: Filters = NO_FILTERS
    memo: dict[str, object] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, query: "str | Ticket", filters: Filters = NO_FILTERS, *, max_chars: int | None = None) -> "Query":
        # Bounded work per request: jieba's cost grows with the text; the embedder bounds its own input.
        text = rewrite_query(query_text(query))
        return cls(text[:max_chars] if max_chars is not None else text, filters.for_ticket(query))

    def once(self, key: str, compute: Callable[[], T]) -> T:
        if key not in self.memo:
            self.memo[key] = compute()
        return self.memo[key]  # type: ignore[return-value]  # stored by this method under this key only


@dataclass(frozen=True, slots=True)
class Ranked:
    """A case a source ranked, with the chunk that matched best and that chunk's score."""

    case_id: str
    chunk_id: str
    score: float


@dataclass(frozen=True, slots=True)
class Ranking:
    """One source's ranking of cases for a query, best first."""

    source: str
    ranked: tuple[Ranked, ...]
    ms: float = 0.0         # searching the index
    embed_ms: float = 0.0   # embedding the query (dense sources)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A fused candidate case. ``score`` orders the candidates (fused at first; a reranker may replace it),
    ``match`` is the calibrated probability that the case addresses the ticket (None until a model rates it)."""

    case_id: str
    chunk_id: str
    fused: float
    score: float
    components: Mapping[str, float] = field(default_factory=dict)
    match: float | None = None


@dataclass(frozen=True, slots=True)
class Timing:
    embed_ms: float = 0.0
    dense_ms: float = 0.0
    lexical_ms: float = 0.0
    rerank_ms: float = 0.0
    match_ms: float = 0.0


@dataclass(frozen=True)
class Candidates:
    """The fused candidates for one query, best first, with the rankings they came from."""

    query: Query
    items: tuple[Candidate, ...]
    rankings: tuple[Ranking, ...]
    k: int                      # how many the caller asked for
    timing: Timing = Timing()

    @property
    def case_ids(self) -> tuple[str, ...]:
        return tuple(c.case_id for c in self.items)

    def ranking(self, source: str) -> Ranking | None:
        return next((r for r in self.rankings if r.source == source), None)


@dataclass(frozen=True, slots=True)
class Retrieval:
    hits: tuple[Hit, ...]
    timing: Timing = Timing()

    def __iter__(self):
        return iter(self.hits)

    def __len__(self) -> int:
        return len(self.hits)

    @property
    def case_ids(self) -> list[str]:
        return [h.case_id for h in self.hits]


class Retriever(Protocol):
    """Ranks past cases for a query, best first."""

    def retrieve(self, query: "str | Ticket", filters: Filters = NO_FILTERS, k: int = 5) -> Retrieval: ...
