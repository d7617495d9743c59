"""The long tickets (``tickets.jsonl``, stop 36) as synthetic training tickets for ``eval/fit_match.py --train``.

    python eval/relevance/long/to_train.py OUT.jsonl [--with-old]

Each positive matches its case's problem group; each negative (a near miss in the same product area that no case
answers) matches nothing. Both are in the fold of the case they were written from, so the model that ranks that
case's group never learnt from them. ``--with-old`` keeps the older synthetic training tickets as well. How they were
written: ``BRIEF.md``; what they did: docs/measurements.md, "Stop 36" (tried, not kept).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rag.score.labels import load_groups

HERE = Path(__file__).resolve().parent
LABELS = HERE.parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--with-old", action="store_true", help="keep the older synthetic training tickets too")
    args = ap.parse_args(argv)
    groups = load_groups(LABELS / "groups")
    rows = ([json.loads(line) for line in (LABELS / "train_tickets.jsonl").read_text(encoding="utf-8").splitlines()
             if line.strip()] if args.with_old else [])
    for n, line in enumerate((HERE / "tickets.jsonl").read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        t = json.loads(line)
        case, positive = t["case"], t["kind"] == "positive"
        rows.append({"id": f"lt-{n:04d}", "title": "", "text": t["text"], "product": None,
                     "match": [case, *groups.partners(case)] if positive else [],
                     "partial": sorted(groups.partial.get(case, frozenset())) if positive else [],
                     "action": "answer" if positive else "ask_for_info",
                     "kind": "covered" if positive else "qiniu-uncovered",
                     "source": f"eval/relevance/long/tickets.jsonl:{n}", "split": "train", "from_case": case})
    args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"{args.out}: {len(rows)} training tickets", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
