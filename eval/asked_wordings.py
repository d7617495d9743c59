"""Write the shipped dataset's sidecar of other customers' wordings (``rag.corpus.asked``).

    python eval/asked_wordings.py [--data data/qiniu_support_tickets_part15.md]

Two sources, both written by LLM helper sessions from the cases alone (eval/relevance/asked/README.md):
- the positive synthetic training tickets (``eval/relevance/train_tickets.jsonl``: one per answered case, "a
  different customer with the same problem"; hard negatives are left out, no case answers them);
- ``eval/relevance/asked/wordings_*.jsonl``: more per answered case, written from that case's dialogue only.

Each wording's ``turn`` (the customer turn it asks about) comes from ``eval/relevance/asked/turns_*.jsonl``, a
helper's reading of each dialogue with its customer turns numbered, or from the wording's own ``turn`` where its
writer named it (round 5, the later questions).

A wording as close to a labelled ticket (development or held-out) as a copy (rapidfuzz ratio >= 70) is dropped and
counted, so no evaluation ticket is matched against its own near-twin. The file is rewritten whole, sorted by case
and source, so a second run gives the same bytes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rapidfuzz import fuzz

from rag.corpus.asked import sidecar
from rag.corpus.parse import parse_paths

ROOT = Path(__file__).resolve().parent.parent
LABELS = ROOT / "eval" / "relevance"
COPY = 70.0  # as eval/relevance/check_tickets.py


def _lines(path: Path) -> list[tuple[int, dict]]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                out.append((n, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise SystemExit(f"{path}:{n}: not valid JSON ({exc.msg})") from None
    return out


def wordings(train: Path, folder: Path) -> list[tuple[str, str, str, int | None]]:
    """(case, text, source, turn) of every wording, before any is dropped; the turn when its writer named it."""
    out = []
    for n, t in _lines(train):
        if t.get("from_case") and t.get("match"):
            text = "\n".join(p for p in (t.get("title") or "", t["text"]) if p).strip()
            out.append((t["from_case"], text, f"{train.name} {t['id']}", None))
    for path in sorted(folder.glob("wordings_*.jsonl")):
        out += [(w["case"], w["text"].strip(), f"asked/{path.name}:{n}", w.get("turn")) for n, w in _lines(path)]
    return out


def turns(folder: Path) -> dict[str, int]:
    """Which customer turn each wording asks about, by its source (``turns_*.jsonl``, a helper's reading)."""
    return {t["source"]: int(t["turn"]) for path in sorted(folder.glob("turns_*.jsonl")) for _, t in _lines(path)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "qiniu_support_tickets_part15.md")
    args = ap.parse_args(argv)
    cases, _ = parse_paths([args.data])
    order = {c.id: n for n, c in enumerate(cases)}
    tickets = [t["text"] for f in ("new_tickets.jsonl", "heldout_tickets.jsonl", "heldout2_tickets.jsonl")
               if (LABELS / f).is_file() for _, t in _lines(LABELS / f)]
    kept, dropped = [], []
    turn_of = turns(LABELS / "asked")
    for case, text, source, turn in wordings(LABELS / "train_tickets.jsonl", LABELS / "asked"):
        if case not in order:
            raise SystemExit(f"{source}: case {case!r} is not a case of {args.data}")
        near = max((fuzz.ratio(text, t) for t in tickets), default=0.0)
        turn = turn_of.get(source, turn)
        line = {"case": case, "text": text, **({"turn": turn} if turn else {}), "source": source}
        (dropped if near >= COPY else kept).append((order[case], source, line))
    out = sidecar(args.data)
    out.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for *_, d in sorted(kept, key=lambda x: x[:2])),
                   encoding="utf-8")
    print(f"{out}: {len(kept)} wordings of {len({k[0] for k in kept})} cases; "
          f"{len(dropped)} dropped as near-copies of a labelled ticket ({', '.join(d[1] for d in dropped) or 'none'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
