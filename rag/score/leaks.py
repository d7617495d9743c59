"""An independent check of drafts for other customers' details and for visible defects.

The drafter's guards (``rag/draft/guards.py``) decide what to remove with their own identifier
patterns; grading drafts with those same patterns would make a miss invisible to both. This module
shares no code with the guards, the identifier module or the link module: it learns from the corpus
which strings belong to one customer, with its own, deliberately broader patterns.

- **Leak.** Every identifier-like string of the corpus (a host name of any TLD, an email, a phone
  number in any common format, an IP, an id, a bucket-like name, a URL query value) that occurs in
  exactly one case's dialogue belongs to that customer. A draft for another ticket that contains
  one, as written or as a reader types it back (``rag/score/reading.py``: ``cdn[.]huomc[.]com``), when
  that ticket does not contain it, leaks it.
- **Defects** an agent would have to fix by hand: a redaction token, a link cut short, a fill-in
  slot standing where a link was, a question copied from another conversation, version numbers run
  together.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Mapping

from rag.records import Case
from rag.score.reading import reading_form

# A URL: scheme, then anything that is neither space, CJK, full-width punctuation nor a quote.
_URL = re.compile(r"https?://[^\s\u3000-\u303f\u4e00-\u9fff\uff00-\uffef\"'<>【】\[\]]+", re.I)
# A host name of any TLD (letters only, 2-24): file names are excluded below by their extension.
_HOST = re.compile(r"(?<![\w.\-@])(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}(?![\w\-])", re.I)
_FILE_EXTENSIONS = frozenset(
    "png jpg jpeg gif bmp webp svg ico mp4 mp3 m4a aac wav flv mov avi mkv m3u8 ts txt log md csv json xml yaml yml "
    "html htm js css php jsp asp py java go sh bat exe apk ipa dmg zip rar gz tar pdf doc docx xls xlsx ppt pptx "
    "key pem crt cer pfx jks conf ini".split()
)
_EMAIL = re.compile(r"[\w.%+\-]+@[\w\-]+(?:\.[\w\-]+)+", re.A)
_PHONES = (
    re.compile(r"(?<!\d)(?:\+?86[\s\-]?)?1[3-9]\d(?:[\s\-]?\d{4}){2}(?!\d)"),  # 13812345678, 138-1234-5678
    re.compile(r"(?<!\d)1[3-9]\d\*{3,4}\d{4}(?!\d)"),  # 156****1964
    re.compile(r"(?<!\d)0\d{2,3}[\s\-]\d{7,8}(?!\d)"),  # 010-12345678
    re.compile(r"(?<!\d)[48]00[\s\-]?\d{3}[\s\-]?\d{4}(?!\d)"),  # 400-820-1234
)
_IP = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
# Ids: letters and digits mixed (tokens, request ids, order numbers with letters), or long digit runs.
_MIXED = re.compile(r"(?<![\w\-])(?=[\w\-]*\d)(?=[\w\-]*[A-Za-z])[A-Za-z0-9][\w\-]{7,}(?![\w\-])", re.A)
_DIGITS = re.compile(r"(?<![\d.])\d{8,}(?![\d.])")
# Bucket-like names: lowercase words joined by hyphens, or letters followed by digits ("img-prod", "test01").
_BUCKETISH = re.compile(r"(?<![\w\-./])(?:[a-z][a-z0-9]*(?:-[a-z0-9]+)+|[a-z]{2,}\d{2,})(?![\w\-./])", re.A)
_QUERY_VALUE = re.compile(r"[?&][^=&#\s]+=([^&#\s]+)")
_MIN_LENGTH = 4

_REDACTION = re.compile(r"\[?REDACTED(?:_[A-Z_]+)?\]?")
_CUT_LINK = re.compile(r"https?:(?!//[A-Za-z0-9\[])", re.I)
_CUT_INSIDE = re.compile(r"[a-z0-9_\-.]")
_GLUED_TAIL = re.compile(r"(?:[A-Z].*|\d{1,2}\.?|windows|linux|macos)$")
_SLOT = re.compile(r"【[^】]{1,16}】")
_LINK_CONTEXT = re.compile(r"(参考|文档|链接|地址|教程|详见|详情|demo|入口|网址|url|所示|下载)[\s：:]*$", re.I)
_SENTENCE_END = re.compile(r"(?<=[。！？!?\n])")
_QUESTION = re.compile(r"[？?]\s*$")
_CLAUSE = re.compile(r"[，,；;：:]")
_RUN_TOGETHER_VERSIONS = re.compile(r"(?<![\d.])\d+(?:\.\d+){4,}(?![\d.])")


def _trim_url(url: str) -> str:
    # A run of dashes is a separator line drawn after the link, not part of it.
    return re.split(r"-{3,}", url, maxsplit=1)[0].rstrip(".,;:!?)-")


def _compact(text: str) -> str:
    return re.sub(r"\s+", "", text)


def question_clause(sentence: str) -> str | None:
    """The asking clause of a question sentence ("…，您说的X是什么意思呢？" → "您说的X是什么意思呢？")."""
    s = _compact(sentence)
    if not _QUESTION.search(s):
        return None
    clause = _CLAUSE.split(s)[-1]
    return clause if len(clause) >= 5 else (s if len(s) >= 5 else None)


def identifier_candidates(text: str) -> set[str]:
    """Every identifier-like string in ``text``, lower-cased."""
    found: set[str] = set()
    rest = text
    for m in _URL.finditer(text):
        url = _trim_url(m.group(0))
        host = re.sub(r"^https?://", "", url, flags=re.I).split("/", 1)[0].split("?", 1)[0].split(":", 1)[0]
        found.add(host)
        found.update(v for v in _QUERY_VALUE.findall(url))
        rest = rest.replace(m.group(0), " ")
    for m in _EMAIL.finditer(rest):
        found.add(m.group(0))
    rest = _EMAIL.sub(" ", rest)
    for m in _HOST.finditer(rest):
        if m.group(0).rsplit(".", 1)[1].lower() not in _FILE_EXTENSIONS:
            found.add(m.group(0))
    for pattern in (*_PHONES, _IP, _MIXED, _DIGITS, _BUCKETISH):
        found.update(m.group(0) for m in pattern.finditer(rest))
    return {f.lower() for f in found if len(f) >= _MIN_LENGTH and "redacted" not in f.lower()}


def dialogue_text(case: Case) -> str:
    return "\n".join([case.title, case.question, *(t.text for t in case.turns)])


@dataclass(frozen=True)
class DraftFindings:
    leaks: tuple[str, ...]
    defects: tuple[str, ...]


class LeakDetector:
    """Learned from a corpus: which strings belong to exactly one case, and which questions agents asked."""

    def __init__(self, owners: Mapping[str, str], agent_questions: Iterable[str], links: Iterable[str] = ()) -> None:
        self.owners = dict(owners)
        self.agent_questions = frozenset(agent_questions)
        self.links = frozenset(links)
        alternatives = sorted(self.owners, key=len, reverse=True)
        self._pattern = (
            re.compile(r"(?<![A-Za-z0-9])(?:" + "|".join(map(re.escape, alternatives)) + r")(?![A-Za-z0-9])", re.I)
            if alternatives else None
        )

    @classmethod
    def from_cases(cls, cases: Iterable[Case], official: Iterable[str] = ()) -> "LeakDetector":
        """``official``: Qiniu's own hosts (the link allow-list). Their names are no customer's, even where a small
        corpus shows them in one case only."""
        cases = list(cases)
        hosts = tuple(h.lower().lstrip(".") for h in official)
        texts = {c.id: dialogue_text(c).lower() for c in cases}
        holders: dict[str, set[str]] = defaultdict(set)
        for case in cases:
            for value in identifier_candidates(dialogue_text(case)):
                holders[value].add(case.id)
        owners: dict[str, str] = {}
        for value, seen_in in holders.items():
            if any(value == h or value.endswith("." + h) for h in hosts):
                continue
            # Counted by occurrence in the text, not by extraction: a host extracted from one
            # case's link may sit bare in another case's prose.
            cases_with = [cid for cid, t in texts.items() if value in t] if len(seen_in) == 1 else list(seen_in)
            if len(cases_with) == 1:
                owners[value] = cases_with[0]
        questions = set()
        for case in cases:
            for turn in case.turns:
                if turn.role != "agent":
                    continue
                for sentence in _SENTENCE_END.split(turn.text):
                    if clause := question_clause(sentence):
                        questions.add(clause)
        links = {_trim_url(m.group(0)) for c in cases for t in c.turns for m in _URL.finditer(t.text)}
        return cls(owners, questions, links)

    def leaks(self, draft: str, ticket: str, case_id: str | None = None) -> list[str]:
        """Strings of one other customer in ``draft`` that ``ticket`` does not contain."""
        if self._pattern is None:
            return []
        ticket_lower = f"{ticket}\n{reading_form(ticket)}".lower()
        found = []
        # As written and as a reader types it back: cdn[.]huomc[.]com and 1 3 8… are the customer's still.
        for text in (draft, reading_form(draft)):
            for m in self._pattern.finditer(text):
                value = m.group(0).lower()
                if self.owners.get(value) != case_id and value not in ticket_lower:
                    found.append(m.group(0))
        return list(dict.fromkeys(found))

    def defects(self, draft: str) -> list[str]:
        """What an agent would have to fix by hand before sending ``draft``."""
        found: list[str] = []
        found += [f"redaction token {m.group(0)}" for m in _REDACTION.finditer(draft)]
        found += [f"cut link at {draft[max(0, m.start() - 10):m.end() + 2]!r}" for m in _CUT_LINK.finditer(draft)]
        for m in _URL.finditer(draft):
            url = _trim_url(m.group(0))
            # Ends inside a word of a corpus link, as at a length limit. A parent path, a link without its
            # query, or a corpus link with text glued to it ("bucketCDN", "apply2.") is not a cut.
            if url not in self.links and any(
                known.startswith(url) and _CUT_INSIDE.match(known[len(url):]) and not _GLUED_TAIL.match(known[len(url):])
                for known in self.links
            ):
                found.append(f"cut link {url}")
        for m in _SLOT.finditer(draft):
            before, after = draft[max(0, m.start() - 12):m.start()], draft[m.end():m.end() + 2]
            if _LINK_CONTEXT.search(before) or after.startswith(("/", "?")):
                found.append(f"slot in place of a link: {before}{m.group(0)}")
        for sentence in _SENTENCE_END.split(draft):
            clause = question_clause(sentence)
            if clause and clause in self.agent_questions:
                found.append(f"question from another conversation: {clause}")
        found += [f"version numbers run together: {m.group(0)}" for m in _RUN_TOGETHER_VERSIONS.finditer(draft)]
        return found

    def check(self, draft: str, ticket: str, case_id: str | None = None) -> DraftFindings:
        return DraftFindings(tuple(self.leaks(draft, ticket, case_id)), tuple(self.defects(draft)))
