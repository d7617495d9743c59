"""`rag eval compare`: unlike runs are refused, and every delta carries a paired bootstrap interval whose
statistics are the runner's own definitions (checked against them on resampled record lists)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rag.cli import app
from rag.evaluation.compare import RunsDiffer, case_statistics, compare, ticket_statistics
from rag.evaluation.metric_names import CORPUS_DECISION_OVERALL, HELDOUT_OVERALL, PER_CASE, SAFETY_TOTALS, TICKETS_OVERALL
from rag.evaluation.runner import EvalRun, load_run, summarise
from rag.evaluation.tickets import summarise_tickets
from rag.score.relevance import Decision, decision_scores


def _case(n: int, rng: random.Random, shift: float = 0.0) -> dict:
    scores = {m: rng.random() for m in PER_CASE}
    scores.update({"judge_overall": None, "link_recall": rng.choice([None, rng.random()]),
                   "leaked_identifiers": 0.0, "invented_links": float(rng.random() < 0.1), "defects": 0.0})
    scores["rouge_l"] = min(1.0, scores["rouge_l"] + shift)
    decision = None if n % 5 == 0 else {"answered": rng.random() < 0.5, "top_fits": rng.random() < 0.7,
                                        "fits_exist": rng.random() < 0.8, "match": round(rng.random(), 4)}
    return {"case_id": f"c{n:03d}", "title": f"case {n}", "product": "CDN", "ticket": f"ticket {n}",
            "reference": f"answer {n}", "scores": scores, "decision": decision}


def _ticket(n: int, rng: random.Random) -> dict:
    ranking = None if n % 4 == 0 else {"p_at_1": float(rng.random() < 0.6), "mrr_at_10": rng.random(),
                                       "hit_at_5": 1.0, "ndcg_at_5": rng.random()}
    answered = rng.random() < 0.5
    return {"id": f"t{n:03d}", "split": "dev" if n % 2 else "test", "kind": "covered", "ticket": f"q {n}",
            "label_action": "answer", "match": ["c001"], "action_agreement": float(rng.random() < 0.6),
            "ranking": ranking, "decision": {"answered": answered, "top_fits": rng.random() < 0.7,
                                             "fits_exist": rng.random() < 0.8, "match": round(rng.random(), 4)},
            "top_match": round(rng.random(), 4), "threshold_only": rng.random() < 0.7,
            "key": {"items": 2, "found": rng.choice([0, 1, 2]), "missing": []} if answered and n % 3 else None,
            "key_any": rng.random() < 0.5 if n % 3 else None, "key_desk": rng.random() < 0.6 if n % 3 else None,
            "deferral": None if answered else {"asked": [], "reasonable": [], "fits": rng.random() < 0.6, "extra": []}}


def _held(n: int, rng: random.Random) -> dict:
    """A ticket of one of the two held-out sets (the first 15 of the second, the rest of the first)."""
    return {**_ticket(n, rng), "id": f"h{n:03d}", "split": "heldout2" if n < 15 else "heldout"}


def _run(cases: list[dict], tickets: list[dict], folder: str = "run") -> EvalRun:
    summary = summarise(cases)
    decided = [Decision(**r["decision"]) for r in cases if r["decision"]]
    d = decision_scores(decided)
    summary["overall"].update({name: d[m] for m, name in CORPUS_DECISION_OVERALL.items()})
    dev = [t for t in tickets if not t["split"].startswith("heldout")]
    if dev:
        t = summarise_tickets(dev)["all"]
        summary["overall"].update({f"tickets_{m}": t[m] for m in TICKETS_OVERALL})
    for name in ("heldout", "heldout2"):
        held = [t for t in tickets if t["split"] == name]
        if held:
            h = summarise_tickets(held, (name,))["all"]
            summary["overall"].update({f"{name}_{m}": h[m] for m in HELDOUT_OVERALL})
    return EvalRun(Path(folder), summary, cases, tickets)


def _runner_figures(cases: list[dict], tickets: list[dict]) -> dict:
    """The runner's own figures for these records (what the summary would say)."""
    run = _run(cases, tickets)
    return {**run.summary["overall"], **{f"total_{m}": v for m, v in run.summary["totals"].items()}}


