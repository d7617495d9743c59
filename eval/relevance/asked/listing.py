"""Write the two case listings the wording writers read (what BRIEF.md calls cases_1.md and cases_2.md).

    python eval/relevance/asked/listing.py OUT_DIR

Every answered case of the corpus (the problem groups' ``no_answer`` cases left out), alternately into part 1 and 2:
id, product, title, 问题描述 and the dialogue without filler turns. No problem group, no other case, no ticket: a
writer sees one case at a time, so a wording cannot borrow another case's phrasing.
"""

import json
import sys
from pathlib import Path

from rag.corpus.parse import parse_paths

ROOT = Path(__file__).resolve().parents[3]


def main(out: Path) -> None:
    cases, _ = parse_paths([ROOT / "data"])
    groups = json.loads((ROOT / "eval/relevance/groups/qiniu_support_tickets_part15.json").read_text(encoding="utf-8"))
    no_answer = {c["id"] for c in groups["cases"] if c.get("no_answer")}
    parts: dict[int, list[str]] = {1: [], 2: []}
    for n, c in enumerate(cases):
        if c.id in no_answer or not c.answer.strip():
            continue
        lines = [f"## case {c.id}", f"product: {c.product} / {c.subcategory}", f"title: {c.title}", f"问题描述: {c.question}", ""]
        lines += [f"[{'客户' if t.role == 'customer' else '客服'}] {t.text}" for t in c.turns if not t.is_filler]
        parts[1 if n % 2 == 0 else 2].append("\n".join(lines))
    out.mkdir(parents=True, exist_ok=True)
    for k, blocks in parts.items():
        (out / f"cases_{k}.md").write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
        print(f"{out / f'cases_{k}.md'}: {len(blocks)} cases")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
