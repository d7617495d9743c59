"""Other customers' wordings of a past case's problem: a sidecar file beside a dataset file.

``part15.md`` may have ``part15.asked.jsonl`` beside it, one JSON object a line::

    {"case": "<case id>", "text": "<how another customer asked the same problem>", "turn": 2, "source": "..."}

``turn`` (optional) names the customer turn of the dialogue that asks the same thing (1 for the first non-filler
customer turn): the drafter then answers a ticket close to the wording with the agent's answer to that turn.

Each text becomes an ``asked`` chunk of its case (``rag.corpus.chunk``): matched against a ticket like the case's
own question, never quoted (a hit on it shows the case). A case's own first message is often vague or long, while
a new ticket states the problem the way customers do; a few such wordings per case are what moved the judge most
(docs/judge-lab.md, "Other customers' wordings"). Keys besides ``case`` and ``text`` are for people and not read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Collection

from rag.errors import ParseError
from rag.records import Wording

SUFFIX = ".asked.jsonl"


def sidecar(dataset: Path) -> Path:
    """Where the wordings of ``dataset``'s cases live: ``part15.md`` -> ``part15.asked.jsonl``."""
    return dataset.with_name(dataset.stem + SUFFIX)


def parse_asked(text: str, source: str, case_ids: Collection[str]) -> tuple[dict[str, tuple[Wording, ...]], list[ParseError]]:
    """The wordings by case id, and one error per line that could not be used (named by file and line)."""
    asked: dict[str, list[Wording]] = {}
    problems: list[ParseError] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(ParseError(f"not valid JSON ({exc.msg})", source=source, line=n))
            continue
        case, wording, turn = ((item.get("case"), item.get("text"), item.get("turn", 0)) if isinstance(item, dict)
                               else (None, None, 0))
        wording = wording.strip() if isinstance(wording, str) else None
        if not isinstance(case, str) or not wording:
            problems.append(ParseError('expected {"case": "<case id>", "text": "<wording>"}', source=source, line=n))
        elif not isinstance(turn, int) or isinstance(turn, bool) or turn < 0:
            problems.append(ParseError(f"turn must be a customer turn's number (1, 2, ...); got {turn!r}",
                                       source=source, line=n))
        elif case not in case_ids:
            problems.append(ParseError(f"case {case!r} is not in the dataset beside it", source=source, line=n))
        elif all(w.text != wording for w in asked.setdefault(case, [])):
            asked[case].append(Wording(wording, turn))
    return {c: tuple(ws) for c, ws in asked.items()}, problems
