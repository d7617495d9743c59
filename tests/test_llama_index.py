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

    assert CaseRetriever(corpus_pipeline).top_k == corpus_settings.retrieval.top_k == 5
    r = make_retriever(corpus_settings.updated(retrieval={"top_k": 2}))  # RAG_TOP_K=2
    assert r.top_k == 2 and len(r.retrieve("证书过期了，怎么重新申请免费证书？")) == 2
    assert CaseRetriever(r.pipeline, top_k=4).top_k == 4  # an explicit top_k still wins


def test_unknown_product_is_refused_with_the_valid_values(corpus_settings):
    from rag.errors import UnknownValueError
    from rag.integrations.llama_index import make_retriever

    with pytest.raises(UnknownValueError, match="valid values: .*CDN"):
        make_retriever(corpus_settings, product="不存在的产品")


def test_query_engine_answers_through_the_configured_llm_and_the_projects_prompt(corpus_settings):
    from rag.integrations.llama_index import DraftQueryEngine, make_query_engine

    s = corpus_settings.updated(llm={"base_url": "http://llm.test/v1", "model": "qwen-test", "api_key": "k",
                                     "retry": {"max_attempts": 1}})
    engine = make_query_engine(s)  # no request yet
    assert isinstance(engine, DraftQueryEngine)
    reply = {"id": "x", "object": "chat.completion", "created": 0, "model": "qwen-test",
             "choices": [{"index": 0, "finish_reason": "stop",
                          "message": {"role": "assistant", "content": "您好，可以在控制台重新申请免费证书：https://portal.qiniu.com/certificate/apply"}}],
             "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}
    with respx.mock() as mock:
        route = mock.post("http://llm.test/v1/chat/completions").mock(return_value=httpx.Response(200, json=reply))
        response = engine.query("证书过期了，怎么重新申请免费证书？")
    assert route.call_count == 1
    sent = json.loads(route.calls[0].request.content)
    assert sent["model"] == "qwen-test" and route.calls[0].request.headers["authorization"] == "Bearer k"
    system, user = (m["content"] for m in sent["messages"])
    assert "七牛" in system and "证书过期了" in user  # the project's prompt files, not llama-index's template
    top = response.source_nodes[0].node
    assert top.metadata["relation"] == "source" and top.metadata["title"] in user
    assert str(response) == "您好，可以在控制台重新申请免费证书：https://portal.qiniu.com/certificate/apply" and response.metadata["action"] == "answer"
    assert response.metadata["backend"] == "llm:qwen-test" and response.metadata["fallback"] is False


def _ticket_set(corpus_settings, n: int):
    from rag.score.labels import load_tickets

    tickets = load_tickets(corpus_settings.evaluation.labels_dir / "new_tickets.jsonl")
    covered = [t for t in tickets if t.covered][: n // 2]
    uncovered = [t for t in tickets if not t.covered][: n - len(covered)]
    return covered + uncovered


def test_the_engine_is_the_projects_drafter_offline(corpus_settings, corpus_pipeline):
    """Without an LLM the engine's reply, action, verdict and cited cases are the project's own draft's."""
    from rag.integrations.llama_index import make_query_engine
    from rag.records import Ticket

    engine = make_query_engine(corpus_settings)
    drafter = corpus_pipeline.make_drafter(offline=True)
    for t in _ticket_set(corpus_settings, 12):
        response = engine.query(t.text)
        draft = drafter.draft(Ticket(t.text))
        assert str(response) == draft.text and response.metadata["action"] == draft.action
        assert response.metadata["verdict"] == draft.verdict and response.metadata["confidence"] == draft.confidence
        ids = [n.node.node_id for n in response.source_nodes]
        relations = [n.node.metadata["relation"] for n in response.source_nodes]
        assert sorted(ids) == sorted(c.case_id for c in draft.citations)  # the sources are the cited cases
        assert relations == sorted(relations, key=lambda r: r != "source")  # what the reply rests on first
        assert response.metadata["sources"] == [c.case_id for c in draft.citations if c.relation == "source"]
        if draft.action != "answer":
            assert "source" not in relations or draft.verdict == "fits"


def test_a_llama_index_llm_is_adapted_and_checked_like_any_model(corpus_settings):
    from llama_index.core.llms import MockLLM

    from rag.integrations.llama_index import LlamaIndexChat, make_query_engine
    from rag.llm.chat import ChatModel

    from llama_index.core.llms import CompletionResponse

    class Replying(MockLLM):  # llama-index's own mock, with a reply a customer could act on
        def complete(self, prompt, formatted=False, **kwargs):
            return CompletionResponse(text="您好，证书过期后可以在控制台的 SSL 证书服务里重新申请免费证书，申请后在域名管理里开启 HTTPS 即可：https://portal.qiniu.com/certificate/apply")

    assert isinstance(LlamaIndexChat(MockLLM()), ChatModel)  # the project's protocol
    response = make_query_engine(corpus_settings, llm=Replying()).query("证书过期了，怎么重新申请免费证书？")
    assert str(response).startswith("您好，证书过期后可以在控制台")  # the words are the LLM's …
    assert response.metadata["action"] == "answer" and response.metadata["backend"] == "llm:unknown"
    assert response.metadata["fallback"] is False
    # … a reply that says nothing ("text text …") is no answer: the offline draft from the case stands in
    empty = make_query_engine(corpus_settings, llm=MockLLM(max_tokens=6)).query("证书过期了，怎么重新申请免费证书？")
    assert empty.metadata["fallback"] is True and "text text" not in str(empty)
    # … but every reply passes the project's checks: MockLLM without max_tokens echoes its prompt, which the
    # output checks refuse, and the engine answers with the offline draft, flagged
    echoed = make_query_engine(corpus_settings, llm=MockLLM()).query("证书过期了，怎么重新申请免费证书？")
    assert echoed.metadata["fallback"] is True and echoed.metadata["backend"] == "offline"
    assert any("system prompt" in n for n in echoed.metadata["notes"]), echoed.metadata["notes"]
    assert "system:" not in str(echoed)
    strict = make_query_engine(corpus_settings, llm=MockLLM(), fallback="none")
    from rag.errors import LLMError

    with pytest.raises(LLMError, match="system prompt"):
        strict.query("证书过期了，怎么重新申请免费证书？")


def test_the_engine_never_answers_where_the_project_defers(corpus_settings, corpus_pipeline):
    """An LLM that claims every ticket is an answer cannot turn the answer policy's deferrals into answers: where
    the policy's verdict is not "fits" (no case fits, vague, off topic, staff, bug report, feature request), the
    engine defers exactly as the project's offline drafter does."""
    from llama_index.core.llms import CompletionResponse, MockLLM

    from rag.integrations.llama_index import make_query_engine
    from rag.records import Ticket

    class Insisting(MockLLM):  # llama-index's own mock, told to always claim an answer
        def complete(self, prompt, formatted=False, **kwargs):
            return CompletionResponse(text="ACTION: answer\n您好，直接在控制台点击重新申请即可，无需其他信息。")

    engine = make_query_engine(corpus_settings, llm=Insisting())
    drafter = corpus_pipeline.make_drafter(offline=True)
    deferred = answered = 0
    for t in _ticket_set(corpus_settings, 24):
        project = drafter.draft(Ticket(t.text))
        response = engine.query(t.text)
        assert response.metadata["verdict"] == project.verdict  # the policy decides before any LLM is asked
        if project.verdict != "fits":
            deferred += 1
            assert project.action != "answer"
            assert response.metadata["action"] == project.action, (t.id, response.metadata)
            # the model did claim an answer, and was overruled (or its reply refused, and the offline draft used)
            assert response.metadata["fallback"] or any(n.startswith("LLM said answer, but no past case fits")
                                                        for n in response.metadata["notes"]), (t.id, response.metadata["notes"])
        else:
            answered += 1
            assert response.metadata["action"] == "answer"
    assert deferred >= 5 and answered >= 3, (deferred, answered)


def test_metadata_filters_map_onto_the_case_filters(corpus_settings, corpus_pipeline):
    from llama_index.core.vector_stores import FilterCondition, FilterOperator, MetadataFilter, MetadataFilters

    from rag.errors import UnsupportedFilterError
    from rag.integrations.llama_index import CaseRetriever, make_query_engine, to_filters
    from rag.retrieve import Filters

    query = "证书过期了，怎么重新申请免费证书？"
    unfiltered = [n.node.node_id for n in CaseRetriever(corpus_pipeline, top_k=3).retrieve(query)]
    filters = MetadataFilters(filters=[
        MetadataFilter(key="product", value="cdn", operator=FilterOperator.EQ),
        MetadataFilter(key="scenarios", value="ssl证书", operator=FilterOperator.CONTAINS),
        MetadataFilter(key="case_id", value=unfiltered[:1], operator=FilterOperator.NIN)])
    assert to_filters(filters, corpus_pipeline) == Filters("CDN", ("SSL证书",), frozenset(unfiltered[:1]))
    nodes = CaseRetriever(corpus_pipeline, top_k=5, filters=filters).retrieve(query)
    assert nodes and unfiltered[0] not in [n.node.node_id for n in nodes]
    assert all(n.node.metadata["product"] == "CDN" and "SSL证书" in n.node.metadata["scenarios"] for n in nodes)
    for bad, why in (
            (MetadataFilters(filters=[MetadataFilter(key="product", value="CDN", operator=FilterOperator.NE)]), "product !="),
            (MetadataFilters(filters=[MetadataFilter(key="title", value="证书", operator=FilterOperator.TEXT_MATCH)]), "title text_match"),
            (MetadataFilters(filters=[MetadataFilter(key="product", value="CDN"), MetadataFilter(key="product", value="对象存储")],
                             condition=FilterCondition.OR), "condition or"),
            (MetadataFilters(filters=[MetadataFilters(filters=[MetadataFilter(key="product", value="CDN")])]), "nested")):
        with pytest.raises(UnsupportedFilterError, match=why):
            CaseRetriever(corpus_pipeline, filters=bad)
    with pytest.raises(UnsupportedFilterError, match="a MetadataFilter product == 'CDN'"):
        CaseRetriever(corpus_pipeline, product="对象存储", filters=MetadataFilters(filters=[MetadataFilter(key="product", value="CDN")]))
    # the engine: the product becomes the ticket's, excluded cases are never cited; a scenario it cannot apply
    engine = make_query_engine(corpus_settings, filters=MetadataFilters(filters=[
        MetadataFilter(key="product", value="CDN"), MetadataFilter(key="case_id", value=unfiltered[0], operator=FilterOperator.NE)]))
    response = engine.query(query)
    assert response.source_nodes and all(n.node.metadata["product"] == "CDN" for n in response.source_nodes)
    assert unfiltered[0] not in [n.node.node_id for n in response.source_nodes]
    with pytest.raises(UnsupportedFilterError, match="scenario filter applies to make_retriever"):
        make_query_engine(corpus_settings, filters=MetadataFilters(filters=[MetadataFilter(key="scenarios", value="SSL证书")]))


def test_aretrieve_and_aquery_leave_the_event_loop_free(corpus_pipeline, corpus_settings, monkeypatch):
    import asyncio
    import time

    from rag.integrations.llama_index import CaseRetriever, make_query_engine

    retriever = CaseRetriever(corpus_pipeline, top_k=3)
    query = "证书过期了，怎么重新申请免费证书？"
    expected = [(n.node.node_id, n.score) for n in retriever.retrieve(query)]
    slow = corpus_pipeline.retriever.retrieve

    def slow_retrieve(*args, **kwargs):
        time.sleep(0.5)  # retrieval's CPU and disk work, made long enough to see
        return slow(*args, **kwargs)

    monkeypatch.setattr(corpus_pipeline.retriever, "retrieve", slow_retrieve)

    async def main():
        ticks = 0
        done = asyncio.Event()

        async def ticker():
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.02)

        task = asyncio.create_task(ticker())
        nodes = await retriever.aretrieve(query)
        done.set()
        await task
        return nodes, ticks

    nodes, ticks = asyncio.run(main())
    assert [(n.node.node_id, n.score) for n in nodes] == expected
    assert ticks >= 10, ticks  # the loop kept running while the case retrieval ran (it used to block it)
    monkeypatch.setattr(corpus_pipeline.retriever, "retrieve", slow)
    engine = make_query_engine(corpus_settings)
    assert str(asyncio.run(engine.aquery(query))) == str(engine.query(query))


def _labelled_queries(corpus_settings):
    from rag.corpus.parse import parse_paths

    files = sorted(GROUPS_DIR.glob("*.json"))
    if not files:
        pytest.skip("no relevance labels in eval/relevance/groups/")
    cases = {c.id: c for c in parse_paths([corpus_settings.ingest.data_dir])[0]}
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
