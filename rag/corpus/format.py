"""The dataset format, read and written in one place: its markers, and the writer beside them.

``rag.corpus.parse`` reads files with these markers; ``write_cases`` writes ``Case`` records with the same
markers, so what is written parses back into the same cases (a hypothesis test holds the round trip).
A case::

    ## title
    **问题分类**: 产品｜子类
    **适用场景**: a, b
    **来源**: feedback; feedback=3,4; draft=…; verdict=edited; reviewer=…; reviewed=…; copies=2
    ### 问题描述
    ...
    ### 客服解答
    **客户**：...
    **客服**：...
    ### 根本原因分析
    ...

``来源`` (provenance) appears only on cases that came from reviewed feedback.
"""

from __future__ import annotations

import re
from typing import Iterable

from rag.errors import ParseError
from rag.records import Case, Provenance, Role

SEPARATOR = "---"
GENERIC_ROOT_CAUSE = "需要根据具体情况分析，建议查看文档或联系技术支持"
CATEGORY_FIELD = "问题分类"
SCENARIOS_FIELD = "适用场景"
PROVENANCE_FIELD = "来源"
QUESTION_SECTION = "问题描述"
DIALOGUE_SECTION = "客服解答"
ROOT_CAUSE_SECTION = "根本原因分析"
ROLES: dict[str, Role] = {"客户": "customer", "客服": "agent"}
ROLE_MARKERS = {role: marker for marker, role in ROLES.items()}
SECTIONS = {QUESTION_SECTION: "question", DIALOGUE_SECTION: "dialogue", ROOT_CAUSE_SECTION: "root_cause"}
REQUIRED = (CATEGORY_FIELD, QUESTION_SECTION, DIALOGUE_SECTION)
CATEGORY_SEPARATORS = ("｜", "|")  # the writer writes the first; the reader splits at the first it finds, in this order
SCENARIO_SEPARATORS = re.compile(r"[,，、]")

# The reader's line patterns; the writer escapes any text line one of them would take for structure.
LINE_BREAK = re.compile(r"\r\n|\n|\r")
SEPARATOR_LINE = re.compile(r"^-{3}\s*$")
TITLE_LINE = re.compile(r"^##\s+(.*\S)\s*$")
FIELD_LINE = re.compile(rf"^\*\*({CATEGORY_FIELD}|{SCENARIOS_FIELD}|{PROVENANCE_FIELD})\*\*\s*[:：]\s*(.*?)\s*$")
SECTION_LINE = re.compile(r"^###\s+(.*\S)\s*$")
TURN_LINE = re.compile(r"^\*\*([^*]{1,10})\*\*\s*[:：]\s?(.*)$")

# What a category or scenario name may hold when it comes from outside the dataset (feedback): no
# separator, no Markdown, one line, short.
_CATEGORY_NAME = re.compile(r"[\w\u4e00-\u9fff &/()（）.+\-]{1,30}")
_PROVENANCE_ORIGIN = "feedback"
_REVIEWER = re.compile(r"[\w.@\-]{1,40}")
_REVIEWERS = re.compile(r"[\w.@\-]{1,40}(?:,[\w.@\-]{1,40}){0,99}")  # a collapsed case lists every reviewer
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+\-]\d{2}:\d{2})?")
_DRAFT_ID = re.compile(r"[0-9a-f]{1,64}")
_VERDICT = re.compile(r"accepted|edited")


def format_provenance(p: Provenance) -> str:
    return "; ".join((
        p.origin,
        "feedback=" + ",".join(str(i) for i in p.feedback_ids),
        "draft=" + ",".join(p.draft_ids),
        f"verdict={p.verdict}",
        f"reviewer={p.reviewer}",
        f"reviewed={p.reviewed_at}",
        f"copies={p.copies}",
    ))


def parse_provenance(value: str, *, source: str = "", line: int = 0) -> Provenance:
    """The ``来源`` field; anything but the exact form is an error naming the line, never a guess."""

    def bad(why: str) -> ParseError:
        return ParseError(f"'{PROVENANCE_FIELD}' {why}: {value[:80]!r}", source=source, line=line)

    parts = [p.strip() for p in value.split(";")]
    if not parts or parts[0] != _PROVENANCE_ORIGIN:
        raise bad(f"must start with '{_PROVENANCE_ORIGIN}'")
    fields: dict[str, str] = {}
    for part in parts[1:]:
        key, eq, val = part.partition("=")
        if not eq or key in fields:
            raise bad(f"has a malformed or repeated part {part[:30]!r}")
        fields[key] = val
    expected = {"feedback", "draft", "verdict", "reviewer", "reviewed", "copies"}
    if set(fields) != expected:
        raise bad(f"needs exactly {', '.join(sorted(expected))}")
    feedback_ids = fields["feedback"].split(",")
    draft_ids = fields["draft"].split(",")
    if not all(i.isdigit() for i in feedback_ids) or not all(_DRAFT_ID.fullmatch(d) for d in draft_ids):
        raise bad("has an id that is not a feedback number or a draft id")
    if not _VERDICT.fullmatch(fields["verdict"]) or not _REVIEWERS.fullmatch(fields["reviewer"]):
        raise bad("has an unknown verdict or a malformed reviewer")
    if not _TIMESTAMP.fullmatch(fields["reviewed"]) or not fields["copies"].isdigit() or int(fields["copies"]) < 1:
        raise bad("has a malformed review time or copy count")
    return Provenance(
        origin="feedback", feedback_ids=tuple(int(i) for i in feedback_ids), draft_ids=tuple(draft_ids),
        verdict=fields["verdict"], reviewer=fields["reviewer"], reviewed_at=fields["reviewed"],
        copies=int(fields["copies"]),
    )


