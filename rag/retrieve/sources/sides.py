"""A second embedder's view of each case, side by side: its question side and its resolution (title + question +
the head of the agent's answer), each against the ticket.

Measured in ``eval/judge_lab.py`` (docs/judge-lab.md): with EmbeddingGemma-300M these two similarities as pair
features of the match model (``SideSignals``) raised the out-of-fold coverage at answer precision >= 0.85 on the
development tickets from 0.57 to 0.77; as an extra source in the fusion (``SideSource.rank``) they did not help, and
the answer alone helped the tickets but cost the leave-one-out queries their calibration. The case vectors are
computed once, when the source is built (the embedder's disk cache keeps them across processes); per request there
is one query embedding and a dot product per case.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Literal, Sequence

import numpy as np

from rag.retrieve.base import Query, Ranked, Ranking
from rag.retrieve.rerank.match_model import SIDE_FEATURES
from rag.store.embed import Embedder, Kind, fit_text

if TYPE_CHECKING:
    from rag.records import CaseRecord
    from rag.store.cases import CaseRepository

Side = Literal["question", "resolution"]
SIDES: tuple[Side, ...] = ("question", "resolution")
RESOLUTION_ANSWER_CHARS = 400
_URL = re.compile(r"https?://[\x21-\x7e]+", re.I)


def answer_head(answer: str, n: int) -> str:
    """The first ``n`` characters of an answer with its links left out (a URL says little and costs many tokens)."""
    return re.sub(r"\s+", " ", _URL.sub(" ", answer)).strip()[:n]


def resolution_text(case: "CaseRecord") -> str:
    return f"{case.title}\n{case.question}\n{answer_head(case.answer, RESOLUTION_ANSWER_CHARS)}".strip()


class SideSource:
    """One side of every case against the ticket, by the cosine of ``embedder``'s vectors; best chunk per case.

    The question side is each chunk's key text embedded as a query (symmetric, as the dense source does); the
    resolution is one document per case.
    """

    def __init__(self, cases: "CaseRepository", embedder: Embedder, side: Side, *,
                 kinds: tuple[str, ...] = ("case", "exchange")) -> None:
        self.name = f"side_{side}"
        self.cases = cases
        self.embedder = embedder
        self.side = side
        chunks = cases.chunks
        kind: Kind
        if side == "question":
            self.rows = [r for r, c in enumerate(chunks) if c.kind in kinds]
            texts, kind = [chunks[r].key_text for r in self.rows], "query"
        else:
            records = [r for r in (cases.get(c) for c in cases.ids()) if r is not None]
            self.rows = [next((r for r in cases.rows_of_case[c.id] if chunks[r].kind == "case"),
                              cases.rows_of_case[c.id][0]) for c in records]
            texts, kind = [resolution_text(c) for c in records], "passage"
        self.case_of = [chunks[r].case_id for r in self.rows]
        self.vectors = embedder.embed(texts, kind) if texts else np.zeros((0, 0), dtype=np.float32)

    def vector(self, query: Query) -> np.ndarray:
        """The ticket's vector under this embedder, once per request (shared by the sides of one embedder)."""
        return query.once(f"side_vector:{self.embedder.name}", lambda: self.embedder.embed(
            [fit_text(self.embedder, query.text, "query")], "query")[0])

    def best(self, query: Query) -> dict[str, tuple[float, str]]:
        """Per case, its best cosine and the chunk that has it, once per request."""
        def compute() -> dict[str, tuple[float, str]]:
            out: dict[str, tuple[float, str]] = {}
            if not self.rows:
                return out
            chunks = self.cases.chunks
            for row, case_id, s in zip(self.rows, self.case_of, (self.vectors @ self.vector(query)).tolist()):
                if case_id not in out or s > out[case_id][0]:
                    out[case_id] = (s, chunks[row].id)
            return out
        return query.once(f"side_best:{self.name}:{self.embedder.name}", compute)

    def case_scores(self, query: Query) -> dict[str, float]:
        return {case_id: s for case_id, (s, _) in self.best(query).items()}

    def rank(self, query: Query, n: int) -> Ranking:
        t0 = time.perf_counter()
        best = self.best(query)
        ranked = []
        for case_id in sorted(best, key=lambda c: -best[c][0]):
            record = self.cases.get(case_id)
            if record is not None and query.filters.allows(record):
                ranked.append(Ranked(case_id, best[case_id][1], best[case_id][0]))
                if len(ranked) >= n:
                    break
        return Ranking(self.name, tuple(ranked), ms=(time.perf_counter() - t0) * 1000)


class SideSignals:
    """The match model's side features (``match_model.SIDE_FEATURES``): for each side, the candidate's cosine and
    its gap to the best candidate's. ``name`` is the embedder's: a model fitted with one embedder's sides refuses
    another's."""

    names = SIDE_FEATURES

    def __init__(self, cases: "CaseRepository", embedder: Embedder, *, kinds: tuple[str, ...] = ("case", "exchange"),
                 ) -> None:
        self.name = embedder.name
        self.sources = tuple(SideSource(cases, embedder, side, kinds=kinds) for side in SIDES)

    def features(self, query: Query, case_ids: Sequence[str]) -> np.ndarray:
        columns = []
        for source in self.sources:
            scores = source.case_scores(query)
            v = np.asarray([scores.get(c, 0.0) for c in case_ids], dtype=np.float64)
            columns += [v, v - (float(v.max()) if len(v) else 0.0)]
        return np.column_stack(columns) if len(case_ids) else np.zeros((0, len(self.names)))
