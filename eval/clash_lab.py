"""Two rules tried against same-area wrong answers (stop 32), over the development and synthetic training tickets;
the held-out tickets are never read. Prints each answered ticket a rule would defer, and whether its answer was
right; not a test.

    python eval/clash_lab.py [--tickets eval/relevance/new_tickets.jsonl eval/relevance/train_tickets.jsonl]

- **media**: the ticket names a medium (image, video, audio) and the answering case's question names another and
  not the ticket's (the same rule for client platforms ships: ``rag.draft.areas.other_platform``, so the drafts
  replayed here already have it);
- **error**: the ticket quotes an error (an HTTP-style code, or the words after 报错/提示/返回/显示) and the case's
  title, question and answer hold none of it (the code, or a third of the message's character bigrams).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from rag import Pipeline, load_settings
from rag.evaluation.tickets import replay
from rag.score.labels import load_tickets

ROOT = Path(__file__).resolve().parent.parent
MEDIA = {"image": r"图片|图像|照片|image", "video": r"视频|video", "audio": r"音频|语音|audio"}
CODE = re.compile(r"(?<![\d.:/\w])([4-6]\d\d)(?![\d.%\w])")
MESSAGE = re.compile(r"(?:报错|提示|返回|显示|错误信息)(?:说|是|为)?[:：]?\s*[「“\"']?([^，。,！？?\n」”\"']{4,40})")


def _named(text: str) -> set[str]:
    return {k for k, p in MEDIA.items() if re.search(p, text.lower())}


def _bigrams(text: str) -> set[str]:
    t = re.sub(r"\s+", "", text.lower())
    return {t[i:i + 2] for i in range(len(t) - 1)}


def media_clash(ticket: str, case_question: str) -> str | None:
    mine, theirs = _named(ticket), _named(case_question)
    return f"{sorted(mine)} vs {sorted(theirs)}" if mine and theirs and not mine & theirs else None


def error_missing(ticket: str, case_text: str) -> str | None:
    case_text = case_text.lower()
    quoted = [(m.group(1), m.group(1) in case_text) for m in CODE.finditer(ticket)]
    quoted += [(m.group(1), len(_bigrams(m.group(1)) & _bigrams(case_text)) / max(1, len(_bigrams(m.group(1)))) >= 1 / 3)
               for m in MESSAGE.finditer(ticket)]
    return f"quoted {[q for q, _ in quoted]}" if quoted and not any(found for _, found in quoted) else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tickets", type=Path, nargs="+", default=[ROOT / "eval" / "relevance" / "new_tickets.jsonl",
                                                               ROOT / "eval" / "relevance" / "train_tickets.jsonl"])
    args = ap.parse_args(argv)
    pipeline = Pipeline(load_settings())
    pipeline.ensure_ingested()
    counts = {"media": [0, 0], "error": [0, 0]}  # [right answers deferred, wrong answers deferred]
    for path in args.tickets:
        if "heldout" in path.name:
            raise SystemExit("the held-out tickets are not for choosing rules")
        tickets = load_tickets(path)
        for t, r in zip(tickets, replay(pipeline.drafter, tickets)):
            draft = r["draft"]
            source = next((c for c in draft["citations"] if c["relation"] == "source"), None)
            if draft["action"] != "answer" or source is None:
                continue
            case = pipeline.cases.get(source["case_id"])
            if case is None:
                continue
            text = f"{t.title}\n{t.text}"
            right = source["case_id"] in t.match and t.action == "answer"
            for rule, why in (("media", media_clash(text, f"{case.title}\n{case.question}")),
                              ("error", error_missing(text, f"{case.title}\n{case.question}\n{case.answer}"))):
                if why:
                    counts[rule][0 if right else 1] += 1
                    print(f"{rule}: {t.id} ({'right' if right else 'wrong'} answer) {why} -> {case.title[:30]}")
    for rule, (right, wrong) in counts.items():
        print(f"{rule}: would defer {right} right and {wrong} wrong answers")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
