"""Parser and chunker edge cases from issue 12: line separators, skipped content, quadratic chunks."""

from __future__ import annotations

from rag.cases import encode_chunk
from rag.chunk import chunk_case
from rag.parse import parse_text

CASE = """---

## 证书过期

**问题分类**: CDN｜证书

### 问题描述

证书过期了

### 客服解答

**客户**：证书过期了\u2028怎么办\u2029谢谢
**客服**：您好，请在控制台重新申请免费证书。

---
"""


def test_line_separators_do_not_split_a_turn():
    warnings: list[str] = []
    cases = parse_text(CASE, "x.md", warnings=warnings)
    assert len(cases) == 1 and warnings == []
    assert "\u2028怎么办\u2029谢谢" in cases[0].turns[0].text


def test_a_file_without_cases_is_a_warning_with_file_and_line():
    for text in ("x" * 100_000, "---\n" * 100_000 + "hello"):
        warnings: list[str] = []
        assert parse_text(text, "big.md", warnings=warnings) == []
        assert warnings and warnings[0].startswith("big.md:"), warnings


def test_skipped_text_between_cases_is_a_warning():
    warnings: list[str] = []
    cases = parse_text(CASE + "\n随便写的一段话\n\n---\n" + CASE.replace("证书过期\n", "证书过期二\n", 1), "x.md", warnings=warnings)
    assert len(cases) == 2
    assert len(warnings) == 1 and warnings[0].startswith("x.md:") and "skipped" in warnings[0]


def test_exchange_chunks_do_not_copy_the_answer():
    turns = "\n".join(f"**客户**：问题{i}\n**客服**：回答{i}，" + "很长的解释" * 20 for i in range(300))
    case = parse_text(CASE.replace("**客户**：证书过期了\u2028怎么办\u2029谢谢\n**客服**：您好，请在控制台重新申请免费证书。", turns), "x.md")[0]
    chunks = chunk_case(case)
    assert len(chunks) == 301
    metas = [encode_chunk(c) for c in chunks]
    answer_len = len(chunks[0].case.answer)
    assert answer_len > 10_000
    total_meta = sum(len(str(v)) for m in metas for v in m.values())
    assert total_meta < answer_len * 3  # linear in the dialogue, not 300 copies of the answer
    assert all(c.case is None for c in chunks[1:]) and all(set(m) == set(metas[1]) for m in metas[1:])
