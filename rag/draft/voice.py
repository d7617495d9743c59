"""The team's voice, checked on what an LLM wrote: plain text, links the cases or Qiniu's docs really hold, as short
as the team's own answers.

The prompt asks for all of it first; small models still drift into Markdown (headings, bold, bullet lists,
``[text](url)``), compose URLs (``…/cache-refresh?url=https://yourdomain.com/…``), talk about the ticket instead
of to the customer (「根据客户的问题」) and run on past the resolution. Here each is found and repaired: Markdown
becomes the team's plain text, a composed link or a sentence of internal framing is removed, and an over-long
reply is cut back at a sentence end. What was repaired is reported (notes), so the confidence
can reflect it; a reply left with nothing is not a draft.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Collection
from urllib.parse import urlsplit

from rag.text.identifiers import host_allowed
from rag.text.links import clean_link, find_links
from rag.text.markers import POLITE_GREETING

# The corpus's agent answers run 130 characters at the median and 535 at the 90th percentile of its cases
# (eval/bench_llm.py prints the distribution): a reply longer than this is cut back at a sentence end.
MAX_REPLY_CHARS = 540

_HEADING = re.compile(r"^\s{0,3}#{1,6}\s*", re.M)
_EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1|(?<![*\w])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![*\w])")
_BULLET = re.compile(r"^\s*[-*+•]\s+", re.M)
_MD_LINK = re.compile(r"!?\[([^\]\n]*)\]\((\S+?)\)")
_FENCE = re.compile(r"^\s*```[^\n]*$", re.M)
_TABLE_RULE = re.compile(r"^[ \t]*\|?[ \t]*:?-{3,}:?[ \t]*(\|[ \t]*:?-{3,}:?[ \t]*)*\|?[ \t]*\n?", re.M)
_TABLE_ROW = re.compile(r"^[ \t]*\|(.+)\|[ \t]*$", re.M)
_CODE = re.compile(r"`([^`\n]+)`")
# A link written without its scheme (「qiniu.com/pili/notify」): a host name and a path, not inside a schemed link.
_BARE_LINK = re.compile(r"(?<![A-Za-z0-9_.@/:-])((?:[a-z0-9-]+\.)+[a-z]{2,}/[\x21-\x7e]*[A-Za-z0-9_/])", re.I)
# Full-width marks and line ends always; ASCII ! and ? only before a space, CJK or the end (a link holds them).
_SENTENCE_END = re.compile(r"(?<=[。！？\n])|(?<=[!?])(?=[\s\u4e00-\u9fff]|$)")


# The model talking about the ticket and the prompt instead of to the customer (「根据客户的问题」, 「感谢您提供参考案例」,
# 「客户工单中提到的问题是…」): the prompt's framing, which no agent sends. Such a sentence is dropped; its greeting
# stays. 「客户端」 is a client app, not the customer.
_INTERNAL = re.compile(r"客户(?:的)?(?:问题|工单|提到|描述|反馈|需求|咨询|信息|的情况)|客户工单|工单(?:中|里)(?:提到|描述|的问题)|"
                       r"(?:参考|过去|历史|以上|上述|提供的|这些|相关)(?:的)?案例|根据(?:客户|案例)|案例(?:中|里)")
_GREETING_START = re.compile(rf"^\s*({re.escape(POLITE_GREETING)}[，,]?)")
# 「根据客户的问题，我们建议…」: only the leading clause is framing; what follows is the reply.
_LEADING_CLAUSE = re.compile(rf"^(\s*(?:{re.escape(POLITE_GREETING)}[，,])?)\s*(?:根据|按照|针对|关于|结合)[^，,。！？\n]*[，,]\s*")


@dataclass(frozen=True)
class VoiceReport:
    text: str
    markdown: bool = False                 # Markdown syntax was turned into plain text
    composed: tuple[str, ...] = ()         # links no case or doc page holds, removed
    shortened: bool = False                # cut back to the team's length
    internal: tuple[str, ...] = ()         # sentences about the ticket or the prompt, not to the customer, removed


def plain(text: str) -> tuple[str, bool]:
    """Markdown turned into the team's plain text: ``[a](u)`` → ``a u``, headings and emphasis marks dropped,
    bullets numbered, table rows as lines, code fences and backticks gone."""
    out = _MD_LINK.sub(lambda m: f"{m.group(1)} {m.group(2)}".strip(), text)
    out = _FENCE.sub("", out)
    out = _TABLE_RULE.sub("", out)
    out = _TABLE_ROW.sub(lambda m: "，".join(c.strip() for c in m.group(1).split("|") if c.strip()), out)
    out = _HEADING.sub("", out)
    out = _EMPHASIS.sub(lambda m: m.group(2) or m.group(3) or "", out)
    out = _CODE.sub(r"\1", out)
    n = 0

    def number(_: re.Match[str]) -> str:
        nonlocal n
        n += 1
        return f"{n}. "

    out = _BULLET.sub(number, out)
    out = re.sub(r"\n{3,}", "\n\n", out).strip()
    if _HEADING.search(text):
        # A heading above the greeting is the model's, not the team's: the reply starts at 您好.
        lines = out.splitlines()
        start = next((i for i, line in enumerate(lines) if line.lstrip().startswith((POLITE_GREETING, "Hello"))), 0)
        if 0 < start <= 2:
            out = "\n".join(lines[start:])
    return out, out != text.strip()


def composed_links(text: str, shown: Collection[str], docs: Collection[str], official: Collection[str]) -> list[str]:
    """Links on Qiniu's own hosts (``official``) that are neither in what the model was shown (the cases, the
    ticket) nor one of the documentation roots: a path or a query string the model made up on a trusted host. A
    link on any other host is the guard's to judge (it removes what no case holds)."""
    known = {link_key(u) for u in shown} | {link_key(u) for u in docs}
    out = []
    for url in dict.fromkeys(links_in(text)):
        host = urlsplit(url if "://" in url else f"https://{url}").hostname or ""
        if host_allowed(host, official) and link_key(url) not in known:
            out.append(url)
    return out


