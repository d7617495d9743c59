"""Write the case listings the wording writers read.

    python eval/relevance/asked/listing.py OUT_DIR             # rounds 2 and 3: cases_1.md, cases_2.md
    python eval/relevance/asked/listing.py OUT_DIR --parts 4   # round 6 (English): the same cases in four parts
    python eval/relevance/asked/listing.py OUT_DIR --turns 4   # round 5 (tried/): later turns, cases_1.md ... cases_4.md

Every answered case of the corpus (the problem groups' ``no_answer`` cases left out): id, product, title, 问题描述
and the dialogue without filler turns. No problem group, no other case, no ticket: a writer sees one case at a time,
so a wording cannot borrow another case's phrasing.

``--turns N`` numbers the customer turns as the sidecar's ``turn`` does (``[客户 #k]``), lists the case's wordings
already in the sidecar with the turn each asks about, and leaves out the cases whose every customer turn has one;
the cases are dealt into N parts of about as many unworded turns each.
"""

import argparse
import json
from collections import defaultdict
from pathlib import Path

from rag.corpus.asked import parse_asked, sidecar
from rag.corpus.parse import parse_paths

ROOT = Path(__file__).resolve().parents[3]
DATASET = ROOT / "data" / "qiniu_support_tickets_part15.md"


def _header(c) -> list[str]:
    return [f"## case {c.id}", f"product: {c.product} / {c.subcategory}", f"title: {c.title}", f"问题描述: {c.question}", ""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--turns", type=int, metavar="N", help="number the customer turns; N parts")
    ap.add_argument("--parts", type=int, default=2, metavar="N",
                    help="without --turns: the two listings' cases, one after the other, dealt into N parts")
    args = ap.parse_args()
    cases, _ = parse_paths([DATASET])
    groups = json.loads((ROOT / "eval/relevance/groups/qiniu_support_tickets_part15.json").read_text(encoding="utf-8"))
    no_answer = {c["id"] for c in groups["cases"] if c.get("no_answer")}
    answered = [(n, c) for n, c in enumerate(cases) if c.id not in no_answer and c.answer.strip()]
    parts: dict[int, list[str]] = defaultdict(list)
    if not args.turns:
        for n, c in answered:
            lines = _header(c) + [f"[{'客户' if t.role == 'customer' else '客服'}] {t.text}" for t in c.turns if not t.is_filler]
            parts[1 + n % 2].append("\n".join(lines))
        if args.parts != 2:
            dealt = parts[1] + parts[2]
            parts = defaultdict(list, {k + 1: dealt[k::args.parts] for k in range(args.parts)})
    else:
        path = sidecar(DATASET)
        asked, _ = parse_asked(path.read_text(encoding="utf-8"), path.name, {c.id for c in cases})
        load = {k: 0 for k in range(1, args.turns + 1)}
        blocks = []
        for _, c in answered:
            worded = {w.turn or 1 for w in asked.get(c.id, ())}
            lines, k = _header(c), 0
            for t in c.turns:
                if t.role == "customer":
                    k += 1
                    lines.append(f"[客户 #{k}] {t.text}")
                elif not t.is_filler:
                    lines.append(f"[客服] {t.text}")
            if not set(range(1, k + 1)) - worded:
                continue
            lines += ["", f"customer turns that already have wordings: {', '.join(map(str, sorted(worded)))}",
                      "wordings already written (do not repeat them):"]
            lines += [f"- (#{w.turn or 1}) {w.text}" for w in asked.get(c.id, ())]
            blocks.append((k - len(worded), "\n".join(lines)))
        for weight, block in sorted(blocks, key=lambda b: -b[0]):  # largest first, each to the lightest part
            part = min(load, key=load.__getitem__)
            load[part] += weight
            parts[part].append(block)
    args.out.mkdir(parents=True, exist_ok=True)
    for k, text in sorted(parts.items()):
        (args.out / f"cases_{k}.md").write_text("\n\n".join(text) + "\n", encoding="utf-8")
        print(f"{args.out / f'cases_{k}.md'}: {len(text)} cases")


if __name__ == "__main__":
    main()
