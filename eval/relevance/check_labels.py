"""Check the problem-group labels in eval/relevance/groups/*.json against the corpus and print their counts.

    python eval/relevance/check_labels.py [--data data] [--groups eval/relevance/groups]

Each groups file labels one dataset part (its "source"): one entry per case of that part, in corpus order.
Group slugs are global, so a slug may be declared by several files (it then names the same problem). Exits 1
and names the file and the entry for every problem found; asymmetric partial pairs are only reported.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

from rag.corpus.parse import parse_paths
from rag.paths import resource

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
CASE_KEYS = {"id", "n", "line", "title", "group", "partial", "no_answer"}
TOP_KEYS = {"source", "labelled_by", "method", "groups", "cases"}


def check(data: Path, groups_dir: Path) -> int:
    cases, _ = parse_paths([data])
    corpus = {c.id: c for c in cases}
    by_source: dict[str, list] = defaultdict(list)
    for c in cases:
        by_source[c.source].append(c)

    errors: list[str] = []
    declared: dict[str, str] = {}
    entries: dict[str, dict] = {}
    files = sorted(groups_dir.glob("*.json"))
    if not files:
        errors.append(f"{groups_dir}: no *.json groups file")
    for f in files:
        try:
            doc = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            errors.append(f"{f}: not readable JSON ({exc})")
            continue
        missing = TOP_KEYS - doc.keys()
        if missing:
            errors.append(f"{f}: missing top-level field(s) {sorted(missing)}")
            continue
        for slug, desc in doc["groups"].items():
            if not SLUG.match(slug):
                errors.append(f"{f}: groups: slug {slug!r} is not lowercase ascii words joined by dashes")
            if not isinstance(desc, str) or not desc.strip():
                errors.append(f"{f}: groups[{slug!r}]: empty description")
            declared.setdefault(slug, desc)
        part = by_source.get(doc["source"])
        if part is None:
            errors.append(f"{f}: source {doc['source']!r} is not a dataset file under {data}")
            continue
        ids = [e.get("id") for e in doc["cases"]]
        if ids != [c.id for c in part]:
            extra = sorted(set(ids) - {c.id for c in part})
            absent = [c.id for c in part if c.id not in set(ids)]
            dup = [i for i, k in Counter(ids).items() if k > 1]
            errors.append(
                f"{f}: cases must be one entry per case of {doc['source']} in corpus order "
                f"(unknown ids {extra[:5]}, missing ids {absent[:5]}, duplicated ids {dup[:5]})"
            )
        for k, e in enumerate(doc["cases"]):
            where = f"{f}: cases[{k}] (id {e.get('id')})"
            if CASE_KEYS - e.keys():
                errors.append(f"{where}: missing field(s) {sorted(CASE_KEYS - e.keys())}")
                continue
            case = corpus.get(e["id"])
            if case is None:
                continue  # already reported above
            if k < len(part) and part[k].id == e["id"] and e["n"] != k:
                errors.append(f"{where}: n is {e['n']}, the case is number {k} of its part")
            if e["line"] != case.line:
                errors.append(f"{where}: line is {e['line']}, the case starts on line {case.line}")
            if e["title"] != case.title:
                errors.append(f"{where}: title differs from the corpus ({case.title!r})")
            if not isinstance(e["no_answer"], bool):
                errors.append(f"{where}: no_answer must be true or false")
            entries[e["id"]] = {**e, "_where": where}

    for slug in {e["group"] for e in entries.values()} - declared.keys():
        errors.append(f"group {slug!r} is used by a case but declared in no groups file")
    used = {e["group"] for e in entries.values()}
    for slug in declared.keys() - used:
        errors.append(f"group {slug!r} is declared but no case uses it")

    asymmetric = 0
    for cid, e in entries.items():
        for p in e["partial"]:
            if p not in corpus:
                errors.append(f"{e['_where']}: partial id {p} is not a corpus case")
            elif p == cid:
                errors.append(f"{e['_where']}: lists itself as partial")
            elif p in entries and entries[p]["group"] == e["group"]:
                errors.append(f"{e['_where']}: partial {p} is in the same group {e['group']!r}")
            elif p in entries and cid not in entries[p]["partial"]:
                asymmetric += 1
        if len(set(e["partial"])) != len(e["partial"]):
            errors.append(f"{e['_where']}: duplicated partial ids")

    for msg in errors:
        print(f"error: {msg}", file=sys.stderr)

    members: dict[str, list[dict]] = defaultdict(list)
    for e in entries.values():
        members[e["group"]].append(e)
    sizes = Counter(len(m) for m in members.values())
    with_partner = [e for m in members.values() if len(m) > 1 for e in m]
    answerable = [
        e for m in members.values() for e in m if any(o is not e and not o["no_answer"] for o in m)
    ]
    print(f"files: {len(files)}  cases labelled: {len(entries)} of {len(corpus)} in the corpus")
    print(f"groups: {len(members)}  singletons: {sizes.get(1, 0)}  multi-case groups: {len(members) - sizes.get(1, 0)}")
    print("group sizes: " + ", ".join(f"{n}x{size}" for size, n in sorted(sizes.items())))
    print(f"cases with a same-group partner: {len(with_partner)}")
    print(f"cases with a same-group partner that has an answer: {len(answerable)}")
    print(f"no_answer cases: {sum(e['no_answer'] for e in entries.values())}")
    print(f"cases with partials: {sum(bool(e['partial']) for e in entries.values())}  "
          f"partial pairs: {sum(len(e['partial']) for e in entries.values()) // 2}  asymmetric: {asymmetric}")
    print("ok" if not errors else f"{len(errors)} error(s)")
    return 1 if errors else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=resource("data"))
    ap.add_argument("--groups", type=Path, default=Path(__file__).parent / "groups")
    args = ap.parse_args()
    sys.exit(check(args.data, args.groups))


if __name__ == "__main__":
    main()
