"""What was tried for the offline composition, and its figure: ROUGE-L of the composed body alone (each hit's
resolution, ``rag.draft.resolution``)
(with "您好，" put back, before any action decision), leave-one-out over every case with an answer.
Then, for the answer/defer policy: ROUGE-L of the composed drafts that would still answer if every
draft below a confidence were deferred (the composition's own support-based confidence).

    python eval/offline_variants.py
"""

from __future__ import annotations

import re

import numpy as np


from rag import Pipeline, load_settings
from rag.draft.resolution import BODY_BUDGET, resolve
from rag.draft.writers.offline import choose, compose, support
from rag.draft.sentences import Judge, join, pieces_of, reusable
from rag.records import Ticket
from rag.retrieve import Filters
from rag.score.draft import rouge_l


def merged(ticket, pool, chosen, floor):
    """The chosen body plus the other supporters' kept sentences that do not repeat it."""
    agreement = support(pool)
    kept = []
    for i, hit in enumerate(pool):
        if i != chosen and agreement[i] < floor:
            continue
        judge = Judge.of(ticket.query_text, [o.answer for o in pool if o is not hit])
        for p in reusable(pieces_of(hit.answer), judge):
            core = re.sub(r"\s", "", p.text)
            if not any(core in re.sub(r"\s", "", q.text) or re.sub(r"\s", "", q.text) in core for q in kept):
                kept.append(p if i == chosen else type(p)(p.text, 1000 * (i + 1) + p.line, p.links, p.index))
    kept.sort(key=lambda p: (p.line >= 1000, p.line, p.index))
    return join(kept)


def main() -> None:
    pipeline = Pipeline(load_settings())
    pipeline.ensure_ingested()
    cases = pipeline.cases.replay_cases()  # the store's corpus: what the retriever indexed
    k = pipeline.settings.retrieval.top_k
    scores: dict[str, list[float]] = {}
    answered: list[tuple[float, float]] = []

    def add(name: str, body: str, reference: str) -> None:
        scores.setdefault(name, []).append(rouge_l(f"您好，{body}", reference))

    for case in (c for c in cases if c.answer.strip()):
        ticket = Ticket(case.question or case.title, title=case.title)
        pool = pipeline.retriever.retrieve(ticket, Filters.of(exclude=[case.id]), k).hits[:k]
        others = lambda h: [o.answer for o in pool if o is not h]  # noqa: E731
        def bodies_of(budget: int = BODY_BUDGET) -> list[str]:
            return [r.text if (r := resolve(h.case, ticket.query_text, others(h), budget)) else "" for h in pool]

        bodies = bodies_of()
        chosen = choose(ticket, pool, bodies)
        first = next((i for i, b in enumerate(bodies) if len(b) >= 8), None)
        ref = case.answer
        composition = compose(ticket, pool)
        if composition.action == "answer":
            answered.append((composition.confidence, rouge_l(composition.text, ref)))
        add(f"default: chosen body, {BODY_BUDGET}-char budget", bodies[chosen] if chosen is not None else "", ref)
        add("first retrieved hit's body instead of the chosen one", bodies[first] if first is not None else "", ref)
        add("best of the candidates' bodies (oracle, reads the answer)",
            max(bodies, key=lambda b: rouge_l(f"您好，{b}", ref)) if bodies else "", ref)
        for budget in (250, 600):
            short = bodies_of(budget)
            add(f"sentence budget {budget} chars", short[chosen] if chosen is not None else "", ref)
        for floor in (0.0, 0.3):
            add(f"merge supporters' sentences (agreement >= {floor})",
                merged(ticket, pool, chosen, floor) if chosen is not None else "", ref)
    print("| variant | ROUGE-L of the body |")
    print("|---|---|")
    for name, xs in scores.items():
        print(f"| {name} | {np.mean(xs):.3f} |")
    print()
    print("| defer below confidence | drafts answering | ROUGE-L over them |")
    print("|---|---|---|")
    for floor in (0.0, 0.2, 0.3, 0.4, 0.5):
        kept = [r for c, r in answered if c >= floor]
        print(f"| {floor} | {len(kept)} | {np.mean(kept):.3f} |")


if __name__ == "__main__":
    main()
