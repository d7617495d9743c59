"""Feedback on a real PostgreSQL server (``RAG_FEEDBACK_URL``): the same behaviour as the SQLite file, versioned
migrations, no lost writes under concurrency or a restart, and one line (password hidden) when it is down.

The server is the session's (``postgres_server``: initdb + pg_ctl in a temporary folder); each test has its own
database. Never a mock."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from rag.cli import app
from rag.errors import FeedbackStoreError
from rag.feedback.export import export_feedback
from rag.feedback.migrations import SchemaBehindError, shipped
from rag.feedback.postgres import PostgresBackend, redact
from rag.feedback.store import FeedbackStore, ReviewError, UnknownDraftError
from rag.records import Draft, Ticket
from rag.service import create_app

pytestmark = pytest.mark.postgres

LOCAL = ("127.0.0.1", 50000)


def _draft(text="您好，可以在控制台申请免费证书。"):
    return Draft(text=text, action="answer", confidence=0.6, citations=(), links=(), backend="offline",
                 prompt_id="offline", prompt_version="offline-1", latency_ms=1.0)


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed once the block ends: nothing listens there


@pytest.fixture
def migrated(postgres_url) -> str:
    with FeedbackStore(PostgresBackend(postgres_url)) as store:
        assert [m.version for m in store.migrate()] == [1]
    return postgres_url


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    """The same FeedbackStore over each backend: what one does, the other must."""
    if request.param == "sqlite":
        s = FeedbackStore(tmp_path / "fb.sqlite3")
    else:
        s = FeedbackStore(PostgresBackend(request.getfixturevalue("migrated"), pool_size=4))
    yield s
    s.close()


def test_both_backends_agree_on_stats_history_review_and_export(store):
    a = store.record_draft(Ticket("证书过期了怎么办", title="证书过期"), _draft(), "CDN", "证书问题")
    b = store.record_draft(Ticket("怎么开发票"), _draft("您好，发票在费用中心申请。"), "账户与财务", "发票问题")
    c = store.record_draft(Ticket("无关"), _draft(), "CDN", "其他类咨询")
    store.add_feedback(a, "edited", "您好，客服改过的草稿：在 SSL 证书页面申请。")
    # a later click without text keeps the agent's text; the corrections are the latest verdict's
    store.add_feedback(a, "accepted", product="CDN", scenarios=("SSL证书",))
    store.add_feedback(b, "accepted")
    store.add_feedback(c, "rejected", reason="答非所问")
    with pytest.raises(UnknownDraftError, match="no draft with id 'missing'"):
        store.add_feedback("missing", "accepted")
    assert store.counts() == (3, 4)
    assert [h["verdict"] for h in store.history(a)] == ["edited", "accepted"]
    assert store.history(a)[0]["created"].endswith("+00:00")
    stats = {s.product: s for s in store.stats()}
    assert (stats["CDN"].drafts, stats["CDN"].feedback, stats["CDN"].accepted, stats["CDN"].rejected) == (2, 2, 1, 1)
    assert 0 < stats["CDN"].mean_edit_distance < 1 and stats["账户与财务"].acceptance_rate == 1.0
    items = store.items()
    assert [i.draft_id for i in items] == [a, b]
    assert items[0].final_text.startswith("您好，客服改过的草稿") and items[0].scenarios == ("SSL证书",)
    assert items[0].verdict == "accepted" and items[0].decision is None
    approved = store.review(items[0].feedback_id, "approved", "lead")
    assert approved.decision == "approved" and approved.reviewer == "lead" and approved.reviewed_at
    store.review(items[1].feedback_id, "rejected", "lead", "太短")
    with pytest.raises(ReviewError):
        store.review(10_000, "approved", "lead")
    result = export_feedback(store, allowlist=())
    assert [c.answer for c in result.cases] == ["您好，客服改过的草稿：在 SSL 证书页面申请。"]
    assert result.rejected == 1 and result.pending == 0


def test_migrations_are_versioned_applied_once_and_never_behind_an_operators_back(postgres_url):
    store = FeedbackStore(PostgresBackend(postgres_url))
    with pytest.raises(SchemaBehindError) as behind:
        store.record_draft(Ticket("t"), _draft(), "CDN", "x")  # a new database is never written unmigrated
    assert "schema version 0" in str(behind.value) and "rag feedback migrate" in str(behind.value)
    assert ":***@" in str(behind.value) and "0001_initial" in str(behind.value)
    assert [m.name for m in store.migrate()] == ["initial"]
    assert store.migrate() == ()
    assert store.check().version == len(shipped("postgres"))
    store.record_draft(Ticket("t"), _draft(), "CDN", "x")  # the same store serves once migrated: no restart
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT version, name FROM schema_migrations").fetchall() == [(1, "initial")]
    store.close()


def test_a_new_migration_file_is_applied_in_order_and_a_failing_one_leaves_nothing(postgres_url, tmp_path):
    folder = tmp_path / "sql"
    folder.mkdir()
    for f in (Path(__file__).parents[1] / "rag" / "feedback" / "sql" / "postgres").glob("*.sql"):
        (folder / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "0002_tags.sql").write_text("ALTER TABLE feedback ADD COLUMN tags text[];\n", encoding="utf-8")
    (folder / "0003_broken.sql").write_text("CREATE TABLE half (x int);\nSELECT no_such_function();\n", encoding="utf-8")
    backend = PostgresBackend(postgres_url, migrations=shipped("postgres", folder))
    with pytest.raises(FeedbackStoreError, match="0003_broken failed") as failed:
        backend.migrate()
    assert "nothing was applied" in str(failed.value) and "\n" not in str(failed.value)
    assert backend.status().version == 0  # one transaction: 0001 and 0002 rolled back with 0003
    (folder / "0003_broken.sql").unlink()
    assert [m.version for m in PostgresBackend(postgres_url, migrations=shipped("postgres", folder)).migrate()] == [1, 2]
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT to_regclass('half')").fetchone() == (None,)
        assert conn.execute("SELECT count(*) FROM information_schema.columns WHERE column_name = 'tags'").fetchone() == (1,)
    (folder / "0005_gap.sql").write_text("SELECT 1;", encoding="utf-8")
    with pytest.raises(FeedbackStoreError, match="without gaps"):
        shipped("postgres", folder)


def test_two_migrates_at_once_apply_each_file_once(postgres_url):
    barrier = threading.Barrier(2)

    def run(_):
        backend = PostgresBackend(postgres_url)
        barrier.wait()
        return [m.version for m in backend.migrate()]

    with ThreadPoolExecutor(2) as pool:
        results = sorted(pool.map(run, range(2)))
    assert results == [[], [1]]


def test_no_lost_writes_from_two_processes_pools_under_concurrency(migrated):
    """Two backends (two replicas' pools) write 400 verdicts at once: every id is distinct and every one is stored."""
    replicas = [FeedbackStore(PostgresBackend(migrated, pool_size=4)) for _ in range(2)]
    drafts = [replicas[i % 2].record_draft(Ticket(f"问题{i}"), _draft(), "CDN", "证书问题") for i in range(20)]

    def work(n):  # a verdict on a draft the other replica recorded
        return replicas[(n + 1) % 2].add_feedback(drafts[n % 20], "accepted" if n % 2 else "rejected", reason="x")

    with ThreadPoolExecutor(max_workers=16) as pool:
        ids = list(pool.map(work, range(400)))
    assert len(set(ids)) == 400
    assert replicas[0].counts() == (20, 400)
    with psycopg.connect(migrated) as conn:
        assert {i for (i,) in conn.execute("SELECT id FROM feedback")} == set(ids)
    for r in replicas:
        r.close()


def test_a_restart_of_postgresql_fails_writes_it_cannot_commit_and_loses_none_it_acknowledged(migrated, postgres_server):
    store = FeedbackStore(PostgresBackend(migrated, pool_size=2, timeout=1.0))
    d = store.record_draft(Ticket("证书"), _draft(), "CDN", "证书问题")
    acknowledged = [store.add_feedback(d, "accepted")]
    postgres_server.stop()
    try:
        with pytest.raises(FeedbackStoreError) as down:
            store.add_feedback(d, "rejected", reason="down")
        assert redact(migrated) in str(down.value) and postgres_server.password not in str(down.value)
    finally:
        postgres_server.start()
    acknowledged.append(store.add_feedback(d, "edited", "您好，重启后。"))  # the pool replaced its broken connections
    with psycopg.connect(migrated) as conn:
        stored = [(i, v) for i, v in conn.execute("SELECT id, verdict FROM feedback ORDER BY id")]
    assert [i for i, _ in stored] == acknowledged and "rejected" not in {v for _, v in stored}
    store.close()


def test_redact_hides_the_password_wherever_it_is():
    assert redact("postgresql://rag:s3cr%40t@db:5432/rag") == "postgresql://rag:***@db:5432/rag"
    assert redact("postgresql://db/rag?user=rag&password=s3cret&sslmode=require") == \
        "postgresql://db/rag?user=rag&password=***&sslmode=require"
    assert redact("postgresql://rag@db/rag") == "postgresql://rag@db/rag"


@pytest.mark.usefixtures("cli_env")
def test_cli_with_postgresql_down_is_one_line_exit_2_with_the_password_hidden(monkeypatch):
    url = f"postgresql://rag:hunter2secret@127.0.0.1:{_closed_port()}/rag"
    monkeypatch.setenv("RAG_FEEDBACK_URL", url)
    monkeypatch.setenv("RAG_FEEDBACK_TIMEOUT", "2")
    for args in (["feedback", "stats"], ["feedback", "migrate"], ["feedback", "review"]):
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 2, (args, r.output)
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: feedback database postgresql://rag:***@127.0.0.1:")
        assert "unreachable" in lines[0] and "hunter2secret" not in r.output and "Traceback" not in r.output


@pytest.mark.usefixtures("cli_env")
def test_cli_migrate_then_review_round_trip(postgres_url, monkeypatch):
    monkeypatch.setenv("RAG_FEEDBACK_URL", postgres_url)
    r = CliRunner().invoke(app, ["feedback", "stats"])
    assert r.exit_code == 2 and "run `rag feedback migrate`" in r.output  # refused before the schema exists
    r = CliRunner().invoke(app, ["feedback", "migrate"])
    assert r.exit_code == 0 and "applied 0001_initial; at schema version 1" in r.output, r.output
    assert "nothing to apply; at schema version 1" in CliRunner().invoke(app, ["feedback", "migrate"]).output
    with FeedbackStore(PostgresBackend(postgres_url)) as store:
        store.add_feedback(store.record_draft(Ticket("证书过期"), _draft(), "CDN", "证书问题"), "accepted")
        (item,) = store.items()
    r = CliRunner().invoke(app, ["feedback", "approve", str(item.feedback_id), "--by", "lead"])
    assert r.exit_code == 0 and f"feedback {item.feedback_id} approved by lead" in r.output
    r = CliRunner().invoke(app, ["feedback", "stats"])
    assert r.exit_code == 0 and "1 drafts, 1 feedback entries" in r.output


def test_a_bad_feedback_url_is_one_line_naming_the_variable(monkeypatch, cli_env):
    monkeypatch.setenv("RAG_FEEDBACK_URL", "mysql://rag:pw@db/rag")
    r = CliRunner().invoke(app, ["feedback", "stats"])
    assert r.exit_code == 2 and "RAG_FEEDBACK_URL" in r.output and "pw@" not in r.output


@pytest.mark.usefixtures("without_index_probe")
def test_rag_serve_refuses_a_database_behind_its_migrations(postgres_url, monkeypatch, cli_env):
    monkeypatch.setenv("RAG_FEEDBACK_URL", postgres_url)
    r = CliRunner().invoke(app, ["serve", "--port", "1"])  # refused before anything is ingested or bound
    assert r.exit_code == 2 and "run `rag feedback migrate`" in r.output and ":***@" in r.output


@pytest.mark.usefixtures("without_index_probe")
def test_the_service_answers_503_while_postgresql_is_down_and_serves_again_once_it_is_back(
        make_settings, dataset, migrated, postgres_server):
    settings = make_settings(ingest={"data_dir": dataset},
                             service={"feedback_url": migrated, "feedback_timeout": 1.0})
    with TestClient(create_app(settings), client=LOCAL) as c:
        draft = c.post("/v1/drafts", json={"text": "证书过期了怎么续"})
        assert draft.status_code == 200, draft.text
        draft_id = draft.json()["draft_id"]
        assert c.post("/v1/feedback", json={"draft_id": draft_id, "verdict": "accepted"}).status_code == 201
        postgres_server.stop()
        try:
            for path, body in (("/v1/feedback", {"draft_id": draft_id, "verdict": "rejected", "reason": "x"}),
                               ("/v1/drafts", {"text": "证书过期了怎么续"})):
                r = c.post(path, json=body)
                assert r.status_code == 503, (path, r.text)
                message = r.json()["error"]["message"]
                assert message.startswith("feedback database postgresql://rag:***@127.0.0.1:") and "\n" not in message
                assert postgres_server.password not in r.text and r.headers["retry-after"]
            assert c.get("/healthz").status_code == 200  # the store is fine: only what needs feedback waits
        finally:
            postgres_server.start()
        assert c.post("/v1/feedback", json={"draft_id": draft_id, "verdict": "edited",
                                            "final_text": "您好，改过的。"}).status_code == 201
    with psycopg.connect(migrated) as conn:
        assert [v for (v,) in conn.execute("SELECT verdict FROM feedback ORDER BY id")] == ["accepted", "edited"]


def test_a_nul_character_is_cleaned_above_the_backend_not_refused_by_postgresql(store):
    """PostgreSQL's text cannot hold NUL (psycopg refuses it: a 500 before); the store's input cleaning, above the
    backend protocol, removes control characters for both databases alike."""
    d = store.record_draft(Ticket("证书\x00过期", title="t\x00"), _draft("您好\x00，续费即可。"), "CDN", "证书问题")
    store.add_feedback(d, "edited", "您好\x00，改过的。", reason="r\x00")
    (item,) = store.items()
    assert (item.ticket, item.title, item.draft_text, item.final_text) == ("证书过期", "t", "您好，续费即可。", "您好，改过的。")
