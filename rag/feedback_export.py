"""Approved feedback → dataset cases: de-identified, with provenance, near-duplicates as one case.

Only items a person approved (``rag feedback review``) are exported; pending and rejected ones are
counted and left out. Each approved item is de-identified the way the dataset is
(``rag.deidentify``), carries where it came from (``来源``: feedback and draft ids, verdict,
reviewer, review time, copies) and is checked on its own by the strict parser, so one malformed
item is skipped with its ids named and never fails the export. Items whose final texts are
near-duplicates (rapidfuzz ratio ≥ ``NEAR_DUPLICATE``) become one case: three copies of one text
are one vote in retrieval, not three.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable, Sequence

from rapidfuzz import fuzz

from rag.dataset_format import unstructured_line, valid_category_name, without_category_separators, write_cases
from rag.deidentify import deidentify
from rag.errors import ParseError
from rag.feedback import FeedbackItem, FeedbackStore
from rag.identifiers import CorpusIdentifiers
from rag.normalise import normalise
from rag.records import Case, Provenance, Turn

# Two final texts this similar (rapidfuzz ratio, 0-100, on the normal form with whitespace folded)
# are the same answer: a copy with a word changed or a sentence added must not count twice.
NEAR_DUPLICATE = 90.0
HEADING = "七牛云客服问答数据集 - 来自客服反馈"
INTRO = "本文档由 `rag feedback export` 生成：经人工审核通过的客服采纳或修改后的草稿，已脱敏。"


@dataclass(frozen=True)
class ExportResult:
    text: str
    cases: tuple[Case, ...]  # as the strict parser reads them back
    skipped: tuple[str, ...]  # one message per malformed item, naming its feedback and draft ids
    pending: int  # accepted/edited items not reviewed yet: left out
    rejected: int  # items a reviewer rejected: left out
    collapsed: int  # approved items folded into a near-duplicate's case


def corpus_identifiers(cases: Iterable[Case]) -> CorpusIdentifiers:
    """What the dataset's own cases say is public (hosts and tokens used across cases); cases that
    came from feedback do not get a say."""
    return CorpusIdentifiers.learn(
        (c.id, "\n".join((c.title, c.question, *(t.text for t in c.turns))), c.answer)
        for c in cases if c.provenance is None
    )


def _case_of(item: FeedbackItem, allowlist: Sequence[str], corpus: CorpusIdentifiers) -> Case:
    def clean(text: str) -> str:
        return deidentify(text, allowlist=allowlist, corpus=corpus).text

    question = clean(item.ticket).strip() or "（无）"
    title = unstructured_line(clean(item.title)) or unstructured_line(question)[:30] or "（无标题）"
    product = without_category_separators(unstructured_line(item.product)) or "其他"
    subcategory = unstructured_line(item.subcategory) or "其他类咨询"
    for name in (product, subcategory, *item.scenarios):
        if not valid_category_name(name):
            raise ParseError(f"product {name[:40]!r} is not a product name", source="feedback", line=0)
    return Case(
        id="", title=title, product=product, subcategory=subcategory, scenarios=item.scenarios or (product,),
        question=question,
        turns=(Turn("customer", question), Turn("agent", clean(item.final_text).strip())),
        root_cause=None, source="feedback", line=0,
        provenance=Provenance(
            origin="feedback", feedback_ids=(item.feedback_id,), draft_ids=(item.draft_id,), verdict=item.verdict,
            reviewer=item.reviewer or "", reviewed_at=item.reviewed_at or "", copies=1,
        ),
    )


def _merge(group: list[Case]) -> Case:
    """One case for a group of near-duplicates: the oldest item's text, everyone's ids."""
    first = group[0]
    provs = [c.provenance for c in group if c.provenance is not None]
    reviewers = list(dict.fromkeys(p.reviewer for p in provs))
    return replace(first, provenance=Provenance(
        origin="feedback",
        feedback_ids=tuple(i for p in provs for i in p.feedback_ids),
        draft_ids=tuple(d for p in provs for d in p.draft_ids),
        verdict="edited" if any(p.verdict == "edited" for p in provs) else "accepted",
        reviewer=",".join(reviewers), reviewed_at=max(p.reviewed_at for p in provs), copies=len(group),
    ))


def _answer_key(case: Case) -> str:
    return " ".join(normalise(case.answer).split())


def collapse_near_duplicates(cases: Sequence[Case], cutoff: float = NEAR_DUPLICATE) -> list[Case]:
    """Group cases whose answers are near-duplicates (each joins the first group it matches)."""
    groups: list[list[Case]] = []
    keys: list[str] = []
    for case in cases:
        key = _answer_key(case)
        for g, k in zip(groups, keys):
            if fuzz.ratio(key, k, score_cutoff=cutoff):
                g.append(case)
                break
        else:
            groups.append([case])
            keys.append(key)
    return [_merge(g) for g in groups]


def export_feedback(store: FeedbackStore, *, allowlist: Sequence[str], corpus: CorpusIdentifiers = CorpusIdentifiers(),
                    cutoff: float = NEAR_DUPLICATE) -> ExportResult:
    from rag.parse import parse_text

    items = store.items()
    skipped: list[str] = []
    cases: list[Case] = []
    for item in items:
        if item.decision != "approved":
            continue
        try:
            case = _case_of(item, allowlist, corpus)
            if len(parse_text(write_cases([case], heading=HEADING), "feedback-item.md", strict=True)) != 1:
                raise ParseError("does not make exactly one case", source="feedback-item.md", line=0)
        except (ParseError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, ParseError) else str(exc)
            skipped.append(f"feedback {item.feedback_id} (draft {item.draft_id}) skipped: {reason}")
            continue
        cases.append(case)
    merged = collapse_near_duplicates(cases, cutoff)
    text = write_cases(merged, heading=HEADING, intro=INTRO)
    return ExportResult(
        text=text, cases=tuple(parse_text(text, "feedback_cases.md", strict=True)), skipped=tuple(skipped),
        pending=sum(1 for i in items if i.decision is None),
        rejected=sum(1 for i in items if i.decision == "rejected"),
        collapsed=len(cases) - len(merged),
    )
