import json

import httpx
import pytest
import respx

from rag.evaluation import EvalConfig, run_eval
from rag.evaluation import baseline as gate
from rag.evaluation.compare import RunsDiffer, compare
from rag.evaluation.runner import load_run, select_cases
from rag.corpus.parse import parse_paths
from rag.pipeline import Pipeline

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def offline_run(corpus_pipeline, tmp_path_factory):
    return run_eval(corpus_pipeline, EvalConfig(), tmp_path_factory.mktemp("runs"), run_name="offline")


def test_ci_gate_offline_leave_one_out_holds_the_baseline(offline_run, corpus_pipeline):
    """The CI gate: every case, offline backend; no metric below baseline - tolerance, no leak, no invented link."""
    verdict = gate.check(offline_run.summary, gate.load(corpus_pipeline.settings.evaluation.baseline_path))
    assert verdict.ok, verdict.failures
    assert offline_run.summary["cases"] == 111
    assert offline_run.summary["totals"] == {"leaked_identifiers": 0, "invented_links": 0, "defects": 0}
    overall = offline_run.summary["overall"]
    assert overall["rouge_l_answered"] is not None and "rouge_l" in overall


def test_gate_fails_on_regression_and_on_leaks(offline_run, corpus_pipeline):
    base = gate.load(corpus_pipeline.settings.evaluation.baseline_path)
    higher = {**base, "metrics": {**base["metrics"], "rouge_l": base["metrics"]["rouge_l"] + 0.1}}
    assert not gate.check(offline_run.summary, higher).ok
    clean = offline_run.summary["totals"]
    leaky = {**offline_run.summary, "totals": {**clean, "leaked_identifiers": 1}}
    assert "leaked_identifiers: 1 (must be 0)" in gate.check(leaky, base).failures
    for m in ("invented_links", "defects"):
        assert f"{m}: 2 (must be 0)" in gate.check({**offline_run.summary, "totals": {**clean, m: 2}}, base).failures
    unreported = {k: v for k, v in clean.items() if k != "defects"}
    assert "defects: not reported (must be 0)" in gate.check({**offline_run.summary, "totals": unreported}, base).failures


