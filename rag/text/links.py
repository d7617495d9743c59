"""Find links in dataset text and recover their clean form.

In the dataset a link is glued to whatever follows it: a list number (``apply2.补全信息``), an English
word (``cache-refreshTip``, ``bucketCDN``), a bracket (``faq[图片]``) or a JSON tail. Qiniu's own
links follow known conventions (lowercase kebab slugs), so their glued tails can be cut safely;
a customer's link is only cut at characters a URL cannot contain.
"""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import urlsplit

from rag.text.markers import REDACTION_TOKEN, REDACTION_TOKEN_AT_END
from rag.text.domains import is_domain

_URL = re.compile(r"https?://[\x21-\x7e]+", re.I)
_HARD_STOPS = re.compile(r"[\"'\\]|-{3,}")
_TRAILING_PUNCT = ".,;:!?)]}-"
_GLUED_WORD = re.compile(r"(?<=[a-z0-9])[A-Z][A-Za-z]*$")
_GLUED_NUMBER = re.compile(r"(?<=[a-z])\d{1,2}\.?$")
_GLUED_PLATFORM = re.compile(r"(?<=[a-z])(windows|linux|macos)$")


def is_qiniu_host(host: str) -> bool:
    host = host.lower()
    return host == "qiniu.com" or host.endswith(".qiniu.com")


def _cut_bracket(url: str) -> str:
    """Cut at the first ``[`` that does not open a redaction token."""
    pos = 0
    while (i := url.find("[", pos)) != -1:
        m = REDACTION_TOKEN.match(url, i)
        if not m:
            return url[:i]
        pos = m.end()
    return url


def _strip_trailing(url: str) -> str:
    """Drop trailing punctuation, but never the ``]`` that closes a redaction token."""
    while url and url[-1] in _TRAILING_PUNCT:
        if REDACTION_TOKEN_AT_END.search(url):
            break
        url = url[:-1]
    return url


def clean_link(raw: str) -> str | None:
    """Return the clean form of a raw link found in the dataset, or None when nothing usable is left."""
    url = _HARD_STOPS.split(raw, maxsplit=1)[0]
    url = _cut_bracket(url)
    url = _strip_trailing(url)
    url = re.sub(r"(?<=[^/:])/{2,}$", "", url)
    try:
        parts = urlsplit(url)
        parts.hostname  # noqa: B018 - raises on a redacted host such as [REDACTED_IP]
    except ValueError:
        return url if len(url) > len("https://") else None
    if not parts.netloc:
        return None
    if is_qiniu_host(parts.hostname or "") and not parts.query and not parts.fragment:
        head, _, last = parts.path.rpartition("/")
        if last and not REDACTION_TOKEN.search(last):
            for pattern in (_GLUED_WORD, _GLUED_NUMBER, _GLUED_PLATFORM):
                trimmed = pattern.sub("", last)
                if trimmed:
                    last = trimmed
            url = _strip_trailing(f"{parts.scheme}://{parts.netloc}{head}/{last}")
    return url


def find_links(text: str) -> tuple[str, ...]:
    """Clean links in order of appearance, without duplicates."""
    seen: dict[str, None] = {}
    for m in _URL.finditer(text):
        link = clean_link(m.group(0))
        if link:
            seen.setdefault(link, None)
    return tuple(seen)


def raw_links(text: str) -> list[str]:
    return [m.group(0) for m in _URL.finditer(text)]


def separate_links(text: str) -> str:
    """Put a space after each clean link so the text glued to it reads as text again."""
    out: list[str] = []
    pos = 0
    for m in _URL.finditer(text):
        raw = m.group(0)
        clean = clean_link(raw)
        out.append(text[pos : m.start()])
        pos = m.end()
        if not clean or not raw.startswith(clean):
            out.append(raw)
            continue
        tail = raw[len(clean):] + text[m.end() : m.end() + 1]
        out.append(clean + (" " if tail and not tail[0].isspace() else "") + raw[len(clean):])
    out.append(text[pos:])
    return "".join(out)


# What a guard must find, in text already in its normal form (``rag.text.normalise``): links with a
# scheme in any case, protocol-relative ones, links without a scheme (``evil.example/login``) and
# scripts or inline data. Each pattern starts only where a word cannot continue, so a 1 MB string
# costs one pass.
_SCHEMED = re.compile(r"(?<![a-z0-9+.\-])(?:https?|ftps?|wss?)://[\x21-\x7e]*", re.I)
_UNSAFE = re.compile(
    r"(?<![a-z0-9+.\-])(?:(?:javascript|vbscript|livescript)[ \t]*:[\x21-\x7e]*"
    r"|data[ \t]*:[ \t]*[a-z]+/[a-z0-9.+\-]+[;,][\x21-\x7e]*"
    r"|file:/[\x21-\x7e]*)",
    re.I,
)
_PROTOCOL_RELATIVE = re.compile(r"(?<![a-z0-9:/])//(?:[a-z0-9\-]{1,63}\.)+[a-z0-9\-]{2,63}(?:[:/?#][\x21-\x7e]*)?", re.I)
# A bare host followed by a path, port or query: a link to a browser even without a scheme. A
# bare host alone is a domain, for the identifier checks.
_BARE = re.compile(r"(?<![a-z0-9.\-@/_])(?:[a-z0-9\-]{1,63}\.)+[a-z][a-z0-9\-]{1,62}(?=[:/?#])[:/?#][\x21-\x7e]*", re.I)
_BARE_IP = re.compile(r"(?<![\d.\-/])(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?/[\x21-\x7e]*")


class LinkSpan(NamedTuple):
    start: int
    end: int
    text: str
    kind: str  # "url": http(s)/ftp/ws, with or without scheme; "unsafe": javascript:, data:, file:


def _bare_host(text: str) -> str:
    return re.split(r"[:/?#]", text, maxsplit=1)[0].lower()


def link_spans(text: str) -> list[LinkSpan]:
    """Every link in ``text`` (normalised), longest first where they overlap, in order of position."""
    found: list[LinkSpan] = []
    for m in _UNSAFE.finditer(text):
        found.append(LinkSpan(m.start(), m.end(), m.group(0), "unsafe"))
    for pattern in (_SCHEMED, _PROTOCOL_RELATIVE):
        found += [LinkSpan(m.start(), m.end(), m.group(0), "url") for m in pattern.finditer(text)]
    for m in _BARE.finditer(text):
        if is_domain(_bare_host(m.group(0))):
            found.append(LinkSpan(m.start(), m.end(), m.group(0), "url"))
    found += [LinkSpan(m.start(), m.end(), m.group(0), "url") for m in _BARE_IP.finditer(text)]
    found.sort(key=lambda s: (s.start, -s.end))
    out: list[LinkSpan] = []
    for s in found:
        if out and s.start < out[-1].end:
            continue
        out.append(s)
    return out


def absolute(link: str) -> str:
    """A link with a scheme: ``//h/x`` and ``h/x`` are read as ``http://…``."""
    if link.startswith("//"):
        return "http:" + link
    if not re.match(r"[a-z][a-z0-9+.\-]*://", link, re.I):
        return "http://" + link
    return link
