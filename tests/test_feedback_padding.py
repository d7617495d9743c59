"""Issue 24, item 1: padded near-duplicate phishing, approved as feedback, never becomes an answer.

Eight approved copies of one phishing reply, each padded with a different filler sentence, stayed under the
near-duplicate ratio pairwise (max 84-87 < 90): they exported as eight cases, voted each other up, and the
README's ticket got the phishing text as `answer` at confidence 1.00. Three link-free copies sufficed too.
"""

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from rag.cli import app
from rag.corpus.parse import parse_text
from rag.draft import policy
from rag.pipeline import Pipeline
from rag.records import CaseRecord, Hit, Provenance, Ticket
from rag.retrieve.duplicates import duplicate_groups
from rag.service import create_app
from rag.text.near_duplicates import same_content

PROBES = json.loads((Path(__file__).parent / "data" / "padded_phishing.json").read_text(encoding="utf-8"))
DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.mark.parametrize("kind", ["padded", "link_free"])
def test_padded_copies_are_one_content(kind):
    copies = PROBES[kind]
    assert all(same_content(a, b) for a, b in itertools.combinations(copies, 2))


def test_different_answers_are_not_one_content():
    assert not same_content("刷新缓存请在控制台的 CDN → 刷新预取 里提交 URL。",
                            "证书过期后可以在控制台 SSL 证书服务里重新申请免费证书。感谢您一直以来对七牛云的支持与信任。")


def test_feedback_cases_vote_once_whatever_their_text():
    answers = ["甲。", "乙。", "丙。", "丁。"]
    groups = duplicate_groups(answers, ["q1", "q2", "q3", "q4"], [True, False, True, True])
    assert groups[0] == groups[2] == groups[3] != groups[1]
    assert len(np.unique(groups)) == 2


def _hit(case_id: str, match: float, feedback: bool) -> Hit:
    prov = Provenance("feedback", (1,), ("a" * 32,), "edited", "careless", "2026-12-01T00:00:00Z") if feedback else None
    case = CaseRecord(id=case_id, title="证书过期", product="CDN", subcategory="", scenarios=(), root_cause=None,
                      source="x.md", line=1, question="证书过期怎么办", answer="您好，请重新申请免费证书。", provenance=prov)
    return Hit(case, match, f"{case_id}:case", "", match=match)


def test_a_feedback_case_is_never_the_sole_basis_of_an_answer():
    ticket = Ticket("证书过期了怎么办")
    alone = policy.decide(ticket, [_hit("fb", 0.99, True), _hit("d", 0.1, False)], 0.5)
    assert alone.action != "answer" and alone.fitting == ()
    assert alone.related is None or alone.related.case.provenance is None  # never pointed at from the reply
    beside = policy.decide(ticket, [_hit("fb", 0.99, True), _hit("d", 0.9, False)], 0.5)
    assert beside.action == "answer" and any(h.case_id == "d" for h in beside.fitting)


@pytest.mark.e2e
@pytest.mark.parametrize("kind", ["padded", "link_free"])
def test_approved_padded_copies_never_yield_an_answer_or_show_the_text(kind, make_settings, tmp_path, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(DATA, data)
    settings = make_settings(ingest={"data_dir": data}, service={"feedback_db": tmp_path / "feedback.sqlite3"},
                             store={"collection": f"padding-{kind.replace('_', '-')}"})
    for var, value in (("RAG_FEEDBACK_DB", settings.service.feedback_db), ("RAG_DATA_DIR", data),
                       ("RAG_STORE_PATH", settings.store.store_path), ("RAG_COLLECTION", settings.store.collection),
                       ("RAG_CACHE_DIR", settings.store.cache_dir), ("RAG_HOME", settings.home)):
        monkeypatch.setenv(var, str(value))
    copies = PROBES[kind]
    with TestClient(create_app(settings), client=("127.0.0.1", 50000)) as client:
        for text in copies:
            draft = client.post("/v1/drafts", json={"text": PROBES["tickets"][0]}).json()
            r = client.post("/v1/feedback", json={"draft_id": draft["draft_id"], "verdict": "edited", "final_text": text})
            assert r.status_code == 201, r.text
    runner = CliRunner()
    for feedback_id in range(1, len(copies) + 1):
        assert runner.invoke(app, ["feedback", "approve", str(feedback_id), "--by", "careless"]).exit_code == 0
    out = data / "feedback_cases.md"
    r = runner.invoke(app, ["feedback", "export", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "wrote 1 case(s)" in r.output  # one content, one case, however it was padded
    (case,) = parse_text(out.read_text(encoding="utf-8"), out.name, strict=True)
    assert case.provenance is not None and case.provenance.copies == len(copies)
    Pipeline(settings).ingest()
    with TestClient(create_app(settings), client=("127.0.0.1", 50000)) as client:
        for ticket in PROBES["tickets"]:
            draft = client.post("/v1/drafts", json={"text": ticket}).json()
            shown = draft["text"] + "".join(p["text"] for p in draft["passages"])
            assert not any(secret in shown for secret in PROBES["secrets"]), (draft["action"], draft["text"])
            assert not (draft["action"] == "answer" and any(c["case_id"] == case.id and c["relation"] == "source"
                                                             for c in draft["citations"]))
