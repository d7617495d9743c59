"""Turn a ``Case`` into the chunks that are stored and searched.

One chunk per case (title + question + substantive answer) so a short ticket can match a whole
case; one chunk per exchange of a multi-turn dialogue (a customer turn with the agent turns that
answer it) so a follow-up question deep in a long dialogue can still be found. Each chunk also
carries ``key_text``, its question side, which is what gets embedded: tickets are questions, and
matching question against question beats matching question against answer (see README).
"""

from __future__ import annotations

from rag.dataset_format import format_provenance
from rag.filler import strip_image_markers
from rag.links import separate_links
from rag.records import Case, Chunk, Turn

SCENARIO_SEP = "|"


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


def case_metadata(case: Case) -> dict[str, str | int | float | bool]:
    # Chroma metadata must be flat scalars; None would come back as "".
    meta: dict[str, str | int | float | bool] = {
        "case_id": case.id,
        "title": case.title,
        "product": case.product,
        "subcategory": case.subcategory,
        "scenarios": SCENARIO_SEP.join(case.scenarios),
        "root_cause": case.root_cause or "",
        "has_links": bool(case.links),
        "source": case.source,
        "line": case.line,
        "answer": _clean(case.answer),
        "question": _clean(case.question),
    }
    if case.provenance is not None:  # only feedback cases carry it: the dataset's chunks are unchanged
        meta["provenance"] = format_provenance(case.provenance)
    return meta


def chunk_case(case: Case) -> list[Chunk]:
    meta = case_metadata(case)
    answer = meta["answer"]
    question = _clean(case.question)
    first_turn = _clean(case.first_customer_turn)
    key_parts = [case.title, question]
    if first_turn and first_turn not in question:
        key_parts.append(first_turn)
    key = "\n".join(p for p in key_parts if p)
    chunks = [
        Chunk(
            id=f"{case.id}:case",
            case_id=case.id,
            kind="case",
            text=f"{case.title}\n{question}\n{answer}".strip(),
            metadata={**meta, "kind": "case", "exchange": 0, "key_text": key},
        )
    ]
    exchanges = _exchanges(case.turns)
    exchange_meta = {k: v for k, v in meta.items() if k not in ("answer", "question")}
    if sum(1 for t in case.turns if t.role == "customer") > 1:
        for n, (q, answers) in enumerate(exchanges, start=1):
            q_text = _clean(q.text)
            a_text = "\n".join(_clean(a.text) for a in answers)
            chunks.append(
                Chunk(
                    id=f"{case.id}:ex{n}",
                    case_id=case.id,
                    kind="exchange",
                    text=f"{q_text}\n{a_text}",
                    # The answer and question live once, on the case chunk (looked up by case id): copying
                    # them here made a 2,000-exchange dialogue quadratic in store size and ingest time.
                    metadata={**exchange_meta, "kind": "exchange", "exchange": n, "key_text": f"{case.title}\n{q_text}"},
                )
            )
    return chunks


def chunk_cases(cases: list[Case]) -> list[Chunk]:
    return [c for case in cases for c in chunk_case(case)]
