"""Scores of one draft against the real agent's substantive answer."""

from __future__ import annotations

from typing import Iterable, Sequence

import sacrebleu

from rag.draft.actions import classify_reply
from rag.draft.guards import invented_links, leaked_identifiers
from rag.identifiers import CorpusIdentifiers
from rag.links import find_links
from rag.records import Draft
from rag.score.templates import Template, templates_in
from rag.similarity import normalise_answer, rouge_l_f1

_CHRF = sacrebleu.metrics.CHRF()
_BLEU = sacrebleu.metrics.BLEU(tokenize="zh", effective_order=True)


def rouge_l(draft: str, reference: str) -> float:
    return rouge_l_f1(normalise_answer(draft, 10_000), normalise_answer(reference, 10_000))


def bleu(draft: str, reference: str) -> float:
    return _BLEU.sentence_score(draft, [reference]).score / 100


def chrf(draft: str, reference: str) -> float:
    return _CHRF.sentence_score(draft, [reference]).score / 100


def link_scores(draft: str, reference: str) -> tuple[float | None, float | None]:
    """Precision (draft links found in the real answer) and recall; ``None`` when there is nothing to count."""
    d, r = set(find_links(draft)), set(find_links(reference))
    hit = len(d & r)
    return (hit / len(d) if d else None), (hit / len(r) if r else None)


def template_recall(draft: str, reference: str, templates: Sequence[Template]) -> float | None:
    """Share of the team templates the agent used that the draft reproduces; ``None`` if the agent used none."""
    used = templates_in(reference, templates)
    if not used:
        return None
    return len(templates_in(draft, used)) / len(used)


def score_draft(
    draft: Draft,
    reference: str,
    ticket_text: str,
    *,
    templates: Sequence[Template],
    known_links: Iterable[str],
    allowlist: Sequence[str],
    corpus: CorpusIdentifiers = CorpusIdentifiers(),
) -> dict[str, float | None]:
    precision, recall = link_scores(draft.text, reference)
    return {
        "rouge_l": rouge_l(draft.text, reference),
        "bleu": bleu(draft.text, reference),
        "chrf": chrf(draft.text, reference),
        "link_precision": precision,
        "link_recall": recall,
        "template_recall": template_recall(draft.text, reference, templates),
        "action_agreement": 1.0 if classify_reply(reference) == draft.action else 0.0,
        "leaked_identifiers": float(len(leaked_identifiers(draft.text, ticket_text, allowlist, frozenset(known_links), corpus))),
        "invented_links": float(len(invented_links(draft.text, ticket_text, frozenset(known_links), allowlist, corpus))),
        "confidence": draft.confidence,
    }
