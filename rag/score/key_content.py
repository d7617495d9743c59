"""Does an answer carry what a right answer must say? The labelled key content of a ticket
(``eval/relevance/heldout/SPEC.md``): a few items, each holding when any of its alternatives appears in the
draft, compared after NFKC, lower-casing and removing all whitespace.

The grader's own normal form (``unicodedata`` only): it shares no code with the guards or the writers.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Sequence

_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class KeyItem:
    what: str
    any: tuple[str, ...]


def flat(text: str) -> str:
    return _SPACE.sub("", unicodedata.normalize("NFKC", text).lower())


@dataclass(frozen=True)
class KeyResult:
    items: int
    found: int
    missing: tuple[str, ...]  # the ``what`` of each item the draft lacks

    @property
    def complete(self) -> bool:
        return self.found == self.items


def check_key(draft: str, key: Sequence[KeyItem]) -> KeyResult:
    text = flat(draft)
    missing = tuple(item.what for item in key if not any(flat(alt) in text for alt in item.any if alt.strip()))
    return KeyResult(len(key), len(key) - len(missing), missing)
