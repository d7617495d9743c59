"""Property tests: whatever the input, the parser raises nothing but ParseError."""

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.errors import ParseError
from rag.corpus.parse import parse_text

TEST_DATA = Path(__file__).parent / "data"

SAMPLE = (TEST_DATA / "small.md").read_text(encoding="utf-8")
LINES = SAMPLE.splitlines()
PIECES = ["---", "## 标题", "### 问题描述", "### 客服解答", "### 根本原因分析", "**客户**：你好", "**客服**：您好",
          "**问题分类**: CDN｜证书问题", "**适用场景**: CDN", "**未知**：x", "", "[图片]", "https://portal.qiniu.com/a2.", "**"]


def _check(text: str) -> None:
    for strict in (True, False):
        try:
            cases = parse_text(text, "prop.md", strict=strict)
        except ParseError as exc:
            assert strict and exc.source == "prop.md" and exc.line >= 1
            continue
        for c in cases:
            assert c.turns and c.title and c.product


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=400))
def test_random_text(text):
    _check(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(PIECES + LINES), max_size=60))
def test_random_documents_from_real_pieces(lines):
    _check("\n".join(lines))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_sample(data):
    lines = list(LINES)
    for _ in range(data.draw(st.integers(1, 6))):
        op = data.draw(st.sampled_from(["drop", "dup", "swap", "insert", "truncate"]))
        i = data.draw(st.integers(0, len(lines) - 1)) if lines else 0
        if not lines:
            break
        if op == "drop":
            lines.pop(i)
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = data.draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "insert":
            lines.insert(i, data.draw(st.sampled_from(PIECES)))
        else:
            lines[i] = lines[i][: data.draw(st.integers(0, max(0, len(lines[i]))))]
    _check("\n".join(lines))


def test_sample_stays_valid():
    assert len(parse_text(SAMPLE, "small.md", strict=True)) == 3
