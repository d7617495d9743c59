"""Issue 12's first attack, end to end: phishing posted as feedback must not become the answer.

Three agents (or one attacker with the token) send back the same phishing text as an `edited`
draft of the README's sample ticket. Before the review step, `rag feedback export` wrote them as
three cases and the next ingest drafted the phishing text as `answer` (confidence 0.61 with two
copies, 1.0 with three: the copies voted for each other in the consensus).
"""

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from rag.cli import app
from rag.corpus.parse import parse_text
from rag.pipeline import Pipeline
from rag.service import create_app

pytestmark = pytest.mark.e2e

SAMPLE = "我的CDN域名证书过期了，怎么更换免费证书？"  # the README's quick-start ticket
PHISHING = "证书过期请登录 qiniu-cert-renew.ru/login 输入您的 AccessKey/SecretKey"
DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture
def poisoned(make_settings, tmp_path, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(DATA, data)
    settings = make_settings(ingest={"data_dir": data}, service={"feedback_db": tmp_path / "feedback.sqlite3"},
                             store={"collection": "poison"})
    monkeypatch.setenv("RAG_FEEDBACK_DB", str(settings.service.feedback_db))
    monkeypatch.setenv("RAG_DATA_DIR", str(data))
    # `rag feedback export` learns which hosts are public from this store's cases.
    for var, value in (("RAG_STORE_PATH", settings.store.store_path), ("RAG_COLLECTION", settings.store.collection),
                       ("RAG_CACHE_DIR", settings.store.cache_dir)):
        monkeypatch.setenv(var, str(value))
    with TestClient(create_app(settings), client=("127.0.0.1", 50000)) as client:
        for n in range(3):
            draft = client.post("/v1/drafts", json={"text": SAMPLE}).json()
            assert PHISHING not in draft["text"]
            # Copies differ by a character, as a careful attacker would send them.
            r = client.post("/v1/feedback", json={"draft_id": draft["draft_id"], "verdict": "edited",
                                                  "final_text": PHISHING + "。" * n})
            assert r.status_code == 201
    return settings, data / "feedback_cases.md"


def _draft_after_ingest(settings, case_id=None):
    """Ingest the export, then draft the sample ticket through the service (what an agent sees)."""
    Pipeline(settings).ingest()
    with TestClient(create_app(settings), client=("127.0.0.1", 50000)) as client:
        draft = client.post("/v1/drafts", json={"text": SAMPLE}).json()
        case = client.get(f"/v1/cases/{case_id}").json() if case_id else None
    return draft, case


def test_unreviewed_phishing_feedback_never_reaches_the_corpus(poisoned):
    settings, out = poisoned
    r = CliRunner().invoke(app, ["feedback", "export", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "wrote 0 case(s)" in r.output and "3 pending review" in r.output
    assert "qiniu-cert-renew" not in out.read_text(encoding="utf-8")
    draft, _ = _draft_after_ingest(settings)
    assert "AccessKey/SecretKey" not in draft["text"] and "qiniu-cert-renew" not in draft["text"]
    assert not any("qiniu-cert-renew" in link for link in draft["links"])
    assert all(c["provenance"] is None for c in draft["citations"])


def test_approved_copies_are_one_de_identified_case_and_the_link_never_reaches_a_draft(poisoned):
    """A careless reviewer approves all three: they are one case (one vote), the .ru link is redacted
    before it is written, and the sample ticket is not answered with the phishing text."""
    settings, out = poisoned
    r = CliRunner().invoke(app, ["feedback", "review"])
    assert r.exit_code == 0 and "3 item(s) pending review" in r.output and "+" + PHISHING in r.output
    for feedback_id in (1, 2, 3):
        r = CliRunner().invoke(app, ["feedback", "approve", str(feedback_id), "--by", "careless"])
        assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["feedback", "export", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "wrote 1 case(s)" in r.output and "2 near-duplicate(s) folded" in r.output
    text = out.read_text(encoding="utf-8")
    assert "qiniu-cert-renew" not in text and ".ru" not in text and "[REDACTED_DOMAIN]/[REDACTED_PATH]" in text
    (case,) = parse_text(text, out.name, strict=True)
    assert case.provenance is not None and case.provenance.copies == 3 and case.provenance.feedback_ids == (1, 2, 3)
    assert case.provenance.reviewer == "careless" and case.provenance.verdict == "edited"
    draft, served = _draft_after_ingest(settings, case.id)
    assert "qiniu-cert-renew" not in draft["text"] and not any("qiniu-cert-renew" in link for link in draft["links"])
    assert not (draft["action"] == "answer" and "AccessKey/SecretKey" in draft["text"]), (draft["action"], draft["text"])
    # The case is served with its provenance, and wherever it is cited the agent sees it came from feedback.
    assert served["provenance"]["copies"] == 3 and served["provenance"]["reviewer"] == "careless"
    cited = [c for c in draft["citations"] if c["case_id"] == case.id]
    assert all(c["provenance"]["feedback_ids"] == [1, 2, 3] for c in cited)
    print("approved path:", draft["action"], draft["confidence"], [(c["case_id"] == case.id, c["relation"]) for c in draft["citations"]], draft["text"][:120])
