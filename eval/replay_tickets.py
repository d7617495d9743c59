"""Draft every ticket of a labelled file with the shipped pipeline (the environment's settings) and print its
figures and each wrong decision. Prints; not a test.

    python eval/replay_tickets.py [--tickets eval/relevance/train_tickets.jsonl] [--json records.json]

Made for the synthetic training tickets (eval/relevance/README.md, "Synthetic training tickets"): their hard
negatives show which same-area questions the drafter answers from a case about something else. Their positives are
the cases' asked wordings since stop 34 (data/*.asked.jsonl): each is matched against its own text, so their figures
say only that the wording is found, not how a new ticket fares.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rag import Pipeline, load_settings
from rag.evaluation.tickets import replay, summarise_tickets
from rag.score.labels import load_tickets

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tickets", type=Path, default=ROOT / "eval" / "relevance" / "train_tickets.jsonl")
    ap.add_argument("--json", type=Path, help="write every ticket's record (as rag eval's tickets/*.json)")
    args = ap.parse_args(argv)
    tickets = load_tickets(args.tickets)
    pipeline = Pipeline(load_settings())
    pipeline.ensure_ingested()
    records = replay(pipeline.drafter, tickets)
    figures = summarise_tickets(records)["all"]
    print(f"{args.tickets.name}: {len(tickets)} tickets")
    for name in ("answered", "answer_precision", "deferral_recall", "coverage", "coverage_at_p85", "rel_p_at_1",
                 "action_agreement"):
        print(f"  {name}: {figures[name]}")
    by_id = {t.id: t for t in tickets}
    for r in records:
        t, d = by_id[r["id"]], r["decision"]
        if d["answered"] and not d["top_fits"]:
            source = next((c["title"] for c in r["draft"]["citations"] if c["relation"] == "source"), "")
            kind = "answered, no case fits" if not t.match else "answered from the wrong case"
            print(f"{kind}: {t.id} match {r['top_match']:.2f}  {' '.join(t.text.split())[:80]}  ->  {source}")
    if args.json:
        args.json.write_text(json.dumps(records, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
