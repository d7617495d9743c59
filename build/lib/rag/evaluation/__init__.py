"""The evaluation harness: replay real tickets, score the drafts, report, compare, gate."""

from rag.evaluation.runner import EvalConfig, EvalRun, run_eval

__all__ = ["EvalConfig", "EvalRun", "run_eval"]
