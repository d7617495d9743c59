"""Customer-specific identifiers in text: domains, emails, phones, IPs, hex and mixed ids, long
numbers, bucket names and labelled names (发票抬头：…).

Drafting uses them to keep other customers' details out of a reply; retrieval drops them from a
query, since another customer's id says nothing about what this ticket is about.
"""

from __future__ import annotations

import re
from typing import Iterable
from urllib.parse import urlsplit

from rag.links import raw_links

_TLDS = (
    "com|cn|net|org|top|cc|io|ai|tech|sale|xyz|info|vip|club|site|online|me|co|hk|tw|shop|store|app|dev|"
    "link|ltd|pro|fun|work|group|biz|mobi|asia|live|video|cloud|icu|email|wang|ink|red|kim|space|today"
)
_DOMAIN = re.compile(rf"(?<![A-Za-z0-9.\-@/])(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{{0,61}}[A-Za-z0-9])?\.)+(?:{_TLDS})(?![A-Za-z0-9\-])", re.I)
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
_IP = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_HEX = re.compile(r"(?<![A-Za-z0-9])_?[0-9a-fA-F]{16,}(?![A-Za-z0-9])")
_MIXED_ID = re.compile(r"(?<![A-Za-z0-9_\-])(?=[A-Za-z0-9_\-]*\d)(?=[A-Za-z0-9_\-]*[A-Za-z])[A-Za-z0-9][A-Za-z0-9_\-]{11,}(?![A-Za-z0-9_\-])")
_LONG_NUMBER = re.compile(r"(?<![\d.])\d{8,}(?![\d.])")
_BUCKET = re.compile(r"(?:空间名称?|存储空间|bucket\s*name|bucketName|bucket|空间)\s*[:：=为是]?\s*[「“\"'(（]?([a-z0-9][a-z0-9\-]{2,62})", re.I)
_LABELLED_NAME = re.compile(r"(?:发票抬头|公司名称|单位名称|企业名称|姓名|联系人|收件人|户名)\s*[:：]\s*([^\s，,。;；:：]{2,30})")


def host_allowed(host: str, allowlist: Iterable[str]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == d or host.endswith("." + d) for d in allowlist)


def host_of(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def identifiers(text: str, allowlist: Iterable[str] = ()) -> list[tuple[str, str]]:
    """(kind, value) of every customer-specific identifier in ``text`` (links not included)."""
    allowlist = tuple(allowlist)
    masked = text
    for raw in raw_links(text):
        masked = masked.replace(raw, " " * len(raw))
    found: list[tuple[str, str]] = []
    for m in _EMAIL.finditer(masked):
        found.append(("email", m.group(0)))
    masked = _EMAIL.sub(lambda m: " " * len(m.group(0)), masked)
    for m in _DOMAIN.finditer(masked):
        if not host_allowed(m.group(0), allowlist):
            found.append(("domain", m.group(0)))
    masked_ids = _DOMAIN.sub(lambda m: " " * len(m.group(0)), masked)
    for kind, pattern in (("phone", _PHONE), ("ip", _IP), ("id", _HEX), ("id", _MIXED_ID), ("id", _LONG_NUMBER)):
        for m in pattern.finditer(masked_ids):
            found.append((kind, m.group(0)))
    for m in _BUCKET.finditer(masked):
        found.append(("bucket", m.group(1)))
    for m in _LABELLED_NAME.finditer(masked):
        found.append(("name", m.group(1)))
    return found


def strip_identifiers(text: str) -> str:
    """``text`` without links and identifiers, whitespace folded."""
    for raw in raw_links(text):
        text = text.replace(raw, " ")
    for _, value in sorted(identifiers(text), key=lambda kv: len(kv[1]), reverse=True):
        text = text.replace(value, " ")
    return re.sub(r"\s+", " ", text).strip()
