"""The dataset's own markers and the courtesy phrases around every dialogue, in one place.

The de-identified dataset replaces a customer's details with ``[REDACTED_<KIND>]`` tokens and an
attachment with ``[图片]``; customers and agents open with greetings and close with thanks. Parsing,
retrieval and drafting all recognise these; they take the patterns from here, so a new token kind or
greeting is added once. Only ``re``: ``rag.corpus.parse`` imports this, and nothing downstream of it.

``rag/score/`` keeps its own patterns on purpose: a safety metric never shares code with the guards it
grades (a miss here would then be invisible to both).
"""

from __future__ import annotations

import re

# --- redaction tokens -------------------------------------------------------------------------------

REDACTION_PREFIX = "[REDACTED_"
# A sentence holding the bare word at all carries another customer's detail: a token cut short by a
# truncation, or written without its brackets, is still one (the offline drafter drops such sentences).
REDACTION_WORD = "REDACTED"
REDACTION_TOKEN = re.compile(r"\[REDACTED_[A-Z_]+\]")
# A link ending in a token (``https://[REDACTED_DOMAIN]``): its closing ``]`` is the token's, not punctuation.
REDACTION_TOKEN_AT_END = re.compile(REDACTION_TOKEN.pattern + "$")
_KIND = re.compile(r"[A-Z]+(?:_[A-Z]+)*")


def redaction_token(kind: str) -> str:
    """The dataset's token for a removed detail of ``kind`` (``"EMAIL"`` → ``[REDACTED_EMAIL]``)."""
    if not _KIND.fullmatch(kind):
        raise ValueError(f"a redaction kind is upper-case words joined by '_', not {kind!r}")
    return f"{REDACTION_PREFIX}{kind}]"


# --- attachments ------------------------------------------------------------------------------------

IMAGE_MARKER = "[图片]"
IMAGE = re.compile(re.escape(IMAGE_MARKER))
# What a lexical index must not see as words: every redaction token and the image marker.
PLACEHOLDERS = re.compile(f"{REDACTION_TOKEN.pattern}|{IMAGE.pattern}")


def strip_image_markers(text: str) -> str:
    return text.replace(IMAGE_MARKER, "")


# --- greetings and thanks ---------------------------------------------------------------------------

POLITE_GREETING = "您好"
# The reply's opening, as the corpus's agents write it.
REPLY_GREETING = POLITE_GREETING + "，"
# An English reply's opening (a ticket written in English is deferred in English).
REPLY_GREETING_EN = "Hello, "
GREETINGS_ZH = (POLITE_GREETING, "你好")
GREETINGS_EN = ("hello", "hi")
GREETINGS = GREETINGS_ZH + GREETINGS_EN
# "亲" (dear) opens agents' turns, rarely a customer's: the answer side strips it, the query side does not
# (the query rewrite was measured without it; see rag.retrieve.query).
ENDEARMENT = "亲"
THANKS = ("谢谢", "麻烦了", "辛苦了")
_GREETING_TAIL = r"[，,！!。\s]*"


def _alternation(words: tuple[str, ...]) -> str:
    # Longest first, so no word loses to a prefix of itself.
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


# The greetings that open an agent's answer, repeated or not ("您好，亲，"): cut before the answer is reused.
ANSWER_GREETING = re.compile(rf"^\s*(({_alternation(GREETINGS + (ENDEARMENT,))}){_GREETING_TAIL})+", re.I)
# One greeting at the very start of a customer's ticket.
TICKET_GREETING = re.compile(rf"^({_alternation(GREETINGS)}){_GREETING_TAIL}", re.I)
THANKS_PHRASE = re.compile(rf"({_alternation(THANKS)})[！!。]*")
