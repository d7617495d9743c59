"""Issue 12's probes and their variations: obfuscated links, identifiers and injection phrasings.

Each row of ``tests/data/guard_probes.jsonl`` is an attack (or, ``keep``, a control that must stay).
A probe survives when its secret is still readable in the scrubbed draft, read in normal form, or
when an injection phrasing goes unflagged in any prompt field. The aim is 0 survivors.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.draft.guards import SLOTS, block, escape_field, scan_fields, scrub
from rag.identifiers import CorpusIdentifiers
from rag.normalise import normalise
from rag.parse import parse_paths
from rag.settings import DEFAULT_LINK_ALLOWLIST

from rag.settings import PROJECT_ROOT

DATA_DIR = PROJECT_ROOT / "data"
TEST_DATA = Path(__file__).parent / "data"

ROWS = [json.loads(line) for line in (TEST_DATA / "guard_probes.jsonl").read_text(encoding="utf-8").split("\n") if line.strip()]  # U+2028 is not a line break
TICKET = "我的域名 mine.example.com 的证书过期了，怎么重新申请？"


def test_the_table_is_large_enough():
    assert sum(r["kind"] != "keep" for r in ROWS) >= 60


@pytest.fixture(scope="module")
def corpus_ids() -> CorpusIdentifiers:
    cases, _ = parse_paths([DATA_DIR])
    return CorpusIdentifiers.learn(
        (c.id, "\n".join([c.title, c.question, *(t.text for t in c.turns)]), "\n".join(t.text for t in c.turns if t.role == "agent"))
        for c in cases
    )


def _scrub(text, corpus_ids):
    return scrub(f"您好，{text}", TICKET, known_links=frozenset(), allowlist=DEFAULT_LINK_ALLOWLIST, corpus=corpus_ids)


def _readable(text: str) -> str:
    return normalise(text).lower()


@pytest.mark.parametrize("row", [r for r in ROWS if r["kind"] == "link"], ids=lambda r: r["note"])
def test_no_link_survives_and_none_leaves_a_slot(row, corpus_ids):
    out = _scrub(row["text"], corpus_ids).text
    assert _readable(row["secret"]) not in _readable(out), out
    assert not any(slot in out for slot in SLOTS.values()), f"a removed link left a slot: {out}"


@pytest.mark.parametrize("row", [r for r in ROWS if r["kind"] == "identifier"], ids=lambda r: r["note"])
def test_no_identifier_survives(row, corpus_ids):
    out = _scrub(row["text"], corpus_ids).text
    assert _readable(row["secret"]) not in _readable(out), out


@pytest.mark.parametrize("row", [r for r in ROWS if r["kind"] == "keep"], ids=lambda r: r["note"])
def test_public_and_own_details_stay(row, corpus_ids):
    assert row["secret"] in _scrub(row["text"], corpus_ids).text


@pytest.mark.parametrize("field", ["ticket_title", "ticket_product", "conversation_history", "customer_message", "case_text"])
@pytest.mark.parametrize("row", [r for r in ROWS if r["kind"] == "injection"], ids=lambda r: r["text"][:30])
def test_injection_is_flagged_in_every_field(row, field):
    assert scan_fields({field: f"证书过期了。{row['text']}"}), row["text"]


@pytest.mark.parametrize("row", [r for r in ROWS if r["kind"] == "injection"], ids=lambda r: r["text"][:30])
def test_no_field_can_close_its_block(row):
    for name in ("customer_message", "ticket_title", "conversation_history"):
        b = block(name, row["text"])
        assert b.count(f"</{name}>") == 1 and b.endswith(f"</{name}>")
        inner = b[len(name) + 3 : -len(name) - 4]
        assert "<" not in normalise(inner) and ">" not in normalise(inner)


def test_ordinary_tickets_are_not_flagged():
    for text in ("进入控制台 → CDN → 域名管理，显示证书过期", "How do I show the upload instructions in the SDK?",
                 "请问之前的账单在哪里看", "我想忽略掉这个告警邮件可以吗", "空间域名 cdn.mine.com 回源失败"):
        assert not scan_fields({"customer_message": text}), text


def test_escaping_keeps_ordinary_text():
    assert escape_field("您好，证书过期了：https://portal.qiniu.com/a?b=1&c=2") == "您好，证书过期了：https://portal.qiniu.com/a?b=1&amp;c=2"
