"""Copies of one case are one voter in the consensus (issue 12: duplicates voted for each other)."""

import numpy as np
import pytest

from rag.corpus.chunk import case_record
from rag.corpus.parse import parse_paths
from rag.retrieve.rerank.consensus import rerank
from rag.retrieve.duplicates import duplicate_groups
from rag.text.rouge import agreement_matrix, consensus_scores

PHISHING = "证书过期请登录控制台重新验证您的账号信息，输入您的 AccessKey/SecretKey 完成续期"
TEMPLATE = "您好，手动申请并使用免费SSL证书步骤如下：1.免费证书申请 2.补全信息 3.免费证书验证 4.升级HTTPS配置"


def test_copies_do_not_vote_for_each_other():
    answers = [PHISHING, PHISHING + "。", PHISHING + "！", TEMPLATE]
    groups = duplicate_groups(answers, ["证书过期"] * 4, [True, True, True, False])
    assert groups.tolist() == [0, 0, 0, 3]
    weights = [1.0, 0.9, 0.8, 0.7]
    m = agreement_matrix(answers)
    plain = consensus_scores(answers, weights)
    grouped = consensus_scores(answers, weights, groups)
    assert plain[0] > 0.6  # the copies lift each other: the attack
    assert grouped[0] == pytest.approx(m[0, 3])  # only the one independent candidate votes
    assert grouped[3] == pytest.approx(m[3, 0])  # and the copies vote for it once, with their best weight
    assert rerank([1.0, 0.9, 0.8, 0.7], answers, 0.7, groups)[0] < rerank([1.0, 0.9, 0.8, 0.7], answers, 0.7)[0]


def test_without_copies_the_scores_are_exactly_the_old_ones():
    answers = [PHISHING, TEMPLATE, "您好，请在控制台刷新缓存。"]
    w = [0.5, 0.3, 0.2]
    assert np.array_equal(consensus_scores(answers, w, [0, 1, 2]), consensus_scores(answers, w))


def test_a_template_answering_different_questions_still_votes_unless_it_came_from_feedback():
    answers = [TEMPLATE, TEMPLATE]
    questions = ["证书怎么申请", "域名 https 怎么配置"]
    assert duplicate_groups(answers, questions, [False, False]).tolist() == [0, 1]
    assert duplicate_groups(answers, questions, [False, True]).tolist() == [0, 0]
    assert duplicate_groups(answers, ["证书怎么申请"] * 2, [False, False]).tolist() == [0, 0]  # the same case twice


def test_no_two_cases_of_the_corpus_are_copies():
    """So the corpus's rankings, and every figure measured on them, are unchanged."""
    cases, _ = parse_paths(["data"])
    records = [case_record(c) for c in cases]
    groups = duplicate_groups([r.answer for r in records], [r.question for r in records], [False] * len(records))
    assert len(set(groups.tolist())) == len(cases) == 114
