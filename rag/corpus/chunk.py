"""Turn a ``Case`` into the chunks that are stored and searched.

One chunk per case (title + question + substantive answer) so a short ticket can match a whole
case; one chunk per exchange of a multi-turn dialogue (a customer turn with the agent turns that
answer it) so a follow-up question deep in a long dialogue can still be found; one per other
customer's wording of the case's problem (``Case.asked``, from the dataset's sidecar file). Each chunk
also carries ``key_text``, its question side, which is what gets embedded: tickets are questions, and
matching question against question beats matching question against answer (see docs/corpus.md).
"""

from __future__ import annotations

import hashlib

from rag.text.markers import strip_image_markers
from rag.text.links import separate_links
from rag.records import Case, CaseRecord, Chunk, Dialogue, Turn


def _clean(text: str) -> str:
    return separate_links(strip_image_markers(text)).strip()


def _exchanges(turns: tuple[Turn, ...]) -> list[tuple[Turn, list[Turn]]]:
    out: list[tuple[Turn, list[Turn]]] = []
    for t in turns:
        if t.role == "customer":
            out.append((t, []))
        elif out and not t.is_filler:
            out[-1][1].append(t)
    return [(q, answers) for q, answers in out if answers and _clean(q.text)]


def case_record(case: Case) -> CaseRecord:
    """What the store keeps of ``case`` (see ``rag.store.cases`` for how it is stored)."""
    return CaseRecord(
        id=case.id, title=case.title, product=case.product, subcategory=case.subcategory, scenarios=case.scenarios,
        root_cause=case.root_cause, source=case.source, line=case.line, question=_clean(case.question),
        answer=_clean(case.answer), has_links=bool(case.links), provenance=case.provenance,
        dialogue=Dialogue(question=case.question, turns=case.turns, links=case.links),
    )


def chunk_case(case: Case) -> list[Chunk]:
    record = case_record(case)
    question = record.question
    first_turn = _clean(case.first_customer_turn)
    key_parts = [case.title, question]
    if first_turn and first_turn not in question:
        key_parts.append(first_turn)
    key = "\n".join(p for p in key_parts if p)
    chunks = [
        Chunk(id=f"{case.id}:case", case_id=case.id, kind="case", text=f"{case.title}\n{question}\n{record.answer}".strip(),
              key_text=key, exchange=0, case=record)
    ]
    exchanges = _exchanges(case.turns)
    if sum(1 for t in case.turns if t.role == "customer") > 1:
        for n, (q, answers) in enumerate(exchanges, start=1):
            q_text = _clean(q.text)
            a_text = "\n".join(_clean(a.text) for a in answers)
            # The case's fields live once, on the case chunk (looked up by case id): copying the answer here
            # made a 2,000-exchange dialogue quadratic in store size and ingest time.
            chunks.append(Chunk(id=f"{case.id}:ex{n}", case_id=case.id, kind="exchange", text=f"{q_text}\n{a_text}",
                                key_text=f"{case.title}\n{q_text}", exchange=n))
    for wording in case.asked:
        # Named by its text: an edited wording is a new chunk (embedded anew), never a stale vector under an old id.
        # Its turn rides in ``exchange`` (flat metadata, and what the chunk is about within the dialogue).
        digest = hashlib.sha1(wording.text.encode("utf-8")).hexdigest()[:12]
        chunks.append(Chunk(id=f"{case.id}:asked:{digest}", case_id=case.id, kind="asked", text=wording.text,
                            key_text=wording.text, exchange=wording.turn))
    return chunks


def chunk_cases(cases: list[Case]) -> list[Chunk]:
    return [c for case in cases for c in chunk_case(case)]
