import pytest
from rouge_chinese import Rouge

from rag.records import Draft
from rag.score.draft import bleu, chrf, link_scores, rouge_l, score_draft, template_recall
from rag.score.templates import Template, find_templates
from rag.text.rouge import rouge_l_f1

PAIRS = [
    ("您好，免费证书在控制台申请", "您好，可以在控制台申请免费证书"),
    ("刷新缓存后五到十分钟生效", "一般5-10分钟生效，请刷新缓存"),
    ("完全不同", "毫无关系的句子"),
    ("一模一样的回答", "一模一样的回答"),
]


@pytest.mark.parametrize("a, b", PAIRS)
def test_char_rouge_l_matches_rouge_chinese(a, b):
    expected = Rouge(metrics=["rouge-l"]).get_scores(" ".join(a), " ".join(b))[0]["rouge-l"]["f"]
    assert rouge_l_f1(a, b) == pytest.approx(expected, abs=1e-6)


def test_bleu_and_chrf_order_drafts_sensibly():
    ref = "您好，手动申请免费证书：登录控制台，在证书管理中申请免费证书，补全信息后完成验证。"
    close = "您好，登录控制台，在证书管理中申请免费证书，然后补全信息完成验证。"
    far = "您好，请提供一下您的订单号。"
    assert bleu(close, ref) > bleu(far, ref) >= 0
    assert chrf(close, ref) > chrf(far, ref) >= 0
    assert rouge_l(ref, ref) == pytest.approx(1.0) and bleu(ref, ref) == pytest.approx(1.0)


def test_link_precision_and_recall():
    p, r = link_scores("见 https://portal.qiniu.com/cdn/domain 和 https://developer.qiniu.com/x",
                       "见https://portal.qiniu.com/cdn/domain3、其他")
    assert p == 0.5 and r == 1.0
    p, r = link_scores("没有链接", "也没有")
    assert p is None and r is None


def test_template_recall():
    t = Template("手动申请并使用免费SSL证书步骤如下1.免费证书申请2.补全信息3.免费证书验证4.升级HTTPS配置", frozenset({"a", "b", "c"}))
    assert template_recall("随便回答", "您好，" + t.text, [t]) == 0.0
    assert template_recall("您好，" + t.text.replace("1.", "1、"), t.text, [t]) == 1.0
    assert template_recall("x", "没有模板的回答", [t]) is None


def test_corpus_templates_are_the_known_ones(corpus_pipeline):
    from rag.corpus.parse import parse_paths

    cases, _ = parse_paths([corpus_pipeline.settings.ingest.data_dir])
    texts = [t.text for t in find_templates(cases)]
    assert any("免费SSL证书步骤" in t for t in texts)
    assert any("实时消费明细" in t for t in texts)


def test_score_draft_counts_leaks_and_invented_links():
    from rag.records import Case, Turn
    from rag.score.leaks import LeakDetector
    from rag.score.link_check import LinkChecker

    past = Case("old", "t", "CDN", "其他", (), "客户 cdn.other-user.com 打不开", (
        Turn("customer", "客户 cdn.other-user.com 打不开"), Turn("agent", "见 https://cdn.old.cn/[REDACTED_PATH]")),
        None, "f.md", 1)
    draft = Draft(text="您好，参考 https://evil.example.org/a ，客户 cdn.other-user.com 也是这样，见 https://cdn.old.cn/[REDACTED_PATH]", action="answer",
                  confidence=0.5, citations=(), links=(), backend="offline", prompt_id="p", prompt_version="v", latency_ms=1)
    s = score_draft(draft, "您好，已经处理完成", "我的问题", templates=[], leaks=LeakDetector.from_cases([past]),
                    links=LinkChecker.from_cases([past], ("qiniu.com",)), reference_action="escalate")
    assert s["leaked_identifiers"] == 2  # another customer's domain, and the host of their link from a past case
    assert s["invented_links"] == 1  # evil.example.org; the past case's link is not invented (it is a leak)
    assert s["action_agreement"] == 0.0  # the real agent escalated


def test_pairwise_matrix_matches_pair_by_pair():
    from rag.text.rouge import pairwise_rouge_l

    texts = [a for pair in PAIRS for a in pair] + [""]
    m = pairwise_rouge_l(texts)
    for i, a in enumerate(texts):
        for j, b in enumerate(texts):
            assert m[i, j] == pytest.approx(0.0 if i == j else rouge_l_f1(a, b))