def test_each_statistic_is_the_runners_definition_on_any_resample():
    """A bootstrap resample is a list of records drawn with repetition; the weighted statistic on its counts must
    equal what the runner computes from that list, for every metric of the summary."""
    rng = random.Random(3)
    cases = [_case(n, rng) for n in range(40)]
    tickets = [_ticket(n, rng) for n in range(30)]
    stats = {**case_statistics(cases), **ticket_statistics(tickets)}
    assert set(_runner_figures(cases, tickets)) <= set(stats)
    draw = np.random.default_rng(0)
    for _ in range(25):
        ci = draw.integers(0, len(cases), len(cases))
        ti = draw.integers(0, len(tickets), len(tickets))
        expected = _runner_figures([cases[i] for i in ci], [tickets[i] for i in ti])
        wc = np.bincount(ci, minlength=len(cases))[None, :].astype(float)
        wt = np.bincount(ti, minlength=len(tickets))[None, :].astype(float)
        for m, want in expected.items():
            got = stats[m](wt if m.startswith("tickets_") else wc)[0]
            if want is None:
                assert np.isnan(got), m
            else:
                assert got == pytest.approx(want, abs=1e-4), m


def test_a_real_shift_is_beyond_noise_and_a_reshuffle_is_not():
    rng = random.Random(1)
    a = [_case(n, rng) for n in range(60)]
    shifted = [{**r, "scores": {**r["scores"], "rouge_l": r["scores"]["rouge_l"] + 0.05}} for r in a]
    result = compare(_run(a, []), _run(shifted, []))
    row = result["metrics"]["rouge_l"]
    assert row["delta"] == pytest.approx(0.05, abs=1e-4)
    # paired: the per-case difference is exactly 0.05, so every resample gives it
    assert row["low"] == pytest.approx(0.05, abs=1e-4) and row["high"] == pytest.approx(0.05, abs=1e-4)
    # B's scores are A's handed to other cases: the means are equal, the paired interval is wide and holds 0
    values = [r["scores"]["chrf"] for r in a]
    random.Random(2).shuffle(values)
    shuffled = [{**r, "scores": {**r["scores"], "chrf": v}} for r, v in zip(a, values)]
    row = compare(_run(a, []), _run(shuffled, []))["metrics"]["chrf"]
    assert row["delta"] == pytest.approx(0, abs=1e-4) and row["low"] < -0.05 and row["high"] > 0.05


def test_the_interval_is_a_seeded_paired_percentile_bootstrap():
    rng = random.Random(5)
    a = [_case(n, rng) for n in range(50)]
    b = [{**r, "scores": {**r["scores"], "bleu": rng.random()}} for r in a]
    result = compare(_run(a, []), _run(b, []), resamples=500, seed=11)
    assert result["bootstrap"]["resamples"] == 500 and result["bootstrap"]["level"] == 0.95
    # the same thing by hand: resample case indices, take the mean difference of the pairs
    diff = np.array([rb["scores"]["bleu"] - ra["scores"]["bleu"] for ra, rb in zip(a, b)])
    draws = np.random.default_rng(11).multinomial(len(a), np.full(len(a), 1 / len(a)), size=500)
    by_hand = np.percentile(draws @ diff / len(a), [2.5, 97.5])
    row = result["metrics"]["bleu"]
    assert (row["low"], row["high"]) == pytest.approx(tuple(by_hand), abs=1e-4)
    again = compare(_run(a, []), _run(b, []), resamples=500, seed=11)["metrics"]["bleu"]
    assert (again["low"], again["high"]) == (row["low"], row["high"])  # seeded


def test_every_metric_and_total_has_an_interval():
    rng = random.Random(4)
    cases, tickets = [_case(n, rng) for n in range(30)], [_ticket(n, rng) for n in range(20)] + [_held(n, rng) for n in range(25)]
    other = [{**r, "scores": {**r["scores"], "rouge_l": rng.random()}} for r in cases]
    result = compare(_run(cases, tickets), _run(other, tickets))
    shown = {m: d for m, d in result["metrics"].items() if d["a"] is not None}
    assert set(shown) == {m for m, v in _run(cases, tickets).summary["overall"].items() if v is not None}
    for m, d in [*shown.items(), *result["totals"].items()]:
        assert d["low"] is not None and d["low"] <= d["delta"] <= d["high"], (m, d)
    assert set(result["totals"]) == set(SAFETY_TOTALS)
    assert {d["over"] for m, d in shown.items() if m.startswith("tickets_")} == {"tickets"}
    assert {d["over"] for m, d in shown.items() if m.startswith("heldout_")} == {"heldout tickets"}
    assert {d["over"] for m, d in shown.items() if m.startswith("heldout2_")} == {"heldout2 tickets"}
    assert result["compared"]["heldout"] == 10 and result["compared"]["heldout2"] == 15


