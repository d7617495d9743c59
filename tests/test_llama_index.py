"""The llama-index integration: the case retriever inside llama-index's own query engine and evaluator.

The evaluation uses the lead's problem-group labels (eval/relevance/groups/*.json): for every case with a
same-group partner, query with its title and question, leave the case itself out, and count a retrieved case
as relevant when it is in the same group. llama-index's RetrieverEvaluator (hit rate, MRR) must give exactly
the figures computed from the project's own retriever on the same queries.
"""

from __future__ import annotations

import json
from collections import defaultdict
from importlib.util import find_spec

import httpx
import pytest
import respx

from rag.retrieve import Filters
from rag.settings import PROJECT_ROOT

# Looked up, not imported: importing llama-index costs 1.7 s, and every xdist worker collects this module
# while only the one running the corpus tests uses it.
pytestmark = pytest.mark.skipif(find_spec("llama_index") is None or find_spec("llama_index.core") is None,
                                reason="the llama-index extra is not installed: pip install -e '.[llama-index]'")

GROUPS_DIR = PROJECT_ROOT / "eval" / "relevance" / "groups"


def test_retriever_is_a_llama_index_retriever_with_case_nodes(corpus_settings):
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeWithScore, TextNode

    from rag.integrations.llama_index import make_retriever

    r = make_retriever(corpus_settings, product="cdn", top_k=3)  # product matched case-insensitively
    assert isinstance(r, BaseRetriever) and r.product == "CDN"
    nodes = r.retrieve("证书过期了，怎么重新申请免费证书？")
    assert len(nodes) == 3 and all(isinstance(n, NodeWithScore) and isinstance(n.node, TextNode) for n in nodes)
    first = nodes[0].node
    assert first.node_id == first.metadata["case_id"] and len(first.node_id) == 16
    assert {n.node.metadata["product"] for n in nodes} == {"CDN"}
    assert {"title", "subcategory", "source", "line", "matched_text"} <= set(first.metadata)
    assert "解答：" in first.get_content() and nodes[0].score >= nodes[-1].score
    # what the LLM sees: the case, with title/product but not ids and file positions
    llm_view = first.get_content(metadata_mode="llm")
    assert "product: CDN" in llm_view and first.metadata["source"] not in llm_view


def test_top_k_defaults_to_rag_top_k_like_rag_search(corpus_settings, corpus_pipeline):
    from rag.integrations.llama_index import CaseRetriever, make_retriever

    assert CaseRetriever(corpus_pipeline).top_k == corpus_settings.top_k == 5
    r = make_retriever(corpus_settings.updated(top_k=2))  # RAG_TOP_K=2
    assert r.top_k == 2 and len(r.retrieve("证书过期了，怎么重新申请免费证书？")) == 2
    assert CaseRetriever(r.pipeline, top_k=4).top_k == 4  # an explicit top_k still wins


def test_unknown_product_is_refused_with_the_valid_values(corpus_settings):
    from rag.errors import UnknownValueError
    from rag.integrations.llama_index import make_retriever

    with pytest.raises(UnknownValueError, match="valid values: .*CDN"):
        make_retriever(corpus_settings, product="不存在的产品")


