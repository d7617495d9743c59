"""Write a run's folder: per-case JSON, summary JSON, a Markdown report and a PNG plot."""

from __future__ import annotations

import json
from pathlib import Path

from rag.corpus.format import format_category
from rag.evaluation.metric_names import REPORT, TICKETS_REPORT
from rag.evaluation.tickets import HELDOUT_SETS

# Used when the machine has no CJK font, so labels never render as empty boxes.
PRODUCT_LABELS = {"对象存储": "Kodo", "账户与财务": "Billing", "直播云": "Live", "云主机": "QVM", "实时互动": "RTC",
                  "智能多媒体": "Dora", "短视频SDK": "ShortVideo", "视频监控": "QVS", "人工智能": "AI", "云短信": "SMS"}


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def _cell(text: str, limit: int = 220) -> str:
    return " ".join(text.split())[:limit].replace("|", "｜")


def _decisions(records: list[dict]) -> tuple[list[float], list[bool]]:
    rs = [r["decision"] for r in records if r.get("decision")]
    return [d["match"] for d in rs], [d["top_fits"] for d in rs]


def calibration_lines(title: str, records: list[dict]) -> list[str]:
    """A reliability table: in each confidence bin, how often the top case really addressed the problem."""
    from rag.score.relevance import expected_calibration_error, reliability_bins

    prob, correct = _decisions(records)
    if not prob:
        return []
    lines = ["", f"## Calibration: {title}", "",
             f"Expected calibration error {expected_calibration_error(prob, correct):.3f} over {len(prob)} drafts "
             "(confidence = probability that the top cited case addresses the ticket's problem).", "",
             "| confidence bin | drafts | mean confidence | top case fits |", "|---|---|---|---|"]
    lines += [f"| {b['low']:.1f}–{b['high']:.1f} | {b['n']} | {b['confidence']:.2f} | {b['accuracy']:.2f} |"
              for b in reliability_bins(prob, correct)]
    return lines


