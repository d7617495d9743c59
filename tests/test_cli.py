"""The CLI as a user runs it: real commands on a temporary store."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag.cli import app

pytestmark = pytest.mark.usefixtures("without_index_probe")  # the probe child is tested in test_store_reload.py

runner = CliRunner()


@pytest.fixture
def env(cli_env, dataset, monkeypatch):
    monkeypatch.setenv("RAG_DATA_DIR", str(dataset))
    return dataset


def test_ingest_stats_search(env):
    r = runner.invoke(app, ["ingest", str(env)])
    assert r.exit_code == 0, r.output
    assert "cases" in r.output and "chunks" in r.output and "seconds" in r.output
    r = runner.invoke(app, ["stats"])
    assert r.exit_code == 0 and "刷新缓存问题" in r.output and "3 cases" in r.output
    r = runner.invoke(app, ["search", "证书过期", "-k", "2", "--json"])
    hits = json.loads(r.stdout)
    assert r.exit_code == 0 and hits[0]["title"] == "证书过期怎么办" and len(hits) == 2
    r = runner.invoke(app, ["search", "证书过期", "--product", "账户与财务", "--json"])
    assert {h["product"] for h in json.loads(r.stdout)} == {"账户与财务"}


def test_draft_ingests_on_first_use_and_prints_json(env):
    r = runner.invoke(app, ["draft", "--json", "证书过期了怎么重新申请？"])
    assert r.exit_code == 0, r.output
    draft = json.loads(r.stdout)
    assert draft["text"].startswith("您好") and draft["action"] in ("answer", "ask_for_info", "escalate")
    assert draft["citations"] and draft["backend"] == "offline"


def test_draft_from_file_and_stdin(env, tmp_path):
    f = tmp_path / "ticket.txt"
    f.write_text("CDN 刷新缓存多久生效", encoding="utf-8")
    r = runner.invoke(app, ["draft", "--file", str(f)])
    assert r.exit_code == 0 and "action:" in r.output and "cited cases" in r.output
    r = runner.invoke(app, ["draft", "--json"], input="怎么开发票")
    assert r.exit_code == 0 and json.loads(r.stdout)["text"]


def test_bad_input_is_one_clear_line(env, tmp_path):
    bad = tmp_path / "bad.md"
    bad.write_text("---\n## 标题\n**问题分类**: CDN｜证书问题\n### 问题描述\nx\n### 客服解答\n**经理**：hi\n---\n", encoding="utf-8")
    r = runner.invoke(app, ["ingest", "--strict", str(bad)])
    assert r.exit_code == 2
    assert "bad.md:7: unknown role" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["ingest", str(bad)])
    assert r.exit_code == 0 and "skipped" in r.output
    r = runner.invoke(app, ["draft", "--json", "   "])
    assert r.exit_code == 2 and "empty" in r.output
    r = runner.invoke(app, ["draft", "--file", str(tmp_path / "missing.txt")])
    assert r.exit_code == 2 and "cannot read ticket file" in r.output


def test_bad_settings_name_the_field(env, monkeypatch):
    monkeypatch.setenv("RAG_TOP_K", "many")
    r = runner.invoke(app, ["stats"])
    assert r.exit_code == 2 and "top_k" in r.output and "Traceback" not in r.output


def test_eval_update_baseline_gate_and_compare(env, tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_BASELINE_PATH", str(tmp_path / "baseline.json"))
    # No labels: the 141 new tickets would be replayed against this 3-case corpus on each of the three runs
    # (337 s of the fast tier); the replay is covered over the real corpus in tests/test_evaluation.py.
    monkeypatch.setenv("RAG_LABELS_DIR", str(tmp_path / "no-labels"))
    runs = tmp_path / "runs"
    r = runner.invoke(app, ["eval", "--out", str(runs), "--update-baseline"])
    assert r.exit_code == 0, r.output
    assert "rouge_l" in r.output and "baseline written" in r.output
    saved = json.loads((tmp_path / "baseline.json").read_text(encoding="utf-8"))
    assert saved["backend"] == "offline" and saved["cases"] == 3 and "rouge_l" in saved["metrics"]
    r = runner.invoke(app, ["eval", "--out", str(runs), "--gate"])
    assert r.exit_code == 0 and "gate passed" in r.output, r.output
    saved["metrics"]["rouge_l"] = 0.99
    (tmp_path / "baseline.json").write_text(json.dumps(saved), encoding="utf-8")
    r = runner.invoke(app, ["eval", "--out", str(runs), "--gate"])
    assert r.exit_code == 1 and "rouge_l" in r.output
    before = sorted(runs.iterdir())
    r = runner.invoke(app, ["eval", "--out", str(runs), "--limit", "2", "--update-baseline"])
    assert r.exit_code == 2 and "every case" in r.output
    r = runner.invoke(app, ["eval", "--out", str(runs), "--limit", "2", "--gate"])
    assert r.exit_code == 2 and "like with like" in r.output and "limit=2" in r.output
    assert sorted(runs.iterdir()) == before  # both refused before running anything
    a, b = sorted(p for p in runs.iterdir() if p.is_dir())[:2]
    r = runner.invoke(app, ["eval", "compare", str(a), str(b), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["common_cases"] == 3
    r = runner.invoke(app, ["eval", "compare", str(a), str(b)])  # the human-readable form (rich MarkupError before)
    assert r.exit_code == 0, r.output
    assert "rouge_l" in r.output and "cases that moved most" in r.output and "Traceback" not in r.output
    rouge = next(line for line in r.stdout.splitlines() if line.startswith("rouge_l\t"))
    assert rouge.split("\t")[3] in ("+0.0000", "-0.0000")  # same backend, same drafts
    r = runner.invoke(app, ["eval", "compare", str(a), str(tmp_path)])
    assert r.exit_code == 2 and "not an evaluation run folder" in r.output


def test_draft_streams_from_an_llm(env, monkeypatch, sse):
    import httpx
    import respx

    monkeypatch.setenv("RAG_LLM_BASE_URL", "http://llm.test/v1")
    monkeypatch.setenv("RAG_LLM_MODEL", "m")
    with respx.mock() as mock:
        route = mock.post("http://llm.test/v1/chat/completions").mock(return_value=httpx.Response(
            200, headers={"content-type": "text/event-stream"},
            content=sse("ACTION: answer\n", "您好，免费证书申请：", "https://portal.qiniu.com/certificate/apply")))
        r = runner.invoke(app, ["draft", "证书过期了怎么办"])
    assert r.exit_code == 0, r.output
    assert route.called and "draft (streaming, checked" in r.output and "final draft" in r.output
    assert "backend: llm:m" in r.output


def test_draft_llm_failure_without_and_with_fallback(env, monkeypatch):
    import httpx
    import respx

    monkeypatch.setenv("RAG_LLM_BASE_URL", "http://llm.test/v1")
    monkeypatch.setenv("RAG_LLM_MODEL", "m")
    monkeypatch.setenv("RAG_LLM_MAX_ATTEMPTS", "1")
    with respx.mock() as mock:
        mock.post("http://llm.test/v1/chat/completions").mock(return_value=httpx.Response(500, json={"error": {"message": "down"}}))
        r = runner.invoke(app, ["draft", "--no-stream", "证书过期了怎么办"])
        assert r.exit_code == 2 and "HTTP 500" in r.output and "Traceback" not in r.output
        r = runner.invoke(app, ["draft", "--no-stream", "--fallback", "offline", "证书过期了怎么办"])
    assert r.exit_code == 0 and "offline fallback" in r.output


def test_markup_like_text_is_printed_literally(env):
    r = runner.invoke(app, ["draft", "[/bold] 证书过期 [red]怎么办"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["search", "[/bold] [域名管理]"])
    assert r.exit_code == 0, r.output


def test_bad_collection_name_is_reported_before_chroma_sees_it(env, monkeypatch):
    monkeypatch.setenv("RAG_COLLECTION", "x")
    r = runner.invoke(app, ["stats"])
    assert r.exit_code == 2 and "RAG_COLLECTION" in r.output and "[a-zA-Z0-9._-]" in r.output


def test_version_bare_command_and_fast_help():
    import subprocess
    import sys
    import time

    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.stdout.startswith("rag ")
    r = runner.invoke(app, [])
    assert r.exit_code == 0 and "Usage" in r.stdout and "draft" in r.stdout
    code = "import sys, rag.cli; heavy = [m for m in ('rag.pipeline', 'chromadb', 'numpy', 'rich') if m in sys.modules]; print(heavy)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"  # the CLI module imports none of the heavy parts; `rag --help` stays fast
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rag.cli", "--help"], capture_output=True, check=True)
    print(f"rag --help: {time.perf_counter() - started:.2f} s")


def test_dash_and_no_argument_read_stdin(env):
    r = runner.invoke(app, ["draft", "-", "--json"], input="证书过期了怎么重新申请？")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["citations"]
    r = runner.invoke(app, ["search", "--json"], input="证书过期")
    assert r.exit_code == 0 and json.loads(r.stdout)[0]["title"] == "证书过期怎么办"


def test_unknown_product_scenario_and_k0_are_refused(env):
    r = runner.invoke(app, ["search", "证书过期", "--product", "cdn", "--json"])
    assert r.exit_code == 0, r.output  # matched case-insensitively
    assert {h["product"] for h in json.loads(r.stdout)} == {"CDN"}
    r = runner.invoke(app, ["search", "证书过期", "--product", "不存在的产品"])
    assert r.exit_code == 2 and "unknown product '不存在的产品'" in r.output and "CDN" in r.output and "账户与财务" in r.output
    r = runner.invoke(app, ["search", "证书过期", "--scenario", "nope"])
    assert r.exit_code == 2 and "unknown scenario 'nope'" in r.output
    r = runner.invoke(app, ["draft", "证书过期", "--product", "不存在的产品"])
    assert r.exit_code == 2 and "valid values" in r.output
    r = runner.invoke(app, ["search", "证书过期", "-k", "0"])
    assert r.exit_code == 2
    r = runner.invoke(app, ["stats"])
    assert r.exit_code == 0 and "scenarios (" in r.stdout


def test_piped_output_is_plain_and_unwrapped(env):
    ticket = "证书过期了怎么重新申请免费证书？请给出详细步骤和官方文档链接"
    text = json.loads(runner.invoke(app, ["draft", "--json", ticket]).stdout)["text"]
    assert any(len(line) > 40 for line in text.splitlines())  # wider than 80 columns: rich would have wrapped it
    r = runner.invoke(app, ["draft", ticket])
    assert r.exit_code == 0, r.output
    assert f"\n{text}\n" in r.stdout  # verbatim, lines whole
    assert not any(ch in r.stdout for ch in "╭━┃┏│")  # no rich boxes when piped
    assert "\ncase\ttitle\tproduct\tscore\n" in r.stdout


def test_plain_output_keeps_long_lines_whole():
    import io

    from rag.cli.terminal import Output

    buf = io.StringIO()
    link = "https://developer.qiniu.com/" + "a" * 200
    o = Output(buf, rich=False)
    o.text(f"请参考 {link}")
    o.table("cited cases", ("case", "title"), [("1", f"标题 {link}")])
    assert f"请参考 {link}\n" in buf.getvalue() and f"1\t标题 {link}\n" in buf.getvalue()


def test_dash_h_is_help_on_every_command():
    for args in (["-h"], ["draft", "-h"], ["eval", "-h"], ["eval", "compare", "-h"], ["feedback", "review", "-h"],
                 ["stats", "-h"]):
        r = runner.invoke(app, args)
        assert r.exit_code == 0 and "Usage" in r.stdout, (args, r.output)


def test_a_terminal_never_breaks_a_link_across_lines(monkeypatch):
    import io

    from rag.cli.terminal import Output

    monkeypatch.setenv("COLUMNS", "40")  # a narrow terminal: rich used to hard-wrap the line at 40 columns
    buf = io.StringIO()
    link = "https://developer.qiniu.com/fusion/manual/4952/https-configuration"
    o = Output(buf, rich=True)
    o.text(f"您好，配置步骤见 {link} 谢谢")
    o.styled(f"[bold]参考[/] {link}", f"参考 {link}")
    assert buf.getvalue().count(link) == 2, buf.getvalue()


def test_draft_json_names_the_product_it_was_drafted_for(env):
    r = runner.invoke(app, ["draft", "--json", "--product", "cdn", "证书过期了怎么重新申请？"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["product"] == "CDN"  # the store's spelling; it was "" before
    r = runner.invoke(app, ["draft", "--json", "证书过期了怎么重新申请？"])
    assert json.loads(r.stdout)["product"] == ""


def test_eval_json_says_which_sets_ran_and_times_the_whole_run(env, tmp_path, monkeypatch):
    import re
    import time

    import rag.evaluation.report
    import rag.evaluation.runner

    monkeypatch.setenv("RAG_LABELS_DIR", str(tmp_path / "no-labels"))  # no labelled tickets: said, not hidden
    slow_plot, slow_templates = rag.evaluation.report.plot, rag.evaluation.runner.find_templates

    def plot(*a, **k):
        time.sleep(0.4)  # the report's plots used to be left out of the run's seconds
        return slow_plot(*a, **k)

    def find_templates(*a, **k):
        time.sleep(0.4)  # and so was the setup before the first draft
        return slow_templates(*a, **k)

    monkeypatch.setattr(rag.evaluation.report, "plot", plot)
    monkeypatch.setattr(rag.evaluation.runner, "find_templates", find_templates)
    r = runner.invoke(app, ["eval", "--out", str(tmp_path / "runs"), "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    t = summary["timings"]
    assert t["setup"] >= 0.4 and t["report"] >= 0.4 and summary["seconds"] >= 0.8
    assert summary["seconds"] == pytest.approx(sum(t.values()), abs=0.3) and summary["wall_seconds"] >= summary["seconds"]
    assert summary["sets"]["cases"] == {"ran": True, "replayed": 3, "of": 3, "how": "leave-one-out"}
    assert summary["sets"]["tickets"]["ran"] is False and "no labelled tickets" in summary["sets"]["tickets"]["why_not"]
    assert summary["config"]["tickets"] is False  # the config no longer claims a set that did not run
    saved = json.loads((Path(summary["folder"]) / "summary.json").read_text(encoding="utf-8"))
    assert saved["seconds"] == summary["seconds"] and saved["timings"] == t

    r = runner.invoke(app, ["eval", "--out", str(tmp_path / "runs"), "--limit", "2"])
    assert r.exit_code == 0, r.output
    header = next(line for line in r.stdout.splitlines() if line.startswith("# "))
    wall = float(re.search(r"([\d.]+) s$", header).group(1))
    assert wall >= 0.8, header  # the command's own time, setup and report included
    assert "sets: 2 of 3 cases (leave-one-out, a seeded sample of 2 with seed 0); labelled new tickets not run" in r.stdout
    assert "time: " in r.stdout and "report " in r.stdout


def test_stats_json(env):
    assert runner.invoke(app, ["ingest", str(env)]).exit_code == 0
    r = runner.invoke(app, ["stats", "--json"])
    assert r.exit_code == 0, r.output
    stats = json.loads(r.stdout)
    assert stats["cases"] == 3 and stats["chunks"] >= 3 and "SSL证书" in stats["scenarios"]
    by_product = {p["product"]: p for p in stats["products"]}
    assert by_product["CDN"]["cases"] == sum(s["cases"] for s in by_product["CDN"]["subcategories"]) == 2
    assert {"subcategory": "证书问题", "cases": 1} in by_product["CDN"]["subcategories"]
