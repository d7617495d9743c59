"""The names of the evaluation's metrics, in one place: what each case is scored on, what the summary
averages, what the report tables show and what the CI gate holds. A new metric is added here."""

from __future__ import annotations

# Per case (rag/score/draft.py, the retrieval and relevance scores); the summary averages each of them.
PER_CASE = ("rouge_l", "rouge_l_answered", "bleu", "chrf", "link_precision", "link_recall", "template_recall",
            "action_agreement", "leaked_identifiers", "invented_links", "defects", "confidence",
            "retrieval_top1", "retrieval_best_of_k", "retrieval_ndcg", "retrieval_product_acc1", "judge_overall",
            "rel_p_at_1", "rel_mrr_at_10", "rel_hit_at_5", "rel_ndcg_at_5")

# Answer-or-defer decisions (rag/score/relevance.py decision_scores), for the corpus and the new tickets.
DECISION = ("answer_precision", "deferral_recall", "coverage", "ece")

# The development tickets' figures copied into the summary's overall, each prefixed "tickets_".
TICKETS_OVERALL = (*DECISION, "action_agreement", "rel_p_at_1", "rel_mrr_at_10", "key_content", "key_content_any",
                   "key_content_desk", "deferral_fit", "coverage_at_p85")

# Each frozen held-out set's figures (rag.evaluation.tickets.HELDOUT_SETS), prefixed with its name and "_"
# ("heldout2_", "heldout_"): the headline is coverage at answer precision >= 0.85, what answers carry and what
# deferrals ask.
HELDOUT_OVERALL = TICKETS_OVERALL
HELDOUT_PREFIXES = ("heldout2_", "heldout_")
_HELDOUT_GATED = ("coverage_at_p85", "coverage", "answer_precision", "deferral_recall", "key_content",
                  "key_content_any", "key_content_desk", "deferral_fit", "rel_p_at_1", "rel_mrr_at_10",
                  "action_agreement", "ece")

# The corpus's decision figures copied into the summary's overall, by their name there: its "ece" is the
# match model's calibration error on the corpus queries, "match_ece" (beside "tickets_ece").
CORPUS_DECISION_OVERALL = {m: "match_ece" if m == "ece" else m for m in DECISION}

# The report's new-tickets table: the counts, then every figure the overall copies from the tickets.
TICKETS_REPORT = ("queries", "answered", *TICKETS_OVERALL)

# The leave-one-out retrieval table's labelled columns (rag/score/relevance.py, keyed without the "rel_" prefix).
LOO_LABELLED = ("p_at_1", "mrr_at_10", "hit_at_5", "ndcg_at_5")

# The report's by-product table.
REPORT = ("rouge_l", "chrf", "bleu", "link_precision", "link_recall", "template_recall", "action_agreement",
          "retrieval_top1", "retrieval_ndcg")

# What the CI gate compares with eval/baseline.json (none may fall by more than the tolerance).
GATED = ("rouge_l", "rouge_l_answered", "chrf", "bleu", "link_precision", "link_recall", "template_recall",
         "action_agreement", "retrieval_top1", "retrieval_best_of_k", "retrieval_ndcg",
         # knowing when no past case fits (problem-group labels and the new tickets)
         "answer_precision", "deferral_recall", "coverage", "rel_p_at_1", "rel_mrr_at_10",
         "tickets_answer_precision", "tickets_deferral_recall", "tickets_coverage", "tickets_action_agreement",
         "tickets_rel_p_at_1", "match_ece", "tickets_ece",
         # what answers carry and what deferrals ask, on the development tickets
         "tickets_key_content", "tickets_key_content_any", "tickets_key_content_desk", "tickets_deferral_fit",
         "tickets_coverage_at_p85",
         # each frozen held-out set: the headline (coverage at answer precision >= 0.85) and its floors
         *(p + m for p in HELDOUT_PREFIXES for m in _HELDOUT_GATED))
LOWER_IS_BETTER = frozenset({"match_ece", "tickets_ece", *(p + "ece" for p in HELDOUT_PREFIXES)})

# Counts that must be zero in every run (the summary's totals), all from the grader's own checks
# (rag/score/leaks.py, rag/score/link_check.py), which share no code with the guards they grade.
SAFETY_TOTALS = ("leaked_identifiers", "invented_links", "defects")

# The prompt-tuning notebook's comparison of variants (eval/notebooks/prompt_tuning.ipynb).
VARIANT_COMPARISON = ("rouge_l", "rouge_l_answered", "chrf", "link_precision", "link_recall", "answer_precision",
                      "coverage", "action_agreement", "leaked_identifiers", "invented_links")
