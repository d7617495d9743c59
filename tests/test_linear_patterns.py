"""Every pattern the guards, identifiers, links, filler and parser use runs in linear time.

A quadratic pattern is a denial of service: issue 12 measured 28.6 s of CPU for "bucket" followed
by 50,000 spaces. Each pattern here gets 1 MB strings built to make a backtracking engine try every
split (long runs of the characters its quantifiers accept, with the one character that makes the
match fail at the end) and must finish well inside the bound; a quadratic one takes minutes.
"""

from __future__ import annotations

import re
import time

import pytest

from rag import filler, identifiers, links, normalise, parse
from rag.draft import guards

MB = 1_000_000
BOUND_S = 1.5  # CPU seconds per pattern and string; linear ones take 0.001-0.3 s on 2 shared cores

ADVERSARIAL = {
    "letters": "a" * MB + "!",
    "spaces after a label": "bucket" + " " * MB,
    "labels without a suffix": "a." * (MB // 2) + "-",
    "digits": "1" * MB + "x",
    "hyphens and words": "a-" * (MB // 2) + "_",
    "ignore and spaces": "ignore " * (MB // 7) + "x",
    "scheme and junk": "https://" + "a" * MB,
    "role markers": "**客户**" * (MB // 6),
    "chinese": "忽略以上" * (MB // 4),
}


def _patterns() -> list[tuple[str, re.Pattern]]:
    found: dict[int, tuple[str, re.Pattern]] = {}
    for module in (guards, identifiers, links, filler, parse, normalise):
        for name, value in vars(module).items():
            items = list(value) if isinstance(value, (list, tuple)) else [value]
            for i, p in enumerate(items):
                if isinstance(p, re.Pattern):
                    label = f"{module.__name__.rsplit('.', 1)[1]}.{name}" + (f"[{i}]" if len(items) > 1 else "")
                    found.setdefault(id(p), (label, p))
    return list(found.values())


PATTERNS = _patterns()


def test_every_module_has_patterns_here():
    names = {label.split(".")[0] for label, _ in PATTERNS}
    assert {"guards", "identifiers", "links", "filler", "parse"} <= names
    assert len(PATTERNS) >= 40


@pytest.mark.parametrize("label,pattern", PATTERNS, ids=[label for label, _ in PATTERNS])
def test_pattern_is_linear(label, pattern):
    for kind, text in ADVERSARIAL.items():
        started = time.process_time()
        for _ in pattern.finditer(text):
            pass
        spent = time.process_time() - started
        assert spent < BOUND_S, f"{label} took {spent:.2f} s on 1 MB of {kind}"
