"""The CI gate: a run's metrics against the baseline (``eval/baseline.json``), minus a stated tolerance.

The baseline's path comes from ``Settings.baseline_path`` (the checkout's file, or the copy shipped in the
wheel); a gate compares like with like, so the baseline records what it was measured on (backend, split,
limit, seed) and a run measured on something else is refused rather than compared.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rag.errors import RagError
from rag.evaluation.metric_names import GATED, LOWER_IS_BETTER, SAFETY_TOTALS

TOLERANCE = 0.02


@dataclass(frozen=True)
class GateResult:
    ok: bool
    failures: tuple[str, ...]


def check(summary: dict, baseline: dict) -> GateResult:
    failures = []
    tol = baseline.get("tolerance", TOLERANCE)
    for m, floor in baseline["metrics"].items():
        got = summary["overall"].get(m)
        if m in LOWER_IS_BETTER:
            if got is None or got > floor + tol:
                failures.append(f"{m}: {got} > baseline {floor} + tolerance {tol}")
        elif got is None or got < floor - tol:
            failures.append(f"{m}: {got} < baseline {floor} - tolerance {tol}")
    for m in SAFETY_TOTALS:
        got = summary["totals"].get(m)
        if got is None:
            failures.append(f"{m}: not reported (must be 0)")
        elif got > 0:
            failures.append(f"{m}: {got} (must be 0)")
    return GateResult(not failures, tuple(failures))


def measured_on(config: dict) -> dict:
    """What makes two runs comparable: the same backend, variant, split, sample and seed."""
    split = config.get("split", "loo")
    limited = bool(config.get("limit")) or split == "split"
    return {"backend": config.get("backend", "offline"), "variant": config.get("variant", "default"), "split": split,
            "limit": config.get("limit") or None, "seed": config.get("seed", 0) if limited else None,
            "test_fraction": config.get("test_fraction") if split == "split" else None}


def mismatch(config: dict, baseline: dict) -> str | None:
    """Why a run with ``config`` cannot be gated on ``baseline`` (None when it can)."""
    want = baseline.get("measured_on") or measured_on({})  # older baselines: offline, leave-one-out, every case
    got = measured_on(config)
    diffs = [f"{k}={got[k]!r} (baseline: {want.get(k)!r})" for k in got if got[k] != want.get(k)]
    if diffs:
        return "the baseline was measured on something else: " + ", ".join(diffs)
    return None


def make_baseline(summary: dict) -> dict:
    return {
        "about": ("Offline backend, leave-one-out over data/ plus the labelled new tickets (eval/relevance/). "
                  "Update only with `rag eval --update-baseline`."),
        "measured_on": measured_on(summary.get("config", {})),
        "backend": summary["backend"],
        "cases": summary["cases"],
        "tolerance": TOLERANCE,
        "metrics": {m: summary["overall"][m] for m in GATED if summary["overall"].get(m) is not None},
    }


def load(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RagError(f"no baseline at {path}: create it with `rag eval --update-baseline`") from None
    except json.JSONDecodeError as exc:
        raise RagError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None


def save(baseline: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(baseline, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
