"""Are two answers the same content? Judged sentence by sentence, so padding cannot hide a copy.

A whole-text ratio is fooled by padding: eight copies of one phishing reply, each with a different filler
sentence added, stayed under a ratio of 90 pairwise (issue 24) and exported as eight cases that then voted each
other into an answer. Here each answer is split into sentences, courtesy lines are left out, and two answers
are one content when most of the shorter one's substance (by characters) sits in sentences the other also has.
"""

from __future__ import annotations

import re
from functools import lru_cache

from rapidfuzz import fuzz

from rag.text.filler import is_filler
from rag.text.normalise import normalise

NEAR_DUPLICATE = 90.0   # rapidfuzz ratio for two sentences (or two whole texts) to be the same
SHARED_SUBSTANCE = 0.6  # share of the shorter answer's substance that must be shared

_SENTENCE = re.compile(r"[^。！？!?\n；;]+[。！？!?；;]?")
# Lines any reply may carry: they say nothing about the problem, so they neither make nor hide a copy.
_COURTESY = re.compile(r"感谢|谢谢|欢迎(随时)?(咨询|联系)|如(有|果还有)(其他|任何)(问题|疑问)|祝您|很高兴|期待|辛苦了|"
                       r"给您带来(的)?不便|敬请谅解|支持与信任")


# The retriever compares the same stored answers on every request: normalising them again was 95% of a warm
# draft's time. Pure functions of the text, so caching by text changes no result; 8192 texts is a few MB.
@lru_cache(maxsize=8192)
def _key(text: str) -> str:
    return " ".join(normalise(text).split())


def substance(text: str) -> list[str]:
    """The sentences that say something: courtesy and filler lines left out."""
    return list(_substance(text))


@lru_cache(maxsize=8192)
def _substance(text: str) -> tuple[str, ...]:
    out = []
    for m in _SENTENCE.finditer(_key(text)):
        s = m.group(0).strip(" ，,")
        if s and not is_filler(s) and not _COURTESY.search(s):
            out.append(s)
    return tuple(out)


def same_content(a: str, b: str, cutoff: float = NEAR_DUPLICATE) -> bool:
    ka, kb = _key(a), _key(b)
    if not ka or not kb:
        return False
    if fuzz.ratio(ka, kb, score_cutoff=cutoff):
        return True
    sa, sb = _substance(a), _substance(b)
    if not sa or not sb:
        return False
    shorter, longer = (sa, sb) if sum(map(len, sa)) <= sum(map(len, sb)) else (sb, sa)
    total = sum(len(s) for s in shorter)
    shared = sum(len(s) for s in shorter if any(fuzz.ratio(s, t, score_cutoff=cutoff) for t in longer))
    return shared >= SHARED_SUBSTANCE * total
