"""Replay labelled tickets the corpus never saw and judge each draft: its decision, what an answer carries, and
what a deferral asks.

The sets (``eval/relevance/README.md``): the development tickets (``new_tickets.jsonl``, both halves; the match
model and the policy were tuned on them) and the frozen held-out sets (``HELDOUT_SETS``), each written and labelled
before the tuning it measures. Judged per ticket:
- the decision: answered or not, whether the case it stands on is a labelled match, the match probability;
- answers: whether the draft carries the labelled key content (``rag/score/key_content.py``);
- deferrals (any draft that does not answer): whether it asks only for what is reasonable to ask for this
  ticket (``rag/score/asks.py``);
- the ranking against the labelled matches, and agreement with the labelled ideal action.
Each set's summary also holds the precision–coverage curve of the match probability.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from rag.draft.drafter import Drafter
from rag.records import Draft, Ticket, draft_dict
from rag.score.asks import asked
from rag.score.key_content import check_key
from rag.score.labels import GroupLabels, LabelledTicket, Split
from rag.score.relevance import Decision, decision_scores, mean_of, ranking_scores

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class HeldoutSet:
    """A frozen held-out ticket file: its name is the records' split, the summary's key and its figures' prefix."""

    name: Split
    file: str
    title: str

    @property
    def prefix(self) -> str:
        return f"{self.name}_"


# Newest first: the first is the headline. A set that has been read while tuning says so in its title.
HELDOUT_SETS = (
    HeldoutSet("heldout2", "heldout2_tickets.jsonl",
               "Second held-out tickets (frozen 2026-12-07, never read by anyone tuning: the headline figures)"),
    HeldoutSet("heldout", "heldout_tickets.jsonl",
               "First held-out tickets (frozen before issue 22's tuning; since read in nine draft reads, and fixes "
               "followed: no longer unseen)"),
)
TARGET_PRECISION = 0.85
# The verdicts whose only reason not to answer is the match threshold: the curve may move them.
_THRESHOLD_VERDICTS = ("fits", "no_fit")


def top_case(draft: Draft) -> str | None:
    """The case the draft stands on: its first source citation, else the best retrieved case."""
    source = next((c.case_id for c in draft.citations if c.relation == "source"), None)
    return source or (draft.retrieved[0] if draft.retrieved else None)


