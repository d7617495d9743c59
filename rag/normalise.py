"""One normal form for every safety check, with a way back to the original text.

An attacker writes ``ｈｔｔｐｓ://``, ``HTTPS://``, ``evil\u200b.ru`` or ``cdn.huomc。com``; a check that
reads the raw text misses all of them. Every guard therefore reads a *view*: NFKC (full width →
ASCII), zero-width, bidi and control characters removed, line and paragraph separators read as
spaces, and an ideographic full stop between ASCII letters or digits read as a dot. The view keeps,
for each of its characters, the span of the original it came from, so a guard that finds something
in the view removes exactly those characters from the original, and the rest of a Chinese reply
keeps its full-width punctuation.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Sequence

# Characters that are never legitimate in a ticket or a reply and only serve to split a word for
# a pattern: zero-width (U+200B–U+200D, U+2060, U+FEFF), bidi overrides, soft hyphen. All are in
# Unicode category Cf; controls (Cc) other than tab and newline go too.
_KEEP_CONTROLS = {"\n", "\t"}
_SEPARATORS = {"\u2028", "\u2029", "\r", "\x85", "\x0b", "\x0c"}
_DOTS = {"\u3002", "\uff61", "\uff0e"}  # 。｡． used as a dot between ASCII labels


# Also invisible, though not in a "C" category: the Hangul fillers (Lo), the Mongolian vowel separator,
# and variation selectors (Mn), which render as nothing when they follow a letter.
_INVISIBLE_EXTRA = frozenset("\u180e\u3164\u115f\u1160\uffa0") | frozenset(map(chr, range(0xFE00, 0xFE10)))
_HAS_EXTRA = re.compile("[\u180e\u3164\u115f\u1160\uffa0\ufe00-\ufe0f]")


def is_invisible(ch: str) -> bool:
    cat = unicodedata.category(ch)
    # Cs/Co/Cn (surrogates, private use, unassigned) show nothing a reader could check either.
    return (cat in ("Cf", "Cs", "Co", "Cn") or ch in _INVISIBLE_EXTRA
            or (cat == "Cc" and ch not in _KEEP_CONTROLS and ch not in _SEPARATORS))


_ASCII_DOT = re.compile(r"(?<=[A-Za-z0-9])[\u3002\uff61](?=[A-Za-z0-9])")


def _plain(text: str) -> bool:
    """Nothing for the view to do but dots: ``isprintable`` is False for every Cc, Cf and separator."""
    return (text.replace("\n", "").replace("\t", "").isprintable() and not _HAS_EXTRA.search(text)
            and unicodedata.is_normalized("NFKC", text))


def strip_invisible(text: str) -> str:
    """``text`` without zero-width, bidi and control characters (tab and newline stay)."""
    if text.replace("\n", "").replace("\t", "").isprintable() and not _HAS_EXTRA.search(text):
        return text
    return "".join(ch for ch in text if not is_invisible(ch))


def _is_ascii_alnum(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


@dataclass(frozen=True)
class View:
    """The normal form of ``original``; ``starts[i]``/``ends[i]`` is the original span of view char ``i``."""

    original: str
    text: str
    starts: Sequence[int]
    ends: Sequence[int]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span covering view characters ``start:end``."""
        if start >= end:
            pos = self.starts[start] if start < len(self.starts) else len(self.original)
            return pos, pos
        return self.starts[start], self.ends[end - 1]

    def source(self, start: int, end: int) -> str:
        a, b = self.span(start, end)
        return self.original[a:b]


def view(text: str) -> View:
    """Normalise ``text`` character by character (linear time), remembering where each piece came from."""
    if _plain(text):  # most text: nothing to do but read 。 between ASCII labels as a dot (same length)
        return View(text, _ASCII_DOT.sub(".", text), range(len(text)), range(1, len(text) + 1))
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for i, ch in enumerate(text):
        if is_invisible(ch):
            continue
        if ch in _SEPARATORS:
            norm = "\n" if ch in ("\r", "\u2029") else " "
        else:
            norm = unicodedata.normalize("NFKC", ch)
        for piece in norm:
            if is_invisible(piece):  # a compatibility form may fold into an invisible one (U+FFA0 -> U+3164)
                continue
            out.append(piece)
            starts.append(i)
            ends.append(i + 1)
    # A dot written as 。 between ASCII labels ("cdn.huomc。com") is still a dot to a browser's user.
    for j, ch in enumerate(out):
        if ch in _DOTS and 0 < j < len(out) - 1 and _is_ascii_alnum(out[j - 1]) and _is_ascii_alnum(out[j + 1]):
            out[j] = "."
    return View(text, "".join(out), starts, ends)


def normalise(text: str) -> str:
    return view(text).text
