"""The match reranker: the fitted match model (``match_model.py``) orders the fused candidates and rates each
one: ``Candidate.match`` is the calibrated probability that the case addresses the ticket's problem, which the
answer policy reads. With ``reorder=False`` it only rates them (another reranker, or none, orders them)."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from rag.retrieve.base import Candidates
from rag.retrieve.duplicates import answers_of, voter_groups
from rag.retrieve.rerank.match_model import CandidateText, MatchModel, idf_table, pair_features
from rag.retrieve.sources.dense import DenseSource
from rag.retrieve.sources.lexical import LexicalSource
from rag.text.rouge import consensus_scores

if TYPE_CHECKING:
    from rag.retrieve.sources.sides import SideSignals
    from rag.store.cases import CaseRepository


class MatchReranker:
    def __init__(self, model: MatchModel, cases: "CaseRepository", lexical: LexicalSource, dense: DenseSource, *,
                 voters: int = 12, reorder: bool = True, sides: "SideSignals | None" = None) -> None:
        # The features read both signals whichever sources ranked: a lexical-only setup still rates by both.
        if (model.sides or None) != (sides.name if sides is not None else None):
            raise ValueError(f"the match model reads side features of {model.sides or 'no embedder'}, the reranker "
                             f"was given {sides.name if sides is not None else 'none'}")
        self.model = model
        self.cases = cases
        self.lexical = lexical
        self.dense = dense
        self.voters = voters
        self.reorder = reorder
        self.sides = sides

    def features(self, cands: Candidates) -> np.ndarray:
        """One row of ``match_model.FEATURES`` per candidate, against the (rewritten) ticket text."""
        query, items = cands.query, cands.items
        case_ids = [c.case_id for c in items]
        voters = items[: max(self.voters, 2)]
        agreement = dict(zip((c.case_id for c in voters), consensus_scores(
            answers_of(self.cases, [c.case_id for c in voters]), [c.fused for c in voters],
            voter_groups(self.cases, [c.case_id for c in voters])).tolist()))
        chunks, kinds, filters = self.cases.chunks, self.lexical.kinds, query.filters
        rows = []
        for c in case_ids:
            of_case = self.cases.rows_of_case.get(c, [])
            rows.append([r for r in of_case if chunks[r].kind in kinds and filters.allows(self.cases.case_of_row(r))]
                        or of_case)
        dense = self.dense.best_scores(query, rows)
        lexical = self.lexical.best_scores(query, rows)
        texts = []
        for c, rs in zip(case_ids, rows):
            record = self.cases.get(c)
            title, question, answer = (record.title, record.question, record.answer) if record else ("", "", "")
            texts.append(CandidateText(case_id=c, title=title, key_texts=tuple(chunks[r].key_text for r in rs),
                                       full_text=f"{question}\n{answer}", answer=answer))

        def ranks(name: str) -> np.ndarray:
            return np.array([c.components.get(f"{name}_rank", 0) for c in items], dtype=np.float64)

        x = pair_features(
            query.text, texts,
            dense=dense, lexical=lexical,
            rank_dense=ranks("dense"), rank_lexical=ranks("lexical"),
            rank_fused=np.arange(1, len(items) + 1, dtype=np.float64),
            consensus=np.array([agreement.get(c, 0.0) for c in case_ids]),
            idf=idf_table(query.text, self.lexical.index.doc_freq(query.text), self.lexical.index.size),
        )
        return x if self.sides is None else np.column_stack([x, self.sides.features(query, case_ids)])

    def rerank(self, cands: Candidates) -> Candidates:
        if not cands.items:
            return cands
        t0 = time.perf_counter()
        x = self.features(cands)
        match_ms = (time.perf_counter() - t0) * 1000
        scores = self.model.scores(x)
        probs = self.model.probabilities(x, scores).tolist()
        items = list(cands.items)
        if not self.reorder:
            rated = tuple(replace(c, match=p) for c, p in zip(items, probs))
        else:
            order = sorted(range(len(items)), key=lambda i: (-scores[i], -items[i].fused))
            # The order's score stays a positive, rank-preserving number: the ranker's logistic output.
            ranked = 1.0 / (1.0 + np.exp(-scores))
            rated = tuple(replace(items[i], score=float(ranked[i]), match=probs[i]) for i in order)
        return replace(cands, items=rated, timing=replace(cands.timing, match_ms=cands.timing.match_ms + match_ms))