def links_in(text: str) -> list[str]:
    """The links with a scheme, then those written without one: a small model writes both."""
    return [*find_links(text), *(m.group(1).rstrip(".,;:!?)") for m in _BARE_LINK.finditer(text))]


def link_key(url: str) -> str:
    """A link's host, path and query, lower-cased host, no scheme: equal for the same page written either way."""
    clean = clean_link(url) or url
    parts = urlsplit(clean if "://" in clean else f"https://{clean}")
    return f"{(parts.hostname or '').lower()}{parts.path.rstrip('/')}{'?' + parts.query if parts.query else ''}"


def without(text: str, links: Collection[str]) -> str:
    """``text`` without the sentences that hold one of ``links``: what a sentence says around a made-up link
    ("也可以调用接口 … 提交") points at nothing once the link is gone."""
    keys = {link_key(u) for u in links}
    kept = [p for p in _SENTENCE_END.split(text) if p and not any(link_key(u) in keys for u in links_in(p))]
    return re.sub(r"[ \t]{2,}", " ", "".join(kept)).strip()


def without_internal(text: str) -> tuple[str, tuple[str, ...]]:
    """``text`` without its sentences of internal framing (their greeting kept), and those sentences."""
    kept: list[str] = []
    removed: list[str] = []
    for piece in _SENTENCE_END.split(text):
        lead = _LEADING_CLAUSE.match(piece) if piece and _INTERNAL.search(piece) else None
        if lead and _INTERNAL.search(lead.group(0)) and not _INTERNAL.search(piece[lead.end():]):
            removed.append(lead.group(0)[len(lead.group(1)):].strip())
            piece = lead.group(1) + piece[lead.end():]
        if piece and _INTERNAL.search(piece):
            removed.append(piece.strip())
            greeting = _GREETING_START.match(piece) if not kept else None
            if greeting:
                said = greeting.group(1)  # 「您好，」 and 「您好,」 keep their comma; a bare 「您好」 gets one
                kept.append(said if said.endswith(("，", ",")) else said + "，")
            continue
        kept.append(piece)
    out = re.sub(r"\n{3,}", "\n\n", "".join(kept)).strip()
    return out, tuple(removed)


def shorten(text: str, limit: int = MAX_REPLY_CHARS) -> tuple[str, bool]:
    """Whole sentences up to ``limit`` characters (at least the first); a link is never cut."""
    if len(text) <= limit:
        return text, False
    pieces = [p for p in _SENTENCE_END.split(text) if p]
    kept = ""
    for piece in pieces:
        if kept and len(kept) + len(piece) > limit:
            break
        kept += piece
    return kept.rstrip(), kept.rstrip() != text.rstrip()


def check(text: str, shown: Collection[str], docs: Collection[str], official: Collection[str],
          limit: int = MAX_REPLY_CHARS) -> VoiceReport:
    """The reply in the team's voice, and what had to be repaired."""
    out, markdown = plain(text)
    out, internal = without_internal(out)
    composed = composed_links(out, shown, docs, official)
    if composed:
        out = without(out, composed)
    out, shortened = shorten(out, limit)
    return VoiceReport(out.strip(), markdown, tuple(composed), shortened, internal)
