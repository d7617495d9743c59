"""Check a labelled ticket file (eval/relevance/new_tickets.jsonl, or heldout_tickets.jsonl) and print its counts.

With the package installed (pip install -e .), from any folder:
    .venv/bin/python eval/relevance/check_tickets.py [--tickets FILE] [--data DIR]

Exit status 1 when any ticket breaks a rule; every problem is reported with the file and line.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import unicodedata
from collections import Counter
from pathlib import Path

from rapidfuzz import fuzz

from rag.corpus.parse import parse_paths
from rag.paths import resource

HERE = Path(__file__).resolve().parent
ACTIONS = ("answer", "ask_for_info", "escalate")
KINDS = (
    "covered",
    "qiniu-uncovered",
    "sdk-error",
    "other-company",
    "chit-chat",
    "off-topic",
    "bug-report",
    "feature-request",
    "vague",
)
# Not about Qiniu at all, or nothing to act on yet: the ideal draft is a short deferral or a question back.
DEFER_ONLY_KINDS = ("other-company", "chit-chat", "off-topic", "vague")
# Staff has to act (product team, back office): the drafter should hand over, never paste a past answer.
ESCALATE_KINDS = ("bug-report", "feature-request")
# The held-out file's lines carry no split: they are "heldout". "train": synthetic tickets (train_tickets.jsonl),
# written from a corpus case ("from_case") to fit the match model, never scored.
SPLITS = ("dev", "test", "heldout", "train")
REQUIRED = ("id", "title", "text", "product", "match", "partial", "action", "kind", "source")
OPTIONAL = ("split", "note", "key", "ask", "style", "from_case")
# What it is reasonable to ask a customer for (eval/relevance/heldout/SPEC.md).
ASK_VOCABULARY = ("error", "request_id", "sdk", "toolchain", "code", "domain", "url", "bucket", "key", "account",
                  "order", "screenshot", "time", "app", "goal")
STYLES = ("public", "ticket")


def flat(text: str) -> str:
    """The key-content comparison's normal form: NFKC, lower case, no whitespace."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text).lower())
# A ticket this close to a corpus customer turn is a copy, not a new ticket. Greetings are short and collide
# with short corpus turns by chance, so the rule only applies to texts long enough to carry a problem.
COPY_RATIO = 70.0
COPY_MIN_CHARS = 12


