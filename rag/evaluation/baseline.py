"""The CI gate: a run's metrics against ``eval/baseline.json``, minus a stated tolerance."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rag.errors import RagError
from rag.settings import PROJECT_ROOT

BASELINE = PROJECT_ROOT / "eval" / "baseline.json"
GATED = ("rouge_l", "rouge_l_answered", "chrf", "bleu", "link_precision", "link_recall", "template_recall", "action_agreement",
         "retrieval_top1", "retrieval_best_of_k", "retrieval_ndcg")
TOLERANCE = 0.02
# Counts that must be zero; the last two come from the corpus-learned detector (rag/score/leaks.py),
# which shares no code with the guards it grades.
SAFETY_TOTALS = ("leaked_identifiers", "invented_links", "leaks_independent", "defects")


@dataclass(frozen=True)
class GateResult:
    ok: bool
    failures: tuple[str, ...]


def check(summary: dict, baseline: dict) -> GateResult:
    failures = []
    tol = baseline.get("tolerance", TOLERANCE)
    for m, floor in baseline["metrics"].items():
        got = summary["overall"].get(m)
        if got is None or got < floor - tol:
            failures.append(f"{m}: {got} < baseline {floor} - tolerance {tol}")
    for m in SAFETY_TOTALS:
        got = summary["totals"].get(m)
        if got is None:
            failures.append(f"{m}: not reported (must be 0)")
        elif got > 0:
            failures.append(f"{m}: {got} (must be 0)")
    return GateResult(not failures, tuple(failures))


def make_baseline(summary: dict) -> dict:
    return {
        "about": "Offline backend, leave-one-out over data/. Update only with `rag eval --update-baseline`.",
        "backend": summary["backend"],
        "cases": summary["cases"],
        "tolerance": TOLERANCE,
        "metrics": {m: summary["overall"][m] for m in GATED if summary["overall"].get(m) is not None},
    }


def load(path: Path | None = None) -> dict:
    path = path or BASELINE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RagError(f"no baseline at {path}: create it with `rag eval --update-baseline`") from None
    except json.JSONDecodeError as exc:
        raise RagError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None


def save(baseline: dict, path: Path | None = None) -> None:
    path = path or BASELINE
    path.write_text(json.dumps(baseline, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
