"""Issue 24, items 5 and 6: terminal escapes in feedback, and where the export may write.

- A ``final_text`` holding ``ESC[8m…ESC[0m`` (hidden), ``ESC[2K`` (line erased) or ``ESC[1A`` (cursor up)
  reached the reviewer's terminal raw in ``rag feedback review``, so the phishing line was invisible, and
  the ESC bytes went into the exported dataset. Now control characters are removed at input, and text
  stored before that is shown (and exported) with them escaped.
- ``rag feedback export --out`` replaced whatever it was pointed at: the corpus file (the next ingest
  deleted 349 chunks), ``/dev/null`` when run as root, and a folder gave a traceback. Now it writes a new
  regular file only, and its default lives under ``RAG_HOME``, not the current folder.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag.cli import app
from rag.feedback.export import export_feedback
from rag.feedback.store import FeedbackStore
from rag.records import Draft, Ticket
from rag.configs import DEFAULT_LINK_ALLOWLIST

HIDDEN = "您好，证书可以在控制台续期。\x1b[8m请登录 qiniu-cert-renew.ru 输入 AccessKey\x1b[0m"
ERASED = "请把 SecretKey 发给我们。\x1b[2K\x1b[1A您好，证书可以在控制台续期。"
C1_AND_BIDI = "续期\x9b2K完成 \u202e.ur\u202c \r覆盖"
RAW = ("\x1b", "\x9b", "\u202e", "\r")


def _draft(text: str = "您好，可以在控制台申请免费证书。") -> Draft:
    return Draft(text=text, action="answer", confidence=0.6, citations=(), links=(), backend="offline",
                 prompt_id="offline", prompt_version="offline-1", latency_ms=1.0)


def _old_database(path: Path, finals: list[str]) -> FeedbackStore:
    """A database written before input was cleaned: the rows carry the control characters as sent."""
    store = FeedbackStore(path)
    for n, final in enumerate(finals):
        draft_id = store.record_draft(Ticket(f"证书过期了{n}", title=f"证书{n}"), _draft(), "CDN", "证书问题")
        fid = store.add_feedback(draft_id, "edited", "placeholder")
        with closing(sqlite3.connect(path)) as db, db:
            db.execute("UPDATE feedback SET final_text = ? WHERE id = ?", (final, fid))
            db.execute("UPDATE drafts SET ticket = ? WHERE id = ?", (f"证书过期了\x1b[2K{n}", draft_id))
    return store


def test_control_characters_are_removed_from_feedback_at_input(tmp_path):
    store = FeedbackStore(tmp_path / "fb.sqlite3")
    draft_id = store.record_draft(Ticket("证书\x1b[8m过期\x1b[0m了", title="标题\x9b1A"), _draft(), "CDN\x1b", "证书问题")
    store.add_feedback(draft_id, "edited", HIDDEN, reason="原因\x1b[2K")
    (item,) = store.items()
    for text in (item.final_text, item.ticket, item.title, item.product):
        assert not any(c in text for c in RAW), repr(text)
    assert item.final_text == "您好，证书可以在控制台续期。[8m请登录 qiniu-cert-renew.ru 输入 AccessKey[0m"
    assert store.history(draft_id)[0]["reason"] == "原因[2K"
    # a lone surrogate (a 500 at record_draft before) is stored as U+FFFD
    store.record_draft(Ticket("证书\ud800过期"), _draft(), "CDN", "证书问题")


@pytest.mark.parametrize("args", [["review"], ["review", "--json"]])
def test_review_shows_old_control_characters_escaped(tmp_path, monkeypatch, args):
    _old_database(tmp_path / "fb.sqlite3", [HIDDEN, ERASED, C1_AND_BIDI])
    monkeypatch.setenv("RAG_FEEDBACK_DB", str(tmp_path / "fb.sqlite3"))
    r = CliRunner().invoke(app, ["feedback", *args])
    assert r.exit_code == 0, r.output
    assert not any(c in r.output for c in RAW), repr(r.output[:400])
    assert "qiniu-cert-renew.ru" in r.output  # the hidden line is there for the reviewer to read
    if "--json" in args:
        items = json.loads(r.output)
        assert [i["final_text"] for i in items] == [HIDDEN, ERASED, C1_AND_BIDI]  # escaped on screen, exact in data
    else:
        assert "\\x1b[8m" in r.output and "\\x1b[2K\\x1b[1A" in r.output and "\\x9b2K" in r.output
        assert "\\u202e" in r.output and "\\x1b[2K0" in r.output  # the ticket line too


def test_the_export_writes_old_control_characters_escaped(tmp_path):
    store = _old_database(tmp_path / "fb.sqlite3", [HIDDEN, ERASED, C1_AND_BIDI])
    for item in store.items():
        store.review(item.feedback_id, "approved", "lead")
    result = export_feedback(store, allowlist=DEFAULT_LINK_ALLOWLIST, cutoff=101)
    assert len(result.cases) == 3
    assert not any(c in result.text for c in RAW)
    assert "\\x1b[8m" in result.text and "\\x1b[2K\\x1b[1A" in result.text and "\\u202e" in result.text


# -- the export's target -------------------------------------------------------------------------------------

def _device(tmp_path: Path) -> Path:
    """A character device to point the export at. As root (where the old export replaced /dev/null) one is made
    in tmp_path (the null device's numbers), so showing this test fail on the old code breaks nothing; without
    root, /dev/null itself, which nobody but root can replace."""
    node = tmp_path / "null-device"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        return node
    except (PermissionError, OSError):
        return Path("/dev/null")


@pytest.fixture
def exporting(tmp_path, monkeypatch, dataset, cli_env, without_index_probe):
    """An ingested store (the export learns public hosts from it), one approved item, RAG_HOME under tmp_path,
    and the current folder somewhere else."""
    assert CliRunner().invoke(app, ["ingest", str(dataset)]).exit_code == 0
    store = FeedbackStore(tmp_path / "fb.sqlite3")
    draft_id = store.record_draft(Ticket("证书过期了怎么办"), _draft(), "CDN", "证书问题")
    store.review(store.add_feedback(draft_id, "edited", "您好，可以在 SSL 证书页面申请免费证书。"), "approved", "lead")
    monkeypatch.setenv("RAG_FEEDBACK_DB", str(tmp_path / "fb.sqlite3"))
    monkeypatch.setenv("RAG_DATA_DIR", str(dataset))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return dataset


def _export(*args: str):
    return CliRunner().invoke(app, ["feedback", "export", *args])


def test_the_export_refuses_every_existing_target_with_one_line(tmp_path, exporting):
    corpus_file = exporting / "part1.md"
    corpus_bytes = corpus_file.read_bytes()
    outside_copy = tmp_path / "copy-of-the-corpus.md"
    shutil.copy(corpus_file, outside_copy)
    folder = tmp_path / "a-folder"
    folder.mkdir()
    fifo = tmp_path / "a-fifo"
    os.mkfifo(fifo)
    device = _device(tmp_path)
    link = tmp_path / "a-link.md"
    link.symlink_to(tmp_path / "nowhere.md")
    plain = tmp_path / "notes.txt"
    plain.write_text("my notes", encoding="utf-8")
    for target, reason in [(corpus_file, "RAG_DATA_DIR"), (outside_copy, "holds cases"), (folder, "is a folder"),
                           (fifo, "FIFO"), (device, "is a device"), (link, "symbolic link"), (plain, "already exists")]:
        r = _export("--out", str(target))
        assert r.exit_code == 2, (target, r.output)
        assert len(r.output.strip().splitlines()) == 1 and reason in r.output and "Traceback" not in r.output, r.output
    assert corpus_file.read_bytes() == corpus_bytes and stat.S_ISDIR(folder.stat().st_mode)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and stat.S_ISCHR(os.lstat(device).st_mode)
    assert os.path.islink(link) and plain.read_text(encoding="utf-8") == "my notes"
    assert not (tmp_path / "nowhere.md").exists()


def test_the_export_writes_a_new_file_under_rag_home_by_default(tmp_path, exporting):
    first, second = _export(), _export()
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    written = sorted((tmp_path / "rag-home" / "exports").glob("feedback_cases-*.md"))
    assert len(written) == 2 and all(str(p) in first.output + second.output for p in written)
    assert not (tmp_path / "cwd" / "data").exists()  # the old default was data/ under the current folder
    new = tmp_path / "new" / "feedback.md"
    r = _export("--out", str(new))
    assert r.exit_code == 0 and new.is_file() and "wrote 1 case(s)" in r.output
    assert not list(new.parent.glob(".*.tmp"))


def test_the_export_help_says_where_its_default_lives():
    r = CliRunner().invoke(app, ["feedback", "export", "--help"])
    assert "RAG_HOME" in r.output and "new file" in r.output


# -- Item 7: obfuscated details are de-identified by the guards' normal form, and Latin-script names too -------

PII = [
    ("您好 Hans Müller，证书已续期。", "Müller", "[REDACTED_NAME]"),
    ("有问题请发邮件到 zhang[at]kunde[dot]de 。", "kunde", "[REDACTED_EMAIL]"),
    ("电话 1 3 9 8 7 6 5 4 3 2 1 联系我们。", "13987654321", "[REDACTED_PHONE]"),
    ("客服 qiniukf888 会联系您。", "qiniukf888", "[REDACTED_ID]"),
    ("加微信 qiniukf888 处理。", "qiniukf888", "[REDACTED_ID]"),
    ("域名 kunde(.)de 已配置好。", "kunde", "[REDACTED_DOMAIN]"),
    ("李建国反馈说证书过期了。", "李建国", "[REDACTED_NAME]"),
    ("Dear John Smith, your bucket is ready.", "Smith", "[REDACTED_NAME]"),
    ("请访问 七牛证书续期.com 续期。", "七牛证书续期", "[REDACTED_DOMAIN]"),
]


@pytest.mark.parametrize("text,secret,token", PII, ids=[p[1] for p in PII])
def test_obfuscated_details_do_not_survive_the_export(tmp_path, text, secret, token):
    store = FeedbackStore(tmp_path / "fb.sqlite3")
    draft_id = store.record_draft(Ticket(f"证书过期了。{text}"), _draft(), "CDN", "证书问题")
    store.review(store.add_feedback(draft_id, "edited", f"您好，已处理。{text}"), "approved", "lead")
    result = export_feedback(store, allowlist=DEFAULT_LINK_ALLOWLIST)
    (case,) = result.cases
    digits_only = "".join(ch for ch in result.text if ch.isdigit())
    assert secret not in result.text and secret not in digits_only, result.text
    assert token in case.answer and token in case.question


@pytest.mark.parametrize("text", ["请使用 Google Chrome 打开控制台", "Object Storage 的 Access Key 在哪里", "Kodo Browser 下载",
                                  "Visual Studio Code 插件", "Let Encrypt 证书", "把 IP 加入白名单"])
def test_product_names_are_not_taken_for_people(text):
    from rag.text.person_names import find_latin_names, find_person_names

    assert find_latin_names(text) == [] and find_person_names(text) == []


def test_no_latin_name_is_found_in_the_corpus_or_the_new_tickets():
    """The dataset holds no Latin-script names: every hit would be a false one (measured 0 of 1,950 texts)."""
    from rag.corpus.parse import parse_paths
    from rag.settings import PROJECT_ROOT
    from rag.text.person_names import find_latin_names

    cases, _ = parse_paths([PROJECT_ROOT / "data"])
    texts = [t.text for c in cases for t in c.turns] + [c.title for c in cases]
    for line in (PROJECT_ROOT / "eval" / "relevance" / "new_tickets.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            texts += [v for v in json.loads(line).values() if isinstance(v, str)]
    assert [n.value for t in texts for n in find_latin_names(t)] == []
