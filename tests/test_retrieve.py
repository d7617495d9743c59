import pytest

from rag.records import Ticket
from rag.evaluation.setups import SETUPS, Parts
from rag.retrieve import Filters
from rag.retrieve.rerank.consensus import rerank
from rag.retrieve.fusion import best_per_case, rrf
from rag.retrieve.query import rewrite_query


def test_rrf_and_grouping():
    fused = rrf({"a": ["x", "y"], "b": ["y", "z"]}, {"a": 1.0, "b": 1.0}, k=1)
    assert fused["y"] == pytest.approx(1 / 3 + 1 / 2)
    assert max(fused, key=fused.get) == "y"
    assert best_per_case([("c1", "c1:ex1", 3.0), ("c1", "c1:case", 2.0), ("c2", "c2:case", 1.0)]) == [
        ("c1", "c1:ex1", 3.0),
        ("c2", "c2:case", 1.0),
    ]


def test_consensus_prefers_the_shared_template():
    template = "手动申请并使用免费SSL证书步骤如下1.免费证书申请2.补全信息3.免费证书验证4.升级HTTPS配置"
    answers = ["这个需要您提供一下域名", template, template + "注意事项", template]
    final = rerank([1.0, 0.9, 0.8, 0.7], answers, alpha=0.7)
    assert int(final.argmax()) == 1
    assert rerank([1.0, 0.9], ["完全无关的回答", "另一个无关回答"], alpha=0.7).argmax() == 0


def test_query_rewrite_drops_greetings_redactions_links_and_ids():
    assert rewrite_query("您好，[REDACTED_PHONE] 证书过期了[图片]谢谢") == "证书过期了"
    assert rewrite_query("cdn.my-shop.com 证书过期 订单 20241008123456 见 https://x.example.com/a") == "证书过期 订单 见"
    assert rewrite_query("cdn.my-shop.com") == "cdn.my-shop.com"  # nothing left: keep the original


@pytest.mark.e2e
def test_certificate_ticket_finds_certificate_cases(corpus_pipeline):
    result = corpus_pipeline.retriever.retrieve("证书过期了，怎么重新配置免费证书", k=5)
    hits = list(result.hits)
    assert result.timing.lexical_ms > 0 and result.timing.dense_ms > 0 and result.timing.match_ms > 0
    assert len(hits) == 5 and len({h.case_id for h in hits}) == 5
    assert sum("证书" in h.title for h in hits) >= 4
    assert hits[0].chunk_text and hits[0].answer
    assert hits == sorted(hits, key=lambda h: -h.score)
    assert {"dense_rank", "lexical_rank"} & set(hits[0].components)


@pytest.mark.e2e
def test_filters_and_exclusion(corpus_pipeline):
    r = corpus_pipeline.retriever
    by_product = r.retrieve("怎么查看账单和消费明细", Filters(product="账户与财务"), 5).hits
    assert by_product and all(h.product == "账户与财务" for h in by_product)
    by_scenario = r.retrieve("证书", Filters(scenarios=("SSL证书",)), 5).hits
    assert by_scenario and all("SSL证书" in h.case.scenarios for h in by_scenario)
    first = r.retrieve("证书过期了，怎么重新配置免费证书", k=3).hits
    without = r.retrieve("证书过期了，怎么重新配置免费证书", Filters.of(exclude={first[0].case_id}), 3)
    assert first[0].case_id not in without.case_ids
    assert r.retrieve(Ticket("证书过期", product="不存在的产品"), k=3).hits == ()


@pytest.mark.e2e
def test_modes_all_return_cases(corpus_pipeline):
    parts = Parts.of(corpus_pipeline)
    for name, setup in SETUPS.items():
        assert len(setup(parts).retrieve("CDN 刷新缓存多久生效", k=3).hits) == 3, name


def test_lexical_index_is_saved_and_reloaded(tmp_path):
    from rag.retrieve.sources.lexical import LexicalIndex

    texts = ["证书过期了怎么续签", "CDN 刷新缓存多久生效", "发票怎么开具"]
    built = LexicalIndex.cached(texts, tmp_path)
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 1
    loaded = LexicalIndex.cached(texts, tmp_path)
    assert loaded._bm25 is not built._bm25
    assert list(loaded.scores("证书过期")) == list(built.scores("证书过期"))
    assert loaded.search("刷新缓存", 1)[0][0] == 1
    LexicalIndex.cached(texts + ["新的一条"], tmp_path)  # other texts, another entry
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 2
    for entry in tmp_path.iterdir():
        (entry / "params.index.json").write_text("{broken")
    again = LexicalIndex.cached(texts, tmp_path)  # a damaged entry is rebuilt, not trusted
    assert again.search("发票", 1)[0][0] == 2
