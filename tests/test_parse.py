import re
from collections import Counter
from pathlib import Path

import pytest

from rag.errors import ParseError
from rag.corpus.parse import GENERIC_ROOT_CAUSE, parse_file, parse_paths, parse_text

from rag.settings import PROJECT_ROOT

DATA_DIR = PROJECT_ROOT / "data"
CORPUS = PROJECT_ROOT / "data" / "qiniu_support_tickets_part15.md"
TEST_DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def corpus():
    cases, report = parse_paths([DATA_DIR], strict=True)
    return cases, report


def test_real_corpus_parses_to_114_cases(corpus):
    cases, report = corpus
    assert report.cases == 114 and len(cases) == 114
    assert report.skipped == 0


def test_category_counts_match_the_file(corpus):
    cases, _ = corpus
    raw = CORPUS.read_text(encoding="utf-8")
    expected = Counter(tuple(m.split("｜")) for m in re.findall(r"^\*\*问题分类\*\*: (.+)$", raw, flags=re.M))
    assert Counter((c.product, c.subcategory) for c in cases) == expected
    assert expected[("对象存储", "其他类咨询")] == 24
    assert expected[("CDN", "证书问题")] == 19
    assert Counter(c.product for c in cases)["CDN"] == 48


def test_ids_are_unique_and_do_not_depend_on_position(corpus):
    cases, _ = corpus
    assert len({c.id for c in cases}) == 114
    text = (TEST_DATA / "small.md").read_text(encoding="utf-8")
    blocks = text.split("\n---\n")
    swapped = "\n---\n".join([blocks[0], blocks[2], blocks[1], blocks[3]])
    a = {c.title: c.id for c in parse_text(text, "small.md")}
    b = {c.title: c.id for c in parse_text(swapped, "small.md")}
    assert a == b
    assert parse_text(text, "other.md")[0].id != a["证书过期怎么办"]  # the source is part of the identity


def test_multi_line_turns_are_joined(corpus):
    cases, _ = corpus
    case = next(c for c in cases if any("记录值  cWluaXUtMjAyMjEwMjUtMTM4MTM0NDUw" in t.text for t in c.turns))
    turn = next(t for t in case.turns if "记录值  cWluaXUtMjAyMjEwMjUtMTM4MTM0NDUw" in t.text)
    assert "\n" in turn.text and turn.role in ("customer", "agent")
    small = parse_file(TEST_DATA / "small.md")
    agent = [t for t in small[0].turns if t.role == "agent"][1]
    assert agent.text.endswith("验证完成后在域名管理中开启 HTTPS")


def test_filler_is_recognised_and_left_out_of_the_answer():
    case = parse_file(TEST_DATA / "small.md")[0]
    fillers = [t.text for t in case.turns if t.is_filler]
    assert fillers == ["您好，请稍等", "不客气的"]
    assert "请稍等" not in case.answer and "免费证书申请" in case.answer
    assert case.root_cause == "证书过期，需要重新申请或上传新证书"


def test_generic_root_cause_is_none_and_markers_are_kept(corpus):
    cases, _ = corpus
    assert sum(c.root_cause is None for c in cases) > 50
    assert all(c.root_cause != GENERIC_ROOT_CAUSE for c in cases)
    assert any(t.has_image for c in cases for t in c.turns)
    joined = "\n".join(t.text for c in cases for t in c.turns)
    for token in ("[REDACTED_PATH]", "[REDACTED_PHONE]", "[REDACTED_EMAIL]"):
        assert token in joined


def test_case_links_are_clean():
    case = parse_file(TEST_DATA / "small.md")[0]
    assert case.links == ("https://portal.qiniu.com/certificate/apply",)


GOOD = """## 标题
**问题分类**: CDN｜证书问题
**适用场景**: CDN
### 问题描述
问题
### 客服解答
**客户**：问题
**客服**：回答
### 根本原因分析
原因
"""


@pytest.mark.parametrize(
    "text, line, message",
    [
        (GOOD.replace("### 客服解答\n**客户**：问题\n**客服**：回答\n", ""), 1, "客服解答"),
        (GOOD.replace("**客服**：回答", "**经理**：回答"), 8, "unknown role"),
        (GOOD.replace("### 根本原因分析", "### 其他"), 9, "unknown section"),
        (GOOD.replace("## 标题", "标题"), 1, "must start with"),
        (GOOD.replace("**问题分类**: CDN｜证书问题\n", ""), 1, "问题分类"),
        (GOOD.replace("### 客服解答\n", "### 客服解答\n开头没有角色\n"), 7, "before the first"),
    ],
)
def test_malformed_cases_name_file_and_line(text, line, message):
    with pytest.raises(ParseError) as err:
        parse_text("---\n" + text + "---\n", "bad.md", strict=True)
    assert err.value.source == "bad.md"
    assert err.value.line == line + 1
    assert message in str(err.value)
    assert str(err.value).startswith(f"bad.md:{line + 1}:")


def test_default_mode_skips_bad_cases_and_counts_them(tmp_path):
    bad = GOOD.replace("**客服**：回答", "**经理**：回答")
    f = tmp_path / "mixed.md"
    f.write_text(f"{GOOD}---\n{bad}---\n\n---\n{GOOD.replace('标题', '标题二')}", encoding="utf-8")
    cases, report = parse_paths([f])
    assert [c.title for c in cases] == ["标题", "标题二"]
    assert report.skipped == 1 and "mixed.md:" in report.warnings[0] and "unknown role" in report.warnings[0]


def test_non_utf8_file_is_reported_with_its_line(tmp_path):
    f = tmp_path / "latin.md"
    f.write_bytes(GOOD.encode("utf-8") + "\n## 坏\n".encode("gbk"))
    with pytest.raises(ParseError, match=r"latin.md:12: not valid UTF-8"):
        parse_paths([f], strict=True)
    cases, report = parse_paths([f])
    assert cases == [] and report.skipped == 1


def test_truncated_file_skips_only_the_cut_case(tmp_path):
    text = (TEST_DATA / "small.md").read_text(encoding="utf-8")
    cut = text[: text.index("### 客服解答", text.index("## 发票怎么开"))]
    f = tmp_path / "cut.md"
    f.write_text(cut, encoding="utf-8")
    cases, report = parse_paths([f])
    assert [c.title for c in cases] == ["证书过期怎么办", "如何刷新CDN缓存"]
    assert report.skipped == 1 and "发票怎么开" in report.warnings[0]
    with pytest.raises(ParseError):
        parse_paths([f], strict=True)


def test_folder_of_many_files(tmp_path):
    for n in range(3):
        (tmp_path / f"part{n}.md").write_text((TEST_DATA / "small.md").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "notes.json").write_text("{}")
    cases, report = parse_paths([tmp_path])
    assert report.files == 3 and len(cases) == 9
    assert len({c.id for c in cases}) == 9


def test_missing_path_is_a_parse_error(tmp_path):
    with pytest.raises(ParseError, match="no such file"):
        parse_paths([tmp_path / "nope.md"])
