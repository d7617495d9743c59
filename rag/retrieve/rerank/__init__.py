"""Rerankers: reorder the fused candidates and rate them. They run in order; each gets the previous one's
candidates. A new reranker or verifier is one class here and one line in ``rag.pipeline``'s wiring.

- ``match.MatchReranker``: the fitted match model orders the candidates and rates each (``Candidate.match``,
  the calibrated probability that the case addresses the ticket), or only rates them (``reorder=False``);
- ``consensus.ConsensusReranker``: favours the case whose answer the other candidates' answers agree with.
"""

from __future__ import annotations

from typing import Protocol

from rag.retrieve.base import Candidates


class Reranker(Protocol):
    def rerank(self, candidates: Candidates) -> Candidates: ...
