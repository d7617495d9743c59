"""Every pattern the guards, identifiers, links, filler and parser use runs in linear time.

A quadratic pattern is a denial of service: issue 12 measured 28.6 s of CPU for "bucket" followed
by 50,000 spaces. Each pattern gets strings built to make a backtracking engine try every split
(long runs of the characters its quantifiers accept, with the one character that makes the match fail
at the end), at three sizes:
- every string at 256 KB, within a quarter of the 1 MB bound; where that takes long enough to time
  (above BOUND_S / 64), it must also grow no more than linearly from 64 KB;
- the pattern's slowest string at 1 MB, within the bound and growing linearly from 256 KB.
A string under BOUND_S / 64 at 256 KB stays under the bound at 1 MB even if the pattern were cubic,
so nothing is left untimed at 1 MB. Running all nine strings at 1 MB for every pattern (the previous
form) took 15.3 s of CPU; this takes 8.6 s (same machine, same run) and also checks the growth rate, which an
absolute bound alone cannot.
"""

from __future__ import annotations

import functools
import re
import time
from typing import Callable

import pytest

from rag import filler, identifiers, links, normalise, parse
from rag.draft import guards

MB = 1_000_000
BOUND_S = 1.5  # CPU seconds per pattern and 1 MB string; linear ones take 0.001-0.7 s on 2 shared cores
TIMED_S = BOUND_S / 64  # below this a time is too short to compare, and too short to matter even if cubic
GROWTH = 8.0  # 4x the text: a linear pattern takes ~4x the time, a quadratic one ~16x

ADVERSARIAL: dict[str, Callable[[int], str]] = {
    "letters": lambda n: "a" * n + "!",
    "spaces after a label": lambda n: "bucket" + " " * n,
    "labels without a suffix": lambda n: "a." * (n // 2) + "-",
    "digits": lambda n: "1" * n + "x",
    "hyphens and words": lambda n: "a-" * (n // 2) + "_",
    "ignore and spaces": lambda n: "ignore " * (n // 7) + "x",
    "scheme and junk": lambda n: "https://" + "a" * n,
    "role markers": lambda n: "**客户**" * (n // 6),
    "chinese": lambda n: "忽略以上" * (n // 4),
}


@functools.cache
def _text(kind: str, size: int) -> str:
    return ADVERSARIAL[kind](size)


def _cpu(pattern: re.Pattern, kind: str, size: int) -> float:
    text = _text(kind, size)
    started = time.process_time()
    for _ in pattern.finditer(text):
        pass
    return time.process_time() - started

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
    quarter = {}
    for kind in ADVERSARIAL:
        spent = quarter[kind] = _cpu(pattern, kind, MB // 4)
        assert spent < BOUND_S / 4, f"{label} took {spent:.2f} s on 256 KB of {kind}"
        if spent >= TIMED_S:
            small = max(_cpu(pattern, kind, MB // 16), 1e-3)
            assert spent / small < GROWTH, f"{label} on {kind}: 64 KB {small:.3f} s, 256 KB {spent:.3f} s (superlinear)"
    worst = max(quarter, key=quarter.__getitem__)
    spent = _cpu(pattern, worst, MB)
    assert spent < BOUND_S, f"{label} took {spent:.2f} s on 1 MB of {worst}"
    if quarter[worst] >= TIMED_S:
        assert spent / quarter[worst] < GROWTH, (
            f"{label} on {worst}: 256 KB {quarter[worst]:.3f} s, 1 MB {spent:.3f} s (superlinear)")
