"""Safety checks applied to every draft, whatever wrote it, and to everything that reaches a prompt.

Every check reads the text in its normal form (``rag.text.normalise``: NFKC, zero-width and control
characters gone, ``。`` between ASCII labels read as a dot) and edits the original at the spans it
found, so obfuscation does not hide anything and a Chinese reply keeps its punctuation.

- Leakage: identifiers (domains of any public-suffix TLD, bucket names, ids, keys, emails, phones in
  their written forms, IPs, labelled names, and tokens the corpus saw in one customer's case only)
  that are not in the current ticket are replaced with a fill-in slot such as 【您的域名】, where the
  new customer's own detail belongs. Domains agents use across cases (a CA vendor, GitHub) are public
  and stay.
- Links, with or without a scheme, protocol-relative or ``javascript:``/``data:``, defanged
  (``hxxps://x[.]ru``) or IDN (``七牛证书续期.com``; the normal form reads both): a link stays when
  it is an official Qiniu address that carries no customer's id, the ticket's own, or on a host the
  corpus shows agents using across cases. Anything else is removed, never replaced by a slot. An
  allowed page whose query, fragment or path carries another address (``…/login?next=https://evil.ru``,
  an open redirect) is removed whole.
- Substance: a sentence that tells the reader to go to, open or contact something whose address was
  removed (「请访问 续期。」) is reported (``GuardReport.hollow``), so the answer policy can refuse it.
- Injection: every field that reaches the prompt is escaped into its own delimited block and scanned
  for injection phrasings (paraphrases and full-width tags included; traditional Chinese read as
  simplified; "as a test" framings, being told exactly what to write, and a compromise slogan to
  repeat); a draft that repeats the system prompt is refused.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Iterable, Literal, Mapping
from urllib.parse import parse_qsl, unquote, urlsplit

from rag.text.markers import REDACTION_PREFIX
from rag.text.identifiers import (
    CorpusIdentifiers,
    Found,
    find_identifiers,
    host_allowed,
    host_of,
    tokens,
)
from rag.notes import Injection
from rag.text.links import LinkSpan, absolute, clean_link, link_spans
from rag.text.normalise import normalise, simplified, strip_invisible, view

SLOTS = {
    "email": "【您的邮箱】",
    "phone": "【您的手机号】",
    "ip": "【IP】",
    "domain": "【您的域名】",
    "bucket": "【您的空间名】",
    "name": "【名称】",
    "id": "【相关ID】",
    "handle": "【联系方式】",
}

# Read on the normal form, lower-cased, whitespace folded to one space. Each names an intent
# (override the instructions, reveal them, change role, forge the prompt's structure) rather
# than one wording, and every repetition is bounded, so a 1 MB ticket is one pass.
_IGNORE_ZH = r"(忽略|无视|忘记|忘掉|不要理会|不用理会|别管|跳过|丢弃|抛开|不要遵守|不再遵守|停止遵守|覆盖)"
_PRIOR_ZH = r"(以上|上面|上述|之前|前面|先前|此前|刚才|原来|原有|原先|你的|所有|全部|一切|系统)"
INJECTION_PATTERNS = [
    re.compile(p)
    for p in (
        _IGNORE_ZH + r".{0,12}" + _PRIOR_ZH + r".{0,12}(指令|指示|说明|规则|要求|提示|设定|限制|约束|内容|话|消息|信息|命令)",
        _IGNORE_ZH + r".{0,4}(指令|指示|规则|提示词|系统提示|设定|限制)",
        r"(输出|打印|显示|告诉我|复述|泄露|重复|展示|给我看|列出|翻译).{0,12}(系统提示|system ?prompt|提示词|指令|初始设定|系统设定|你的设定|你的规则|规则原文)",
        r"你现在是|现在你是|从现在(开始|起)你|你将扮演|假装你是|假装成|你的新身份",
        r"扮演.{0,10}(角色|管理员|主管|系统|ai|gpt|助手|客服)",
        r"(切换到|进入|开启|启用).{0,6}(开发者|管理员|调试|越狱|无限制|上帝)模式",
        r"(新的|新)(指令|指示|规则|任务)[:：]",
        r"开发者模式|越狱|管理员模式|调试模式|上帝模式",
        r"\b(ignore|disregard|forget|override|bypass)\b.{0,40}\b(instructions?|prompts?|rules|guidelines|directives|everything|above|previous|prior|earlier)\b",
        r"\b(print|reveal|show|repeat|output|display|tell me|give me|leak|dump|echo|translate)\b.{0,30}\b(system ?prompt|initial prompt|the prompt|your prompt|hidden (rules|prompt|instructions)|your (instructions|rules|guidelines))\b",
        r"\byou are (now|no longer)\b|\bfrom now on\b.{0,20}\byou\b|\bpretend (to be|you are)\b|\broleplay\b"
        r"|\bact as (an? |the )?(admin|administrator|developer|system|dan|gpt|ai|assistant|root|unrestricted)\b",
        r"\b(new|updated|real) (instructions?|task|rules)\s*:",
        r"\b(jailbreak|dan mode|developer mode|god mode|do anything now)\b",
        r"<\s*/?\s*(system|customer_message|customer|assistant|user|instructions?|prompt|ticket[a-z_]*|history|case[a-z_]*|im_start|im_end)\b[^>]{0,40}>",
        r"<\|(im_start|im_end|system|endoftext)\|>|\[/?inst\]|<<\s*sys\s*>>",
        r"(^|\n|[。.!！?？;；])\s*(system|assistant|系统|助手)\s*[:：]",
        r"\baction\s*[:：]\s*(answer|ask_for_info|escalate)\b",
        r"(提示词|系统提示|system ?prompt|初始指令|你的设定|你的指令|你的规则).{0,10}(输出|打印|显示|复述|泄露|发给我|告诉我|念出来|写出来)",
        r"```\s*(system|prompt)",
        # Issue 24. "As a test" framings: a test is no reason for the reply to say exactly what the ticket wants.
        r"(作为|当作|当做|权当|仅作|就当|这是|只是|纯属|算是|来个|做个|进行)(一个|一次|一下|个)?(测试|试验|演练|实验)"
        r"[^。！？\n]{0,24}((只|仅|直接|原样|原封不动地?)(写|回复|回答|输出|说|返回|打印|显示)|在(回复|答复|回答)(中|里|内))",
        r"\b(as a|for a|for the|this is a|just a|only a)( quick| small| simple)? (test|drill|experiment)\b.{0,40}"
        r"\b(reply|respond|answer|say|write|output|print|return)\b",
        # Being told exactly what to write: 只输出：…, 仅回复以下内容：…, reply only with: …
        r"(只|仅|仅仅|只需|直接)(要)?(写|回复|回答|输出|说|返回|打印)(一句|一下|以下|如下)?(内容|文字|这句话|这句)?\s*[:：]",
        r"\b(reply|respond|answer|say|write|output|print) (only|just|exactly)( with)?\s*[:\"“']|\bonly (reply|respond|say|write|output)\b"
        r"|\b(reply|respond|answer) (only|just) with\b",
        # A compromise slogan the reply is asked to carry (我被攻破了, "I have been pwned"); a customer saying their
        # own site was hacked (我的网站被黑了) asks for no words and is not flagged.
        r"(回复|回答|输出|写|说|打印|显示|返回|reply|respond|say|write|output|print)[^。！？\n]{0,12}"
        r"(我被攻破了|我已被攻破|我被黑了|已被攻破|已被入侵|已被攻陷|已被控制|被劫持了|"
        r"\bi ?(have|'ve|am|was|got) (been )?(pwned|hacked|compromised|owned)\b|\bpwned\b|\bhacked\b)",
        r"[「“\"'『]\s*(我被攻破了|我已被攻破|我被黑了|i have been pwned|i'?ve been pwned|pwned|hacked)\s*[!！。.]?\s*[」”\"'』]",
    )
]


@dataclass(frozen=True)
class GuardReport:
    text: str
    removed_identifiers: tuple[str, ...] = ()
    removed_links: tuple[str, ...] = ()
    invented_links: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())
    # Sentences of ``text`` that still tell the reader to visit, open or contact something, but whose
    # address the guard removed (「请访问 续期。」): what they pointed to was the substance.
    hollow: tuple[str, ...] = ()

    @property
    def removed(self) -> tuple[str, ...]:
        return self.removed_identifiers + self.removed_links

    @property
    def substance_removed(self) -> bool:
        """True when a removal left an instruction without its object: such a reply is not an answer."""
        return bool(self.hollow)


# redirect: an allowed or public page that forwards to an address that is neither (an open redirect).
LinkVerdict = Literal["official", "customer", "public", "foreign", "invented", "unsafe", "redirect"]
_DROPPED = ("invented", "unsafe", "redirect")
_KEEP = ("official", "customer", "public")


def _context(ticket: str) -> str:
    return normalise(ticket).lower()


def _link_key(url: str) -> str:
    return url.split("://", 1)[-1].rstrip("/").lower()


def _customer_part(url: str, ticket_lower: str, corpus: CorpusIdentifiers, allowlist: tuple[str, ...]) -> tuple[bool, bool]:
    """(path carries a customer's id, query or fragment carries one).

    A path is read for what only a customer has (a domain that is not public, a long hex or number,
    an email, an IP, a redaction token); doc slugs such as ``s3-access-domainname`` are the page's
    name. A query value is read for any id, and for tokens the corpus saw in one case only."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return True, True

    def strong(value: str) -> bool:
        if not value or value.lower() in ticket_lower:
            return False
        if REDACTION_PREFIX in value:
            return True
        for f in find_identifiers(value, allowlist):
            if f.kind == "domain" and corpus.public_host(f.value):
                continue
            if f.kind in ("domain", "email", "ip", "phone") or (f.kind == "id" and not _is_slug(f.value)):
                return True
        return False

    def specific(value: str) -> bool:
        if not value or value.lower() in ticket_lower:
            return False
        if strong(value) or any(f.kind != "domain" or not corpus.public_host(f.value) for f in find_identifiers(value, allowlist)):
            return True
        return any(t.value.lower() in corpus.specific_tokens for t in tokens(value))

    path = any(strong(seg) for seg in parts.path.split("/"))
    query = any(specific(v) or specific(k) for k, v in parse_qsl(parts.query, keep_blank_values=True)) or specific(parts.fragment)
    return path, query


def _is_slug(value: str) -> bool:
    """A mixed id in a path is usually a page's slug with a number in it; hex and long numbers are ids."""
    return any(c.isalpha() for c in value) and ("-" in value or "_" in value)


def link_verdict(
    clean: str,
    ticket_lower: str,
    known_links: frozenset[str] | set[str],
    allowlist: Iterable[str],
    corpus: CorpusIdentifiers = CorpusIdentifiers(),
) -> LinkVerdict:
    """official: a Qiniu address with no customer's id in it; customer: the ticket's own host;
    public: a host agents use across cases; foreign: another customer's address seen in a past
    case; invented: none of these; unsafe: a script or inline-data link."""
    allowlist = tuple(allowlist)
    if re.match(r"(javascript|vbscript|livescript|data|file)\s*:", clean, re.I):
        return "unsafe"
    url = absolute(clean)
    if re.match(r"[a-z]+://<[a-z_]+>(/|$)", url, re.I):
        return "public"  # a documented template such as http://<domain>/<key>?e=<deadline>
    host = host_of(url)
    if host and _redirect_target(url, ticket_lower, allowlist, corpus):
        return "redirect"  # checked before the ticket's own host: a customer's page may redirect too
    if host and host in ticket_lower:
        return "customer"
    path_specific, query_specific = _customer_part(url, ticket_lower, corpus, allowlist)
    if host and not path_specific and not query_specific:
        if host_allowed(host, allowlist):
            return "official"
        if corpus.public_host(host):
            return "public"
    keys = {_link_key(k) for k in known_links}
    return "foreign" if _link_key(url) in keys or (host and (host_allowed(host, allowlist) or corpus.public_host(host))) else "invented"


_REDIRECT_UNQUOTE_ROUNDS = 3  # %2568ttps → %68ttps → https: an attacker may encode twice


def _redirect_target(url: str, ticket_lower: str, allowlist: tuple[str, ...], corpus: CorpusIdentifiers) -> str | None:
    """The first address a link carries to a host that is neither allowed, public nor the ticket's own: a
    link in a query value or the fragment (``https://portal.qiniu.com/login?next=https://evil.ru/x``,
    ``?url=//evil.ru``, percent-encoded or not), or a link with a scheme inside the path. A bare domain in
    a query is not a redirect (``?domain=cdn.x.com``): ``_customer_part`` drops such a query."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    carried = [(v, False) for pair in parse_qsl(parts.query, keep_blank_values=True) for v in pair]
    carried += [(parts.fragment, False), (parts.path, True)]
    for value, schemed_only in carried:
        for _ in range(_REDIRECT_UNQUOTE_ROUNDS):
            unquoted = unquote(value)
            if unquoted == value:
                break
            value = unquoted
        if not value:
            continue
        for span in link_spans(normalise(value)):
            if span.kind != "url" or (schemed_only and not re.match(r"[a-z][a-z0-9+.\-]*://|//", span.text, re.I)):
                continue
            h = host_of(span.text)
            if h and not host_allowed(h, allowlist) and not corpus.public_host(h) and h not in ticket_lower:
                return h
    return None


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _apply(text: str, edits: list[tuple[int, int, str]]) -> str:
    out, pos = [], 0
    for a, b, repl in sorted(edits):
        if a < pos:
            continue
        out.append(text[pos:a])
        out.append(repl)
        pos = b
    out.append(text[pos:])
    return "".join(out)


def _judge_links(text: str, ticket_lower: str, known_links, allowlist, corpus):
    """Edits for every link in ``text`` and the verdicts, as (clean, verdict, replacement or None)."""
    v = view(text)
    edits: list[tuple[int, int, str]] = []
    judged: list[tuple[str, LinkVerdict]] = []
    for span in link_spans(v.text):
        a, b = v.span(span.start, span.end)
        verdict, clean = _verdict_of(span, ticket_lower, known_links, allowlist, corpus)
        if verdict in _KEEP and clean:
            raw = span.text
            tail = raw[len(clean):] if raw.startswith(clean) else ""
            edits.append((a, b, clean + (" " + tail if tail and not tail[0].isspace() else tail)))
        elif verdict == "foreign" and clean and _is_official_base(clean, ticket_lower, allowlist, corpus):
            # An official page carrying another customer's id in its query: the page stays, the id goes.
            base = _without_query(absolute(clean))
            edits.append((a, b, base + " "))
            judged.append((base, "official"))
            judged.append((clean, "foreign"))
            continue
        else:
            edits.append((a, b, _REMOVED))
        judged.append((clean or span.text, verdict))
    return edits, judged


def _is_official_base(clean: str, ticket_lower: str, allowlist, corpus) -> bool:
    url = absolute(clean)
    host = host_of(url)
    if not host or not host_allowed(host, allowlist):
        return False
    path_specific, _ = _customer_part(url, ticket_lower, corpus, tuple(allowlist))
    return not path_specific


def _verdict_of(span: LinkSpan, ticket_lower, known_links, allowlist, corpus) -> tuple[LinkVerdict, str | None]:
    if span.kind == "unsafe":
        return "unsafe", span.text
    raw = span.text
    scheme_less = not re.match(r"[a-z]+://", raw, re.I)
    clean = clean_link(absolute(raw))
    if clean is None:
        return "invented", None
    if scheme_less and not raw.startswith("//"):
        clean_shown = clean.split("://", 1)[1]
        verdict = link_verdict(clean, ticket_lower, known_links, allowlist, corpus)
        return verdict, (clean_shown if verdict in _KEEP else clean)
    return link_verdict(clean, ticket_lower, known_links, allowlist, corpus), clean


def _identifier_edits(text: str, ticket_lower: str, allowlist, corpus: CorpusIdentifiers):
    v = view(text)
    found: list[Found] = []
    for f in find_identifiers(v.text, allowlist):
        if f.value.lower() in ticket_lower:
            continue
        if f.kind == "domain" and corpus.public_host(f.value):
            continue
        found.append(f)
    taken = [(f.start, f.end) for f in found]
    for t in tokens(v.text):
        low = t.value.lower()
        if low in corpus.specific_tokens and low not in corpus.public_tokens and low not in ticket_lower:
            if not any(a < t.end and t.start < b for a, b in taken):
                found.append(t)
    edits = []
    for f in found:
        a, b = v.span(f.start, f.end)
        # An address in place of which a slot now stands: the sentence may have pointed the reader to it. The
        # address as written is kept between markers until the sentences are judged (a host read from Chinese
        # text may have taken the verb with it: 请访问七牛证书续期.com).
        mark = f"{_CUT_OPEN}{text[a:b]}{_CUT_CLOSE}" if f.kind in _ADDRESS_KINDS else ""
        edits.append((a, b, SLOTS[f.kind] + mark))
    return edits, [f.value for f in found]


# Marks where the guard took an address out, until the sentences are judged. A private-use character:
# the draft was stripped of every invisible one (private use included) before the guard ran.
_REMOVED = "\ue000"
_CUT_OPEN, _CUT_CLOSE = "\ue001", "\ue002"
_CUT = re.compile("\ue001[^\ue002]*\ue002")
_ADDRESS_KINDS = ("domain", "email", "handle")
# Words that send the reader somewhere or to someone: with the address gone, the sentence has no object.
_POINTING = re.compile(
    r"访问|登录|登陆|登入|打开|点击|点开|前往|进入|跳转|下载|参考|参见|详见|查看|浏览|联系|发送|发到|发至|提交|填写|输入|添加|加入|"
    r"扫码|网址|链接|地址|入口|官网|页面|邮箱|邮件|微信|\b(?:visit|open|log ?in|sign ?in|click|go to|download|see|refer|"
    r"contact|send|e-?mail|link|page|website|url)\b", re.I)
_SENTENCE = re.compile(r"[^。！？!?\n]*(?:[。！？!?\n]|$)")


def _hollow_sentences(text: str) -> tuple[str, ...]:
    """Sentences that lost an address (marked) and still point the reader somewhere, with no link left."""
    found = []
    for m in _SENTENCE.finditer(text):
        sentence = m.group(0)
        if _REMOVED not in sentence and _CUT_OPEN not in sentence:
            continue
        rest = _CUT.sub("", sentence).replace(_REMOVED, "")
        as_written = sentence.replace(_CUT_OPEN, "").replace(_CUT_CLOSE, "").replace(_REMOVED, "")
        # Read as written too: the normal form reads a Chinese host as punycode, verb and all.
        pointing = _POINTING.search(as_written) or _POINTING.search(normalise(as_written))
        if pointing and not link_spans(normalise(rest)):
            found.append(rest.strip())
    return tuple(dict.fromkeys(s for s in found if s))


def scrub(
    draft: str,
    ticket: str,
    *,
    known_links: frozenset[str] | set[str],
    allowlist: Iterable[str],
    corpus: CorpusIdentifiers = CorpusIdentifiers(),
) -> GuardReport:
    """Remove other customers' identifiers and disallowed links from ``draft``."""
    allowlist = tuple(allowlist)
    ticket_lower = _context(ticket)
    text = strip_invisible(draft).replace("\u2028", " ").replace("\u2029", "\n")
    edits, judged = _judge_links(text, ticket_lower, known_links, allowlist, corpus)
    text = _apply(text, edits)
    id_edits, removed_ids = _identifier_edits(text, ticket_lower, allowlist, corpus)
    text = _apply(text, id_edits)
    hollow = _hollow_sentences(text)
    text = _CUT.sub("", text).replace(_REMOVED, "")
    text = re.sub(r"(【[^】]+】)(\s*\1)+", r"\1", text)
    text = re.sub(r"[ \t]{2,}", " ", text)
    return GuardReport(
        text=text,
        removed_identifiers=tuple(dict.fromkeys(removed_ids)),
        removed_links=tuple(dict.fromkeys(c for c, v in judged if v == "foreign")),
        invented_links=tuple(dict.fromkeys(c for c, v in judged if v in _DROPPED)),
        hollow=tuple(" ".join(h.split()) for h in hollow),
    )


@dataclass(frozen=True)
class Guard:
    """The guard every reply passes, built once per store (``rag.pipeline``) and used by both the plain and the
    streamed path, so a streamed sentence is checked exactly like a whole draft."""

    known_links: frozenset[str]
    allowlist: tuple[str, ...]
    corpus: CorpusIdentifiers = CorpusIdentifiers()

    def scrub(self, draft: str, ticket: str) -> GuardReport:
        return scrub(draft, ticket, known_links=self.known_links, allowlist=self.allowlist, corpus=self.corpus)

    def scan(self, fields: Mapping[str, str]) -> list[Injection]:
        return scan_fields(fields)


def _scan_form(text: str) -> str:
    # Traditional characters read as simplified, so every phrasing above holds in both scripts (issue 24).
    return re.sub(r"[ \t\u3000]+", " ", simplified(normalise(text)).lower())


def injection_signals(text: str) -> list[str]:
    form = _scan_form(text)
    return [p.pattern for p in INJECTION_PATTERNS if p.search(form)]


def scan_fields(fields: Mapping[str, str]) -> list[Injection]:
    """Injection notes for every prompt field, naming the field."""
    return [Injection(name, p) for name, text in fields.items() for p in injection_signals(text or "")]


_ANGLE = {"<": "&lt;", ">": "&gt;"}


def escape_field(text: str) -> str:
    """Text made safe to sit inside a delimited block: invisible characters dropped, ``&``, ``<``,
    ``>`` and every character that normalises to them (``＜``, ``﹤``…) written as entities, so no
    field can open or close a block, whatever width it is written in."""
    out = []
    for ch in strip_invisible(text):
        if ch == "&":
            out.append("&amp;")
            continue
        norm = unicodedata.normalize("NFKC", ch) if not ch.isascii() else ch
        out.append(_ANGLE.get(norm, ch) if len(norm) == 1 else ("".join(_ANGLE.get(c, c) for c in norm)))
    return "".join(out)


def unescape_field(text: str) -> str:
    """A model's copy of escaped case text, read back: it copies ``-&gt;`` where the agent wrote ``->``."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def block(name: str, text: str) -> str:
    """One prompt field in its own delimited block."""
    return f"<{name}>\n{escape_field(text)}\n</{name}>"


def neutralise_ticket(ticket: str) -> str:
    """Stop a ticket from closing the data block it is placed in."""
    return escape_field(ticket)


def repeats_prompt(draft: str, system_prompt: str, min_chars: int = 18) -> bool:
    """True when the draft quotes a line of the system prompt verbatim (prompt exfiltration)."""
    compact = re.sub(r"\s+", "", normalise(draft))
    for line in normalise(system_prompt).splitlines():
        line = re.sub(r"\s+", "", line.lstrip("-# "))
        if len(line) >= min_chars and line[: min_chars * 2] in compact:
            return True
    return False


def _links_judged(draft: str, ticket: str, known_links, allowlist, corpus=CorpusIdentifiers()) -> list[tuple[str, LinkVerdict]]:
    _, judged = _judge_links(strip_invisible(draft), _context(ticket), known_links, tuple(allowlist), corpus)
    return judged


def leaked_identifiers(draft: str, ticket: str, allowlist: Iterable[str], known_links: frozenset[str] | set[str] = frozenset(),
                       corpus: CorpusIdentifiers = CorpusIdentifiers()) -> list[str]:
    """For scoring: identifiers and other customers' links in ``draft`` that are not in the ticket."""
    allowlist = tuple(allowlist)
    _, found = _identifier_edits(strip_invisible(draft), _context(ticket), allowlist, corpus)
    links = _links_judged(draft, ticket, known_links, allowlist, corpus)
    return found + [c for c, v in links if v == "foreign"]


def invented_links(draft: str, ticket: str, known_links: frozenset[str] | set[str], allowlist: Iterable[str],
                   corpus: CorpusIdentifiers = CorpusIdentifiers()) -> list[str]:
    """For scoring: links in neither the corpus's agent answers nor the allow-list (nor the ticket)."""
    return [c for c, v in _links_judged(draft, ticket, known_links, tuple(allowlist), corpus) if v in _DROPPED]
