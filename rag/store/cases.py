"""The case repository: case records read from the store, and the only code that knows Chroma's metadata.

Chroma keeps flat scalar metadata per chunk. The case chunk carries the whole case record (title,
product, scenarios, question, substantive answer, source file and line...); an exchange chunk
carries only what it is (its case id, its exchange number, its question side). Every key, the
scenario separator and the schema version live here: chunking encodes through ``encode_chunk``,
the store's reconciliation and the retrievers decode through this module, and every face (CLI,
service, drafter, evaluation, llama-index) asks the repository for "all cases", "case by id",
"known links" and "products and scenarios" instead of reading metadata by key.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from rag.corpus.catalog import Catalog
from rag.corpus.format import format_provenance, parse_provenance
from rag.text.identifiers import CorpusIdentifiers
from rag.text.links import find_links
from rag.errors import StoreError
from rag.records import Case, CaseRecord, Chunk, ChunkKind, Dialogue, Turn, Wording

if TYPE_CHECKING:
    from rag.store.chroma import ChunkStore

Metadata = dict[str, str | int | float | bool]

SCENARIO_SEP = "|"
# 1 (no key): every chunk copied its case's fields and sources were file names. 2: exchange chunks refer
# to their case; sources are paths relative to the ingested root. 3: the case chunk also keeps the
# dialogue (evaluation replays the store, not the files); re-ingest rewrites older metadata in place.
SCHEMA = 3

_CASE_ID, _KIND, _EXCHANGE, _KEY_TEXT, _SCHEMA = "case_id", "kind", "exchange", "key_text", "schema"
_TITLE, _PRODUCT, _SUBCATEGORY, _SCENARIOS = "title", "product", "subcategory", "scenarios"
_ROOT_CAUSE, _HAS_LINKS, _SOURCE, _LINE, _QUESTION, _ANSWER, _PROVENANCE = (
    "root_cause", "has_links", "source", "line", "question", "answer", "provenance")
_DIALOGUE = "dialogue"


class StoreTooOldError(StoreError):
    """The store was written before it kept what is asked of it (re-ingest migrates it in place)."""


def encode_dialogue(dialogue: Dialogue) -> str:
    """One JSON string on the case chunk only (Chroma metadata is flat scalars; exchange chunks stay small).

    A turn is ``[role, text, line, is_filler, has_image]``: the keys once, not once per turn."""
    return json.dumps({"question": dialogue.question, "links": list(dialogue.links),
                       "turns": [[t.role, t.text, t.line, t.is_filler, t.has_image] for t in dialogue.turns]},
                      ensure_ascii=False, separators=(",", ":"))


def decode_dialogue(text: str) -> Dialogue:
    data = json.loads(text)
    return Dialogue(
        question=str(data["question"]), links=tuple(str(link) for link in data["links"]),
        turns=tuple(Turn(role="agent" if role == "agent" else "customer", text=str(t), line=int(line),
                         is_filler=bool(filler), has_image=bool(image))
                    for role, t, line, filler, image in data["turns"]),
    )


def encode_chunk(chunk: Chunk) -> Metadata:
    """The flat metadata Chroma stores for ``chunk`` (None is not storable: an absent root cause is "")."""
    meta: Metadata = {_CASE_ID: chunk.case_id, _KIND: chunk.kind, _EXCHANGE: chunk.exchange,
                      _KEY_TEXT: chunk.key_text, _SCHEMA: SCHEMA}
    case = chunk.case
    if case is not None:
        meta.update({
            _TITLE: case.title, _PRODUCT: case.product, _SUBCATEGORY: case.subcategory,
            _SCENARIOS: SCENARIO_SEP.join(case.scenarios), _ROOT_CAUSE: case.root_cause or "",
            _HAS_LINKS: case.has_links, _SOURCE: case.source, _LINE: case.line,
            _QUESTION: case.question, _ANSWER: case.answer,
        })
        if case.provenance is not None:  # only feedback cases carry it: the dataset's chunks are unchanged
            meta[_PROVENANCE] = format_provenance(case.provenance)
        if case.dialogue is not None:
            meta[_DIALOGUE] = encode_dialogue(case.dialogue)
    return meta


def decode_case(meta: Mapping[str, Any]) -> CaseRecord:
    return CaseRecord(
        id=str(meta.get(_CASE_ID, "")),
        title=str(meta.get(_TITLE, "")),
        product=str(meta.get(_PRODUCT, "")),
        subcategory=str(meta.get(_SUBCATEGORY, "")),
        scenarios=tuple(s for s in str(meta.get(_SCENARIOS, "")).split(SCENARIO_SEP) if s),
        root_cause=str(meta.get(_ROOT_CAUSE) or "") or None,
        source=str(meta.get(_SOURCE, "")),
        line=int(meta.get(_LINE, 0) or 0),
        question=str(meta.get(_QUESTION, "")),
        answer=str(meta.get(_ANSWER, "")),
        has_links=bool(meta.get(_HAS_LINKS, False)),
        provenance=parse_provenance(str(meta[_PROVENANCE])) if meta.get(_PROVENANCE) else None,
        dialogue=decode_dialogue(str(meta[_DIALOGUE])) if meta.get(_DIALOGUE) else None,
    )


def decode_chunk(chunk_id: str, text: str, meta: Mapping[str, Any]) -> Chunk:
    """A stored chunk as a record; the case chunk carries its case (schema 1 exchange copies are ignored)."""
    stored = meta.get(_KIND)
    kind: ChunkKind = "case" if stored == "case" else "asked" if stored == "asked" else "exchange"
    return Chunk(
        id=chunk_id, case_id=str(meta.get(_CASE_ID, "")), kind=kind, text=text,
        key_text=str(meta.get(_KEY_TEXT, "")), exchange=int(meta.get(_EXCHANGE, 0) or 0),
        case=decode_case(meta) if kind == "case" else None,
    )


def ids_by_source(metas: Mapping[str, Mapping[str, Any]]) -> dict[str, set[str]]:
    """Stored chunk ids grouped by the source file of their case (what reconciliation works per).

    An exchange chunk is filed under its case chunk's source; one whose case chunk is gone (an
    ingest stopped while deleting) is filed under "", which every ingest cleans up.
    """
    source_of_case = {str(m.get(_CASE_ID, "")): str(m.get(_SOURCE, "")) for m in metas.values() if m.get(_KIND) == "case"}
    out: dict[str, set[str]] = {}
    for chunk_id, m in metas.items():
        # Schema 1 exchange chunks carry their own copy of the source; prefer the case chunk's.
        source = source_of_case.get(str(m.get(_CASE_ID, "")), str(m.get(_SOURCE, "")) if m.get(_KIND) != "case" else "")
        out.setdefault(source, set()).add(chunk_id)
    return out


def covered_sources(metas: Mapping[str, Mapping[str, Any]], sources: set[str]) -> set[str]:
    """The stored sources an ingest of ``sources`` speaks for, so that their chunks it no longer makes go.

    The same paths; "" (chunks whose case is gone); and the file names schema 1 recorded, for stored
    chunks still in schema 1, so that re-ingesting an old store replaces ``part1.md`` by ``a/part1.md``.
    """
    names = {s.rsplit("/", 1)[-1] for s in sources}
    # Schema 1 only (no key): a later schema's "part1.md" is a file in the root, not an old name of "a/part1.md".
    old = {str(m.get(_SOURCE, "")) for m in metas.values() if _SCHEMA not in m}
    return set(sources) | {""} | (old & names)


class CaseRepository:
    """The cases and chunks of one store, read once; answers every face's questions about the corpus.

    A chunk whose case record is missing (an interrupted ingest) is left out: it could not be cited.
    """

    def __init__(self, chunks: Sequence[Chunk]) -> None:
        cases: dict[str, CaseRecord] = {}
        asked: dict[str, list[Wording]] = defaultdict(list)
        for c in chunks:
            if c.case is not None:
                cases[c.case_id] = c.case
            elif c.kind == "asked":
                asked[c.case_id].append(Wording(c.text, c.exchange))
        self._cases = {i: replace(r, asked=tuple(asked[i])) if i in asked else r for i, r in cases.items()}
        self.chunks: tuple[Chunk, ...] = tuple(c for c in chunks if c.case_id in cases)
        self.row_of: dict[str, int] = {c.id: row for row, c in enumerate(self.chunks)}
        self.rows_of_case: dict[str, list[int]] = {}
        for row, c in enumerate(self.chunks):
            self.rows_of_case.setdefault(c.case_id, []).append(row)

    @classmethod
    def from_store(cls, store: "ChunkStore", snapshots: Path | None = None) -> "CaseRepository":
        """The store's chunks; with ``snapshots``, from a local copy made for exactly these contents when there is
        one (``rag.store.snapshot``), else read from the store and copied there for the next process."""
        from rag.store import snapshot

        stamp = store.stamp() if snapshots is not None else None
        path = snapshot.snapshot_path(snapshots, store.active.collection, stamp, SCHEMA) if snapshots and stamp else None
        if path is not None and (chunks := snapshot.load(path)) is not None:
            return cls(chunks)
        chunks = [decode_chunk(c.id, c.text, c.metadata) for c in store.all_chunks()]
        if path is not None and store.stamp() == stamp:  # unchanged while it was read: the copy is of one content
            snapshot.save(path, chunks)
        return cls(chunks)

    def __len__(self) -> int:
        return len(self._cases)

    def __contains__(self, case_id: object) -> bool:
        return case_id in self._cases

    def __iter__(self) -> Iterator[CaseRecord]:
        return iter(self._cases.values())

    def all(self) -> tuple[CaseRecord, ...]:
        """Every case, in store order."""
        return tuple(self._cases.values())

    def get(self, case_id: str) -> CaseRecord | None:
        return self._cases.get(case_id)

    def ids(self) -> list[str]:
        return list(self._cases)

    def case_of_row(self, row: int) -> CaseRecord:
        return self._cases[self.chunks[row].case_id]

    def replay_cases(self) -> tuple[Case, ...]:
        """Every case as parsed at ingest, in corpus order (by source path, then line), for evaluation to
        replay the corpus it retrieves from; a store written before schema 3 keeps no dialogues."""
        dialogues = {c.id: c.dialogue for c in self._cases.values() if c.dialogue is not None}
        if len(dialogues) < len(self._cases):
            missing = len(self._cases) - len(dialogues)
            raise StoreTooOldError(
                f"{missing} of the store's {len(self._cases)} cases were ingested before the store kept their "
                "dialogue, which evaluation replays: run `rag ingest` on the same data (it rewrites the metadata in "
                "place, no re-embedding) or `rag ingest --rebuild`")
        ordered = sorted(self._cases.values(), key=lambda c: (c.source.split("/"), c.line))
        return tuple(_as_case(c, dialogues[c.id]) for c in ordered)

    @cached_property
    def identifiers(self) -> CorpusIdentifiers:
        """Which hosts and ids the corpus shows as public and which as one customer's, learned once per
        store load: every drafter built on these cases shares it (learning costs ~0.7 s of CPU)."""
        # From the store's cases and chunks: what a running service knows without re-reading the dataset files.
        texts: dict[str, list[str]] = defaultdict(list)
        for c in self.chunks:
            if c.kind != "asked":  # other customers' wordings carry invented hosts: never learnt as the corpus's
                texts[c.case_id].append(c.text)
        return CorpusIdentifiers.learn((r.id, "\n".join([*texts[r.id], r.question]), r.answer) for r in self)

    @cached_property
    def known_links(self) -> frozenset[str]:
        """Every clean link in the stored agent answers: the only links a draft may repeat besides the allow-list."""
        return frozenset(link for c in self._cases.values() for link in find_links(c.answer))

    @cached_property
    def catalog(self) -> Catalog:
        return Catalog.of(self._cases.values())


def _as_case(record: CaseRecord, d: Dialogue) -> Case:
    return Case(id=record.id, title=record.title, product=record.product, subcategory=record.subcategory,
                scenarios=record.scenarios, question=d.question, turns=d.turns, root_cause=record.root_cause,
                source=record.source, line=record.line, links=d.links, provenance=record.provenance, asked=record.asked)
