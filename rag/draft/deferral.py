"""The words for a verdict: what the LLM is told about the cases (``prompts/verdicts/<kind>.md``) and the
offline reply when no case is answered from (``prompts/replies/<kind>.md``). Texts are prompt files, so the
team tunes them without touching code; variables are strict like every prompt's.

A deferral says only what helps: when a related case is close, a conditional pointer to its resolution
(「如果您是指…，…」); for a how-to question, that area's documentation; and a request for exactly what this
question needs and the ticket lacks (``rag.draft.details``) — nothing when nothing is needed. The related
case's whole resolution goes to the agent as a hint, never into the customer's reply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path
from typing import Sequence

from rag.draft.actions import classify_reply
from rag.draft.areas import area_of
from rag.draft.details import phrase, request_for
from rag.draft.language import is_english
from rag.draft.policy import RELATED_MATCH, Verdict
from rag.draft.resolution import resolve
from rag.draft.sentences import CLAUSE_END, STEP_NUMBER, Piece, says_something
from rag.llm.prompts import PromptTemplate
from rag.notes import BugReport, Closing, FeatureRequest, NoCases, NoFit, Note, OffTopic, Staff, Vague
from rag.records import Hint, Hit, Ticket
from rag.text.identifiers import find_identifiers
from rag.text.markers import REPLY_GREETING, REPLY_GREETING_EN
from rag.text.normalise import normalise
from rag.text.tokens import char_ngrams

# A ticket with no retrieved case at all is treated like one whose cases do not fit.
_SAME_AS = {"no_cases": "no_fit"}
# When there is nothing to point at, to read or to ask: a plain holding line, no internal wording.
HOLDING = "这个问题这边确认一下，确认后第一时间回复您。"
HOW_CAN_WE_HELP = "请问有什么可以帮您？"
WHAT_IS_IT = "请问具体遇到了什么问题呢？方便的话说明一下您想实现的效果或看到的现象，这边好为您确认。"
# The same, for a ticket written in English (prompts/replies-en/).
_ENGLISH = {HOLDING: "we are looking into this and will get back to you as soon as we can.",
            HOW_CAN_WE_HELP: "How can we help you?",
            WHAT_IS_IT: "Could you tell us what you are trying to do, or what you see, so we can look into it?"}
_DIAGNOSIS = re.compile(r"可以判断|判断(是|为)|根据您的描述|(是|应该是|可能是)(由于|因为)|原因(是|[:：])|导致的|查看(了|到)|看了下|核实(了|到)")
# A clause that asks that customer something (「你们是不是没有配置…呢」) is no statement to point at.
_ASKS = re.compile(r"是不是|是否|吗|[？?]|呢[。.]?\s*$")
# A sentence that leans on the one before it (「如果是的话，主机记录不对」) is an orphan on its own.
_LEANS_BACK = re.compile(r"^\s*(如果是的话|是的话|如果是这样|这样的话|那么?|所以|因此|然后|同时|另外|此外|还有|也)")
# The customer is pointed at a related case from this match (the agent's hint from the policy's RELATED_MATCH):
# on the development tickets every pointer that carried a covered ticket's key content came from a case at 0.33
# or more, and those at 0.17-0.26 pointed uncovered tickets at other problems (two such were graded harmful).
POINTER_MATCH = 0.3
HINT_BUDGET = 1200
# A short title names a topic (「证书一直在审核」); a long one, or a question, is a past customer's own words and
# read to a support lead as pasted from elsewhere (「如果您是指“我想知道现在扣费是怎么扣的，每天扣多少…”」).
_TOPIC_CHARS = 12
_TITLE_ASKS = re.compile(r"[？?]|吗|呢|怎么|什么|如何|为什么|能否|是否|多少")
_POINTER_CHARS = 200  # of words, links aside: the team's answers run 130 characters at the median
_URL = re.compile(r"https?://\S+")
_SHARED_TOPIC_MIN = 4
# Versions (7.13.2, v3.1) in what a pointer would say, none of them the ticket's: a fix for that version, which
# another customer's version does not share (「降级到 7.13.2」 pointed at a 7.15.0 ticket was graded harmful).
_VERSION = re.compile(r"(?<![A-Za-z0-9_.])v?\d+\.\d+(?:\.\d+)*(?![A-Za-z0-9_.])", re.I)  # \w: 「用7.13.2」 would be one word


@dataclass(frozen=True)
class Deferral:
    """The parts of a deferral, each possibly empty."""

    pointer: str   # 「如果您是指…，…」 from the related case
    doc: str       # the area's documentation page, for a how-to question
    ask: str       # what to send, when something is needed
    hint: Hint | None  # the related case's resolution, for the agent only
    # Written in English for a ticket written in English; never with a pointer, which quotes a Chinese case.
    english: bool = False


def deferral(verdict: Verdict, ticket: Ticket) -> Deferral:
    text = ticket.query_text
    pointer = ""
    hint: Hint | None = None
    related = verdict.related
    if related is not None:
        resolution = resolve(related.case, text, ())
        if resolution is not None:
            hint = _hint(related, text)
            said = _pointer_text(resolution.pieces, text)
            topic = _topic(related) or _shared_topic(text, related)
            if topic and said and (related.match or 0.0) >= POINTER_MATCH:
                pointer = f"如果您是指“{topic}”，{said.rstrip('。')}。"
    elif verdict.elsewhere is not None:
        hint = _hint(verdict.elsewhere, text)
    area = area_of(text, ticket.product)
    english = is_english(ticket) and not pointer
    # A how-to question gets its area's documentation; so does any question with nothing to ask (rather than a
    # bare holding line).
    doc = ""
    if area is not None and (verdict.question == "howto" or not verdict.details):
        doc = (f"In the meantime, the {area.english} documentation may help: {area.doc}" if english
               else f"{area.name}相关的说明可以先参考：{area.doc}")
    return Deferral(pointer, doc, request_for(verdict.details, english=english), hint, english)


def _hint(hit: Hit, text: str) -> Hint | None:
    """The case's resolution for the agent: it reads on past the customer's budget (a fix cut off before its last
    step misled), the part closest to the ticket first."""
    full = resolve(hit.case, text, (), budget=HINT_BUDGET, closest_first=True)
    return Hint(hit.case_id, hit.title, round(hit.match or 0.0, 4), full.text) if full is not None else None


def desk_hint(hits: Sequence[Hit], text: str) -> Hint | None:
    """For a draft that answers from no case although cases came close (a hand-over, or a fitting case whose answer
    held nothing reusable): the closest dataset case at ``RELATED_MATCH`` or more that has a resolution, for the agent
    only. A neighbouring case often holds what the first did not (「覆盖范围」 for a slow custom domain, when the
    fitting case's agent only said 「您这边后续再确认一下」)."""
    close = sorted((h for h in hits if (h.match or 0.0) >= RELATED_MATCH and h.case.provenance is None),
                   key=lambda h: -(h.match or 0.0))
    return next((hint for h in close if (hint := _hint(h, text)) is not None), None)


def _pointer_text(pieces: Sequence[Piece], ticket: str) -> str:
    """What the pointer says: of the resolution's pieces that answer (not a question or a request to that customer),
    without any clause diagnosing that customer's case (under 「如果您是指…」 a cause stated as found reads as this
    customer's), the one that shares most with the ticket; the first on a tie, since agents lead with the fix."""
    grams = set(char_ngrams(ticket.lower()))
    best, best_score = "", -1.0
    for n, p in enumerate(pieces):
        if classify_reply(p.text) != "answer" or _LEANS_BACK.match(p.text):
            continue
        versions = _VERSION.findall(_URL.sub("", p.text))
        if versions and not any(v.lower() in ticket.lower() for v in versions):
            continue
        kept = [c for c in CLAUSE_END.split(p.text)
                if c.strip() and not _DIAGNOSIS.search(c) and not _ASKS.search(_URL.sub("", c))]
        # one step of a list said alone keeps no number (「如果您是指“急需发票”，2、增值税普通发票…」)
        said = STEP_NUMBER.sub("", "".join(kept).strip()).lstrip("，,；;").rstrip("，,；; ")
        # whole, and saying something: never a heading (「1、区别理解：」) or a fragment left hanging
        if not said or len(_URL.sub("", said)) > _POINTER_CHARS or not says_something(said):
            continue
        score = len(grams & set(char_ngrams(said.lower()))) + (0.5 if n == 0 else 0.0)
        if score > best_score:
            best, best_score = said, score
    return best


def _shared_topic(ticket: str, hit: Hit) -> str:
    """When the related case's title cannot name the topic: the longest run of Chinese the ticket shares with the
    case's title and question (「生命周期规则」), if it says enough to name one."""
    case_text = f"{hit.title}\n{hit.case.question}"
    best = ""
    for run in re.findall(r"[\u4e00-\u9fff]{%d,}" % _SHARED_TOPIC_MIN, ticket):
        m = SequenceMatcher(None, run, case_text, autojunk=False).find_longest_match(0, len(run), 0, len(case_text))
        if m.size > len(best):
            best = run[m.a: m.a + m.size]
    best = best.strip(_EDGE_WORDS)
    return best if len(best) >= _SHARED_TOPIC_MIN and not _STOP_TOPIC.fullmatch(best) else ""


# Particles a shared run may begin or end on (「了生命周期规则」): a topic starts and ends on a content word.
_EDGE_WORDS = "的了是在把给和与及就都也还又吗呢啊吧"
_STOP_TOPIC = re.compile(r"(怎么|如何|为什么|是不是|可以|能不能|请问|一下|这个|那个|我们|你们|还是|的|了|吗|呢)+")


def _topic(hit: Hit) -> str:
    """The related case's title as a topic to name, when it names no one's details."""
    # 「如果您是指“关于上传路径”」 reads as a heading (a support lead's read): the topic is what follows 关于.
    title = re.sub(r"^(关于|有关|咨询|求助)[:：\s]*", "", hit.title.strip().rstrip("？?。"))
    if not title or len(title) > _TOPIC_CHARS or re.search(r"\d{3,}|\[|【", title) or _TITLE_ASKS.search(title):
        return ""
    return "" if find_identifiers(normalise(title)) else title


@dataclass(frozen=True)
class VerdictTexts:
    prompts_dir: Path

    def _template(self, folder: str, kind: str) -> PromptTemplate:
        kind = _SAME_AS.get(kind, kind)
        return PromptTemplate.load(self.prompts_dir / folder / f"{kind}.md", f"{folder}/{kind}")

    @staticmethod
    def _values(template: PromptTemplate, verdict: Verdict, parts: Deferral | None = None) -> dict[str, object]:
        english = parts is not None and parts.english
        values = {
            "match": f"{verdict.match:.2f}",
            "threshold": f"{verdict.threshold:.2f}",
            "details": phrase(verdict.details) or "（这个问题不需要客户补充信息）",
            "case_ids": "、".join(h.case_id for h in verdict.fitting) or "（无）",
        }
        if parts is not None:
            values.update({"pointer": parts.pointer, "doc": parts.doc, "ask": parts.ask,
                           # Nothing to ask and no past case to point at: a doc page alone reads as a brush-off
                           # (graded useless in two reads); the customer is told the question is being looked at.
                           "holding": HOLDING if not parts.pointer and not parts.ask else ""})
        if verdict.kind == "vague":  # a greeting is asked what we can help with; a vague problem, what it is
            values["ask"] = WHAT_IS_IT if verdict.details else HOW_CAN_WE_HELP
        if english:
            values.update({k: _ENGLISH[v] for k, v in values.items() if isinstance(v, str) and v in _ENGLISH})
        return {k: v for k, v in values.items() if k in template.variables}

    def instruction(self, verdict: Verdict) -> str:
        """What the LLM is told about whether the cases fit, and what to do."""
        t = self._template("verdicts", verdict.kind)
        return t.render(**self._values(t, verdict))

    def reply(self, verdict: Verdict, parts: Deferral) -> str:
        """The offline reply for a verdict that is not answered from a past case."""
        t = self._template("replies-en" if parts.english else "replies", verdict.kind)
        text = t.render(**self._values(t, verdict, parts))
        greeting, holding = (REPLY_GREETING_EN, _ENGLISH[HOLDING]) if parts.english else (REPLY_GREETING, HOLDING)
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if len(lines) > 1 and lines[0] == greeting.strip():  # the greeting runs on into the first part
            first = lines[1][:1].lower() + lines[1][1:] if parts.english else lines[1]  # "Hello, we are…"
            lines[:2] = [greeting + first]
        text = "\n".join(lines)
        # A template whose optional parts are all empty is left with its greeting alone.
        return f"{greeting}{holding}" if text == greeting.strip() else text


def verdict_note(verdict: Verdict) -> Note:
    """Why a draft that does not answer from a past case does what it does, for the agent reading it."""
    if verdict.kind == "no_fit":
        return NoFit(verdict.match, verdict.threshold)
    return {"no_cases": NoCases, "vague": Vague, "closing": Closing, "off_topic": OffTopic, "staff": Staff,
            "bug_report": BugReport, "feature_request": FeatureRequest}[verdict.kind]()
