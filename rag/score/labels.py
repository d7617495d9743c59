"""Hand-made relevance labels (``eval/relevance/``): problem groups over the corpus and new tickets.

Problem groups: one JSON file per dataset part, ``groups/<part>.json``; every case names the problem it
is about (a global slug, so a later part can add cases to a group), the cases that are partly relevant
to it, and whether its agent ever gave a substantive answer. Two cases "address the same problem"
when they share a group and the candidate holds an answer. New tickets: ``new_tickets.jsonl``, one
ticket per line with its matching cases (possibly none), the ideal action and a dev/test split.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Mapping, Sequence

from rag.errors import ConfigError
from rag.records import Action
from rag.score.asks import KINDS
from rag.score.key_content import KeyItem

Split = Literal["dev", "test", "heldout", "heldout2", "train"]


@dataclass(frozen=True)
class GroupLabels:
    group_of: Mapping[str, str]
    partial: Mapping[str, frozenset[str]]
    no_answer: frozenset[str]

    def relevant(self, query_case: str, candidate: str) -> bool:
        """The candidate's answer would genuinely help the query case's customer."""
        return (candidate != query_case and candidate not in self.no_answer
                and self.group_of.get(candidate) is not None
                and self.group_of.get(candidate) == self.group_of.get(query_case))

    def partly(self, query_case: str, candidate: str) -> bool:
        return candidate in self.partial.get(query_case, frozenset()) or query_case in self.partial.get(candidate, frozenset())

    def gain(self, query_case: str, candidate: str) -> float:
        """Graded relevance: 1 same problem, 0.5 partly relevant, 0 otherwise."""
        if self.relevant(query_case, candidate):
            return 1.0
        return 0.5 if self.partly(query_case, candidate) and candidate not in self.no_answer else 0.0

    def partners(self, query_case: str, universe: Sequence[str] | None = None) -> list[str]:
        ids = universe if universe is not None else list(self.group_of)
        return [c for c in ids if self.relevant(query_case, c)]


def load_groups(folder: Path) -> GroupLabels:
    """Every ``*.json`` under ``folder`` (one per dataset part), merged."""
    files = sorted(folder.glob("*.json"))
    if not files:
        raise ConfigError(f"{folder}: no problem-group label files (*.json)")
    group_of: dict[str, str] = {}
    partial: dict[str, frozenset[str]] = {}
    no_answer: set[str] = set()
    for f in files:
        try:
            doc = json.loads(f.read_text(encoding="utf-8"))
            for n, entry in enumerate(doc["cases"]):
                cid = str(entry["id"])
                group_of[cid] = str(entry["group"])
                partial[cid] = frozenset(str(x) for x in entry.get("partial", ()))
                if entry.get("no_answer"):
                    no_answer.add(cid)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{f}: not a problem-group label file ({type(exc).__name__}: {exc})") from None
    return GroupLabels(group_of, partial, frozenset(no_answer))


@dataclass(frozen=True)
class LabelledTicket:
    id: str
    text: str
    title: str
    product: str | None
    match: tuple[str, ...]
    partial: tuple[str, ...]
    action: Action
    kind: str
    split: Split
    source: str = ""
    key: tuple[KeyItem, ...] = ()          # what a right answer must say (covered tickets)
    ask: frozenset[str] | None = None      # what it is reasonable to ask; None: not labelled
    style: str = ""
    from_case: str = ""                    # a synthetic training ticket: the corpus case it was written from

    @property
    def covered(self) -> bool:
        return bool(self.match)

    @property
    def answerable(self) -> bool:
        """A past case answers it and answering is the right move (not a hand-over to staff)."""
        return self.covered and self.action == "answer"


# A line's split; any other value (or none) is a development ticket.
_SPLIT_OF: dict[str, Split] = {"test": "test", "train": "train"}


def load_tickets(path: Path, split: Split | None = None) -> list[LabelledTicket]:
    """Labelled tickets; ``split`` names the set when its lines carry none (the held-out file)."""
    out = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            action = d["action"]
            if action not in ("answer", "ask_for_info", "escalate"):
                raise ValueError(f"unknown action {action!r}")
            out.append(LabelledTicket(
                id=str(d["id"]), text=str(d["text"]), title=str(d.get("title") or ""),
                product=d.get("product") or None, match=tuple(d.get("match") or ()),
                partial=tuple(d.get("partial") or ()), action=action, kind=str(d.get("kind", "")),
                split=split or _SPLIT_OF.get(str(d.get("split")), "dev"), source=str(d.get("source", "")),
                key=tuple(KeyItem(str(k["what"]), tuple(str(a) for a in k["any"])) for k in d.get("key") or ()),
                ask=frozenset(_asks(d["ask"])) if "ask" in d else None, style=str(d.get("style", "")),
                from_case=str(d.get("from_case") or ""),
            ))
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path}:{n}: not a labelled ticket ({exc})") from None
    return out


def _asks(values: object) -> list[str]:
    if not isinstance(values, list) or any(v not in KINDS for v in values):
        raise ValueError(f"ask must be a list of {', '.join(KINDS)}; got {values!r}")
    return [str(v) for v in values]
