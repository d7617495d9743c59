"""Replay tickets from the corpus and score each draft against what the real agent answered.

Leave-one-out by default: while a case is drafted, it is excluded from retrieval, so the drafter
never sees the answer it is scored against. A seeded split instead holds out a fixed test set and
excludes all of it from the index.
"""

from __future__ import annotations

import json
import random
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Literal, Sequence

import numpy as np

from rag.errors import ConfigError, RagError
from rag.evaluation.baseline import SAFETY_TOTALS
from rag.evaluation.metric_names import CORPUS_DECISION_OVERALL, HELDOUT_OVERALL, PER_CASE, TICKETS_OVERALL
from rag.evaluation.tickets import HELDOUT_SETS, corpus_decision, replay, summarise_tickets
from rag.llm.prompts import PromptPair
from rag.notes import LLMFallback
from rag.pipeline import Pipeline
from rag.records import Case, Ticket, draft_dict
from rag.score.draft import score_draft
from rag.score.leaks import LeakDetector
from rag.score.link_check import LinkChecker
from rag.score.reference_action import reference_action
from rag.score.retrieval import RelevanceTable, case_scores
from rag.score.labels import GroupLabels, load_groups, load_tickets
from rag.score.relevance import Decision, decision_scores
from rag.score.templates import find_templates

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class EvalConfig:
    backend: Literal["offline", "llm"] = "offline"
    variant: str = "default"
    split: Literal["loo", "split"] = "loo"
    seed: int = 0
    test_fraction: float = 0.2
    limit: int | None = None
    case_ids: tuple[str, ...] = ()
    concurrency: int = 1
    judge: bool = False
    k: int = 5
    # Also replay the labelled new tickets (eval/relevance/new_tickets.jsonl) when they exist.
    tickets: bool = True


@dataclass
class EvalRun:
    folder: Path
    summary: dict
    cases: list[dict] = field(default_factory=list)
    tickets: list[dict] = field(default_factory=list)


def select_cases(cases: Sequence[Case], cfg: EvalConfig) -> tuple[list[Case], set[str]]:
    """The cases to replay, and the ids every query must exclude (beyond the case itself)."""
    evaluable = [c for c in cases if c.answer.strip()]
    if cfg.case_ids:
        wanted = set(cfg.case_ids)
        evaluable = [c for c in evaluable if c.id in wanted]
    excluded: set[str] = set()
    if cfg.split == "split":
        rng = random.Random(cfg.seed)
        test = sorted(evaluable, key=lambda c: c.id)
        rng.shuffle(test)
        evaluable = test[: max(1, round(len(test) * cfg.test_fraction))]
        excluded = {c.id for c in evaluable}
    elif cfg.limit:
        rng = random.Random(cfg.seed)
        evaluable = sorted(evaluable, key=lambda c: c.id)
        rng.shuffle(evaluable)
    if cfg.limit:
        evaluable = evaluable[: cfg.limit]
    return evaluable, excluded


def _mean(values: list[float | None]) -> float | None:
    xs = [v for v in values if v is not None]
    return round(float(np.mean(xs)), 4) if xs else None


def summarise(records: list[dict]) -> dict:
    overall = {m: _mean([r["scores"].get(m) for r in records]) for m in PER_CASE}
    by_product: dict[str, dict] = {}
    for product in sorted({r["product"] for r in records}):
        rs = [r for r in records if r["product"] == product]
        by_product[product] = {"cases": len(rs), **{m: _mean([r["scores"].get(m) for r in rs]) for m in PER_CASE}}
    return {"overall": overall, "by_product": by_product,
            "totals": {m: int(sum(r["scores"][m] for r in records)) for m in SAFETY_TOTALS}}


