"""Recurring team templates: agent turns that the team reuses, nearly word for word, across cases.

A template is a cluster of at least ``min_cases`` cases whose agent turns (40+ characters) agree
with each other at character ROUGE-L ≥ ``threshold``: the free-certificate steps, the one-click
HTTPS instructions, the bill-lookup path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from rapidfuzz.distance import LCSseq

from rag.text.filler import strip_image_markers
from rag.records import Case
import numpy as np

from rag.text.rouge import normalise_answer, pairwise_rouge_l

MIN_CHARS = 40


@dataclass(frozen=True)
class Template:
    text: str
    case_ids: frozenset[str]


def _turns(case: Case) -> list[str]:
    return [normalise_answer(t.text) for t in case.agent_turns if not t.is_filler and len(normalise_answer(t.text)) >= MIN_CHARS]


def find_templates(cases: Sequence[Case], *, threshold: float = 0.6, min_cases: int = 3) -> list[Template]:
    items = [(c.id, t) for c in cases for t in _turns(c)]
    similar = pairwise_rouge_l([t for _, t in items]) >= threshold
    np.fill_diagonal(similar, True)
    used = [False] * len(items)
    templates: list[Template] = []
    for i, (_, text) in enumerate(items):
        if used[i]:
            continue
        members = [j for j in np.flatnonzero(similar[i]) if not used[j]]
        ids = frozenset(items[j][0] for j in members)
        if len(ids) >= min_cases:
            for j in members:
                used[j] = True
            templates.append(Template(text, ids))
    return templates


def contains(text: str, template: Template, *, recall: float = 0.6) -> bool:
    """True when most of the template's characters appear, in order, in ``text``."""
    t = template.text
    body = normalise_answer(strip_image_markers(text), limit=10_000)
    return bool(t) and LCSseq.similarity(t, body) / len(t) >= recall


def templates_in(text: str, templates: Sequence[Template]) -> list[Template]:
    return [t for t in templates if contains(text, t)]