def test_runs_over_different_cases_or_tickets_are_refused_unless_common_is_asked():
    rng = random.Random(6)
    cases, tickets = [_case(n, rng) for n in range(30)], [_ticket(n, rng) for n in range(20)] + [_held(n, rng) for n in range(25)]
    full, sample = _run(cases, tickets), _run(cases[:10], [])
    with pytest.raises(RunsDiffer, match=r"cases: A has 30, B has 10 \(20 only in A, 0 only in B\); "
                                         r"tickets: A has 20, B has 0 .*--common"):
        compare(full, sample)
    result = compare(full, sample, common=True)
    assert result["compared"]["cases"] == 10 and result["compared"]["tickets"] == 0
    assert not any(m.startswith("tickets_") for m in result["metrics"])  # no ticket in common: not compared
    # A's figures are recomputed over the 10 common cases, not copied from its 30-case summary
    assert result["metrics"]["rouge_l"]["a"] == result["metrics"]["rouge_l"]["b"] == _run(cases[:10], []).summary["overall"]["rouge_l"]
    assert result["metrics"]["rouge_l"]["delta"] == 0
    # the same ids, but a case graded against another reference, is different work too
    edited = [{**r, "reference": "changed"} if r["case_id"] == "c003" else r for r in cases]
    with pytest.raises(RunsDiffer, match=r"cases: 1 of 30 differ in what is drafted or graded \(e.g. c003\)"):
        compare(_run(cases, []), _run(edited, []))
    assert compare(_run(cases, []), _run(edited, []), common=True)["compared"]["cases"] == 29
    with pytest.raises(RunsDiffer, match="no case in common"):
        compare(_run(cases[:5], []), _run(cases[5:10], []), common=True)


def _write(folder: Path, run: EvalRun) -> Path:
    (folder / "cases").mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps(run.summary), encoding="utf-8")
    for r in run.cases:
        (folder / "cases" / f"{r['case_id']}.json").write_text(json.dumps(r), encoding="utf-8")
    if run.tickets:
        (folder / "tickets").mkdir()
        for t in run.tickets:
            (folder / "tickets" / f"{t['id']}.json").write_text(json.dumps(t), encoding="utf-8")
    return folder


def test_the_cli_refuses_in_one_line_and_prints_intervals(tmp_path):
    rng = random.Random(8)
    cases, tickets = [_case(n, rng) for n in range(30)], [_ticket(n, rng) for n in range(20)] + [_held(n, rng) for n in range(25)]
    a = _write(tmp_path / "a", _run(cases, tickets))
    b = _write(tmp_path / "b", _run(cases[:10], []))
    assert load_run(a).tickets and not load_run(b).tickets
    runner = CliRunner()
    r = runner.invoke(app, ["eval", "compare", str(a), str(b)])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1 and "cases: A has 30, B has 10" in r.output, r.output
    r = runner.invoke(app, ["eval", "compare", str(a), str(b), "--common"])
    assert r.exit_code == 0, r.output
    assert "10 cases, 0 tickets (common to both runs only)" in r.stdout
    header = next(line for line in r.stdout.splitlines() if line.startswith("metric\t"))
    assert header.split("\t")[4:] == ["95% interval", "beyond noise"]
    rouge = next(line for line in r.stdout.splitlines() if line.startswith("rouge_l\t")).split("\t")
    assert rouge[3] == "+0.0000" and rouge[4] == "[+0.0000, +0.0000]" and rouge[5] == "no"
    r = runner.invoke(app, ["eval", "compare", str(a), str(b), "--common", "--json"])
    data = json.loads(r.stdout)
    assert data["metrics"]["rouge_l"]["low"] == 0 and data["compared"]["common_only"] is True


def test_writing_a_runs_plots_leaves_matplotlibs_backend_alone(tmp_path):
    """report.plot used to call matplotlib.use("Agg"): a notebook's inline plots went dark after its first run."""
    import matplotlib

    from rag.evaluation.report import plot, plot_reliability

    matplotlib.use("svg")  # stands for a notebook's inline backend
    rng = random.Random(9)
    cases = [_case(n, rng) for n in range(12)]
    plot(cases, tmp_path / "scores.png")
    plot_reliability({"leave-one-out": cases}, tmp_path / "reliability.png")
    assert matplotlib.get_backend() == "svg"
    assert (tmp_path / "scores.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "reliability.png").stat().st_size