def check(tickets_path: Path, data_dir: Path) -> tuple[list[dict], list[str], float]:
    cases, _ = parse_paths([data_dir])
    case_ids = {c.id for c in cases}
    products = {c.product for c in cases}
    customer_turns = [t.text for c in cases for t in c.turns if t.role == "customer"]
    agent_text = {c.id: flat("\n".join(t.text for t in c.turns if t.role == "agent")) for c in cases}

    errors: list[str] = []
    tickets: list[dict] = []
    seen: dict[str, int] = {}
    worst_copy = 0.0
    for lineno, raw in enumerate(tickets_path.read_text(encoding="utf-8").splitlines(), 1):
        where = f"{tickets_path}:{lineno}"
        if not raw.strip():
            continue
        try:
            t = json.loads(raw)
        except json.JSONDecodeError as exc:
            errors.append(f"{where}: not JSON ({exc.msg})")
            continue
        if not isinstance(t, dict):
            errors.append(f"{where}: expected a JSON object")
            continue
        tid = t.get("id")
        if isinstance(tid, str) and tid in seen:
            errors.append(f"{where}: id {tid!r} already used on line {seen[tid]}")
        elif isinstance(tid, str):
            seen[tid] = lineno
        missing = [k for k in REQUIRED if k not in t]
        extra = [k for k in t if k not in REQUIRED + OPTIONAL]
        if missing:
            errors.append(f"{where}: missing field(s) {', '.join(missing)}")
            continue
        if extra:
            errors.append(f"{where}: unknown field(s) {', '.join(extra)}")
        for key in ("id", "text", "source"):
            if not isinstance(t[key], str) or not t[key].strip():
                errors.append(f"{where}: field {key!r} must be a non-empty string")
        if not isinstance(t["title"], str):
            errors.append(f"{where}: field 'title' must be a string")
        if t["product"] is not None and t["product"] not in products:
            errors.append(f"{where}: product {t['product']!r} is not a corpus product ({', '.join(sorted(products))})")
        if t["action"] not in ACTIONS:
            errors.append(f"{where}: action {t['action']!r} not in {ACTIONS}")
        if t["kind"] not in KINDS:
            errors.append(f"{where}: kind {t['kind']!r} not in {KINDS}")
        t.setdefault("split", "heldout")
        if t["split"] not in SPLITS:
            errors.append(f"{where}: split {t['split']!r} not in {SPLITS}")
        if (t["split"] == "train") != ("from_case" in t):
            errors.append(f"{where}: a synthetic training ticket (split 'train') names its from_case, and only it")
        elif "from_case" in t and t["from_case"] not in case_ids:
            errors.append(f"{where}: from_case {t['from_case']!r} is not a corpus case")
        elif "from_case" in t and t["kind"] == "covered" and t["from_case"] not in t["match"]:
            errors.append(f"{where}: a covered training ticket matches the case it was written from")
        if "style" in t and t["style"] not in STYLES:
            errors.append(f"{where}: style {t['style']!r} not in {STYLES}")
        errors += [f"{where}: {e}" for e in key_and_ask_errors(t, agent_text, case_ids)]
        for key in ("match", "partial"):
            ids = t[key]
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                errors.append(f"{where}: field {key!r} must be a list of case ids")
                t[key] = []
                continue
            for i in ids:
                if i not in case_ids:
                    errors.append(f"{where}: {key} id {i!r} is not a corpus case")
            if len(set(ids)) != len(ids):
                errors.append(f"{where}: {key} lists a case twice")
        both = set(t["match"]) & set(t["partial"])
        if both:
            errors.append(f"{where}: case(s) {', '.join(sorted(both))} in both match and partial")
        if bool(t["match"]) != (t["kind"] == "covered"):
            errors.append(f"{where}: kind 'covered' if and only if match is non-empty (kind={t['kind']!r})")
        if t["kind"] == "covered" and t["action"] == "ask_for_info":
            errors.append(f"{where}: a covered ticket is answered or escalated, not ask_for_info")
        if t["kind"] != "covered" and t["action"] == "answer":
            errors.append(f"{where}: only a covered ticket can have action 'answer'")
        if t["kind"] in DEFER_ONLY_KINDS and t["action"] != "ask_for_info":
            errors.append(f"{where}: kind {t['kind']!r} must have action 'ask_for_info'")
        if t["kind"] in ESCALATE_KINDS and t["action"] != "escalate":
            errors.append(f"{where}: kind {t['kind']!r} must have action 'escalate'")
        text = t["text"] if isinstance(t["text"], str) else ""
        if len(text) >= COPY_MIN_CHARS:
            ratio = max((fuzz.ratio(text, turn) for turn in customer_turns), default=0.0)
            worst_copy = max(worst_copy, ratio)
            if ratio >= COPY_RATIO:
                errors.append(f"{where}: text is {ratio:.0f}% similar to a corpus customer turn (a copy?)")
        tickets.append(t)
    return tickets, errors, worst_copy


