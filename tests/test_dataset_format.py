"""The dataset format's writer and reader agree: what is written parses back into the same cases."""

import pytest
from hypothesis import given, settings, strategies as st

from rag.corpus.format import format_provenance, parse_provenance, write_cases
from rag.errors import ParseError
from rag.corpus.parse import parse_paths, parse_text
from rag.records import Case, Provenance, Turn


def _fields(c: Case):
    return (c.title, c.product, c.subcategory, c.scenarios, c.question,
            tuple((t.role, t.text) for t in c.turns), c.root_cause, c.provenance)


def _round_trip(cases):
    return parse_text(write_cases(cases, heading="测试"), "rt.md", strict=True)


def test_the_corpus_round_trips():
    cases, report = parse_paths(["data"])
    assert report.skipped == 0 and len(cases) == 114
    again = _round_trip(cases)
    assert [_fields(c) for c in again] == [_fields(c) for c in cases]


_WORD = st.text(alphabet="证书过期域名CDN对象存储abc123 ._-（）", min_size=1, max_size=12).map(str.strip).filter(bool)
# Text that may look like structure: titles, sections, fields, turns, separators, in either width.
_LINE = st.one_of(
    st.text(alphabet="证书过期请联系我们abc123 ，。:：*#-|｜、,\t", max_size=40),
    st.sampled_from(["---", "## 伪造标题", "### 客服解答", "**客服**：http://evil.example", "**问题分类**: x｜y",
                     "**来源**: feedback; feedback=1", "# 标题", "- 列表", "**加粗**", "  ### 缩进", "\u2028", ""]),
)
_TEXT = st.lists(_LINE, min_size=0, max_size=6).map("\n".join)
_PROVENANCE = st.builds(
    Provenance, origin=st.just("feedback"), feedback_ids=st.lists(st.integers(1, 10**6), min_size=1, max_size=3).map(tuple),
    draft_ids=st.lists(st.text(alphabet="0123456789abcdef", min_size=1, max_size=32), min_size=1, max_size=3).map(tuple),
    verdict=st.sampled_from(["accepted", "edited"]), reviewer=st.sampled_from(["lead", "张三", "a.b@c-d", "x,y"]),
    reviewed_at=st.just("2026-11-26T01:00:00+00:00"), copies=st.integers(1, 5),
)
_CASE = st.builds(
    Case, id=st.just(""), title=_WORD, product=_WORD, subcategory=st.one_of(st.just(""), _WORD),
    scenarios=st.lists(_WORD, max_size=3).map(tuple), question=_TEXT,
    turns=st.lists(st.builds(Turn, role=st.sampled_from(["customer", "agent"]), text=_TEXT), min_size=1, max_size=4).map(tuple),
    root_cause=st.one_of(st.none(), _TEXT.filter(str.strip)), source=st.just("x"), line=st.just(0),
    provenance=st.one_of(st.none(), _PROVENANCE),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_CASE, min_size=1, max_size=4))
def test_any_cases_write_as_exactly_those_cases_and_a_second_round_changes_nothing(cases):
    once = _round_trip(cases)
    assert len(once) == len(cases)  # no text can forge or swallow a case
    for written, read in zip(cases, once):
        assert read.provenance == written.provenance
        assert [t.role for t in read.turns] == [t.role for t in written.turns]
        assert read.title == " ".join(written.title.splitlines()).strip()
    twice = _round_trip(once)
    assert [_fields(c) for c in twice] == [_fields(c) for c in once]


def test_provenance_is_read_exactly_or_refused_with_the_line():
    p = Provenance("feedback", (3, 4), ("ab", "cd"), "edited", "lead,second", "2026-11-26T01:00:00+00:00", 2)
    assert parse_provenance(format_provenance(p)) == p
    for bad in ("dataset; feedback=1", "feedback; feedback=1; draft=ab; verdict=edited; reviewer=x; reviewed=now; copies=1",
                "feedback; feedback=1; draft=ab; verdict=rejected; reviewer=x; reviewed=2026-11-26T01:00:00; copies=1",
                "feedback; feedback=x; draft=ab; verdict=edited; reviewer=x; reviewed=2026-11-26T01:00:00; copies=1"):
        with pytest.raises(ParseError) as exc:
            parse_provenance(bad, source="f.md", line=7)
        assert str(exc.value).startswith("f.md:7")
