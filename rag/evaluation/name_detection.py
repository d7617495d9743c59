"""How well unlabelled names are found (``rag.text.person_names``): false names on the corpus, whose dialogues
the dataset already de-identified, and recall on the labelled tables in ``tests/data/``.

    python eval/person_names.py [--data data] [--show]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from rag.corpus.parse import parse_paths
from rag.paths import checkout_root, resource
from rag.text.person_names import find_person_names

TABLES = ("person_names.jsonl", "person_names_heldout.jsonl")


def _jieba_nr(texts: Iterable[str]) -> list[str]:
    """What jieba's tagger alone calls a name (its shared default dictionary)."""
    import jieba.posseg

    return [p.word for t in texts for p in jieba.posseg.cut(t) if p.flag in ("nr", "nrfg", "nrt")]


@dataclass(frozen=True)
class TableScore:
    found: int
    missed: int
    extra: int
    # ("missed" | "extra", name, sentence), in table order.
    mistakes: tuple[tuple[str, str, str], ...]

    @property
    def recall(self) -> float:
        return self.found / max(1, self.found + self.missed)

    @property
    def precision(self) -> float:
        return self.found / max(1, self.found + self.extra)


def score_table(rows: Sequence[dict]) -> TableScore:
    """The detector against labelled sentences (``{"text": ..., "names": [...]}``): each expected name
    found once counts, a span not expected is extra, an expected name not found is missed."""
    found = missed = extra = 0
    mistakes: list[tuple[str, str, str]] = []
    for row in rows:
        expected = list(row["names"])
        for span in find_person_names(row["text"]):
            if span.value in expected:
                expected.remove(span.value)
                found += 1
            else:
                extra += 1
                mistakes.append(("extra", span.value, row["text"]))
        missed += len(expected)
        mistakes += [("missed", name, row["text"]) for name in expected]
    return TableScore(found, missed, extra, tuple(mistakes))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--data", default=str(resource("data")), help="corpus folder (already de-identified; default: the corpus)")
    ap.add_argument("--show", action="store_true", help="print every hit, miss and extra span")
    root = checkout_root()
    if root is None:
        ap.error("the labelled tables are in a source checkout's tests/data/; run this from a checkout")
    args = ap.parse_args(argv)
    cases, _ = parse_paths([Path(args.data)])
    for role in ("agent", "customer"):
        texts = [t.text for c in cases for t in c.turns if t.role == role]
        hits = [(c.id, s.value) for c in cases for t in c.turns if t.role == role for s in find_person_names(t.text)]
        print(f"{role} turns ({len(texts)}, {sum(map(len, texts))} chars): jieba nr alone {len(_jieba_nr(texts))}, "
              f"detector {len(hits)}")
        if args.show:
            for case_id, value in hits:
                print(f"  {case_id}: {value}")
    for name in TABLES:
        path = root / "tests" / "data" / name
        rows = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
        score = score_table(rows)
        if args.show:
            print(name)
            for kind, value, text in score.mistakes:
                print(f"  {kind} {value}: {text}")
        print(f"{name}: {len(rows)} sentences, {score.found + score.missed} names, found {score.found}, "
              f"missed {score.missed}, extra {score.extra}, recall {score.recall:.3f}, precision {score.precision:.3f}")
    return 0
