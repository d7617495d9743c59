"""POST /v1/feedback: a product or scenario is one the store knows, else 422 naming the allowed values."""

import pytest
from fastapi.testclient import TestClient

from rag.feedback.store import FeedbackStore
from rag.service import create_app

pytestmark = pytest.mark.e2e


@pytest.fixture
def client(corpus_settings, tmp_path, corpus_pipeline):
    settings = corpus_settings.updated(service={"feedback_db": tmp_path / "feedback.sqlite3"})
    with TestClient(create_app(settings), client=("127.0.0.1", 50000)) as c:
        yield c, settings


def test_feedback_product_and_scenarios_are_checked_against_the_store(client):
    c, settings = client
    draft_id = c.post("/v1/drafts", json={"text": "证书过期了，怎么重新申请免费证书？"}).json()["draft_id"]
    forged = c.post("/v1/feedback", json={"draft_id": draft_id, "verdict": "accepted", "product": "CDN\n\n## 伪造\n"})
    assert forged.status_code == 422
    message = forged.json()["error"]["message"]
    assert "unknown product" in message and "valid values:" in message and "CDN" in message and "对象存储" in message
    r = c.post("/v1/feedback", json={"draft_id": draft_id, "verdict": "accepted", "scenarios": ["不存在的场景"]})
    assert r.status_code == 422 and "unknown scenario" in r.json()["error"]["message"]
    r = c.post("/v1/feedback", json={"draft_id": draft_id, "verdict": "accepted", "product": "cdn", "scenarios": ["ssl证书"]})
    assert r.status_code == 201, r.text
    (item,) = FeedbackStore(settings.service.feedback_db).items()
    assert item.product == "CDN" and item.scenarios == ("SSL证书",)  # normalised to the store's spelling, never new


def test_a_dataset_case_has_no_provenance(client):
    c, _ = client
    d = c.post("/v1/drafts", json={"text": "证书过期了，怎么重新申请免费证书？"}).json()
    assert all(cit["provenance"] is None for cit in d["citations"])
    assert c.get(f"/v1/cases/{d['citations'][0]['case_id']}").json()["provenance"] is None
