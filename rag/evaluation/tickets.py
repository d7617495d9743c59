"""Replay the labelled new tickets (never seen by the corpus) and judge each draft's decision.

A new ticket has no real agent answer to compare with; what is judged is whether the drafter knew
when a past case fits: answer precision, deferral recall on tickets no case covers, coverage of those
some case covers, action agreement with the labelled ideal action, calibration of ``Draft.confidence``
and the ranking against the labelled matching cases. Dev and test halves are reported apart: the
match model was fitted on the dev half (see ``eval/fit_match.py``), the test half is held out.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Callable, Sequence

from rag.draft.drafter import Drafter
from rag.records import Draft, Ticket
from rag.score.labels import GroupLabels, LabelledTicket
from rag.score.relevance import Decision, decision_scores, mean_of, ranking_scores

Progress = Callable[[int, int], None]


def top_case(draft: Draft) -> str | None:
    """The case the draft stands on: its first source citation, else the best retrieved case."""
    source = next((c.case_id for c in draft.citations if c.relation == "source"), None)
    return source or (draft.retrieved[0] if draft.retrieved else None)


def ticket_record(t: LabelledTicket, draft: Draft) -> dict:
    top = top_case(draft)
    gain = {**{c: 0.5 for c in t.partial}, **{c: 1.0 for c in t.match}}
    ranking = ranking_scores(list(draft.retrieved), lambda c: gain.get(c, 0.0), list(gain.values())) if t.match else None
    return {
        "id": t.id, "split": t.split, "kind": t.kind, "ticket": t.text, "title": t.title, "product": t.product,
        "label_action": t.action, "match": list(t.match), "draft": asdict(draft),
        "decision": {"answered": draft.action == "answer", "top_fits": top in t.match, "fits_exist": t.covered,
                     "match": draft.confidence},
        "action_agreement": 1.0 if draft.action == t.action else 0.0,
        "ranking": ranking,
    }


def replay(drafter: Drafter, tickets: Sequence[LabelledTicket], *, k: int = 5,
           progress: Progress = lambda done, total: None) -> list[dict]:
    records = []
    for n, t in enumerate(tickets, start=1):
        draft = drafter.draft(Ticket(t.text, title=t.title, product=t.product), k=k)
        records.append(ticket_record(t, draft))
        progress(n, len(tickets))
    return records


def decisions_of(records: Sequence[dict]) -> list[Decision]:
    return [Decision(**r["decision"]) for r in records]


def summarise_tickets(records: Sequence[dict]) -> dict:
    def block(rs: Sequence[dict]) -> dict:
        ranking = mean_of([r["ranking"] for r in rs if r["ranking"]])
        agreement = [r["action_agreement"] for r in rs]
        by_kind: dict[str, dict] = {}
        for kind in sorted({r["kind"] for r in rs}):
            ks = [r for r in rs if r["kind"] == kind]
            by_kind[kind] = {"tickets": len(ks), "answered": sum(r["decision"]["answered"] for r in ks),
                             "action_agreement": round(sum(r["action_agreement"] for r in ks) / len(ks), 4)}
        return {**decision_scores(decisions_of(rs)),
                "action_agreement": round(sum(agreement) / len(agreement), 4) if agreement else None,
                **{f"rel_{k}": v for k, v in ranking.items()}, "by_kind": by_kind}

    return {"all": block(records), **{s: block([r for r in records if r["split"] == s]) for s in ("dev", "test")}}


def corpus_decision(labels: GroupLabels, case_id: str, universe: Sequence[str], draft: Draft) -> dict:
    """For a leave-one-out draft: the same decision record, judged by the problem groups."""
    top = top_case(draft)
    partners = labels.partners(case_id, universe)
    ranking = None
    if partners:
        ideal = [labels.gain(case_id, c) for c in universe if c != case_id]
        ranking = ranking_scores(list(draft.retrieved), lambda c: labels.gain(case_id, c), ideal)
    return {"decision": {"answered": draft.action == "answer", "top_fits": bool(top and labels.relevant(case_id, top)),
                         "fits_exist": bool(partners), "match": draft.confidence},
            "ranking": ranking}
