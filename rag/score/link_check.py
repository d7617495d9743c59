"""The grader's own reading of links: finding them in a draft, comparing them, and telling invented ones.

The drafter's guards (``rag/draft/guards.py`` with ``rag/text/links.py`` and ``rag/text/normalise.py``) remove the
links they judge unsafe; grading drafts with that same code would make every miss of the guards invisible
to the score as well. This module shares no code with them. It reads text in its own normal form
(``rag/score/reading.py``: defanged dots and ``@``, IDN hosts as punycode, spaced digits joined) and
finds links with its own, deliberately wider net: a scheme in any width or case with ``//`` or ``\\\\``
(browsers read ``https:\\\\host`` as ``https://host``), protocol-relative ``//host``, a bare host of any
alphabetic TLD followed by a path or query, a ``hxxp`` scheme, scripts and inline data.

A link in a draft is **invented** when it is none of: on an official host of the allow-list, in the
ticket, or a link some case of the corpus holds (the same link, or a shorter form of it). A public host
is not enough: ``github.com/attacker/x`` is invented even though agents often link to GitHub. A link
that passes carries no other: an address in its query or fragment (``…/login?next=https://evil.ru/x``,
percent-encoded or not) or a schemed link in its path is judged on its own, and counted when invented.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, NamedTuple, Sequence
from urllib.parse import unquote, urlsplit

from rag.records import Case
from rag.score.leaks import _FILE_EXTENSIONS, dialogue_text
from rag.score.reading import reading_form

__all__ = ["FoundLink", "LinkChecker", "find_links", "link_keys", "reading_form", "same_link"]

# What can continue a link: printable ASCII except quotes, angle and square brackets (a redaction token
# ``[REDACTED_PATH]`` ends the link before it), braces and the backtick.
_BODY = r"[A-Za-z0-9\-._~:/?#@!$&()*+,;=%\\|^]*"
_SCHEMED = re.compile(r"(?<![A-Za-z0-9+\-])(?:h[tx]{2}ps?|ftps?|wss?)[ \t]*:[ \t]*[/\\]{2}" + _BODY, re.I)
_PROTOCOL_RELATIVE = re.compile(r"(?<![A-Za-z0-9:/\\])//(?:[A-Za-z0-9\-]+\.)+[A-Za-z]{2,24}(?![A-Za-z0-9\-])" + _BODY)
_BARE = re.compile(
    r"(?<![A-Za-z0-9.\-@/_\\])(?:[A-Za-z0-9\-]+\.)+([A-Za-z][A-Za-z0-9\-]{1,23})(?:/|\\|[:?#](?=[A-Za-z0-9]))" + _BODY
)
_UNSAFE = re.compile(
    r"(?<![A-Za-z0-9+.\-])(?:(?:javascript|vbscript|livescript)[ \t]*:\S*|data[ \t]*:[ \t]*[a-z]+/[a-z0-9.+\-]+[;,]\S*"
    r"|file:[/\\]\S*)",
    re.I,
)
_SCHEME = re.compile(r"^[a-z]+[ \t]*:[ \t]*[/\\]{2}|^//", re.I)
_TRAILING = ".,;:!?)]}-|^'\""
# How the dataset glues text to a link: a list number ("apply2.补全信息"), an English word ("cache-refreshTip",
# "bucketCDN"), a platform name. A link that differs from another only by such a tail is the same page.
_GLUED_TAIL = re.compile(r"(?:[A-Z][A-Za-z]*|\d{1,2}\.?|windows|linux|macos)")


class FoundLink(NamedTuple):
    text: str  # as written in the reading form, trimmed
    key: str  # host lower-cased, no scheme, "/" for "\", no trailing "/": what comparisons use
    host: str
    unsafe: bool


def _trim(raw: str) -> str:
    raw = re.split(r"-{3,}", raw, maxsplit=1)[0]
    return raw.rstrip(_TRAILING)


def _parts(link: str) -> tuple[str, str]:
    """(host, key) of a link with or without a scheme; the key drops the scheme, user and port."""
    rest = _SCHEME.sub("", link.replace("\\", "/"))
    m = re.search(r"[/?#]", rest)
    authority, tail = (rest[:m.start()], rest[m.start():]) if m else (rest, "")
    host = authority.rsplit("@", 1)[-1].split(":", 1)[0].lower().strip(".")
    return host, (host + tail).rstrip("/")


def find_links(text: str) -> list[FoundLink]:
    """Every link in ``text`` (read in its reading form), in order, without duplicates."""
    form = reading_form(text)
    spans: list[tuple[int, int, bool]] = [(m.start(), m.end(), True) for m in _UNSAFE.finditer(form)]
    for pattern in (_SCHEMED, _PROTOCOL_RELATIVE):
        spans += [(m.start(), m.end(), False) for m in pattern.finditer(form)]
    for m in _BARE.finditer(form):
        if m.group(1).lower() not in _FILE_EXTENSIONS:
            spans.append((m.start(), m.end(), False))
    spans.sort(key=lambda s: (s[0], -s[1]))
    out: dict[str, FoundLink] = {}
    end = -1
    for start, stop, unsafe in spans:
        if start < end:
            continue
        end = stop
        raw = _trim(form[start:stop])
        if unsafe:
            out.setdefault(raw.lower(), FoundLink(raw, raw.lower(), "", True))
            continue
        host, key = _parts(raw)
        if host and "." in host:
            out.setdefault(key, FoundLink(raw, key, host, False))
    return list(out.values())


def _extends(longer: str, shorter: str) -> bool:
    """``longer`` is ``shorter`` continued by a path, a query, or a tail the dataset glued to it."""
    if not longer.startswith(shorter):
        return False
    rest = longer[len(shorter):]
    return not rest or rest[0] in "/?#" or shorter.endswith("/") or bool(_GLUED_TAIL.fullmatch(rest))


def same_link(a: str, b: str) -> bool:
    """Two link keys name the same page: equal, or one is the other with a tail the dataset glued to it."""
    return a == b or (a.startswith(b) and bool(_GLUED_TAIL.fullmatch(a[len(b):]))) or (
        b.startswith(a) and bool(_GLUED_TAIL.fullmatch(b[len(a):])))


def link_keys(text: str) -> list[str]:
    return [f.key for f in find_links(text) if not f.unsafe]


def host_allowed(host: str, allowlist: Sequence[str]) -> bool:
    return any(host == d.lower() or host.endswith("." + d.lower()) for d in allowlist)


@dataclass(frozen=True)
class LinkChecker:
    """Learned from a corpus: every link its dialogues hold; with the allow-list of official doc hosts."""

    known: frozenset[str]
    allowlist: tuple[str, ...]

    @classmethod
    def from_cases(cls, cases: Iterable[Case], allowlist: Iterable[str]) -> "LinkChecker":
        return cls(frozenset(k for c in cases for k in link_keys(dialogue_text(c))), tuple(allowlist))

    def _known(self, key: str) -> bool:
        return any(_extends(k, key) for k in self.known)

    def invented(self, draft: str, ticket: str) -> list[str]:
        """Links of ``draft`` on no official host, not in ``ticket`` and in no case of the corpus, and the
        links that a passing link carries (an open redirect) judged the same way."""
        ticket_keys = link_keys(ticket)
        ticket_form = reading_form(ticket).lower()

        def passes(link: FoundLink) -> bool:
            return (host_allowed(link.host, self.allowlist) or link.key.lower() in ticket_form
                    or any(_extends(t, link.key) for t in ticket_keys) or self._known(link.key))

        found = []
        for link in find_links(draft):
            if link.unsafe or not passes(link):
                found.append(link.text)
                continue
            found += [inner.text for inner in carried_links(link) if inner.unsafe or not passes(inner)]
        return found


_UNQUOTE_ROUNDS = 3  # %2568ttps → %68ttps → https


def carried_links(link: FoundLink) -> list[FoundLink]:
    """Links inside ``link``: in a query value or the fragment (any form), or in the path with a scheme."""
    try:
        parts = urlsplit("http://" + link.key)
    except ValueError:
        return []
    pieces = [(parts.query, False), (parts.fragment, False), (parts.path, True)]
    out: list[FoundLink] = []
    for piece, schemed_only in pieces:
        for _ in range(_UNQUOTE_ROUNDS):
            if unquote(piece) == piece:
                break
            piece = unquote(piece)
        # "=" and "&" end a query value: the link a value holds starts after them.
        for inner in find_links(re.sub(r"[=&]", " ", piece)):
            if schemed_only and not (inner.unsafe or _SCHEME.match(inner.text)):
                continue
            out.append(inner)
    return out
