"""Compare two evaluation runs like with like, and say how much of each difference is noise.

Two runs over different cases or tickets cannot be compared metric by metric: a delta would mostly measure
which cases each run drew. ``compare`` therefore refuses them (``RunsDiffer``, one line saying what
differs) unless the caller asks for the records both runs share (``common=True``), and then every figure
of both runs is recomputed from those records only.

Every metric delta carries a paired bootstrap interval: the same resample of cases (or tickets) is drawn
for both runs, each run's metric is recomputed on it, and the 2.5th and 97.5th percentiles of the
difference over ``RESAMPLES`` seeded resamples bound it. Pairing matters because the runs grade the same
cases: a case that is hard for A is usually hard for B, and an unpaired interval would count that
difficulty as noise. Each metric is recomputed from the per-record files (``cases/*.json``,
``tickets/*.json``) with the runner's own definitions, written as weighted sums so that one matrix
product per metric evaluates all resamples at once; ``tests/test_compare.py`` checks that each
recomputation gives the summary's own figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from rag.errors import RagError
from rag.evaluation.metric_names import CORPUS_DECISION_OVERALL, HELDOUT_OVERALL, PER_CASE, SAFETY_TOTALS, TICKETS_OVERALL
from rag.evaluation.tickets import HELDOUT_SETS, TARGET_PRECISION
from rag.evaluation.runner import EvalRun

RESAMPLES = 2000
SEED = 0
LEVEL = 0.95
ECE_BINS = 10  # as rag.score.relevance.expected_calibration_error


class RunsDiffer(RagError):
    """Two runs graded different cases or tickets, and the caller did not ask for the common ones."""


@dataclass(frozen=True)
class RecordSet:
    """One kind of record a run grades: where its files are, what names a record, and which fields make two
    records the same piece of work (the text drafted and what it is graded against)."""

    name: str
    key: str
    identity: tuple[str, ...]


CASES = RecordSet("cases", "case_id", ("ticket", "reference"))
TICKETS = RecordSet("tickets", "id", ("ticket", "label_action", "match"))
# One per frozen held-out set, named by its split.
HELDOUT = tuple(RecordSet(h.name, "id", ("ticket", "label_action", "match")) for h in HELDOUT_SETS)
SETS = (CASES, TICKETS, *HELDOUT)
_HELD_NAMES = frozenset(h.name for h in HELDOUT_SETS)


def _records(run: EvalRun, s: RecordSet) -> list[dict]:
    if s is CASES:
        return run.cases
    if s is TICKETS:
        return [r for r in run.tickets if r.get("split") not in _HELD_NAMES]
    return [r for r in run.tickets if r.get("split") == s.name]


def _identity(record: dict, s: RecordSet) -> tuple:
    return tuple(repr(record.get(f)) for f in s.identity)


def differences(a: EvalRun, b: EvalRun) -> list[str]:
    """What makes the two runs grade different work, one phrase per record set (empty: they grade the same)."""
    out = []
    for s in SETS:
        ra = {r[s.key]: r for r in _records(a, s)}
        rb = {r[s.key]: r for r in _records(b, s)}
        if set(ra) != set(rb):
            only_a, only_b = len(set(ra) - set(rb)), len(set(rb) - set(ra))
            out.append(f"{s.name}: A has {len(ra)}, B has {len(rb)} ({only_a} only in A, {only_b} only in B)")
            continue
        changed = sorted(k for k in ra if _identity(ra[k], s) != _identity(rb[k], s))
        if changed:
            out.append(f"{s.name}: {len(changed)} of {len(ra)} differ in what is drafted or graded (e.g. {changed[0]})")
    return out


def _common(a: list[dict], b: list[dict], s: RecordSet) -> tuple[list[dict], list[dict]]:
    """The records both runs hold, as the same work, aligned in one order."""
    rb = {r[s.key]: r for r in b}
    pairs = [(r, rb[r[s.key]]) for r in sorted(a, key=lambda r: r[s.key])
             if r[s.key] in rb and _identity(r, s) == _identity(rb[r[s.key]], s)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


# A statistic maps resample weights (R x n: how often each record is drawn) to one value per resample.
Statistic = Callable[[np.ndarray], np.ndarray]


def _ratio(num: np.ndarray, den: np.ndarray) -> Statistic:
    def stat(w: np.ndarray) -> np.ndarray:
        d = w @ den
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(d > 0, (w @ num) / np.where(d > 0, d, 1), np.nan)

    return stat


def _mean(values: Sequence[float | None]) -> Statistic:
    """The mean over the records that have a value (the runner's ``_mean`` skips None)."""
    x = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    present = ~np.isnan(x)
    return _ratio(np.where(present, x, 0.0), present.astype(np.float64))


def _total(values: Sequence[float]) -> Statistic:
    x = np.asarray(values, dtype=np.float64)
    return lambda w: w @ x


def _ece(prob: Sequence[float], correct: Sequence[bool], present: Sequence[bool]) -> Statistic:
    """``expected_calibration_error`` with weights: sum over bins of (bin weight / all) * |accuracy - confidence|."""
    p = np.asarray(prob, dtype=np.float64)
    y = np.asarray(correct, dtype=np.float64)
    keep = np.asarray(present, dtype=np.float64)
    idx = np.minimum((p * ECE_BINS).astype(int), ECE_BINS - 1)

    def stat(w: np.ndarray) -> np.ndarray:
        total = w @ keep
        err = np.zeros(w.shape[0])
        for b in range(ECE_BINS):
            in_bin = keep * (idx == b)
            n = w @ in_bin
            safe = np.where(n > 0, n, 1)
            gap = np.abs((w @ (in_bin * y)) / safe - (w @ (in_bin * p)) / safe)
            err += np.where(n > 0, n * gap, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, err / np.where(total > 0, total, 1), np.nan)

    return stat


def _decisions(records: Sequence[dict]) -> dict[str, Statistic]:
    """``rag.score.relevance.decision_scores`` over the records that carry a decision, by its metric names."""
    ds = [r.get("decision") or None for r in records]
    has = np.array([d is not None for d in ds], dtype=np.float64)
    answered = np.array([bool(d and d["answered"]) for d in ds], dtype=np.float64)
    top_fits = np.array([bool(d and d["top_fits"]) for d in ds], dtype=np.float64)
    fits = np.array([bool(d and d["fits_exist"]) for d in ds], dtype=np.float64)
    no_fit = has * (1 - fits)
    return {
        "answer_precision": _ratio(answered * top_fits, answered),
        "deferral_recall": _ratio(no_fit * (1 - answered), no_fit),
        "coverage": _ratio(fits * answered * top_fits, fits),
        "ece": _ece([d["match"] if d else 0.0 for d in ds], [bool(d and d["top_fits"]) for d in ds], [d is not None for d in ds]),
    }


def case_statistics(records: Sequence[dict]) -> dict[str, Statistic]:
    """Every figure of a run's ``overall`` computed from its case records, by name, and its safety totals
    (``total_`` + name)."""
    stats: dict[str, Statistic] = {m: _mean([r["scores"].get(m) for r in records]) for m in PER_CASE}
    decided = _decisions(records)
    stats.update({name: decided[m] for m, name in CORPUS_DECISION_OVERALL.items()})
    stats.update({f"total_{m}": _total([r["scores"].get(m) or 0.0 for r in records]) for m in SAFETY_TOTALS})
    return stats


def _frontier(records: Sequence[dict], precision: float = TARGET_PRECISION) -> Statistic:
    """``rag.evaluation.tickets.coverage_at`` of ``curve``, with weights: the highest coverage any threshold
    reaches with answer precision at least ``precision``."""
    movable = np.array([bool(r["threshold_only"]) for r in records])
    top = np.array([round(float(r["top_match"]), 4) for r in records])
    fixed = np.array([bool(r["decision"]["answered"]) and not r["threshold_only"] for r in records])
    right = np.array([bool(r["decision"]["top_fits"]) for r in records], dtype=np.float64)
    fits = np.array([bool(r["decision"]["fits_exist"]) for r in records], dtype=np.float64)
    thresholds = np.array(sorted(set(top[movable].tolist()) | {1.01}, reverse=True))
    answered = (fixed[:, None] | (movable[:, None] & (top[:, None] >= thresholds[None, :]))).astype(np.float64)

    def stat(w: np.ndarray) -> np.ndarray:
        n_answered, n_right = w @ answered, w @ (answered * right[:, None])
        n_covered, n_fits = w @ (answered * (right * fits)[:, None]), (w @ fits)[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            prec = np.where(n_answered > 0, np.round(n_right / np.where(n_answered > 0, n_answered, 1), 4), 1.0)
            cov = np.where(n_fits > 0, np.round(n_covered / np.where(n_fits > 0, n_fits, 1), 4), 0.0)
        ok = (prec >= precision) & (n_answered > 0)
        return np.where(ok, cov, 0.0).max(axis=1)

    return stat


def ticket_statistics(records: Sequence[dict], prefix: str = "tickets_",
                      names: Sequence[str] = TICKETS_OVERALL) -> dict[str, Statistic]:
    """The ``tickets_`` (or a held-out set's) figures of a run's ``overall`` (``summarise_tickets``' "all")."""
    by_name = _decisions(records)
    by_name["action_agreement"] = _mean([r.get("action_agreement") for r in records])
    for m in ("p_at_1", "mrr_at_10"):
        by_name[f"rel_{m}"] = _mean([(r.get("ranking") or {}).get(m) for r in records])
    by_name["key_content"] = _mean([None if r.get("key") is None else float(r["key"]["found"] == r["key"]["items"])
                                    for r in records])
    by_name["key_content_any"] = _mean([None if r.get("key_any") is None else float(r["key_any"]) for r in records])
    by_name["key_content_desk"] = _mean([None if r.get("key_desk") is None else float(r["key_desk"]) for r in records])
    by_name["deferral_fit"] = _mean([None if r.get("deferral") is None else float(r["deferral"]["fits"])
                                     for r in records])
    by_name["coverage_at_p85"] = _frontier(records)
    return {f"{prefix}{m}": by_name[m] for m in names}


def _round(v: float) -> float | None:
    return None if np.isnan(v) else round(float(v), 4)


def _weights(n: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Row 0: every record once (the point estimate); then ``resamples`` rows of bootstrap draw counts."""
    if n == 0:
        return np.ones((resamples + 1, 0))
    draws = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)
    return np.vstack([np.ones((1, n)), draws])


def _compare_stats(sa: Mapping[str, Statistic], sb: Mapping[str, Statistic], w: np.ndarray, over: str, n: int) -> dict:
    out = {}
    tail = (1 - LEVEL) / 2 * 100
    for m in sa:
        va, vb = sa[m](w), sb[m](w)
        a, b = _round(va[0]), _round(vb[0])
        delta = vb[1:] - va[1:]
        delta = delta[~np.isnan(delta)]
        row: dict = {"a": a, "b": b, "delta": None, "low": None, "high": None, "over": over, "n": n}
        if a is not None and b is not None:
            row["delta"] = round(b - a, 4)
            if len(delta):
                row["low"], row["high"] = (round(float(x), 4) for x in np.percentile(delta, [tail, 100 - tail]))
        out[m] = row
    return out


def compare(a: EvalRun, b: EvalRun, *, common: bool = False, top: int = 10, resamples: int = RESAMPLES,
            seed: int = SEED) -> dict:
    """The deltas from A to B with paired bootstrap intervals, and the cases whose ROUGE-L moved most.

    Raises ``RunsDiffer`` when the runs graded different cases or tickets and ``common`` is False."""
    why = differences(a, b)
    if why and not common:
        raise RunsDiffer("the runs graded different work, so their figures are not comparable: " + "; ".join(why)
                         + ". Pass --common to compare only the cases and tickets both runs graded")
    cases_a, cases_b = _common(a.cases, b.cases, CASES)
    tickets_a, tickets_b = _common(_records(a, TICKETS), _records(b, TICKETS), TICKETS)
    held = {s.name: _common(_records(a, s), _records(b, s), s) for s in HELDOUT}
    if not cases_a:
        raise RunsDiffer("the runs have no case in common: nothing to compare")
    rng = np.random.default_rng(seed)
    metrics = _compare_stats(case_statistics(cases_a), case_statistics(cases_b),
                             _weights(len(cases_a), resamples, rng), "cases", len(cases_a))
    if tickets_a:
        metrics.update(_compare_stats(ticket_statistics(tickets_a), ticket_statistics(tickets_b),
                                      _weights(len(tickets_a), resamples, rng), "tickets", len(tickets_a)))
    for h in HELDOUT_SETS:
        held_a, held_b = held[h.name]
        if held_a:
            metrics.update(_compare_stats(ticket_statistics(held_a, h.prefix, HELDOUT_OVERALL),
                                          ticket_statistics(held_b, h.prefix, HELDOUT_OVERALL),
                                          _weights(len(held_a), resamples, rng), f"{h.name} tickets", len(held_a)))
    totals = {m.removeprefix("total_"): metrics.pop(m) for m in list(metrics) if m.startswith("total_")}
    # A figure a summary holds that no statistic here recomputes is shown without an interval, and said so.
    unrun = ("tickets_",) * (not tickets_a) + tuple(h.prefix for h in HELDOUT_SETS if not held[h.name][0])
    for m in a.summary.get("overall", {}):
        if m not in metrics and not m.startswith(unrun):
            metrics[m] = {"a": a.summary["overall"].get(m), "b": b.summary["overall"].get(m), "delta": None,
                          "low": None, "high": None, "over": None, "n": None,
                          "note": "no per-record definition in rag/evaluation/compare.py"}
    moved = [{"case_id": ra["case_id"], "title": ra["title"], "a": ra["scores"]["rouge_l"], "b": rb["scores"]["rouge_l"],
              "delta": round(rb["scores"]["rouge_l"] - ra["scores"]["rouge_l"], 4)} for ra, rb in zip(cases_a, cases_b)]
    moved.sort(key=lambda x: -abs(x["delta"]))
    return {
        "a": _describe(a), "b": _describe(b),
        "compared": {"cases": len(cases_a), "tickets": len(tickets_a), **{name: len(pair[0]) for name, pair in held.items()},
                     "common_only": bool(why),
                     "differences": why},
        "bootstrap": {"method": "paired percentile bootstrap: the same resample of records for both runs",
                      "resamples": resamples, "seed": seed, "level": LEVEL},
        "metrics": metrics, "totals": totals, "moved": moved[:top], "common_cases": len(cases_a),
    }


def _describe(run: EvalRun) -> dict:
    s = run.summary
    config = s.get("config", {})
    return {"folder": str(run.folder), "backend": s.get("backend"), "variant": config.get("variant"),
            "cases": len(run.cases), "tickets": len(run.tickets)}
