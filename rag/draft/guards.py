"""Safety checks applied to every draft, whatever wrote it.

- Leakage: identifiers (domains, bucket names, order/request ids, hex ids, keys, emails, phones,
  IPs, names after a label such as 发票抬头) that are not in the current ticket are replaced with a
  fill-in slot such as 【您的域名】. The check does not need to know which retrieved case an
  identifier came from: anything customer-specific that the customer did not write is foreign.
- Links: a link stays only when its clean form is in the corpus's agent answers or its host is on
  the official allow-list, and it is not another customer's address; others are removed and reported.
- Injection: the ticket is data. Known injection phrasings are flagged; a draft that repeats the
  system prompt is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

from rag.identifiers import host_allowed, host_of, identifiers
from rag.links import clean_link, raw_links

SLOTS = {
    "email": "【您的邮箱】",
    "phone": "【您的手机号】",
    "ip": "【IP】",
    "domain": "【您的域名】",
    "bucket": "【您的空间名】",
    "name": "【名称】",
    "id": "【相关ID】",
}

INJECTION_PATTERNS = [
    re.compile(p, re.I)
    for p in (
        r"忽略(以上|之前|前面|上述)?(所有|全部)?(的)?(指令|指示|说明|规则|要求)",
        r"(输出|打印|显示|告诉我|复述|泄露).{0,8}(系统提示|system\s*prompt|提示词|指令)",
        r"ignore\s+(all\s+)?(the\s+)?(previous|prior|above)\s+(instructions|prompts?|rules)",
        r"(print|reveal|show|repeat)\s+(me\s+)?(your|the)\s+(system\s+)?prompt",
        r"you\s+are\s+now\s+",
        r"(扮演|假装你是|现在你是)",
        r"</?\s*(system|customer_message|assistant)\s*>",
        r"disregard\s+.{0,20}instructions",
    )
]


@dataclass(frozen=True)
class GuardReport:
    text: str
    removed_identifiers: tuple[str, ...] = ()
    removed_links: tuple[str, ...] = ()
    invented_links: tuple[str, ...] = ()
    kept_links: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def removed(self) -> tuple[str, ...]:
        return self.removed_identifiers + self.removed_links


def _in_ticket(value: str, ticket_lower: str) -> bool:
    return value.lower() in ticket_lower


def scrub(
    draft: str,
    ticket: str,
    *,
    known_links: frozenset[str] | set[str],
    allowlist: Iterable[str],
) -> GuardReport:
    """Remove foreign identifiers and disallowed links from ``draft``."""
    allowlist = tuple(allowlist)
    ticket_lower = ticket.lower()
    removed_links: list[str] = []
    invented: list[str] = []
    kept: list[str] = []
    text = draft
    for raw in sorted(set(raw_links(draft)), key=len, reverse=True):
        clean = clean_link(raw)
        host = host_of(clean or "")
        if clean is None:
            text = text.replace(raw, "")
            continue
        tail = raw[len(clean):] if raw.startswith(clean) else ""
        if host and host_allowed(host, allowlist) and "[REDACTED_" not in clean:
            kept.append(clean)
            text = text.replace(raw, clean + (" " + tail if tail and not tail.startswith(" ") else tail))
        elif host and host in ticket_lower:
            kept.append(clean)
        else:
            if clean in known_links:
                removed_links.append(clean)  # another customer's address seen in a past case
            else:
                invented.append(clean)
            text = text.replace(raw, SLOTS["domain"] if host and clean in known_links else "")
    removed_ids: list[str] = []
    for kind, value in sorted(identifiers(text, allowlist), key=lambda kv: len(kv[1]), reverse=True):
        if _in_ticket(value, ticket_lower):
            continue
        if value in text:
            text = text.replace(value, SLOTS[kind])
            removed_ids.append(value)
    text = re.sub(r"(【[^】]+】)(\s*\1)+", r"\1", text)
    return GuardReport(
        text=text,
        removed_identifiers=tuple(dict.fromkeys(removed_ids)),
        removed_links=tuple(dict.fromkeys(removed_links)),
        invented_links=tuple(dict.fromkeys(invented)),
        kept_links=tuple(dict.fromkeys(kept)),
    )


def injection_signals(ticket: str) -> list[str]:
    return [p.pattern for p in INJECTION_PATTERNS if p.search(ticket)]


def neutralise_ticket(ticket: str) -> str:
    """Stop a ticket from closing the data block it is placed in."""
    return re.sub(r"</?\s*customer_message\s*>", "[tag removed]", ticket, flags=re.I)


def repeats_prompt(draft: str, system_prompt: str, min_chars: int = 18) -> bool:
    """True when the draft quotes a line of the system prompt verbatim (prompt exfiltration)."""
    compact = re.sub(r"\s+", "", draft)
    for line in system_prompt.splitlines():
        line = re.sub(r"\s+", "", line.lstrip("-# "))
        if len(line) >= min_chars and line[: min_chars * 2] in compact:
            return True
    return False


def leaked_identifiers(draft: str, ticket: str, allowlist: Iterable[str]) -> list[str]:
    """What ``scrub`` would remove: for scoring a draft that was not scrubbed (must be empty after scrub)."""
    t = ticket.lower()
    return [v for _, v in identifiers(draft, allowlist) if v.lower() not in t]


def invented_links(draft: str, ticket: str, known_links: frozenset[str] | set[str], allowlist: Iterable[str]) -> list[str]:
    out = []
    t = ticket.lower()
    for raw in raw_links(draft):
        clean = clean_link(raw)
        if not clean:
            continue
        host = host_of(clean)
        if clean in known_links or (host and host_allowed(host, allowlist)) or (host and host in t):
            continue
        out.append(clean)
    return out
