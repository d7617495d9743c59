"""Offline drafts before and after sentence-level composition, side by side, for real tickets.

Each ticket is a case of the corpus, drafted leave-one-out (the case itself is excluded from
retrieval). "Before" is ``rag/draft/offline.py`` as it was at a git revision (default: the commit
before composition landed), loaded from git; "after" is the working tree's drafter. Both go through
today's guards, and both are checked by the independent leak/defect detector.

    python eval/offline_before_after.py                    # the README's three tickets, markdown
    python eval/offline_before_after.py --title 关于上传路径 --before 55f4e93
    python eval/offline_before_after.py --summary           # every case: scores, leaks and defects, before vs after
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from rag import Pipeline, load_settings
from rag.records import Ticket
from rag.retrieve import Filters
from rag.score.draft import link_scores, rouge_l
from rag.score.leaks import LeakDetector

README_TITLES = ("如何更换SSL证书", "上传图片是否支持敏感色情图片的识别", "视频打不开，想了解什么原因？")
BEFORE = "55f4e93"  # main just before sentence-level composition


def load_module_at(revision: str, path: str) -> types.ModuleType:
    try:
        source = subprocess.run(["git", "show", f"{revision}:{path}"], cwd=ROOT, check=True,
                                capture_output=True, text=True).stdout
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        raise SystemExit(f"cannot read {path} at {revision} from git: {exc}") from None
    module = types.ModuleType(f"before_{revision}")
    sys.modules[module.__name__] = module  # dataclasses look their module up there
    exec(compile(source, f"{revision}:{path}", "exec"), module.__dict__)  # noqa: S102 - our own history
    return module


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--title", action="append", help="case title (repeatable); default: the README's three")
    ap.add_argument("--before", default=BEFORE, help="git revision of the 'before' offline drafter")
    ap.add_argument("--summary", action="store_true", help="score every case before and after instead")
    args = ap.parse_args()
    titles = tuple(args.title or README_TITLES)

    pipeline = Pipeline(load_settings())
    pipeline.ensure_ingested()
    cases = pipeline.cases.replay_cases()  # the store's corpus: what the retriever indexed
    detector = LeakDetector.from_cases(cases)
    drafter = pipeline.make_drafter(offline=True)
    old = load_module_at(args.before, "rag/draft/offline.py")

    if args.summary:
        summarise(cases, drafter, old, detector, args.before)
        return
    print(f"| ticket | before ({args.before}) | after | real answer |")
    print("|---|---|---|---|")
    for title in titles:
        case = next((c for c in cases if c.title == title and c.answer.strip()), None)
        if case is None:
            raise SystemExit(f"no case titled {title!r} with an answer in the store {pipeline.settings.store_path}")
        ticket = Ticket(case.question or case.title, title=case.title)
        hits = drafter.retriever.retrieve(ticket, Filters.of(exclude=[case.id]), drafter.config.top_k).hits
        c = old.compose(ticket, hits)
        before = drafter._finish(ticket, c.text, c.action, c.confidence, c.used, backend="offline").text
        after = drafter.draft(ticket, exclude=[case.id]).text
        context = f"{ticket.title}\n{ticket.text}"
        rows = []
        for text in (before, after):
            found = detector.check(text, context, case.id)
            problems = list(found.leaks) + list(found.defects)
            verdict = "**defects:** " + "; ".join(problems) if problems else "no leak or defect found"
            rows.append(f"{cell(text)}<br><br>*ROUGE-L {rouge_l(text, case.answer):.3f}; {cell(verdict)}*")
        print(f"| **{cell(case.title)}**<br>{cell(ticket.text[:200])} | {rows[0]} | {rows[1]} | {cell(case.answer[:400])} |")


def summarise(cases, drafter, old, detector, revision: str) -> None:
    """Leave-one-out over every case with an answer: the figures of the README's before/after table."""
    rows = {"before": [], "after": []}
    for case in (c for c in cases if c.answer.strip()):
        ticket = Ticket(case.question or case.title, title=case.title)
        hits = drafter.retriever.retrieve(ticket, Filters.of(exclude=[case.id]), drafter.config.top_k).hits
        c = old.compose(ticket, hits)
        drafts = {
            "before": drafter._finish(ticket, c.text, c.action, c.confidence, c.used, backend="offline"),
            "after": drafter.draft(ticket, exclude=[case.id]),
        }
        for name, d in drafts.items():
            found = detector.check(d.text, f"{ticket.title}\n{ticket.text}", case.id)
            p, r = link_scores(d.text, case.answer)
            rows[name].append((rouge_l(d.text, case.answer), d.action, p, r,
                               len(found.leaks), len(found.defects)))

    def mean(xs):
        xs = [x for x in xs if x is not None]
        return sum(xs) / len(xs) if xs else float("nan")

    print("| drafter | cases | ROUGE-L | ROUGE-L answered (n) | link P | link R | leaks | defects | drafts with either |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, rs in rows.items():
        answered = [x[0] for x in rs if x[1] == "answer"]
        label = f"before ({revision})" if name == "before" else "after"
        print(f"| {label} | {len(rs)} | {mean([x[0] for x in rs]):.3f} | {mean(answered):.3f} ({len(answered)}) | "
              f"{mean([x[2] for x in rs]):.3f} | {mean([x[3] for x in rs]):.3f} | {sum(x[4] for x in rs)} | "
              f"{sum(x[5] for x in rs)} | {sum(1 for x in rs if x[4] or x[5])} |")


if __name__ == "__main__":
    main()
