"""Feedback review, de-identification, provenance and near-duplicate collapse (issue 12)."""

import shutil
import sqlite3
from contextlib import closing

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from typer.testing import CliRunner

from rag.store.cases import decode_chunk, encode_chunk
from rag.corpus.chunk import chunk_case
from rag.cli import app
from rag.corpus.format import write_cases
from rag.corpus.deidentify import deidentify
from rag.feedback.store import FeedbackStore, ReviewError
from rag.feedback.export import corpus_identifiers, export_feedback
from rag.feedback.review import pending
from rag.text.identifiers import CorpusIdentifiers, find_identifiers
from rag.text.normalise import normalise
from rag.corpus.parse import parse_paths, parse_text
from rag.records import Case, Draft, Provenance, Ticket, Turn
from rag.configs import DEFAULT_LINK_ALLOWLIST

DRAFT = "您好，可以在控制台申请免费证书。"


def _draft(text=DRAFT):
    return Draft(text=text, action="answer", confidence=0.6, citations=(), links=(), backend="offline",
                 prompt_id="offline", prompt_version="offline-1", latency_ms=1.0)


def _store(tmp_path, finals):
    store = FeedbackStore(tmp_path / "fb.sqlite3")
    for n, final in enumerate(finals):
        d = store.record_draft(Ticket(f"证书过期了怎么办{n}", title=f"证书{n}"), _draft(), "CDN", "证书问题")
        store.add_feedback(d, "edited" if final else "accepted", final)
    return store


def _cli(tmp_path, monkeypatch, *args):
    monkeypatch.setenv("RAG_FEEDBACK_DB", str(tmp_path / "fb.sqlite3"))
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "no-data"))
    return CliRunner().invoke(app, ["feedback", *args])