def test_run_folder_has_every_artifact(offline_run):
    folder = offline_run.folder
    assert len(list((folder / "cases").glob("*.json"))) == 111
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    # Deferred drafts ("no past case fits; please send…") share little with the real answers: the answered
    # ones carry the overlap.
    assert summary["overall"]["rouge_l_answered"] > 0.2 and "CDN" in summary["by_product"]
    report = (folder / "report.md").read_text(encoding="utf-8")
    assert "## By product" in report and report.count("| ticket | draft | real answer |") == 10
    assert "## Calibration: leave-one-out" in report and "## Development tickets" in report
    assert "## Second held-out tickets" in report and "## First held-out tickets" in report
    assert (folder / "precision_coverage.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for png in ("scores.png", "reliability.png"):
        assert (folder / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    tickets = list((folder / "tickets").glob("*.json"))
    assert len(tickets) == 141 + 162 + 100 and summary["new_tickets"]["all"]["queries"] == 141
    assert summary["heldout"]["all"]["queries"] == 162 and summary["heldout"]["all"]["curve"]
    assert summary["heldout2"]["all"]["queries"] == 100 and summary["heldout2"]["all"]["curve"]
    for m in ("answer_precision", "deferral_recall", "coverage", "match_ece", "tickets_answer_precision",
              "tickets_deferral_recall", "tickets_ece", "rel_p_at_1", "rel_mrr_at_10"):
        assert summary["overall"][m] is not None, m
    case = json.loads(next((folder / "cases").glob("*.json")).read_text(encoding="utf-8"))
    assert case["case_id"] not in case["draft"]["retrieved"]  # leave-one-out held


def test_compare_runs(offline_run, corpus_pipeline, tmp_path):
    other = run_eval(corpus_pipeline, EvalConfig(limit=20, seed=1), tmp_path, run_name="small")
    # a 20-case sample without the tickets is not the 111-case run: refused, unless the common part is asked for
    assert other.summary["config"]["tickets"] is False and other.summary["sets"]["tickets"]["ran"] is False
    assert "--limit" in other.summary["sets"]["tickets"]["why_not"] and other.summary["sets"]["cases"]["replayed"] == 20
    with pytest.raises(RunsDiffer, match="cases: A has 111, B has 20"):
        compare(load_run(offline_run.folder), load_run(other.folder))
    result = compare(load_run(offline_run.folder), load_run(other.folder), common=True)
    assert result["common_cases"] == 20 and result["compared"]["tickets"] == 0
    assert set(result["metrics"]) >= {"rouge_l", "retrieval_ndcg"}
    assert all(m["delta"] == 0 for m in result["moved"])  # same backend, same drafts
    # the same drafts on the same cases: every delta is 0, and so is its interval (it used to be -0.377 on
    # retrieval_product_acc1, from comparing 111 cases with 10)
    for m, d in result["metrics"].items():
        assert d["a"] is None or (d["delta"], d["low"], d["high"]) == (0, 0, 0), (m, d)


def test_every_figure_of_a_real_run_is_recomputed_with_an_interval(offline_run):
    """compare.py recomputes each figure of the summary from the run's record files; if a metric is added to the
    runner without a per-record definition there, this fails (the delta would have no interval)."""
    run = load_run(offline_run.folder)
    result = compare(run, run)
    assert offline_run.summary["config"]["tickets"] is True and offline_run.summary["sets"]["tickets"]["replayed"] == 141
    for m, value in offline_run.summary["overall"].items():
        d = result["metrics"][m]
        assert "note" not in d, m
        if value is not None:
            assert d["a"] == pytest.approx(value, abs=1e-4) and d["low"] == d["high"] == 0, (m, d)
    assert set(result["totals"]) == set(offline_run.summary["totals"])


def test_the_store_replays_the_corpus_exactly_as_parsed(corpus_pipeline):
    """What evaluation grades (the store's cases) is, for the real corpus, exactly what parsing gives: every
    turn, line, link and flag, in corpus order, so the figures do not depend on which of the two is read."""
    parsed, _ = parse_paths([corpus_pipeline.settings.ingest.data_dir], root=corpus_pipeline.settings.ingest.data_dir)
    assert list(corpus_pipeline.cases.replay_cases()) == parsed and len(parsed) > 100


def test_seeded_split_excludes_the_whole_test_set(corpus_pipeline):
    cases = corpus_pipeline.cases.replay_cases()
    chosen, excluded = select_cases(cases, EvalConfig(split="split", seed=3, test_fraction=0.2))
    again, _ = select_cases(cases, EvalConfig(split="split", seed=3, test_fraction=0.2))
    assert [c.id for c in chosen] == [c.id for c in again] and len(chosen) == 22
    assert excluded == {c.id for c in chosen}


def _llm_reply(request):
    body = json.loads(request.content)
    if body["messages"][0]["role"] == "user":  # the judge
        content = '{"correct": 4, "complete": 3, "actionable": 4, "tone": 5, "reason": "ok"}'
    else:
        user = body["messages"][1]["content"]
        if "客服回复：" in user:  # cases reach the prompt only when the verdict says one fits
            content = "您好，" + user.split("客服回复：", 1)[1].split("\n</case_", 1)[0]  # the resolution, links and all
        else:
            content = "您好，请提供报错截图和相关域名，我们帮您进一步排查。"
    return httpx.Response(200, json={
        "id": "c", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100},
    })


def test_llm_backend_with_judge_cache_and_cost(corpus_settings, tmp_path):
    s = corpus_settings.updated(llm={"base_url": "http://llm.test/v1", "model": "m", "price_prompt_per_1k": 0.002,
                                     "price_completion_per_1k": 0.006}, store={"cache_dir": tmp_path / "cache"})
    cfg = EvalConfig(backend="llm", limit=4, concurrency=2, judge=True)
    with respx.mock() as mock:
        route = mock.post("http://llm.test/v1/chat/completions").mock(side_effect=_llm_reply)
        p = Pipeline(s)  # a fresh cache dir: the first run must really call the endpoint
        first = run_eval(p, cfg, tmp_path / "runs", run_name="one")
        calls = route.call_count
        second = run_eval(p, cfg, tmp_path / "runs", run_name="two")
    assert calls == 8  # 4 drafts + 4 judgements
    assert route.call_count == calls  # the re-run was served from the disk cache
    assert first.summary["tokens"]["prompt"] == 4 * 1000 and first.summary["tokens"]["cost"] == pytest.approx(4 * (0.002 + 0.0006))
    assert second.summary["tokens"]["cache_hits"] == 4
    assert first.summary["overall"]["judge_overall"] == pytest.approx((4 + 3 + 4 + 5) / 20)
    assert first.summary["backend"] == "llm:m" and first.summary["errors"] == 0
    assert [r["draft"]["text"] for r in first.cases] == [r["draft"]["text"] for r in second.cases]


def test_llm_failures_are_recorded_not_fatal(corpus_settings, tmp_path):
    s = corpus_settings.updated(llm={"base_url": "http://llm.test/v1", "model": "m", "retry": {"max_attempts": 1}},
                                store={"cache_dir": corpus_settings.store.cache_dir})
    with respx.mock() as mock:
        mock.post("http://llm.test/v1/chat/completions").mock(return_value=httpx.Response(500, json={"error": {"message": "boom"}}))
        run = run_eval(Pipeline(s), EvalConfig(backend="llm", limit=2), tmp_path, run_name="failing")
    assert run.summary["errors"] == 2
    assert all(r["draft"]["fallback"] and "HTTP 500" in r["error"] for r in run.cases)


def test_a_judge_failure_is_recorded_on_its_case_and_the_run_goes_on(corpus_settings, tmp_path):
    s = corpus_settings.updated(llm={"base_url": "http://llm.test/v1", "model": "m", "retry": {"max_attempts": 1}},
                                store={"cache_dir": tmp_path / "cache"})
    replies = iter(['{"correct": 4, "complete": 3, "actionable": 4, "tone": 5, "reason": "ok"}', "I cannot grade this.",
                    '{"correct": 5, "complete": 5, "actionable": 5, "tone": 5, "reason": "ok"}'])

    def judge_reply(request):
        return httpx.Response(200, json={
            "id": "c", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": next(replies)}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}})

    with respx.mock() as mock:  # offline drafts, judged by the "LLM": the second judgement is not JSON
        mock.post("http://llm.test/v1/chat/completions").mock(side_effect=judge_reply)
        run = run_eval(Pipeline(s), EvalConfig(backend="offline", limit=3, judge=True), tmp_path / "runs", run_name="judged")
    assert run.summary["cases"] == 3 and run.summary["judge_errors"] == 1
    failed = [r for r in run.cases if r["judge"] and "error" in r["judge"]]
    assert len(failed) == 1 and "not the rubric's JSON" in failed[0]["judge"]["error"] and "judge:" in failed[0]["error"]
    assert failed[0]["scores"]["judge_overall"] is None
    assert run.summary["overall"]["judge_overall"] is not None  # the two good judgements still count


def test_run_folders_never_overwrite_each_other(tmp_path):
    from rag.evaluation.runner import _run_folder

    first = _run_folder(tmp_path, None, "offline-default")
    (first / "cases").mkdir(parents=True)
    second = _run_folder(tmp_path, None, "offline-default")
    assert second != first and not second.exists()
    named = tmp_path / "mine"
    (named / "cases").mkdir(parents=True)
    (named / "cases" / "stale.json").write_text("{}")
    assert _run_folder(tmp_path, "mine", "x") == named and not named.exists()  # a named run starts clean


def test_the_summary_and_the_report_name_the_metrics_from_metric_names(offline_run):
    """The overall holds exactly the names rag/evaluation/metric_names.py lists; the report's tables show them."""
    from rag.evaluation.metric_names import (CORPUS_DECISION_OVERALL, GATED, HELDOUT_OVERALL, HELDOUT_PREFIXES,
                                             PER_CASE, REPORT, TICKETS_OVERALL, TICKETS_REPORT)
    from rag.evaluation.tickets import HELDOUT_SETS

    # The gate's held-out names and the sets the runner replays are one list, in one order.
    assert HELDOUT_PREFIXES == tuple(h.prefix for h in HELDOUT_SETS)
    assert all(f"{p}coverage_at_p85" in GATED for p in HELDOUT_PREFIXES)
    expected = [*PER_CASE, *CORPUS_DECISION_OVERALL.values(), *(f"tickets_{m}" for m in TICKETS_OVERALL),
                *(f"{h.prefix}{m}" for h in HELDOUT_SETS for m in HELDOUT_OVERALL)]
    assert list(offline_run.summary["overall"]) == expected
    report = (offline_run.folder / "report.md").read_text(encoding="utf-8")
    assert "| set | " + " | ".join(TICKETS_REPORT) + " |" in report
    assert "| product | cases | " + " | ".join(REPORT) + " |" in report
