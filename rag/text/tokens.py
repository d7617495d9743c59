"""Chinese-aware tokens for lexical retrieval: jieba words (search mode) plus character bigrams.

Whitespace or English-regex splitting turns a whole Chinese clause into one token; jieba finds
words, and character bigrams catch what its dictionary misses (product names, typos such as
"SLL证书"). ASCII words are lower-cased; redaction tokens and punctuation are dropped.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache

from rag.text.markers import PLACEHOLDERS

# Bump when tokenize() changes: saved BM25 indexes are keyed by it.
TOKENIZER_VERSION = "jieba-search+cjk-bigrams/1"

_CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")
_WORD = re.compile(r"[\u4e00-\u9fff]|[a-z0-9][a-z0-9._-]*")
_STOP = frozenset("的 了 是 我 你 您 吗 呢 啊 吧 在 有 和 就 都 也 这 那 个 一 下 好 请 麻烦 一下 这个 那个 怎么 什么 如何".split())


@lru_cache(maxsize=1)
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def warm_up() -> None:
    """Load jieba's dictionary now (about a second of CPU), not in the first request that tokenizes."""
    _jieba()


def char_ngrams(text: str) -> list[str]:
    out: list[str] = []
    for run in _CJK_RUN.findall(text):
        out.extend(run[i : i + 2] for i in range(len(run) - 1))
    return out


def words(text: str) -> list[str]:
    return list(_words(text))


# A warm service scores the same candidate cases on every request; jieba on their texts was most of a draft's
# time. Keyed by the text itself, so a changed case is simply a new key; 8192 texts is a few MB.
@lru_cache(maxsize=8192)
def _words(text: str) -> tuple[str, ...]:
    text = PLACEHOLDERS.sub(" ", text).lower()
    out = []
    for w in _jieba().cut_for_search(text):
        w = w.strip()
        if w and w not in _STOP and _WORD.match(w):
            out.append(w)
    return tuple(out)


def tokenize(text: str) -> list[str]:
    """The tokens the lexical index sees: jieba words plus CJK character bigrams."""
    clean = PLACEHOLDERS.sub(" ", text).lower()
    return words(clean) + char_ngrams(clean)


def char_unigrams_bigrams(text: str) -> list[str]:
    """The plain baseline tokenizer: every CJK character and character bigram, ASCII words."""
    clean = PLACEHOLDERS.sub(" ", text).lower()
    singles = [ch for run in _CJK_RUN.findall(clean) for ch in run]
    ascii_words = re.findall(r"[a-z0-9]+", clean)
    return singles + char_ngrams(clean) + ascii_words
