"""Customer-specific identifiers in text: domains, emails, phones, IPs, hex and mixed ids, long
numbers, bucket names, labelled names (发票抬头：…) and tokens the corpus saw in one case only.

Drafting uses them to keep other customers' details out of a reply; retrieval drops them from a
query, since another customer's id says nothing about what this ticket is about.

By construction, not by denylist:
- the text is read in its normal form (``rag.text.normalise``): full width, zero-width splits and ``。``
  dots do not hide anything;
- a domain is any host whose suffix is on the Public Suffix List, plus the special-use names
  (``.example``…): ``rag.text.domains`` judges it, for these checks and for ``rag.text.links``;
- phones in the forms people write them (``138-1234-5678``, ``+86 138 1234 5678``, ``0755-12345678``; spaced
  single digits are joined by the normal form);
- messaging handles after their label (``微信 qiniukf888``, ``QQ：12345678``);
- whether a domain or token is customer-specific is judged by the corpus (``CorpusIdentifiers``):
  what agents use across cases is public (digicert.com, github.com, qshell), what occurs in one
  case's dialogue belongs to that customer.

Every pattern is linear in the length of the text: each can start only at a word boundary
(look-behind), and no two adjacent quantifiers can trade characters (a test feeds 1 MB strings).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, NamedTuple
from urllib.parse import urlsplit

from rag.text.markers import REDACTION_TOKEN
from rag.text.domains import is_domain, registrable
from rag.text.links import link_spans
from rag.text.normalise import normalise


_LABEL = r"[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"(?<![a-z0-9.\-@_])(?:{_LABEL}\.)+[a-z][a-z0-9\-]{{0,62}}(?![a-z0-9\-_])", re.I | re.A)
_EMAIL = re.compile(r"(?<![a-z0-9._%+\-])[a-z0-9._%+\-]{1,64}@(?:[a-z0-9\-]{1,63}\.)+[a-z]{2,63}(?![a-z0-9\-])", re.I | re.A)
_PHONE = re.compile(
    r"(?<![\d+])(?:(?:\+|00)?86[\s\-]?|\(\+?86\)\s?)?1[3-9]\d(?:[\s\-.]?\d{4}){2}(?!\d)"  # mobile, with or without +86
    r"|(?<![\d\-])\(?0\d{2,3}\)?[\s\-]?\d{7,8}(?!\d)"  # landline with area code
    r"|(?<!\d)[48]00[\s\-]?\d{3}[\s\-]?\d{4}(?!\d)",  # 400/800 numbers
    re.A,
)
_IP = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_HEX = re.compile(r"(?<![A-Za-z0-9])_?[0-9a-fA-F]{16,}(?![A-Za-z0-9])")
_MIXED_ID = re.compile(r"(?<![A-Za-z0-9_\-])(?=[A-Za-z0-9_\-]*\d)(?=[A-Za-z0-9_\-]*[A-Za-z])[A-Za-z0-9][A-Za-z0-9_\-]{11,}(?![A-Za-z0-9_\-])")
_LONG_NUMBER = re.compile(r"(?<![\d.])\d{8,}(?![\d.])")
# One optional separator between two whitespace runs would let the runs trade spaces (quadratic on
# "bucket" + 50,000 spaces); the separator and its trailing space are one optional group instead.
_BUCKET = re.compile(r"(?:空间名称?|存储空间|bucket\s?name|bucketName|bucket|空间)[ \t]*(?:[:：=为是][ \t]*)?[「“\"'(（]?([a-z0-9][a-z0-9\-]{2,62})(?![a-z0-9\-])", re.I)
# A messaging handle named as one (微信 qiniukf888, QQ：12345678, WeChat ID: kf_888): someone's contact, never a
# support answer's content. Letters-and-digits handles look like vocabulary to the token check (libx264),
# so only the label tells them apart.
_HANDLE = re.compile(
    r"(?<![A-Za-z0-9])(?:微信号?|威信|薇信|v信|vx|wx|weixin|wechat(?:[ \t]?id)?|qq号?|钉钉号?|telegram|whatsapp|skype)"
    r"[ \t]*(?:号码?|id)?[ \t]*(?:[:：=为是][ \t]*)?(?:加|搜索?)?[ \t]*([A-Za-z][A-Za-z0-9_\-]{4,31}|\d{5,12})(?![A-Za-z0-9_\-])",
    re.I)
_LABELLED_NAME = re.compile(r"(?:发票抬头|公司名称|单位名称|企业名称|姓名|联系人|收件人|户名)[ \t]*[:：][ \t]*([^\s，,。;；:：]{2,30})")
# Identifier-shaped tokens the corpus decides about: letters and digits mixed, 6 to 63 characters.
# Letters-and-hyphens words (max-age, Cache-Control, doc slugs) and short version-like tokens
# (ios18, 20min, MPEG-4) are vocabulary, not identifiers: measured, slotting them cost ROUGE-L 0.01.
_TOKEN = re.compile(r"(?<![A-Za-z0-9_\-])(?=[A-Za-z0-9_\-]*[A-Za-z])(?=[A-Za-z0-9_\-]*\d)[A-Za-z0-9][A-Za-z0-9_\-]{5,62}(?![A-Za-z0-9_\-])")


class Found(NamedTuple):
    kind: str
    start: int
    end: int
    value: str


def host_allowed(host: str, allowlist: Iterable[str]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == d or host.endswith("." + d) for d in allowlist)


def host_of(url: str) -> str:
    if url.startswith("//"):
        url = "http:" + url
    elif "://" not in url:
        url = "http://" + url
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def find_identifiers(text: str, allowlist: Iterable[str] = ()) -> list[Found]:
    """Every identifier in ``text`` (already normalised) with its span; links are not included."""
    allowlist = tuple(allowlist)
    chars = list(text)
    for s in link_spans(text):
        chars[s.start : s.end] = " " * (s.end - s.start)
    for m in REDACTION_TOKEN.finditer(text):
        chars[m.start() : m.end()] = " " * (m.end() - m.start())
    masked = "".join(chars)
    found: list[Found] = []

    def blank(spans: Iterable[tuple[int, int]]) -> None:
        nonlocal masked
        buf = list(masked)
        for a, b in spans:
            buf[a:b] = " " * (b - a)
        masked = "".join(buf)

    emails = [Found("email", m.start(), m.end(), m.group(0)) for m in _EMAIL.finditer(masked)]
    found += emails
    blank((f.start, f.end) for f in emails)
    domains = [Found("domain", m.start(), m.end(), m.group(0)) for m in _DOMAIN.finditer(masked) if is_domain(m.group(0))]
    found += [d for d in domains if not host_allowed(d.value, allowlist)]
    blank((f.start, f.end) for f in domains)
    for kind, pattern in (("phone", _PHONE), ("ip", _IP), ("id", _HEX), ("id", _MIXED_ID), ("id", _LONG_NUMBER)):
        hits = [Found(kind, m.start(), m.end(), m.group(0)) for m in pattern.finditer(masked)]
        found += hits
        blank((f.start, f.end) for f in hits)
    for m in _BUCKET.finditer(masked):
        found.append(Found("bucket", m.start(1), m.end(1), m.group(1)))
    for m in _HANDLE.finditer(masked):
        found.append(Found("handle", m.start(1), m.end(1), m.group(1)))
    for m in _LABELLED_NAME.finditer(masked):
        found.append(Found("name", m.start(1), m.end(1), m.group(1)))
    return found


def identifiers(text: str, allowlist: Iterable[str] = ()) -> list[tuple[str, str]]:
    """(kind, value) of every customer-specific identifier in ``text`` as written (links not included);
    the guards call ``find_identifiers`` on the normal form instead."""
    return [(f.kind, f.value) for f in find_identifiers(text, allowlist)]


def strip_identifiers(text: str) -> str:
    """``text`` without links and identifiers, whitespace folded."""
    text = normalise(text)
    cut = sorted([(s.start, s.end) for s in link_spans(text)] + [(f.start, f.end) for f in find_identifiers(text)])
    out, pos = [], 0
    for a, b in cut:
        if a >= pos:
            out.append(text[pos:a])
            out.append(" ")
            pos = b
        elif b > pos:
            pos = b
    out.append(text[pos:])
    return re.sub(r"\s+", " ", "".join(out)).strip()


_VOCABULARY_PART = re.compile(r"[A-Za-z]+\d{0,3}")


def _id_shaped(token: str) -> bool:
    """Words with a version number (``libx264``, ``kodo-browser-windows-x64``, ``s3-access-domainname``)
    are vocabulary; an id mixes digits into its letters (``lpxyr0206``, ``cmcdtcvlyiyc8g``)."""
    return not all(_VOCABULARY_PART.fullmatch(part) for part in re.split(r"[-_]", token) if part)


def tokens(text: str) -> list[Found]:
    """Identifier-shaped tokens (``lpxyr0206``, ``cmcdtcvlyiyc8g``) for the corpus to judge."""
    return [Found("id", m.start(), m.end(), m.group(0)) for m in _TOKEN.finditer(text) if _id_shaped(m.group(0))]


@dataclass(frozen=True)
class CorpusIdentifiers:
    """What the corpus says about hosts and tokens.

    ``public_domains``: registrable domains agents wrote in two or more cases (a CA vendor, GitHub,
    a Qiniu doc host). ``public_tokens``: identifier-shaped tokens found in two or more cases
    (``X-Reqid``, ``kodo-browser``). ``specific_tokens``: tokens found in exactly one case's
    dialogue: that customer's bucket, file or job.
    """

    public_domains: frozenset[str] = frozenset()
    public_tokens: frozenset[str] = frozenset()
    specific_tokens: frozenset[str] = frozenset()

    @classmethod
    def learn(cls, cases: Iterable[tuple[str, str, str]]) -> "CorpusIdentifiers":
        """``cases``: (case id, every text of the case, the agents' text of the case)."""
        domain_cases: dict[str, set[str]] = defaultdict(set)
        token_cases: dict[str, set[str]] = defaultdict(set)
        for case_id, text, agent_text in cases:
            agent = normalise(agent_text)
            for host in _hosts(agent):
                domain_cases[registrable(host)].add(case_id)
            for t in tokens(normalise(text)):
                token_cases[t.value.lower()].add(case_id)
        return cls(
            public_domains=frozenset(d for d, ids in domain_cases.items() if len(ids) >= 2),
            public_tokens=frozenset(t for t, ids in token_cases.items() if len(ids) >= 2),
            specific_tokens=frozenset(t for t, ids in token_cases.items() if len(ids) == 1),
        )

    def public_host(self, host: str) -> bool:
        return bool(host) and registrable(host) in self.public_domains


def _hosts(text: str) -> set[str]:
    hosts = {host_of(s.text) for s in link_spans(text)}
    hosts |= {f.value.lower() for f in find_identifiers(text) if f.kind == "domain"}
    return {h for h in hosts if h and is_domain(h)}
