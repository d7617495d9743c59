"""Find links in dataset text and recover their clean form.

In the dataset a link is glued to whatever follows it: a list number (``apply2.补全信息``), an English
word (``cache-refreshTip``, ``bucketCDN``), a bracket (``faq[图片]``) or a JSON tail. Qiniu's own
links follow known conventions (lowercase kebab slugs), so their glued tails can be cut safely;
a customer's link is only cut at characters a URL cannot contain.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_URL = re.compile(r"https?://[\x21-\x7e]+")
_REDACTION = re.compile(r"\[REDACTED_[A-Z_]+\]")
_REDACTION_AT_END = re.compile(r"\[REDACTED_[A-Z_]+\]$")
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
        m = _REDACTION.match(url, i)
        if not m:
            return url[:i]
        pos = m.end()
    return url


def _strip_trailing(url: str) -> str:
    """Drop trailing punctuation, but never the ``]`` that closes a redaction token."""
    while url and url[-1] in _TRAILING_PUNCT:
        if _REDACTION_AT_END.search(url):
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
        if last and not _REDACTION.search(last):
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


def replace_links(text: str, repl) -> str:
    """Rewrite each raw link in ``text`` with ``repl(raw, clean)``; ``repl`` returns the new text."""

    def sub(m: re.Match[str]) -> str:
        raw = m.group(0)
        clean = clean_link(raw)
        return repl(raw, clean)

    return _URL.sub(sub, text)


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
