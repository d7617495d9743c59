"""The resolution of a past case: the agent turns that resolve the problem a new ticket asks about.

A past dialogue seldom is one question and one answer. The agent asks back ("什么语言的SDK呢？"), the
customer answers, the fix follows; or the customer, once helped, moves on to another problem. So the dialogue
is read as threads: a thread opens with the customer's question and runs through the agent's questions back
and the customer's answers to them, until the customer asks something new. The thread whose customer side is
closest to the ticket (and any about as close: a ticket may ask two things) are the ones whose agent turns are
reused, so a fix that follows a question back counts and another problem's follow-ups are never stitched in. Within it,
each sentence is kept whole, without the clauses tied to that customer, or dropped (``rag.draft.sentences``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Sequence

from rag.draft.sentences import STEP_NUMBER, Judge, Piece, join, pieces_of, reusable
from rag.records import CaseRecord, Turn, Wording
from rag.text.markers import strip_image_markers
from rag.text.tokens import char_ngrams

# A customer turn that asks something: a question mark or a question word.
_ASKS = re.compile(r"[？?]|吗|呢|怎么|如何|为什么|为何|是不是|能不能|可不可以|是否|多久|多长时间|什么|哪(个|些|里|儿)")
# A customer reporting the problem fixed (「改了覆盖范围可以了」): whatever they write next is another problem.
_SOLVED = re.compile(r"(可以|好|解决|搞定|正常)了|没问题了|\bok了", re.I)
# An agent turn that asks the customer something: what the customer says next answers it.
_ASKS_BACK = re.compile(r"([？?]|吗|呢|么)\s*[。.]?\s*$|提供(一)?下|发(一)?下|告知|截图")
# A customer turn that goes on about what was just said ("那这个…", "还是不行…") rather than opening a new problem.
_GOES_ON = re.compile(r"\s*(那|那么|这个|这样|还是|然后|所以|但是|可是|可|还|也|就是|按照|照着|试了|改了|不行|没用|依然|仍然)")
# A customer turn that pushes back on the answer just given (「暂时没办法分开，有没有其他办法？」, 「还有什么别的方案吗」)
# asks on about the same problem: the first answer, often the one with the detail, stays in its thread.
_PUSHES_BACK = re.compile(r"(有没有|还有没有|还有|有)(什么)?(其他|其它|别的)的?(办法|方法|方案|解决办法|途径)|没(有)?办法|暂时(没|不)"
                          r"|不是应该|难道")
# A thread is about the ticket when this share of the ticket's character bigrams occurs in its customer side,
# and at least this share of the closest thread's: another problem the past customer moved on to shares
# almost none (an unrelated follow-up is left out; two asked together are both kept).
_CLOSE = 0.06
_SHARE_OF_BEST = 0.5
# A ticket asking two things (「1. 黑屏能不能缩短；2. 有没有回调能判断…」) shares most of its words with the thread
# about the first: each of its questions also picks the thread closest to it, when that thread's customer side holds
# this share of the question's bigrams (an unrelated follow-up shares a few words, not a question's worth).
_CLOSE_TO_QUESTION = 0.2
_QUESTION_MIN_CHARS = 6
# A ticket this close to another customer's wording of a thread (the F1 of their character n-grams) asks that
# thread's question. Development tickets' key content: 0.727 without the wordings' turns; 0.818 at 0.1 to 0.2, 0.795
# at 0.25 and 0.3 (with the share of the ticket's n-grams instead of the F1: 0.818 too, but short tickets took stray
# threads and the leave-one-out answers' ROUGE-L fell 0.295 -> 0.287; with the F1 it rose to 0.309).
_CLOSE_TO_WORDING = 0.2
# A ticket's questions: its sentences (each with its own mark), list items and clauses after 「另外」「还有」.
_SENTENCE = re.compile(r"[^。！？?!；;\n]+[。！？?!；;]?")
_QUESTION_SPLIT = re.compile(r"(?:^|\s)\d+[.、)）]\s*|另外|还有|此外|其次")
_ASKS_IN_TICKET = re.compile(_ASKS.pattern + r"|有没有|能否|可否")
# Beyond this a resolution takes no more sentences (never cutting one): the team's answers run 130 characters at
# the median and 535 at the 90th percentile of the corpus's cases; agents do not paste essays.
BODY_BUDGET = 450
# A list the budget would cut after a step goes on to its next step within this much more: 「三条命令就可以了。1.先下载
# qshell…」 with the listing and deleting steps cut promised three commands and gave one.
LIST_GRACE = 150


@dataclass(frozen=True)
class Thread:
    index: int
    customer: str               # what the customer said in it
    agent: tuple[str, ...]      # the agent's turns, filler left out
    asked: tuple[str, ...] = ()  # other customers' wordings of what it asks (the case's asked wordings of its turns)


@dataclass(frozen=True)
class Resolution:
    case_id: str
    threads: tuple[int, ...]    # the threads it was taken from
    pieces: tuple[Piece, ...]
    closeness: float = 0.0      # how much of the ticket the closest of those threads' customer turns share

    @property
    def text(self) -> str:
        return join(self.pieces)


def threads(question: str, turns: Sequence[Turn], asked: Sequence[Wording] = ()) -> list[Thread]:
    """The dialogue as threads (see the module's docstring); the case's question opens the first. ``asked``: the
    case's wordings, each joining the thread of the customer turn it names (``Wording.turn``)."""
    out: list[tuple[list[str], list[str]]] = [([question], [])]
    thread_of_turn: dict[int, int] = {}
    asked_back = solved = False
    ordinal = 0
    for t in turns:
        numbered = t.role == "customer" and not t.is_filler  # numbered as the sidecar numbers them
        if numbered:
            ordinal += 1
            thread_of_turn[ordinal] = len(out) - 1  # where it goes unless it opens a thread (below)
        text = strip_image_markers(t.text).strip()
        if not text:
            continue
        if t.role == "agent":
            if not t.is_filler:
                out[-1][1].append(text)
                asked_back = bool(_ASKS_BACK.search(text))
            continue
        # "那这个是什么问题呢？" asks on about the same problem: it continues the thread.
        opens = (bool(out[-1][1]) and not _GOES_ON.match(text) and not _PUSHES_BACK.search(text)
                 and (solved or (not asked_back and bool(_ASKS.search(text)))))
        if opens:
            out.append(([text], []))
            if numbered:
                thread_of_turn[ordinal] = len(out) - 1
        else:
            out[-1][0].append(text)
        asked_back = False
        solved = bool(_SOLVED.search(text))
    wordings: dict[int, list[str]] = {}
    for w in asked:
        if w.turn in thread_of_turn:
            wordings.setdefault(thread_of_turn[w.turn], []).append(w.text)
    return [Thread(i, "\n".join(c), tuple(a), tuple(wordings.get(i, ()))) for i, (c, a) in enumerate(out)]


def _closeness(ticket: str, text: str) -> float:
    grams = set(char_ngrams(ticket.lower()))
    return len(grams & set(char_ngrams(text.lower()))) / len(grams) if grams else 0.0


def _overlap(ticket: str, wording: str) -> float:
    """The F1 of the two texts' character n-grams: a short ticket naming only the product (「免费证书怎么手动申请」)
    shares its few words with every wording about it, and the wording's own question (「有效期只有90天」) with none."""
    mine, theirs = set(char_ngrams(ticket.lower())), set(char_ngrams(wording.lower()))
    both = len(mine & theirs)
    return 2 * both / (len(mine) + len(theirs)) if both else 0.0


def _own_closeness(ticket: str, thread: Thread, case_title: str) -> float:
    """How close the ticket is to the thread's customer side (the case's title heads the first thread)."""
    return _closeness(ticket, (case_title + "\n" if thread.index == 0 else "") + thread.customer)


def _wording_closeness(ticket: str, thread: Thread) -> float:
    """How close the ticket is to the closest of other customers' wordings of the thread (0 without any)."""
    return max((_overlap(ticket, w) for w in thread.asked), default=0.0)


def pick_threads(ticket: str, case_title: str, all_threads: Sequence[Thread], *,
                 closest_first: bool = False) -> list[Thread]:
    """The threads the ticket asks about, in dialogue order (``closest_first``: the closest first): the closest one
    and those about as close (a ticket may ask two things the past customer asked in turn); the case's own
    question when none is close."""
    answered = [t for t in all_threads if t.agent]
    if not answered:
        return []
    scored = [(_own_closeness(ticket, t, case_title), t) for t in answered]
    best = max(s for s, _ in scored)
    # A thread the ticket asks in another customer's words (rag.corpus.asked): a paraphrase shares few characters
    # with the past customer's own (「90天」, 「怎么3个月啦」) and many with a wording of the same question.
    worded = max(((_wording_closeness(ticket, t), t) for t in answered if t.asked), key=lambda st: st[0], default=None)
    # ... when the ticket is closer to it than to any thread in the past customer's own words: a short ticket
    # (「免费证书怎么手动申请？」) shares its few words with every wording about the product.
    worded = worded if worded is not None and worded[0] >= max(_CLOSE_TO_WORDING, best) else None
    if best < _CLOSE:
        return [worded[1]] if worded else answered[:1]
    # The case's own question counts whenever the ticket touches it: the match was judged on it.
    picked = [(s, t) for s, t in scored if s >= max(_CLOSE, _SHARE_OF_BEST * best) or (t is answered[0] and s >= _CLOSE)]
    for asked in questions(ticket):
        near = max(answered, key=lambda t: _closeness(asked, t.customer))
        if all(t is not near for _, t in picked) and _closeness(asked, near.customer) >= _CLOSE_TO_QUESTION:
            picked.append((next(s for s, t in scored if t is near), near))
    if worded and all(t is not worded[1] for _, t in picked):
        picked.append(worded)
    picked.sort(key=lambda st: st[1].index)
    if closest_first:
        picked.sort(key=lambda st: -st[0])  # stable: equally close threads stay in dialogue order
    return [t for _, t in picked]


def questions(ticket: str) -> list[str]:
    """The parts of a ticket that ask something, each long enough to name what it asks."""
    parts = (p.strip() for s in _SENTENCE.findall(ticket) for p in _QUESTION_SPLIT.split(s))
    return [p for p in parts if len(p) >= _QUESTION_MIN_CHARS and _ASKS_IN_TICKET.search(p)]


def resolve(case: CaseRecord, ticket: str, others: Sequence[str], budget: int = BODY_BUDGET, *,
            closest_first: bool = False, list_grace: int = LIST_GRACE) -> Resolution | None:
    """The reusable resolution of ``case`` for ``ticket``: the picked thread's sentences that hold for anyone,
    in order, whole, within ``budget``; None when nothing in it is reusable. ``others``: the other candidates'
    answers (a value they also hold is knowledge, not that customer's). ``closest_first``: the threads closest to
    the ticket first, not in dialogue order (the agent's hint: the part that answers is read first, never cut).
    ``list_grace``: how far past ``budget`` a numbered list may go on to its next step."""
    turns = case.dialogue.turns if case.dialogue is not None else (Turn("agent", case.answer),)
    question = case.dialogue.question if case.dialogue is not None else case.question
    all_threads = threads(question, turns, case.asked)
    chosen = pick_threads(ticket, case.title, all_threads, closest_first=closest_first)
    if not chosen:
        return None
    judge = Judge.of(ticket, others)
    pieces = reusable(pieces_of("\n".join(turn for t in chosen for turn in t.agent)), judge)
    # Nothing reusable where the ticket points is no licence to take another thread's: that is another problem's
    # fix (an SDK upgrade for upload packet loss sent to a slow-domain question was graded harmful).
    kept: list[Piece] = []
    size = 0
    for piece in pieces:
        if kept and size + len(piece.text) > budget and not (
                size + len(piece.text) <= budget + list_grace and _next_step(piece, kept)):
            break
        if _repeats(piece, kept):
            continue
        kept.append(piece)
        size += len(piece.text)
    near = max(max(_own_closeness(ticket, t, case.title), _wording_closeness(ticket, t)) for t in chosen)
    return Resolution(case.id, tuple(t.index for t in chosen), unnumber_lone_step(kept), near) if kept else None


def unnumber_lone_step(pieces: Sequence[Piece]) -> tuple[Piece, ...]:
    """A list cut after its first step (the budget, or the next step dropped as that customer's) loses the step's
    number: a reply ending on 「1.可以使用控制台的转码样式」 with no 2 read as cut off (a support lead's read). A 2 anywhere
    in what is kept (「1、…2、…」 on one line) keeps the list as it is."""
    second = re.compile(r"(?<![\d.])2[.、](?!\d)")
    if any(second.search(p.text) for p in pieces):
        return tuple(pieces)
    return tuple(replace(p, text=p.text[m.end():]) if (m := STEP_NUMBER.match(p.text)) and m.group(1) == "1" else p
                 for p in pieces)


def _next_step(piece: Piece, kept: Sequence[Piece]) -> bool:
    """``piece`` is the step after the last numbered step kept."""
    step = STEP_NUMBER.match(piece.text)
    last = next((m for p in reversed(kept) if (m := STEP_NUMBER.match(p.text))), None)
    return step is not None and last is not None and int(step.group(1)) == int(last.group(1)) + 1


def _repeats(piece: Piece, kept: Sequence[Piece], similarity: float = 0.8) -> bool:
    """The agent said it already in this answer (a template pasted twice, a step restated)."""
    from rapidfuzz.distance import LCSseq

    core = re.sub(r"\s+", "", piece.text)
    for k in kept:
        other = re.sub(r"\s+", "", k.text)
        if len(core) >= 8 and (core in other or LCSseq.normalized_similarity(core, other) >= similarity):
            return True
    return False