@pytest.mark.usefixtures("cli_env", "without_index_probe")
def test_review_lists_pending_items_with_their_diff_and_export_takes_only_approved(tmp_path, monkeypatch, dataset):
    assert CliRunner().invoke(app, ["ingest", str(dataset)]).exit_code == 0  # the export learns from the store
    _store(tmp_path, ["您好，可以在 SSL 证书页面申请免费证书。", None, "您好，请续费。"])
    r = _cli(tmp_path, monkeypatch, "review")
    assert r.exit_code == 0, r.output
    assert "3 item(s) pending review" in r.output
    assert f"-{DRAFT}" in r.output and "+您好，可以在 SSL 证书页面申请免费证书。" in r.output
    assert "(accepted as drafted)" in r.output  # item 2: no edit, the text is shown
    assert _cli(tmp_path, monkeypatch, "approve", "1", "--by", "lead").exit_code == 0
    r = _cli(tmp_path, monkeypatch, "reject", "3", "--reason", "答非所问", "--by", "lead")
    assert r.exit_code == 0 and "rejected by lead" in r.output
    r = _cli(tmp_path, monkeypatch, "review", "--json")
    assert [i["feedback_id"] for i in __import__("json").loads(r.output)] == [2]
    out = tmp_path / "out.md"
    r = _cli(tmp_path, monkeypatch, "export", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert "wrote 1 case(s)" in r.output and "1 pending review" in r.output and "1 rejected by a reviewer" in r.output
    (case,) = parse_text(out.read_text(encoding="utf-8"), out.name, strict=True)
    assert case.answer == "您好，可以在 SSL 证书页面申请免费证书。" and case.provenance.reviewer == "lead"


def test_review_refuses_what_it_cannot_review(tmp_path, monkeypatch):
    store = _store(tmp_path, ["您好，请续费。"])
    r = _cli(tmp_path, monkeypatch, "approve", "99")
    assert r.exit_code == 2 and "feedback 99 is not an item to review" in r.output
    r = _cli(tmp_path, monkeypatch, "reject", "1", "--reason", "  ")
    assert r.exit_code == 2 and "--reason" in r.output
    r = _cli(tmp_path, monkeypatch, "approve", "1", "--by", "a b; reviewed=x")
    assert r.exit_code == 2 and "not a reviewer name" in r.output
    assert pending(store)[0].item.feedback_id == 1


def test_an_edit_after_approval_is_a_new_item_pending_again(tmp_path):
    store = _store(tmp_path, ["您好，请续费。"])
    store.review(1, "approved", "lead")
    assert export_feedback(store, allowlist=()).cases[0].answer == "您好，请续费。"
    store.add_feedback(store.items()[0].draft_id, "edited", "您好，请续费后重新上传证书。")
    (item,) = store.items()
    assert item.feedback_id == 2 and item.decision is None  # approval covered exactly the old text
    result = export_feedback(store, allowlist=())
    assert result.cases == () and result.pending == 1
    with pytest.raises(ReviewError):
        store.review(1, "approved", "lead")


def test_a_database_from_before_the_review_step_opens_with_its_data(tmp_path):
    path = tmp_path / "old.sqlite3"
    old_schema = """
    CREATE TABLE drafts (id TEXT PRIMARY KEY, created TEXT NOT NULL, product TEXT NOT NULL, subcategory TEXT NOT NULL,
        title TEXT NOT NULL, ticket TEXT NOT NULL, draft_text TEXT NOT NULL, draft_json TEXT NOT NULL);
    CREATE TABLE feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, draft_id TEXT NOT NULL REFERENCES drafts(id),
        created TEXT NOT NULL, verdict TEXT NOT NULL CHECK (verdict IN ('accepted', 'edited', 'rejected')),
        final_text TEXT, reason TEXT);
    INSERT INTO drafts VALUES ('abc', '2026-01-01T00:00:00+00:00', 'CDN', '证书问题', 't', '证书过期', '草稿', '{}');
    INSERT INTO feedback (draft_id, created, verdict, final_text, reason) VALUES ('abc', '2026-01-01T00:00:01+00:00', 'edited', '您好，改过的。', NULL);
    """
    with closing(sqlite3.connect(path)) as db:
        db.executescript(old_schema)
    store = FeedbackStore(path)
    assert store.counts() == (1, 1)
    (item,) = store.items()
    assert (item.draft_id, item.final_text, item.product, item.decision) == ("abc", "您好，改过的。", "CDN", None)
    store.review(item.feedback_id, "approved", "lead")
    assert export_feedback(store, allowlist=()).cases[0].answer == "您好，改过的。"
    FeedbackStore(path)  # opening again migrates nothing twice
    assert store.counts() == (1, 1)


def test_export_de_identifies_with_the_dataset_tokens_and_keeps_public_links(tmp_path):
    final = ("王先生您好，同事张伟反馈说已联系 138-1234-5678 和 zhang.wei@example.de，贵司域名 shop.mueller.de 与 "
             "https://cdn.mueller.de/a/b.png 已处理；空间名：mueller-assets，AK 0123456789abcdef0123abcd，"
             "订单号 202311261234567，来源 IP 8.8.8.8 与 10.0.0.1。文档：https://developer.qiniu.com/fusion/kb/1322")
    store = _store(tmp_path, [final])
    store.review(1, "approved", "lead")
    text = export_feedback(store, allowlist=DEFAULT_LINK_ALLOWLIST).text
    for secret in ("王先生", "张伟", "1234-5678", "zhang.wei", "mueller", "0123456789abcdef", "202311261234567", "8.8.8.8", "10.0.0.1"):
        assert secret not in text, secret
    for token in ("[REDACTED_NAME]先生", "[REDACTED_PHONE]", "[REDACTED_EMAIL]", "[REDACTED_DOMAIN]",
                  "[REDACTED_DOMAIN]/[REDACTED_PATH]", "[REDACTED_BUCKET]", "[REDACTED_KEY]", "[REDACTED_ID]",
                  "[REDACTED_IP]", "[REDACTED_PRIVATE_IP]"):
        assert token in text, token
    assert "https://developer.qiniu.com/fusion/kb/1322" in text


def _dataset_case(title: str, answer: str, provenance: Provenance | None = None) -> Case:
    return Case(id="", title=title, product="CDN", subcategory="证书问题", scenarios=("CDN",), question=title,
                turns=(Turn("customer", title), Turn("agent", answer)), root_cause=None, source="", line=0,
                provenance=provenance)


@pytest.mark.usefixtures("cli_env", "without_index_probe")
def test_export_learns_public_hosts_from_the_stores_dataset_cases(tmp_path, monkeypatch):
    """partner-cdn.com is linked by two dataset cases: public, its host stays. other-vendor.com by one dataset
    case and one ingested feedback case: feedback gets no say, so it is one customer's and goes. The data
    folder is gone by export time: what counts is what the store holds."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "part1.md").write_text(write_cases([
        _dataset_case("证书怎么申请", "您好，请看 https://help.partner-cdn.com/guide/a"),
        _dataset_case("证书怎么续期", "您好，请看 https://help.partner-cdn.com/guide/b"),
        _dataset_case("证书怎么购买", "您好，请看 https://shop.other-vendor.com/x"),
    ], heading="数据集"), encoding="utf-8")
    (data / "feedback_cases.md").write_text(write_cases([_dataset_case(
        "证书怎么下载", "您好，请看 https://shop.other-vendor.com/y",
        Provenance(origin="feedback", feedback_ids=(7,), draft_ids=("d7",), verdict="edited", reviewer="lead",
                   reviewed_at="2026-11-26T00:00:00"))], heading="反馈"), encoding="utf-8")
    r = CliRunner().invoke(app, ["ingest", str(data)])
    assert r.exit_code == 0 and "skipped\t0" in r.output, r.output
    shutil.rmtree(data)
    _store(tmp_path, ["您好，请参考 https://help.partner-cdn.com/guide/c 和 https://shop.other-vendor.com/z"])
    assert _cli(tmp_path, monkeypatch, "approve", "1", "--by", "lead").exit_code == 0
    out = tmp_path / "out.md"
    r = _cli(tmp_path, monkeypatch, "export", "--out", str(out))
    assert r.exit_code == 0 and "wrote 1 case(s)" in r.output, r.output
    (case,) = parse_text(out.read_text(encoding="utf-8"), out.name, strict=True)
    assert "https://help.partner-cdn.com/[REDACTED_PATH]" in case.answer
    assert "other-vendor" not in case.answer and "[REDACTED_DOMAIN]" in case.answer


@pytest.mark.usefixtures("cli_env")
def test_export_without_a_store_says_what_to_run(tmp_path, monkeypatch):
    _store(tmp_path, ["您好，请续费。"])
    assert _cli(tmp_path, monkeypatch, "approve", "1", "--by", "lead").exit_code == 0
    out = tmp_path / "out.md"
    r = _cli(tmp_path, monkeypatch, "export", "--out", str(out))
    assert r.exit_code == 2 and "run `rag ingest` first" in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1 and not out.exists()


def test_hosts_public_across_the_corpus_stay_but_their_paths_go():
    cases, _ = parse_paths(["data"])
    corpus = corpus_identifiers(cases)
    assert corpus.public_host("github.com")  # agents link it in several cases
    out = deidentify("参考 https://github.com/someone/private-repo 和 github.com", allowlist=DEFAULT_LINK_ALLOWLIST, corpus=corpus)
    assert out.text == "参考 https://github.com/[REDACTED_PATH] 和 github.com"


_LABEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=3, max_size=12).filter(
    lambda s: s[0].isalpha() and "qiniu" not in s)
_TLD = st.sampled_from(["de", "ru", "com", "cn", "io", "co.uk", "net", "example", "com.cn"])
_DOMAIN = st.builds(lambda a, b, t: f"{a}.{b}.{t}", _LABEL, _LABEL, _TLD) | st.builds(lambda a, t: f"{a}.{t}", _LABEL, _TLD)
_DIGITS = st.text(alphabet="0123456789", min_size=8, max_size=8)
_PHONE = st.builds(lambda p, d, f: f.format(p=p, a=d[:4], b=d[4:]), st.sampled_from(["138", "159", "186", "177"]), _DIGITS,
                   st.sampled_from(["{p}{a}{b}", "{p}-{a}-{b}", "{p} {a} {b}", "+86 {p} {a} {b}", "+86-{p}-{a}-{b}",
                                    "{p}.{a}.{b}", "(+86) {p}{a}{b}"]))
_EMAIL = st.builds(lambda u, d: f"{u}@{d}", _LABEL, _DOMAIN)
_OBFUSCATE = st.sampled_from([lambda s: s, lambda s: s.replace(".", "。"), lambda s: s.upper(),
                              lambda s: "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in s),  # full width
                              lambda s: s.replace(".", "\u200b."), lambda s: f"https://{s}/login" if "@" not in s and any(c.isalpha() for c in s) else s])
_FILLER = st.sampled_from(["您好，", "请联系", "已处理", "谢谢", "客户的", "\n", "：", "。"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_FILLER, st.one_of(_PHONE, _EMAIL, _DOMAIN), _OBFUSCATE), min_size=1, max_size=6))
def test_no_phone_email_or_customer_domain_survives_export(parts):
    text = "".join(f"{filler} {obfuscate(value)} " for filler, value, obfuscate in parts)
    out = deidentify(text, allowlist=DEFAULT_LINK_ALLOWLIST, corpus=CorpusIdentifiers()).text
    view = normalise(out).lower()
    for _, value, _ in parts:
        assert value.lower() not in view
        digits = "".join(c for c in value if c.isdigit())
        if "@" not in value and "." not in value:  # a phone: no run of its digits survives either
            assert digits[-8:] not in "".join(c for c in view if c.isdigit())
    assert not [f for f in find_identifiers(normalise(out), DEFAULT_LINK_ALLOWLIST) if f.kind in ("phone", "email", "domain")]


def test_provenance_reaches_chunk_metadata_and_the_api_models(tmp_path):
    from rag.service.schemas import ProvenanceOut

    store = _store(tmp_path, ["您好，请续费。"])
    store.review(1, "approved", "lead")
    (case,) = export_feedback(store, allowlist=()).cases
    meta = encode_chunk(chunk_case(case)[0])
    stored = decode_chunk("x:case", "", meta).case
    assert stored is not None and stored.provenance == case.provenance  # what Chroma keeps reads back exactly
    out = ProvenanceOut.of(stored.provenance)
    assert out is not None and out.feedback_ids == [1] and out.reviewer == "lead" and out.copies == 1
    assert out.draft_ids == [store.items()[0].draft_id] and out.reviewed_at == case.provenance.reviewed_at
    dataset_cases, _ = parse_paths(["data"])
    assert "provenance" not in encode_chunk(chunk_case(dataset_cases[0])[0])  # the dataset's chunks are unchanged


def test_near_duplicate_finals_become_one_case_counting_the_copies(tmp_path):
    phishing = "证书过期请登录控制台重新验证您的账号信息，输入您的 AccessKey/SecretKey 完成续期"
    store = _store(tmp_path, [phishing, phishing + "。", "  " + phishing.replace("，", ", ") + "！", "您好，请续费后重新上传证书。"])
    for item in store.items():
        store.review(item.feedback_id, "approved", "lead" if item.feedback_id < 3 else "second")
    result = export_feedback(store, allowlist=())
    assert len(result.cases) == 2 and result.collapsed == 2
    first = result.cases[0].provenance
    assert first.copies == 3 and first.feedback_ids == (1, 2, 3) and first.reviewer == "lead,second"
    assert result.cases[1].provenance.copies == 1


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(_FILLER, st.one_of(_PHONE, _EMAIL, _DOMAIN), _OBFUSCATE), min_size=1, max_size=4))
def test_nothing_of_the_kind_survives_the_whole_export(tmp_path_factory, parts):
    """The same, through the store and the writer: in the ticket, the title and the agent's text."""
    text = "".join(f"{filler} {obfuscate(value)} " for filler, value, obfuscate in parts)
    store = FeedbackStore(tmp_path_factory.mktemp("fb") / "fb.sqlite3")
    d = store.record_draft(Ticket("客户：" + text, title=text[:60]), _draft(), "CDN", "证书问题")
    store.add_feedback(d, "edited", "您好，" + text)
    store.review(store.items()[0].feedback_id, "approved", "lead")
    result = export_feedback(store, allowlist=DEFAULT_LINK_ALLOWLIST)
    (case,) = result.cases
    view = normalise(result.text).lower()
    for _, value, _ in parts:
        assert value.lower() not in view
    # Every field that came from the feedback (the provenance line holds hex draft ids, not a customer's data).
    fields = normalise("\n".join((case.title, case.question, *(t.text for t in case.turns))))
    assert not [f for f in find_identifiers(fields, DEFAULT_LINK_ALLOWLIST) if f.kind in ("phone", "email", "domain")]
