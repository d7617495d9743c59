"""What every retriever is asked and answers: ``Filters`` in, a ``Retrieval`` (hits and their timings) out.

The ``Retriever`` protocol is what the drafter, the CLI, the service and the llama-index adapter use;
the lexical (bm25s), dense (Chroma) and hybrid retrievers implement it. Timings are returned with
the hits, never kept on the retriever: the service's threads share one retriever.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Collection, Protocol

from rag.records import CaseRecord, Hit, Ticket

if TYPE_CHECKING:
    from rag.cases import CaseRepository


@dataclass(frozen=True, slots=True)
class Filters:
    """Which cases may be returned: one product, cases holding every one of ``scenarios``, none of ``exclude``.

    This is the one definition; each backend translates it (a row mask for BM25, a Chroma ``where``
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


@dataclass(frozen=True, slots=True)
class Timing:
    embed_ms: float = 0.0
    dense_ms: float = 0.0
    lexical_ms: float = 0.0
    rerank_ms: float = 0.0
    match_ms: float = 0.0


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


def query_text(query: "str | Ticket") -> str:
    return query.query_text if isinstance(query, Ticket) else query


class Retriever(Protocol):
    """Ranks the cases of ``cases`` for a query, best first."""

    @property
    def cases(self) -> "CaseRepository": ...

    def retrieve(self, query: "str | Ticket", filters: Filters = NO_FILTERS, k: int = 5) -> Retrieval: ...