def run_eval(
    pipeline: Pipeline,
    cfg: EvalConfig,
    out_root: Path,
    *,
    progress: Progress = lambda done, total: None,
    run_name: str | None = None,
) -> EvalRun:
    started = time.perf_counter()  # the run's wall time: setup, drafting, the ticket replay and the report
    settings = pipeline.settings
    pipeline.ensure_ingested()
    # The store's own cases, as parsed at ingest: the corpus the retriever indexed, not today's files.
    cases = list(pipeline.cases.replay_cases())
    table = RelevanceTable(cases)
    groups_dir = settings.evaluation.labels_dir / "groups"
    labels: GroupLabels | None = load_groups(groups_dir) if groups_dir.is_dir() else None
    universe = [c.id for c in cases]
    templates = find_templates(cases)
    detector = LeakDetector.from_cases(cases, settings.draft.link_allowlist)
    link_checker = LinkChecker.from_cases(cases, settings.draft.link_allowlist)
    chosen, excluded = select_cases(cases, cfg)
    indexed = [cid for cid in universe if cid not in excluded]
    # Drafts and judgements each get their own cached client, so each keeps its own cache counts.
    llm = pipeline.cached_llm() if cfg.backend == "llm" else None
    judge_llm = pipeline.cached_llm() if cfg.judge else None
    if (cfg.backend == "llm" and llm is None) or (cfg.judge and judge_llm is None):
        raise ConfigError("--backend llm and --judge need RAG_LLM_BASE_URL and RAG_LLM_MODEL")
    drafter = pipeline.make_drafter(variant=cfg.variant, offline=llm is None, llm=llm)
    prompts = PromptPair.load(settings.draft.prompts_dir, cfg.variant)
    judge = None
    if judge_llm is not None:
        from rag.score.judge import Judge

        judge = Judge(judge_llm, settings.draft.prompts_dir)
    lock = threading.Lock()
    done = 0

    def one(case: Case) -> dict:
        nonlocal done
        ticket = Ticket(case.question or case.title, title=case.title)
        exclude = excluded | {case.id}
        # With an LLM, a failed call becomes the offline draft, flagged: the run goes on and the report shows it.
        draft = drafter.draft(ticket, k=cfg.k, exclude=sorted(exclude), fallback="offline")
        error = next((n.text("en") for n in draft.notes if isinstance(n, LLMFallback)), "fallback") if draft.fallback else None
        reference = reference_action(case, labels, indexed)
        scores = score_draft(draft, case.answer, f"{ticket.title}\n{ticket.text}", templates=templates,
                             leaks=detector, links=link_checker, reference_action=reference, case_id=case.id)
        findings = detector.check(draft.text, f"{ticket.title}\n{ticket.text}", case.id)
        scores["defects"] = float(len(findings.defects))
        # Deferring where no case fits is not punished: this one averages only the drafts that answer.
        scores["rouge_l_answered"] = scores["rouge_l"] if draft.action == "answer" else None
        retrieval = case_scores(table, case.id, draft.retrieved, cfg.k)
        scores.update({f"retrieval_{name}": value for name, value in retrieval.items()})
        labelled = None
        if labels is not None and case.id in labels.group_of:
            labelled = corpus_decision(labels, case.id, universe, draft)
            scores.update({f"rel_{name}": value for name, value in (labelled["ranking"] or {}).items()})
        judged = None
        if judge is not None:
            try:
                judged = judge.judge(ticket.text, case.answer, draft.text)
                scores["judge_overall"] = judged["overall"]
            except RagError as exc:  # one unreadable judgement is recorded on its case; the run goes on
                judged = {"error": str(exc)}
                scores["judge_overall"] = None
                error = f"{error}; judge: {exc}" if error else f"judge: {exc}"
        record = {
            "case_id": case.id, "title": case.title, "product": case.product, "subcategory": case.subcategory,
            "ticket": ticket.text, "reference": case.answer, "draft": draft_dict(draft), "scores": scores,
            "judge": judged, "error": error, "decision": labelled["decision"] if labelled else None,
            "reference_action": reference,
            "findings": {"leaks": list(findings.leaks), "defects": list(findings.defects)},
        }
        with lock:
            done += 1
            progress(done, len(chosen))
        return record

    drafting = time.perf_counter()
    progress(0, len(chosen))
    workers = max(1, cfg.concurrency)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        records = list(pool.map(one, chosen))
    replaying = time.perf_counter()
    tickets_file = settings.evaluation.labels_dir / "new_tickets.jsonl"
    tickets_skipped = _tickets_skipped(cfg, tickets_file)
    ticket_records = (replay(drafter, load_tickets(tickets_file), k=cfg.k, progress=progress)
                      if tickets_skipped is None else [])
    held_skipped: dict[str, str | None] = {}
    held_records: dict[str, list[dict]] = {}
    for held in HELDOUT_SETS:
        held_file = settings.evaluation.labels_dir / held.file
        held_skipped[held.name] = _tickets_skipped(cfg, held_file)
        held_records[held.name] = (replay(drafter, load_tickets(held_file, held.name), k=cfg.k, progress=progress)
                                   if held_skipped[held.name] is None else [])
    all_tickets = ticket_records + [r for rs in held_records.values() for r in rs]
    reporting = time.perf_counter()
    folder = _run_folder(out_root, run_name, f"{cfg.backend}-{cfg.variant}")
    summary = summarise(records)
    decided = [Decision(**r["decision"]) for r in records if r.get("decision")]
    if decided:
        d = decision_scores(decided)
        summary["overall"].update({name: d[m] for m, name in CORPUS_DECISION_OVERALL.items()})
        summary["decisions"] = d
    if ticket_records:
        summary["new_tickets"] = summarise_tickets(ticket_records)
        t = summary["new_tickets"]["all"]
        summary["overall"].update({f"tickets_{m}": t[m] for m in TICKETS_OVERALL})
    for held in HELDOUT_SETS:
        if held_records[held.name]:
            summary[held.name] = summarise_tickets(held_records[held.name], (held.name,))
            h = summary[held.name]["all"]
            summary["overall"].update({f"{held.prefix}{m}": h[m] for m in HELDOUT_OVERALL})
    usage = [r["draft"]["usage"] for r in records]
    prompt_tokens = sum(u["prompt_tokens"] for u in usage)
    completion_tokens = sum(u["completion_tokens"] for u in usage)
    summary.update({
        # The config says what ran: `tickets` is true only when the labelled tickets were replayed.
        "config": {**asdict(cfg), "tickets": bool(all_tickets)},
        "sets": {"cases": {"ran": True, "replayed": len(records), "of": len([c for c in cases if c.answer.strip()]),
                           "how": _how_chosen(cfg)},
                 "tickets": {"ran": bool(ticket_records), "replayed": len(ticket_records),
                             **({"why_not": tickets_skipped} if tickets_skipped else {})},
                 **{name: {"ran": bool(rs), "replayed": len(rs),
                           **({"why_not": held_skipped[name]} if held_skipped[name] else {})}
                    for name, rs in held_records.items()}},
        "backend": drafter.backend,
        "prompt": {"id": prompts.id, "version": prompts.version},
        "cases": len(records),
        "errors": sum(1 for r in records if r["error"]),
        "judge_errors": sum(1 for r in records if r["judge"] and "error" in r["judge"]),
        "seconds": 0.0,  # set below, once the report is written
        "tokens": {"prompt": prompt_tokens, "completion": completion_tokens,
                   "cost": round(prompt_tokens / 1000 * settings.llm.price_prompt_per_1k
                                 + completion_tokens / 1000 * settings.llm.price_completion_per_1k, 4),
                   "cache_hits": llm.hits if llm else 0, "cache_misses": llm.misses if llm else 0},
    })
    from rag.evaluation.report import write_artifacts, write_summary

    write_artifacts(folder, summary, records, all_tickets)
    done_at = time.perf_counter()
    summary["timings"] = {"setup": round(drafting - started, 1), "cases": round(replaying - drafting, 1),
                          "tickets": round(reporting - replaying, 1), "report": round(done_at - reporting, 1)}
    summary["seconds"] = round(done_at - started, 1)
    write_summary(folder, summary, records, all_tickets)
    return EvalRun(folder, summary, records, all_tickets)


