"""The HTTP API through FastAPI's TestClient (in-process, loopback client address)."""

import httpx
import pytest
import respx
from fastapi.testclient import TestClient

from rag.service import create_app

pytestmark = pytest.mark.e2e

LOCAL = ("127.0.0.1", 50000)


@pytest.fixture
def service_settings(corpus_settings, tmp_path):
    return corpus_settings.updated(feedback_db=tmp_path / "feedback.sqlite3")


@pytest.fixture
def client(service_settings):
    with TestClient(create_app(service_settings), client=LOCAL) as c:
        yield c


def test_health_and_openapi(client):
    h = client.get("/healthz").json()
    assert h["status"] == "ok" and h["cases"] == 114 and h["backend"] == "offline" and "CDN" in h["products"]
    spec = client.get("/openapi.json").json()
    assert {"/v1/drafts", "/v1/cases/{case_id}", "/v1/feedback", "/healthz"} <= set(spec["paths"])


def test_draft_case_feedback_round_trip(client):
    r = client.post("/v1/drafts", json={"text": "证书过期了，怎么重新申请免费证书？", "product": "CDN"})
    assert r.status_code == 200
    d = r.json()
    assert d["text"].startswith("您好") and d["action"] in ("answer", "ask_for_info", "escalate")
    assert d["citations"] and len(d["draft_id"]) == 32 and d["fallback"] is False
    case = client.get(f"/v1/cases/{d['citations'][0]['case_id']}").json()
    assert case["title"] == d["citations"][0]["title"] and case["answer"] and case["source"].endswith(".md")
    fb = client.post("/v1/feedback", json={"draft_id": d["draft_id"], "verdict": "edited", "final_text": d["text"] + "\n祝好"})
    assert fb.status_code == 201 and fb.json()["verdict"] == "edited"


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"text": ""}, 422, "text: the ticket is empty"),
        ({"text": "   "}, 422, "empty"),
        ({"text": 123}, 422, "text: Input should be a valid string"),
        ({"ticket": "x"}, 422, "text: Field required"),
        ({"text": "证书", "k": 0}, 422, "k: Input should be greater than or equal to 1"),
        ({"text": "证" * 9000}, 413, "limit is 8000"),
        ({"text": "证书", "history": [{"role": "boss", "text": "x"}]}, 422, "history.0.role"),
    ],
)
def test_bad_draft_requests(client, body, status, message):
    r = client.post("/v1/drafts", json=body)
    assert r.status_code == status
    assert message in r.json()["error"]["message"]


def test_bad_feedback_and_unknown_ids(client):
    assert client.get("/v1/cases/does-not-exist").status_code == 404
    r = client.post("/v1/feedback", json={"draft_id": "nope", "verdict": "accepted"})
    assert r.status_code == 404 and "no draft" in r.json()["error"]["message"]
    r = client.post("/v1/feedback", json={"draft_id": "x", "verdict": "edited"})
    assert r.status_code == 422 and "needs final_text" in r.json()["error"]["message"]
    r = client.post("/v1/feedback", json={"draft_id": "x", "verdict": "rejected"})
    assert r.status_code == 422 and "needs a reason" in r.json()["error"]["message"]
    r = client.post("/v1/feedback", json={"draft_id": "x", "verdict": "maybe"})
    assert r.status_code == 422 and "verdict" in r.json()["error"]["message"]
    r = client.post("/v1/drafts", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422


def test_loopback_only_without_a_token(service_settings):
    with TestClient(create_app(service_settings), client=("10.1.2.3", 5000)) as remote:
        r = remote.post("/v1/drafts", json={"text": "证书"})
        assert r.status_code == 403 and "loopback" in r.json()["error"]["message"]
        assert remote.get("/healthz").status_code == 200


def test_bearer_token_when_configured(service_settings):
    s = service_settings.updated(service_token="s3cret")
    with TestClient(create_app(s), client=("10.1.2.3", 5000)) as c:
        assert c.post("/v1/drafts", json={"text": "证书"}).status_code == 401
        assert c.post("/v1/drafts", json={"text": "证书"}, headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = c.post("/v1/drafts", json={"text": "证书过期"}, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200


def test_llm_failure_falls_back_to_offline(service_settings):
    s = service_settings.updated(llm_base_url="http://llm.test/v1", llm_model="m", llm_max_attempts=2,
                                 llm_backoff_initial=0.01, llm_backoff_max=0.02)
    with respx.mock() as mock:
        route = mock.post("http://llm.test/v1/chat/completions").mock(return_value=httpx.Response(502, text="bad gateway"))
        with TestClient(create_app(s, http_client=httpx.Client()), client=LOCAL) as c:
            d = c.post("/v1/drafts", json={"text": "证书过期了，怎么重新申请免费证书？"}).json()
    assert route.call_count == 2
    assert d["fallback"] is True and d["backend"] == "offline" and d["text"].startswith("您好")
    assert c.get  # the service stayed up for the request
