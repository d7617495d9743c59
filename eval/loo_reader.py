"""How far a better judge could take leave-one-out P@1: a blind reader, and the local model, pick among the shipped
ranking's candidates. Prints; not a test (docs/judge-lab.md, "A reader's ceiling").

    python eval/retrieval_loo.py --rankings R.json                       # the shipped ranking, per corpus query
    python eval/loo_reader.py packet --rankings R.json --out DIR         # DIR/packet_a.md, packet_b.md, key.json
    # a reader (a person, or a helper session shown only one packet) writes DIR/answers_a.jsonl, answers_b.jsonl:
    #   {"q": "Q01", "pick": "B", "second": "F", "confident": true} per item
    python eval/loo_reader.py score --rankings R.json --dir DIR          # the reader's P@1 beside the system's
    python eval/loo_reader.py llm --rankings R.json --url URL [--out F]  # a local model picks among the top 5

Each item is one leave-one-out query with a same-problem partner (title + 问题描述, as retrieval_loo.py queries) and
the shipped ranking's top 10, shuffled with a fixed seed so the order gives nothing away; the reader sees each case's
title, question and the start of its answer, never the labels. Graded by the problem groups (rag.score.labels).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from pathlib import Path

import httpx

from rag.evaluation.retrieval_loo import loo_settings
from rag.pipeline import Pipeline
from rag.records import CaseRecord
from rag.score.labels import GroupLabels, load_groups

ROOT = Path(__file__).resolve().parent.parent
SEED = 20261207
_PICK = ("下面是一个新工单和几个过往案例。哪个过往案例和新工单是同一个具体问题（它的答复能直接帮到这位客户）？只回答一个字母。\n\n"
         "新工单：{ticket}\n\n过往案例：\n{cases}\n\n答案：")


def _items(rankings: Path, labels: GroupLabels) -> list[tuple[str, list[str]]]:
    """The queries with a same-problem partner, each with its ranking, in corpus order."""
    rows = json.loads(rankings.read_text(encoding="utf-8"))
    ids = [r["case_id"] for r in rows]
    return [(r["case_id"], r["ranking"]) for r in rows if labels.partners(r["case_id"], ids)]


def _line(case: CaseRecord, question: int, answer: int) -> str:
    return (f"title: {case.title} | question: {case.question.strip()[:question]} | "
            f"answer: {case.answer.strip().replace(chr(10), ' ')[:answer]}")


def packet(args: argparse.Namespace, labels: GroupLabels, cases: dict[str, CaseRecord]) -> None:
    rng = random.Random(SEED)
    blocks, key = [], {}
    for n, (query, ranking) in enumerate(_items(args.rankings, labels), start=1):
        shown = list(ranking[:10])
        rng.shuffle(shown)
        name = f"Q{n:02d}"
        key[name] = {"case": query, "cands": shown}
        lines = [f"## {name}\nTICKET: {cases[query].query_text.strip()}\n"]
        lines += [f"  [{chr(65 + i)}] {_line(cases[c], 200, 260)}" for i, c in enumerate(shown)]
        blocks.append("\n".join(lines))
    args.out.mkdir(parents=True, exist_ok=True)
    half = len(blocks) // 2
    (args.out / "packet_a.md").write_text("\n\n".join(blocks[:half]), encoding="utf-8")
    (args.out / "packet_b.md").write_text("\n\n".join(blocks[half:]), encoding="utf-8")
    (args.out / "key.json").write_text(json.dumps(key, ensure_ascii=False, indent=0), encoding="utf-8")
    print(f"{len(blocks)} items: {args.out}/packet_a.md ({half}), packet_b.md ({len(blocks) - half}), key.json")


def score(args: argparse.Namespace, labels: GroupLabels, cases: dict[str, CaseRecord]) -> None:
    key = json.loads((args.dir / "key.json").read_text(encoding="utf-8"))
    answers: dict[str, dict] = {}
    for f in sorted(args.dir.glob("answers_*.jsonl")):
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    a = json.loads(line)
                    answers[a["q"]] = a
                except (json.JSONDecodeError, KeyError) as e:
                    raise SystemExit(f"{f}:{n}: not an answer line ({e})")
    system = dict(_items(args.rankings, labels))
    n = reader = top2 = shipped = within = confident = confident_right = 0
    for q, k in key.items():
        if q not in answers:
            continue
        query, shown = k["case"], k["cands"]
        a = answers[q]
        pick, second = shown[ord(a["pick"]) - 65], shown[ord(a["second"]) - 65]
        right = labels.relevant(query, pick)
        n += 1
        reader += right
        top2 += right or labels.relevant(query, second)
        shipped += labels.relevant(query, system[query][0])
        within += any(labels.relevant(query, c) for c in shown)
        confident += bool(a.get("confident"))
        confident_right += bool(a.get("confident")) and right
    if not n:
        raise SystemExit(f"no answers in {args.dir}/answers_*.jsonl")
    print(f"{n} of {len(key)} items answered")
    print(f"reader P@1 {reader / n:.3f} (right among its first two {top2 / n:.3f}); shipped ranking P@1 {shipped / n:.3f}")
    print(f"a same-problem case among the ten shown {within / n:.3f}; confident picks {confident}, right {confident_right}")


def llm(args: argparse.Namespace, labels: GroupLabels, cases: dict[str, CaseRecord]) -> None:
    """The local model picks among the top 5 in the ranking's order (one letter, its log-probabilities); also fused
    with the ranking (log P(letter) + log 1/rank)."""
    out = args.out.open("w", encoding="utf-8") if args.out else None
    n = shipped = picked = fused = 0
    for query, ranking in _items(args.rankings, labels):
        shown = ranking[:5]
        text = _PICK.format(ticket=cases[query].query_text.strip()[:300], cases="\n".join(
            f"{chr(65 + i)}. {_line(cases[c], 100, 120)}" for i, c in enumerate(shown)))
        r = httpx.post(f"{args.url.rstrip('/')}/chat/completions", timeout=300, json={
            "messages": [{"role": "user", "content": text}], "max_tokens": 1, "temperature": 0,
            "logprobs": True, "top_logprobs": 10})
        r.raise_for_status()
        probs = {chr(65 + i): 0.0 for i in range(len(shown))}
        for t in r.json()["choices"][0]["logprobs"]["content"][0]["top_logprobs"]:
            letter = t["token"].strip().upper()[:1]
            if letter in probs:
                probs[letter] += math.exp(t["logprob"])
        right = [labels.relevant(query, c) for c in shown]
        best = max(probs, key=lambda L: probs[L])
        both = max(range(len(shown)), key=lambda i: math.log(max(probs[chr(65 + i)], 1e-6)) - math.log(i + 1))
        n += 1
        shipped += right[0]
        picked += right[ord(best) - 65]
        fused += right[both]
        if out:
            out.write(json.dumps({"case": query, "cands": shown, "probs": probs, "right": right}) + "\n")
        print(f"\r{n} queries: shipped {shipped / n:.3f}, model {picked / n:.3f}, fused {fused / n:.3f}",
              end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    print(f"{n} queries: shipped ranking P@1 {shipped / n:.3f}; the model's pick {picked / n:.3f}; "
          f"fused with the ranking {fused / n:.3f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    for name in ("packet", "score", "llm"):
        p = sub.add_parser(name)
        p.add_argument("--rankings", type=Path, required=True, help="eval/retrieval_loo.py --rankings output")
    sub.choices["packet"].add_argument("--out", type=Path, required=True)
    sub.choices["score"].add_argument("--dir", type=Path, required=True)
    sub.choices["llm"].add_argument("--url", required=True, help="an OpenAI-compatible base URL, e.g. http://127.0.0.1:PORT/v1")
    sub.choices["llm"].add_argument("--out", type=Path, help="write each query's letters and probabilities (JSON lines)")
    args = ap.parse_args(argv)
    if not args.rankings.is_file():
        raise SystemExit(f"{args.rankings}: no such file (write it with eval/retrieval_loo.py --rankings)")
    labels = load_groups(ROOT / "eval/relevance/groups")
    # the leave-one-out store holds the cases' texts; scoring needs only the labels
    cases = {} if args.command == "score" else {c.id: c for c in Pipeline(loo_settings()).cases.replay_cases()}
    {"packet": packet, "score": score, "llm": llm}[args.command](args, labels, cases)
    return 0


if __name__ == "__main__":
    sys.exit(main())
