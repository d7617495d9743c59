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
from typing import Iterable, Literal

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


LinkVerdict = Literal["official", "customer", "foreign", "invented"]


def link_verdict(clean: str, ticket_lower: str, known_links: frozenset[str] | set[str], allowlist: Iterable[str]) -> LinkVerdict:
    """official: an allow-listed Qiniu address; customer: the ticket's own host; foreign: another
    customer's address seen in a past case; invented: in neither the corpus nor the allow-list."""
    host = host_of(clean)
    if host and host_allowed(host, allowlist) and "[REDACTED_" not in clean:
        return "official"
    if host and host in ticket_lower:
        return "customer"
    return "foreign" if clean in known_links else "invented"


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
        if clean is None:
            text = text.replace(raw, "")
            continue
        verdict = link_verdict(clean, ticket_lower, known_links, allowlist)
        if verdict == "official":
            kept.append(clean)
            tail = raw[len(clean):] if raw.startswith(clean) else ""
            text = text.replace(raw, clean + (" " + tail if tail and not tail.startswith(" ") else tail))
        elif verdict == "customer":
            kept.append(clean)
        elif verdict == "foreign":
            removed_links.append(clean)
            text = text.replace(raw, SLOTS["domain"])
        else:
            invented.append(clean)
            text = text.replace(raw, "")
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


def _links_judged(draft: str, ticket: str, known_links, allowlist) -> list[tuple[str, LinkVerdict]]:
    t = ticket.lower()
    return [(c, link_verdict(c, t, known_links, allowlist)) for c in (clean_link(r) for r in raw_links(draft)) if c]


def leaked_identifiers(draft: str, ticket: str, allowlist: Iterable[str], known_links: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """For scoring: identifiers and other customers' links in ``draft`` that are not in the ticket."""
    allowlist = tuple(allowlist)
    t = ticket.lower()
    found = [v for _, v in identifiers(draft, allowlist) if v.lower() not in t]
    return found + [c for c, v in _links_judged(draft, ticket, known_links, allowlist) if v == "foreign"]


def invented_links(draft: str, ticket: str, known_links: frozenset[str] | set[str], allowlist: Iterable[str]) -> list[str]:
    """For scoring: links in neither the corpus's agent answers nor the allow-list (nor the ticket)."""
    return [c for c, v in _links_judged(draft, ticket, known_links, tuple(allowlist)) if v == "invented"]