def _tickets_skipped(cfg: EvalConfig, tickets_file: Path) -> str | None:
    """Why the labelled tickets are not replayed in this run (None: they are)."""
    if not cfg.tickets:
        return "not asked for (EvalConfig.tickets is false)"
    if cfg.limit:
        return "--limit replays a sample of the cases only"
    if cfg.case_ids:
        return "chosen cases only"
    if not tickets_file.is_file():
        return f"no labelled tickets at {tickets_file}"
    return None


def _how_chosen(cfg: EvalConfig) -> str:
    if cfg.split == "split":
        how = f"the held-out split (seed {cfg.seed}, {cfg.test_fraction:.0%} of the cases), leave-one-out excluded"
    else:
        how = "leave-one-out"
    if cfg.case_ids:
        how += ", chosen cases only"
    if cfg.limit:
        how += f", a seeded sample of {cfg.limit} with seed {cfg.seed}"
    return how


def _run_folder(out_root: Path, run_name: str | None, label: str) -> Path:
    """A named run replaces its folder (no stale case files); an unnamed one never overwrites another."""
    if run_name:
        folder = out_root / run_name
        shutil.rmtree(folder, ignore_errors=True)
        return folder
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    folder, n = out_root / f"{stamp}-{label}", 1
    while folder.exists():  # two runs in the same second
        n += 1
        folder = out_root / f"{stamp}-{label}-{n}"
    return folder


def load_run(folder: Path) -> EvalRun:
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    records = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((folder / "cases").glob("*.json"))]
    tickets = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((folder / "tickets").glob("*.json"))]
    return EvalRun(folder, summary, records, tickets)
