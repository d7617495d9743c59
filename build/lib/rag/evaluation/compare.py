"""Compare two evaluation runs: metric deltas and the cases that moved most."""

from __future__ import annotations

from rag.evaluation.runner import EvalRun


def compare(a: EvalRun, b: EvalRun, top: int = 10) -> dict:
    oa, ob = a.summary["overall"], b.summary["overall"]
    deltas = {}
    for m in oa:
        va, vb = oa.get(m), ob.get(m)
        deltas[m] = {"a": va, "b": vb, "delta": None if va is None or vb is None else round(vb - va, 4)}
    ra = {r["case_id"]: r for r in a.cases}
    moved = []
    for r in b.cases:
        if r["case_id"] in ra:
            d = r["scores"]["rouge_l"] - ra[r["case_id"]]["scores"]["rouge_l"]
            moved.append({"case_id": r["case_id"], "title": r["title"], "a": ra[r["case_id"]]["scores"]["rouge_l"],
                          "b": r["scores"]["rouge_l"], "delta": round(d, 4)})
    moved.sort(key=lambda x: -abs(x["delta"]))
    return {"metrics": deltas, "moved": moved[:top], "common_cases": len(moved)}