def valid_reviewer(name: str) -> bool:
    return bool(_REVIEWER.fullmatch(name))


def valid_category_name(name: str) -> bool:
    return bool(_CATEGORY_NAME.fullmatch(name))


def split_category(value: str) -> tuple[str, str]:
    """``问题分类``'s product and subcategory, stripped: split at the first full-width separator, else at
    the first ASCII one; without a separator the whole value is the product."""
    for sep in CATEGORY_SEPARATORS:
        product, found, subcategory = value.partition(sep)
        if found:
            return product.strip(), subcategory.strip()
    return value.strip(), ""


def format_category(product: str, subcategory: str) -> str:
    return f"{product}{CATEGORY_SEPARATORS[0]}{subcategory}"


def without_category_separators(text: str) -> str:
    """A product name the category field can hold: its separators become spaces."""
    for sep in CATEGORY_SEPARATORS:
        text = text.replace(sep, " ")
    return text


def title_line(title: str) -> str:
    return f"## {title}"


def section_line(name: str) -> str:
    return f"### {name}"


def field_line(name: str, value: str) -> str:
    return f"**{name}**: {value}"


def turn_marker(marker: str) -> str:
    """How a turn starts: ``**客户**：`` (the reader also takes a half-width colon)."""
    return f"**{marker}**："


def one_line(text: str) -> str:
    """A field's value on one line: line breaks become spaces; the ends are stripped, as the reader does."""
    return " ".join(LINE_BREAK.split(text)).strip()


def unstructured_line(text: str | None) -> str:
    """A name on one line with no Markdown structure (title, bold, list, quote) at its start: whitespace
    runs fold to one space, and leading ``#*->`` and spaces go."""
    line = " ".join((text or "").split())
    return line.lstrip("#*-> ").strip()


def _is_structure(line: str) -> bool:
    return line.startswith(("#", "**")) or SEPARATOR_LINE.match(line) is not None


def text_lines(text: str, *, keep_blank: bool) -> list[str]:
    """A multi-line text as the reader will take it back: lines the reader would read as a title,
    section, field, turn or separator get a leading space, which keeps them text."""
    lines = LINE_BREAK.split(text.strip())
    if not keep_blank:
        lines = [ln for ln in lines if ln.strip()]
    return [(" " + ln) if _is_structure(ln) else ln for ln in lines]


def format_case(case: Case) -> list[str]:
    """One case's lines, without the separator. Raises ``ValueError`` for a case the format cannot hold."""
    title = one_line(case.title)
    product = one_line(without_category_separators(case.product))
    subcategory = one_line(case.subcategory)
    scenarios = [s for s in (one_line(SCENARIO_SEPARATORS.sub(" ", sc)) for sc in case.scenarios) if s]
    if not title or not product:
        raise ValueError("a case needs a title and a product")
    if not case.turns:
        raise ValueError("a case needs at least one turn")
    lines = [title_line(title), "", field_line(CATEGORY_FIELD, format_category(product, subcategory)), "",
             field_line(SCENARIOS_FIELD, ", ".join(scenarios)), ""]
    if case.provenance is not None:
        lines += [field_line(PROVENANCE_FIELD, format_provenance(case.provenance)), ""]
    lines += [section_line(QUESTION_SECTION), "", *text_lines(case.question, keep_blank=True), "",
              section_line(DIALOGUE_SECTION), ""]
    for turn in case.turns:
        body = text_lines(turn.text, keep_blank=False) or [""]
        lines.append(turn_marker(ROLE_MARKERS[turn.role]) + body[0].lstrip())
        lines += body[1:]
    lines += ["", section_line(ROOT_CAUSE_SECTION), "", *text_lines(case.root_cause or GENERIC_ROOT_CAUSE, keep_blank=True), ""]
    return lines


def write_cases(cases: Iterable[Case], *, heading: str, intro: str = "") -> str:
    """A dataset document: a heading (the file's preamble, which the reader skips) and the cases."""
    out = [f"# {one_line(heading)}", ""]
    if intro:
        out += [one_line(intro), ""]
    for case in cases:
        out += [SEPARATOR, "", *format_case(case)]
    return "\n".join(out) + "\n"