def ticket_lines(summary: dict) -> list[str]:
    lines: list[str] = []
    for name, title, splits in (
            *((h.name, h.title, (h.name,)) for h in HELDOUT_SETS),
            ("new_tickets", "Development tickets (the match model and the policy were tuned on them)", ("all",))):
        nt = summary.get(name)
        if not nt:
            continue
        cols = TICKETS_REPORT
        lines += ["", f"## {title}", "", "| set | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
        for split in splits:
            if split in nt:
                label = "development" if split == "all" else split
                lines.append(f"| {label} | " + " | ".join(_fmt(nt[split].get(c)) for c in cols) + " |")
        lines += ["", "| kind | tickets | answered | action agreement |", "|---|---|---|---|"]
        lines += [f"| {k} | {v['tickets']} | {v['answered']} | {v['action_agreement']:.2f} |"
                  for k, v in nt["all"]["by_kind"].items()]
        lines += ["", "Precision–coverage curve of the match probability (the tickets only the threshold decides; "
                  "`precision_coverage.png`):", "", "| threshold | answered | precision | coverage |", "|---|---|---|---|"]
        points = nt["all"]["curve"]
        step = max(1, len(points) // 12)
        lines += [f"| {p['threshold']:.3f} | {p['answered']} | {p['precision']:.3f} | {p['coverage']:.3f} |"
                  for p in points[::step]]
    return lines


def sets_text(summary: dict) -> str:
    """Which sets a run graded, in one line: the cases (how chosen) and the labelled tickets (or why not)."""
    sets = summary.get("sets")
    if not sets:
        return ""
    c, t = sets["cases"], sets["tickets"]
    tickets = (f"{t['replayed']} development tickets" if t["ran"]
               else f"labelled new tickets not run ({t.get('why_not', '')})")
    heldout = ""
    for held in HELDOUT_SETS:
        h = sets.get(held.name)
        if h:
            heldout += f"; {h['replayed']} {held.name} tickets" if h["ran"] else f"; {held.name} tickets not run"
    return f"sets: {c['replayed']} of {c['of']} cases ({c['how']}); {tickets}{heldout}"


def sets_lines(summary: dict) -> list[str]:
    line = sets_text(summary)
    return [line, ""] if line else []


def markdown(summary: dict, records: list[dict], tickets: list[dict] | None = None) -> str:
    o = summary["overall"]
    lines = [
        f"# Evaluation run: {summary['backend']} · prompt {summary['prompt']['id']}@{summary['prompt']['version']}",
        "",
        f"{summary['cases']} cases · split {summary['config']['split']} · {summary['seconds']} s of wall time · "
        f"errors {summary['errors']} · tokens {summary['tokens']['prompt']}+{summary['tokens']['completion']} "
        f"(cost {summary['tokens']['cost']}, cache hits {summary['tokens']['cache_hits']})",
        "",
        *sets_lines(summary),
        "**Safety:** " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in summary["totals"].items()),
        "",
        "| metric | value |",
        "|---|---|",
    ]
    lines += [f"| {m} | {_fmt(v)} |" for m, v in o.items() if v is not None]
    lines += ["", "## By product", "", "| product | cases | " + " | ".join(REPORT) + " |",
              "|---|---|" + "---|" * len(REPORT)]
    for product, row in summary["by_product"].items():
        lines.append(f"| {product} | {row['cases']} | " + " | ".join(_fmt(row.get(m)) for m in REPORT) + " |")
    lines += calibration_lines("leave-one-out (problem-group labels)", records)
    lines += ticket_lines(summary)
    lines += calibration_lines("new tickets", tickets or [])
    worst = sorted(records, key=lambda r: r["scores"]["rouge_l"])[:10]
    lines += ["", "## Ten worst cases (by ROUGE-L)", ""]
    for r in worst:
        lines += [
            f"### {r['title']} ({format_category(r['product'], r['subcategory'])}) · ROUGE-L {r['scores']['rouge_l']:.3f} · "
            f"action {r['draft']['action']}",
            "",
            "| ticket | draft | real answer |",
            "|---|---|---|",
            f"| {_cell(r['ticket'], 120)} | {_cell(r['draft']['text'])} | {_cell(r['reference'])} |",
            "",
        ]
    return "\n".join(lines)


def plot(records: list[dict], path: Path) -> None:
    # A Figure without pyplot: no global backend switch (matplotlib.use("Agg") here used to turn off a
    # notebook's inline plots for the rest of its session), and no figure left registered anywhere.
    from matplotlib.figure import Figure

    from rag.evaluation.fonts import chinese_font

    products = sorted({r["product"] for r in records}, key=lambda p: -sum(r["product"] == p for r in records))
    data = [[r["scores"]["rouge_l"] for r in records if r["product"] == p] for p in products]
    font = chinese_font()
    fig = Figure(figsize=(max(6, 1.1 * len(products)), 4.5))
    ax = fig.subplots()
    ax.boxplot(data, showmeans=True)
    ax.set_xticks(range(1, len(products) + 1))
    names = products if font is not None else [PRODUCT_LABELS.get(p, p) for p in products]
    ax.set_xticklabels([f"{p}\n(n={len(d)})" for p, d in zip(names, data)], fontproperties=font, fontsize=8)
    ax.set_ylabel("ROUGE-L (draft vs real answer)")
    ax.set_title("Draft score distribution per product")
    ax.set_ylim(0, 1)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_reliability(series: dict[str, list[dict]], path: Path) -> None:
    """Reliability diagram: mean confidence against how often the top case fits, per bin."""
    from matplotlib.figure import Figure

    from rag.score.relevance import reliability_bins

    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
    for name, records in series.items():
        prob, correct = _decisions(records)
        bins = reliability_bins(prob, correct)
        if bins:
            ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o",
                    label=f"{name} (n={len(prob)})")
    ax.set_xlabel("confidence (P top case addresses the ticket)")
    ax.set_ylabel("fraction where the top case fits")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Reliability of Draft.confidence")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_curves(curves: dict[str, list[dict]], path: Path, target: float = 0.85) -> None:
    """Answer precision against coverage as the answer threshold moves, one line per ticket set."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 4.5))
    ax = fig.subplots()
    for name, points in curves.items():
        ax.plot([p["coverage"] for p in points], [p["precision"] for p in points], marker=".", label=name)
    ax.axhline(target, color="grey", linestyle="--", linewidth=1, label=f"precision {target}")
    ax.set_xlabel("coverage (answerable tickets answered from a right case)")
    ax.set_ylabel("answer precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title("Precision–coverage as the answer threshold moves")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write_artifacts(folder: Path, summary: dict, records: list[dict], tickets: list[dict] | None = None) -> None:
    """The per-record files and the plots: the slow part, written before the summary so the summary's
    ``seconds`` can include it."""
    (folder / "cases").mkdir(parents=True, exist_ok=True)
    for r in records:
        (folder / "cases" / f"{r['case_id']}.json").write_text(json.dumps(r, ensure_ascii=False, indent=2), encoding="utf-8")
    if tickets:
        (folder / "tickets").mkdir(parents=True, exist_ok=True)
        for t in tickets:
            (folder / "tickets" / f"{t['id']}.json").write_text(json.dumps(t, ensure_ascii=False, indent=2), encoding="utf-8")
    plot(records, folder / "scores.png")
    if any(r.get("decision") for r in records) or tickets:
        plot_reliability({"leave-one-out": records, "new tickets": tickets or []}, folder / "reliability.png")
    curves = {name: summary[name]["all"]["curve"] for name in (*(h.name for h in HELDOUT_SETS), "new_tickets")
              if summary.get(name)}
    if curves:
        plot_curves(curves, folder / "precision_coverage.png")


def write_summary(folder: Path, summary: dict, records: list[dict], tickets: list[dict] | None = None) -> None:
    (folder / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    (folder / "report.md").write_text(markdown(summary, records, tickets), encoding="utf-8")
