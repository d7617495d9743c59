"""Scores of one draft against the real agent's substantive answer.

Every score here is computed by the grader's own code (``rag/score/``): the links with ``link_check.py``,
the leaks with ``leaks.py``, the action against ``reference_action.py``. None of it is the drafter's guards,
action classifier, identifier or link modules, so a miss of theirs shows up in the score instead of being
graded by itself (``tests/test_score_independence.py`` holds the import rule).
"""

from __future__ import annotations

from typing import Sequence

import sacrebleu

from rag.records import Draft
from rag.score.leaks import LeakDetector
from rag.score.link_check import LinkChecker, link_keys, same_link
from rag.score.reference_action import Reference, agrees
from rag.score.templates import Template, templates_in
from rag.text.rouge import normalise_answer, rouge_l_f1

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
    d, r = set(link_keys(draft)), set(link_keys(reference))
    precise = sum(1 for a in d if any(same_link(a, b) for b in r))
    recalled = sum(1 for b in r if any(same_link(a, b) for a in d))
    return (precise / len(d) if d else None), (recalled / len(r) if r else None)


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
    leaks: LeakDetector,
    links: LinkChecker,
    reference_action: Reference,
    case_id: str | None = None,
) -> dict[str, float | None]:
    """``case_id``: the replayed case, whose own identifiers are no leak; ``reference_action``: what the
    draft should have done (``reference_action.reference_action``)."""
    precision, recall = link_scores(draft.text, reference)
    return {
        "rouge_l": rouge_l(draft.text, reference),
        "bleu": bleu(draft.text, reference),
        "chrf": chrf(draft.text, reference),
        "link_precision": precision,
        "link_recall": recall,
        "template_recall": template_recall(draft.text, reference, templates),
        "action_agreement": 1.0 if agrees(draft.action, reference_action) else 0.0,
        "leaked_identifiers": float(len(leaks.leaks(draft.text, ticket_text, case_id))),
        "invented_links": float(len(links.invented(draft.text, ticket_text))),
        "confidence": draft.confidence,
    }