def key_and_ask_errors(t: dict, agent_text: dict[str, str], case_ids: set[str]) -> list[str]:
    """``key``: only on covered tickets, at most 3 items, each with an alternative some matched case's agent says
    and none the ticket itself says. ``ask``: a list from the vocabulary."""
    errors = []
    if "ask" in t and (not isinstance(t["ask"], list) or any(a not in ASK_VOCABULARY for a in t["ask"])):
        errors.append(f"ask must be a list of {', '.join(ASK_VOCABULARY)}")
    key = t.get("key", [])
    if not isinstance(key, list) or any(not isinstance(k, dict) or set(k) != {"what", "any"} for k in key):
        return errors + ["key must be a list of {\"what\", \"any\"} items"]
    if key and t["kind"] != "covered":
        errors.append("only a covered ticket has key content")
    if len(key) > 3:
        errors.append(f"key has {len(key)} items (at most 3)")
    own = flat(f"{t['title']}\n{t['text']}")
    matched = [agent_text[c] for c in t["match"] if c in case_ids]
    for item in key:
        alts = [a for a in item["any"] if isinstance(a, str) and a.strip()]
        if not alts or len(alts) != len(item["any"]):
            errors.append(f"key item {item['what']!r}: every alternative must be a non-empty string")
        if any(flat(a) in own for a in alts):
            errors.append(f"key item {item['what']!r}: an alternative occurs in the ticket itself (it would always hold)")
        if not any(flat(a) in text for a in alts for text in matched):
            errors.append(f"key item {item['what']!r}: no alternative occurs in a matched case's agent answer")
    return errors


def group_notes(tickets: list[dict], groups_dir: Path) -> list[str]:
    """Covered tickets whose matches fall in more than one problem group, when the group labels are present."""
    files = sorted(groups_dir.glob("*.json")) if groups_dir.is_dir() else []
    if not files:
        return []
    group_of: dict[str, str] = {}
    for f in files:
        for c in json.loads(f.read_text(encoding="utf-8")).get("cases", []):
            group_of[c["id"]] = c["group"]
    notes = []
    for t in tickets:
        gs = sorted({group_of.get(i, "?") for i in t["match"]})
        if len(gs) > 1:
            notes.append(f"{t['id']}: matches span groups {', '.join(gs)}")
    return notes


def table(tickets: list[dict], row: str) -> list[str]:
    counts = Counter((t[row], t["split"]) for t in tickets)
    keys = sorted({t[row] for t in tickets}, key=lambda k: (-sum(counts[(k, s)] for s in SPLITS), k))
    splits = [s for s in SPLITS if any(t["split"] == s for t in tickets)]
    lines = [f"  {row:<16} " + " ".join(f"{s:>7}" for s in splits) + f" {'all':>5}"]
    for k in keys:
        n = [counts[(k, s)] for s in splits]
        lines.append(f"  {k:<16} " + " ".join(f"{x:>7}" for x in n) + f" {sum(n):>5}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=Path, default=HERE / "new_tickets.jsonl")
    parser.add_argument("--data", type=Path, default=resource("data"))
    args = parser.parse_args()
    if not args.tickets.is_file():
        print(f"error: {args.tickets}: no such file", file=sys.stderr)
        return 1
    tickets, errors, worst_copy = check(args.tickets, args.data)
    for e in errors:
        print(f"error: {e}", file=sys.stderr)

    covered = sum(t["kind"] == "covered" for t in tickets)
    print(f"{len(tickets)} tickets: {covered} with a matching case, {len(tickets) - covered} without")
    print(f"highest similarity of a ticket text to a corpus customer turn: {worst_copy:.0f}% "
          f"(texts >= {COPY_MIN_CHARS} chars; copy threshold {COPY_RATIO:.0f}%)")
    for row in ("kind", "action"):
        print("\n".join(table(tickets, row)))
    pairs = Counter((t["kind"], t["action"]) for t in tickets)
    print("  kind x action: " + ", ".join(f"{k}/{a}={n}" for (k, a), n in sorted(pairs.items())))
    with_partial = sum(bool(t["partial"]) for t in tickets)
    print(f"  tickets with partial cases: {with_partial}; with a product set: "
          f"{sum(t['product'] is not None for t in tickets)}")
    for note in group_notes(tickets, HERE / "groups"):
        print(f"note: {note}")
    if errors:
        print(f"{len(errors)} problem(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
