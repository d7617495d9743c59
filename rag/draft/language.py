"""Which language the customer wrote in: an English ticket is deferred in English; an answer drawn from a past case
stays in the team's Chinese, under one English line."""

from __future__ import annotations

import re

from rag.records import Ticket

_LATIN = re.compile(r"[A-Za-z]")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_WORD = re.compile(r"[A-Za-z]+")
# Function words: prose in English has them, a pasted log or JSON error mostly does not.
_ENGLISH_FUNCTION_WORDS = frozenset(
    "the a an to of in on for is are was be my our your i we you it this that how what why can could "
    "please not do does did have has with and or but when after since".split()
)


def is_english(ticket: Ticket) -> bool:
    """The customer wrote ``ticket`` (its title and message) in English."""
    return writes_english(ticket.query_text)


def writes_english(text: str) -> bool:
    """Mostly Latin letters and next to no Chinese."""
    latin, cjk = len(_LATIN.findall(text)), len(_CJK.findall(text))
    function_words = sum(1 for w in _WORD.findall(text) if w.lower() in _ENGLISH_FUNCTION_WORDS)
    # A Chinese ticket with an English error pasted in has Chinese words around it.
    return function_words >= 3 and cjk * 4 < latin and cjk <= 3


# Not content either, though prose without them still reads as English.
_NOT_CONTENT = _ENGLISH_FUNCTION_WORDS | frozenset("me us who there its".split())


def content_words(text: str) -> list[str]:
    """The English words of ``text`` that are not function words."""
    return [w for w in _WORD.findall(text) if w.lower() not in _NOT_CONTENT]
