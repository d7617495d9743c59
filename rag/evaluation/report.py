"""Write a run's folder: per-case JSON, summary JSON, a Markdown report and a PNG plot."""

from __future__ import annotations

import json
from pathlib import Path

# Used when the machine has no CJK font, so labels never render as empty boxes.
PRODUCT_LABELS = {"对象存储": "Kodo", "账户与财务": "Billing", "直播云": "Live", "云主机": "QVM", "实时互动": "RTC",
                  "智能多媒体": "Dora", "短视频SDK": "ShortVideo", "视频监控": "QVS", "人工智能": "AI", "云短信": "SMS"}
REPORT_METRICS = ("rouge_l", "chrf", "bleu", "link_precision", "link_recall", "template_recall", "action_agreement",
                  "retrieval_top1", "retrieval_ndcg")


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def _cell(text: str, limit: int = 220) -> str:
    return " ".join(text.split())[:limit].replace("|", "｜")


def markdown(summary: dict, records: list[dict]) -> str:
    o = summary["overall"]
    lines = [
        f"# Evaluation run: {summary['backend']} · prompt {summary['prompt']['id']}@{summary['prompt']['version']}",
        "",
        f"{summary['cases']} cases · split {summary['config']['split']} · {summary['seconds']} s · "
        f"errors {summary['errors']} · tokens {summary['tokens']['prompt']}+{summary['tokens']['completion']} "
        f"(cost {summary['tokens']['cost']}, cache hits {summary['tokens']['cache_hits']})",
        "",
        "**Safety:** " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in summary["totals"].items()),
        "",
        "| metric | value |",
        "|---|---|",
    ]
    lines += [f"| {m} | {_fmt(v)} |" for m, v in o.items() if v is not None]
    lines += ["", "## By product", "", "| product | cases | " + " | ".join(REPORT_METRICS) + " |",
              "|---|---|" + "---|" * len(REPORT_METRICS)]
    for product, row in summary["by_product"].items():
        lines.append(f"| {product} | {row['cases']} | " + " | ".join(_fmt(row.get(m)) for m in REPORT_METRICS) + " |")
    worst = sorted(records, key=lambda r: r["scores"]["rouge_l"])[:10]
    lines += ["", "## Ten worst cases (by ROUGE-L)", ""]
    for r in worst:
        lines += [
            f"### {r['title']} ({r['product']}｜{r['subcategory']}) · ROUGE-L {r['scores']['rouge_l']:.3f} · "
            f"action {r['draft']['action']}",
            "",
            "| ticket | draft | real answer |",
            "|---|---|---|",
            f"| {_cell(r['ticket'], 120)} | {_cell(r['draft']['text'])} | {_cell(r['reference'])} |",
            "",
        ]
    return "\n".join(lines)


def plot(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rag.evaluation.fonts import chinese_font

    products = sorted({r["product"] for r in records}, key=lambda p: -sum(r["product"] == p for r in records))
    data = [[r["scores"]["rouge_l"] for r in records if r["product"] == p] for p in products]
    font = chinese_font()
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(products)), 4.5))
    ax.boxplot(data, showmeans=True)
    ax.set_xticks(range(1, len(products) + 1))
    names = products if font is not None else [PRODUCT_LABELS.get(p, p) for p in products]
    ax.set_xticklabels([f"{p}\n(n={len(d)})" for p, d in zip(names, data)], fontproperties=font, fontsize=8)
    ax.set_ylabel("ROUGE-L (draft vs real answer)")
    ax.set_title("Draft score distribution per product")
    ax.set_ylim(0, 1)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_run(folder: Path, summary: dict, records: list[dict]) -> None:
    (folder / "cases").mkdir(parents=True, exist_ok=True)
    for r in records:
        (folder / "cases" / f"{r['case_id']}.json").write_text(json.dumps(r, ensure_ascii=False, indent=2), encoding="utf-8")
    (folder / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    (folder / "report.md").write_text(markdown(summary, records), encoding="utf-8")
    plot(records, folder / "scores.png")
