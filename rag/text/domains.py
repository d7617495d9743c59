"""Whether a host is a domain, and its registrable part, judged by the Public Suffix List.

``publicsuffixlist`` ships its snapshot inside the wheel and never fetches. Links (a bare host before a
path is a link) and identifiers (a bare host is a customer's domain) both ask; it lives below both, so
neither imports the other for it.
"""

from __future__ import annotations

from functools import lru_cache

# Special-use names (RFC 2606/6761) are not on the suffix list, but an attacker's test page is a host too.
SPECIAL_USE = frozenset({"example", "test", "invalid", "localhost", "local", "internal", "onion", "lan", "home", "corp"})


@lru_cache(maxsize=1)
def _suffix_list():
    # Loaded on first use, not at import; the bundled snapshot, never a download.
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList(only_icann=True, accept_unknown=False)


def is_domain(host: str) -> bool:
    """True when ``host`` ends in a public suffix (or a special-use name) and has a label before it."""
    host = host.lower().rstrip(".")
    if "." not in host:
        return False
    if host.rsplit(".", 1)[1] in SPECIAL_USE:
        return True
    suffix = _suffix_list().publicsuffix(host)
    return suffix is not None and suffix != host


def registrable(host: str) -> str:
    """The registrable part of a host (``cdn.huomc.com`` → ``huomc.com``); the host itself when unknown."""
    host = host.lower().rstrip(".")
    return _suffix_list().privatesuffix(host) or host