def test_query_engine_answers_from_the_retrieved_cases(corpus_settings):
    from llama_index.core.query_engine import RetrieverQueryEngine

    from rag.integrations.llama_index import make_query_engine

    s = corpus_settings.updated(llm_base_url="http://llm.test/v1", llm_model="qwen-test", llm_api_key="k",
                                llm_max_attempts=1)
    engine = make_query_engine(s)  # no request yet
    assert isinstance(engine, RetrieverQueryEngine)
    reply = {"id": "x", "object": "chat.completion", "created": 0, "model": "qwen-test",
             "choices": [{"index": 0, "finish_reason": "stop",
                          "message": {"role": "assistant", "content": "您好，可以在控制台重新申请免费证书。"}}],
             "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}
    with respx.mock() as mock:
        route = mock.post("http://llm.test/v1/chat/completions").mock(return_value=httpx.Response(200, json=reply))
        response = engine.query("证书过期了，怎么重新申请免费证书？")
    assert route.call_count == 1
    sent = json.loads(route.calls[0].request.content)
    assert sent["model"] == "qwen-test" and route.calls[0].request.headers["authorization"] == "Bearer k"
    prompt = "\n".join(m["content"] for m in sent["messages"] if isinstance(m["content"], str))
    top = response.source_nodes[0].node
    assert top.metadata["title"] in prompt and "证书过期了" in prompt
    assert str(response) == "您好，可以在控制台重新申请免费证书。" and len(response.source_nodes) == 5


def test_query_engine_needs_an_llm(corpus_settings):
    from rag.errors import ConfigError
    from rag.integrations.llama_index import make_query_engine

    with pytest.raises(ConfigError, match="RAG_LLM_BASE_URL"):
        make_query_engine(corpus_settings)


def _labelled_queries(corpus_settings):
    from rag.parse import parse_paths

    files = sorted(GROUPS_DIR.glob("*.json"))
    if not files:
        pytest.skip("no relevance labels in eval/relevance/groups/")
    cases = {c.id: c for c in parse_paths([corpus_settings.data_dir])[0]}
    entries = [e for f in files for e in json.loads(f.read_text(encoding="utf-8"))["cases"]]
    members: dict[str, set[str]] = defaultdict(set)
    for e in entries:
        members[e["group"]].add(e["id"])
    queries = []
    for e in entries:
        relevant = sorted(members[e["group"]] - {e["id"]})
        if relevant and e["id"] in cases:
            c = cases[e["id"]]
            queries.append((e["id"], f"{c.title}\n{c.question}", relevant))
    return queries


@pytest.mark.e2e
def test_retriever_evaluator_on_the_labelled_set_matches_the_projects_figures(corpus_pipeline):
    from llama_index.core.evaluation import RetrieverEvaluator

    from rag.integrations.llama_index import CaseRetriever

    k = 5
    queries = _labelled_queries(corpus_pipeline.settings)
    assert len(queries) >= 60  # 68 cases have a same-group partner in part 15
    retriever = CaseRetriever(corpus_pipeline, top_k=k)
    evaluator = RetrieverEvaluator.from_metric_names(["hit_rate", "mrr"], retriever=retriever)
    li_hit, li_mrr, own_hit, own_mrr = [], [], [], []
    for case_id, text, relevant in queries:
        retriever.exclude = (case_id,)  # leave-one-out: the query's own case is never an answer
        result = evaluator.evaluate(query=text, expected_ids=relevant)
        li_hit.append(result.metric_vals_dict["hit_rate"])
        li_mrr.append(result.metric_vals_dict["mrr"])
        ranked = [h.case_id for h in corpus_pipeline.retriever.retrieve(text, Filters.of(exclude=[case_id]), k)]
        assert result.retrieved_ids == ranked  # the adapter returns exactly the project's ranking
        first = next((i for i, c in enumerate(ranked) if c in relevant), None)
        own_hit.append(1.0 if first is not None else 0.0)
        own_mrr.append(0.0 if first is None else 1.0 / (first + 1))
    n = len(queries)
    figures = {"queries": n, "hit_rate@5": sum(li_hit) / n, "mrr@5": sum(li_mrr) / n}
    print(f"llama-index RetrieverEvaluator on the problem-group labels: {figures}")
    assert figures["hit_rate@5"] == pytest.approx(sum(own_hit) / n)
    assert figures["mrr@5"] == pytest.approx(sum(own_mrr) / n)
    # far above chance (a random 5 of ~113 cases rarely holds one of a group's 1-11 partners)
    assert figures["hit_rate@5"] > 0.5 and figures["mrr@5"] > 0.3