def ticket_record(t: LabelledTicket, draft: Draft) -> dict:
    top = top_case(draft)
    gain = {**{c: 0.5 for c in t.partial}, **{c: 1.0 for c in t.match}}
    ranking = ranking_scores(list(draft.retrieved), lambda c: gain.get(c, 0.0), list(gain.values())) if t.match else None
    answered = draft.action == "answer"
    key = check_key(draft.text, t.key) if answered and t.key else None
    # Whatever the action: a deferral's conditional pointer can carry what a right answer must say.
    key_any = check_key(draft.text, t.key) if t.key and t.answerable else None
    # What the agent has at the desk: the draft and the hint beside it (never sent, so never counted as sent).
    desk = f"{draft.text}\n{draft.hint.resolution}" if draft.hint is not None else draft.text
    key_desk = check_key(desk, t.key) if t.key and t.answerable else None
    deferral = None
    if not answered and t.ask is not None:
        wanted = asked(draft.text)
        deferral = {"asked": sorted(wanted), "reasonable": sorted(t.ask), "fits": wanted <= t.ask,
                    "extra": sorted(wanted - t.ask)}
    return {
        "id": t.id, "split": t.split, "kind": t.kind, "style": t.style, "ticket": t.text, "title": t.title,
        "product": t.product, "label_action": t.action, "match": list(t.match), "draft": draft_dict(draft),
        "decision": {"answered": answered, "top_fits": top in t.match, "fits_exist": t.answerable,
                     "match": draft.confidence},
        # For the curve: the top case's match whatever the draft did, and whether only the threshold decided.
        "top_match": float(draft.citations[0].match or 0.0) if draft.citations and draft.citations[0].match is not None
        else draft.confidence,
        "threshold_only": draft.verdict in _THRESHOLD_VERDICTS,
        "key": None if key is None else {"items": key.items, "found": key.found, "missing": list(key.missing)},
        "key_any": None if key_any is None else key_any.found == key_any.items,
        "key_desk": None if key_desk is None else key_desk.found == key_desk.items,
        "deferral": deferral,
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


def curve(records: Sequence[dict]) -> list[dict[str, float]]:
    """Answer precision and coverage if the answer threshold were each observed match value: the tickets whose
    verdict only the threshold decided answer when their top case's match reaches it; the others keep what the
    drafter did."""
    points = []
    fixed = [r for r in records if not r["threshold_only"]]
    movable = [r for r in records if r["threshold_only"]]
    answerable = sum(1 for r in records if r["decision"]["fits_exist"])
    for t in sorted({round(r["top_match"], 4) for r in movable} | {1.01}, reverse=True):
        # compared as rounded, like the thresholds: each ticket's own match answers it
        answered = [r for r in fixed if r["decision"]["answered"]] + [r for r in movable
                                                                       if round(r["top_match"], 4) >= t]
        right = [r for r in answered if r["decision"]["top_fits"]]
        covered = [r for r in right if r["decision"]["fits_exist"]]
        points.append({"threshold": min(t, 1.0), "answered": len(answered),
                       "precision": round(len(right) / len(answered), 4) if answered else 1.0,
                       "coverage": round(len(covered) / answerable, 4) if answerable else 0.0})
    return points


def coverage_at(points: Sequence[dict[str, float]], precision: float = TARGET_PRECISION) -> float:
    """The frontier: the highest coverage any threshold reaches with answer precision at least ``precision``."""
    return max((p["coverage"] for p in points if p["precision"] >= precision and p["answered"] > 0), default=0.0)


def summarise_tickets(records: Sequence[dict], splits: Sequence[str] = ()) -> dict:
    """The figures of ``records`` ("all"), and of each named split among them."""
    def rate(xs: list[bool]) -> float | None:
        return round(sum(xs) / len(xs), 4) if xs else None

    def block(rs: Sequence[dict]) -> dict:
        ranking = mean_of([r["ranking"] for r in rs if r["ranking"]])
        agreement = [r["action_agreement"] for r in rs]
        by_kind: dict[str, dict] = {}
        for kind in sorted({r["kind"] for r in rs}):
            ks = [r for r in rs if r["kind"] == kind]
            by_kind[kind] = {"tickets": len(ks), "answered": sum(r["decision"]["answered"] for r in ks),
                             "action_agreement": round(sum(r["action_agreement"] for r in ks) / len(ks), 4)}
        keyed = [r["key"] for r in rs if r["key"] is not None]
        keyed_any = [r["key_any"] for r in rs if r.get("key_any") is not None]
        keyed_desk = [r["key_desk"] for r in rs if r.get("key_desk") is not None]
        deferred = [r["deferral"] for r in rs if r["deferral"] is not None]
        points = curve(rs)
        return {**decision_scores(decisions_of(rs)),
                "action_agreement": round(sum(agreement) / len(agreement), 4) if agreement else None,
                # of the answers to tickets with labelled key content, those that say all of it
                "key_content": rate([k["found"] == k["items"] for k in keyed]),
                "key_items": rate([i < k["found"] for k in keyed for i in range(k["items"])]),
                # of the answerable tickets with labelled key content, the drafts that say all of it, answered or
                # not: what an agent finds in the draft, pointers included
                "key_content_any": rate(keyed_any),
                # ... or in the agent's hint beside a deferral: what the agent can send after a read
                "key_content_desk": rate(keyed_desk),
                "deferral_fit": rate([d["fits"] for d in deferred]),
                "coverage_at_p85": coverage_at(points),
                **{f"rel_{k}": v for k, v in ranking.items()}, "by_kind": by_kind, "curve": points}

    present = [s for s in splits if any(r["split"] == s for r in records)]
    return {"all": block(records), **{s: block([r for r in records if r["split"] == s]) for s in present}}


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
