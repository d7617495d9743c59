"""De-identify text the way the dataset is: customer details become the dataset's redaction tokens.

The dataset writes ``[REDACTED_EMAIL]``, ``[REDACTED_PHONE]``, ``[REDACTED_IP]``,
``[REDACTED_PRIVATE_IP]``, ``[REDACTED_PATH]`` and ``[REDACTED_KEY]``; it has no token for a
customer's domain, bucket, name or order id (its dialogues carry no names at all, bar two it missed:
a customer's site title and an ``accountName`` in pasted JSON), so those get tokens of the same form
(``[REDACTED_DOMAIN]``, ``[REDACTED_BUCKET]``, ``[REDACTED_NAME]``, ``[REDACTED_ID]``), which every
reader of the dataset already treats as a redaction (``\\[REDACTED_[A-Z_]+\\]``).

Names are found labelled (``联系人：…``, ``rag.text.identifiers``), before an honorific (王先生) and in
running text (``rag.text.person_names``: jieba's name tag checked against surnames and the dictionary;
Latin-script names such as ``Hans Müller`` on evidence: a cue, a title, a non-ASCII letter or a common
given name). Obfuscated details are read through the same normal form as the guards: ``zhang[at]kunde[dot]de``,
``kunde(.)de``, ``1 3 9 8 7 6 5 4 3 2 1``, IDN hosts; handles (``微信 qiniukf888``, or letters then three
digits unlabelled) become ``[REDACTED_ID]``.
What to redact is found by the same detectors the guards use (``rag.text.identifiers`` on the normal
form of ``rag.text.normalise``, links by ``rag.text.links``), so obfuscation that the guards see through
does not get through here either. What stays: Qiniu's own links and hosts (the link allow-list),
hosts and tokens the corpus uses across cases (``CorpusIdentifiers``: digicert.com, github.com,
qshell) — though a public host's path is still a customer's path. Edits are made on the original
text through the view's span map, so the rest keeps its full-width punctuation.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from dataclasses import dataclass
from typing import Iterable
from urllib.parse import urlsplit

from rag.text.markers import REDACTION_TOKEN, redaction_token
from rag.text.identifiers import CorpusIdentifiers, find_identifiers, host_allowed, host_of, tokens
from rag.text.links import absolute, link_spans
from rag.text.normalise import view
from rag.text.person_names import find_latin_names, find_person_names

_TOKEN_OF_KIND = {
    "email": redaction_token("EMAIL"),
    "phone": redaction_token("PHONE"),
    "domain": redaction_token("DOMAIN"),
    "bucket": redaction_token("BUCKET"),
    "name": redaction_token("NAME"),
    "id": redaction_token("ID"),
}
_HEX_KEY = re.compile(r"_?[0-9a-fA-F]{16,}")
# A surname right before an honorific ("王先生", "李女士"): the one unlabelled name form the
# tickets use; the honorific stays so the reply still reads naturally.
_HONORIFIC_NAME = re.compile(r"[\u4e00-\u9fff](?=先生|女士|小姐)")
# Letters then three or more digits (qiniukf888, zhangsan2024): a handle or account someone chose. The token
# check reads such words as vocabulary (libx264), which the guards need; the export redacts them unless the
# corpus uses them across cases (issue 24), at the cost of a rare word of vocabulary it has not seen twice.
_HANDLE_LIKE = re.compile(r"(?<![A-Za-z0-9_\-])[A-Za-z][A-Za-z_]{2,}\d{3,}(?![A-Za-z0-9_\-])")


@dataclass(frozen=True)
class Redaction:
    text: str
    counts: dict[str, int]  # token → how many times it was put in


def _ip_token(value: str) -> str:
    try:
        return redaction_token("PRIVATE_IP") if ipaddress.ip_address(value).is_private else redaction_token("IP")
    except ValueError:
        return redaction_token("IP")


def _link_replacement(link: str, kind: str, allowlist: tuple[str, ...], corpus: CorpusIdentifiers) -> str | None:
    """None: the link stays as written (one of Qiniu's own)."""
    if kind != "url":
        return redaction_token("PATH")  # javascript:, data:, file: never belong in a case
    url = absolute(link)
    host = host_of(url)
    try:
        parts = urlsplit(url)
        has_path = bool(parts.path.strip("/") or parts.query or parts.fragment)
    except ValueError:
        has_path = True
    if host and host_allowed(host, allowlist):
        return None
    path = "/" + redaction_token("PATH") if has_path else ""
    if host and corpus.public_host(host):
        return f"{url.split('://', 1)[0]}://{host}{path}"
    return redaction_token("DOMAIN") + path


def deidentify(text: str, *, allowlist: Iterable[str], corpus: CorpusIdentifiers = CorpusIdentifiers()) -> Redaction:
    """``text`` with every customer-specific detail replaced by a redaction token."""
    allow = tuple(allowlist)
    v = view(text)
    t = v.text
    spans: list[tuple[int, int, str]] = []
    for s in link_spans(t):
        repl = _link_replacement(s.text, s.kind, allow, corpus)
        if repl is not None:
            spans.append((s.start, s.end, repl))
    for f in find_identifiers(t, allow):
        if f.kind == "domain" and corpus.public_host(f.value):
            continue
        if f.kind == "ip":
            repl = _ip_token(f.value)
        elif f.kind == "id" and _HEX_KEY.fullmatch(f.value):
            repl = redaction_token("KEY")
        else:
            repl = _TOKEN_OF_KIND.get(f.kind, redaction_token("ID"))
        spans.append((f.start, f.end, repl))
    for tok in tokens(t):
        if tok.value.lower() not in corpus.public_tokens:
            spans.append((tok.start, tok.end, redaction_token("KEY") if _HEX_KEY.fullmatch(tok.value) else redaction_token("ID")))
    spans += [(m.start(), m.end(), redaction_token("ID")) for m in _HANDLE_LIKE.finditer(t)
              if m.group(0).lower() not in corpus.public_tokens]
    spans += [(m.start(), m.end(), redaction_token("NAME")) for m in _HONORIFIC_NAME.finditer(t)]
    spans += [(n.start, n.end, redaction_token("NAME")) for n in find_person_names(t)]
    spans += [(n.start, n.end, redaction_token("NAME")) for n in find_latin_names(t)]
    # Longest first where spans overlap (a link holds its host; a bucket label holds its name).
    spans.sort(key=lambda s: (s[0], -s[1]))
    out: list[str] = []
    counts: Counter[str] = Counter()
    pos = 0
    for start, end, repl in spans:
        a, b = v.span(start, end)
        if a < pos:
            continue
        out.append(text[pos:a])
        out.append(repl)
        counts.update(REDACTION_TOKEN.findall(repl))
        pos = b
    out.append(text[pos:])
    return Redaction("".join(out), dict(counts))
