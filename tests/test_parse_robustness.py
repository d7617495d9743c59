"""Parser and chunker edge cases from issue 12: line separators, skipped content, quadratic chunks."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.store.cases import encode_chunk
from rag.corpus.chunk import chunk_case
from rag.corpus.parse import parse_text

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


# -- Issue 24: a device or a FIFO is named as what it is, never opened ---------------------------------------

def test_a_device_a_fifo_and_a_missing_path_are_each_named(tmp_path):
    import os

    from rag.corpus.parse import dataset_files
    from rag.errors import ParseError

    fifo = tmp_path / "cases.md"
    os.mkfifo(fifo)  # opening it to read would block: the check must not open it
    dangling = tmp_path / "gone.md"
    dangling.symlink_to(tmp_path / "missing.md")
    for path, reason in [(Path("/dev/zero"), "is a device"), (fifo, "is a FIFO (named pipe)"),
                         (tmp_path / "nothing.md", "no such file or folder"), (dangling, "symbolic link to a missing file")]:
        with pytest.raises(ParseError) as exc:
            dataset_files([path])
        assert reason in str(exc.value), str(exc.value)


@pytest.mark.usefixtures("cli_env", "without_index_probe")
def test_rag_ingest_names_a_device_or_a_fifo_in_one_line(tmp_path):
    import os

    from typer.testing import CliRunner

    from rag.cli import app

    fifo = tmp_path / "pipe.md"
    os.mkfifo(fifo)
    for path, reason in [("/dev/zero", "is a device"), (str(fifo), "is a FIFO")]:
        r = CliRunner().invoke(app, ["ingest", path])
        assert r.exit_code == 2 and reason in r.output and "no such file" not in r.output, r.output
        errors = [line for line in r.output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "Traceback" not in r.output, r.output
