"""Every pattern the guards, identifiers, links, filler and parser use runs in linear time.

A quadratic pattern is a denial of service: issue 12 measured 28.6 s of CPU for "bucket" followed
by 50,000 spaces. Each pattern gets strings built to make a backtracking engine try every split
(long runs of the characters its quantifiers accept, with the one character that makes the match fail
at the end). Every string runs at 256 KB, within a quarter of the 1 MB bound; the pattern's slowest
string, and any string slow enough at 256 KB (QUADRATIC_S) that quadratic growth would break the bound,
run again at 1 MB: within the bound, and no more than GROWTH times the 256 KB time (linear is ~4x,
quadratic ~16x). A string under QUADRATIC_S at 256 KB stays under the bound at 1 MB even if the pattern
were quadratic, so no pattern escapes the 1 MB bound. Running all nine strings at 1 MB for every pattern
(the previous form) took 15.3 s of CPU; this takes about half, and checks the growth rate where it
matters, which an absolute bound alone cannot. (Growth between times of a few milliseconds is noise on
a shared machine: 3 ms vs 8 ms for the same 64 KB run, so it is only checked above QUADRATIC_S.)
"""

from __future__ import annotations

import functools
import re
import time
from typing import Callable

import pytest

from rag.corpus import parse
from rag.text import filler, identifiers, links, normalise
from rag.draft import guards
from rag.score import reading

MB = 1_000_000
BOUND_S = 1.5  # CPU seconds per pattern and 1 MB string; linear ones take 0.001-0.7 s on 2 shared cores
QUADRATIC_S = BOUND_S / 16  # at 256 KB: below this, even 16x growth to 1 MB stays within the bound
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
    # issue 24's readings: written-out dots, spaced digits, a Han run before a dot
    "written-out dots": lambda n: "a[.]" * (n // 4) + "-",
    "spaced digits": lambda n: "1 " * (n // 2) + "x",
    "han labels": lambda n: "七牛." * (n // 3) + "1",
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
    for module in (guards, identifiers, links, filler, parse, normalise, reading):
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
    assert {"guards", "identifiers", "links", "filler", "parse", "normalise", "reading"} <= names
    assert len(PATTERNS) >= 40


@pytest.mark.parametrize("label,pattern", PATTERNS, ids=[label for label, _ in PATTERNS])
def test_pattern_is_linear(label, pattern):
    quarter = {}
    for kind in ADVERSARIAL:
        spent = quarter[kind] = _cpu(pattern, kind, MB // 4)
        assert spent < BOUND_S / 4, f"{label} took {spent:.2f} s on 256 KB of {kind}"
    worst = max(quarter, key=quarter.__getitem__)
    for kind in ADVERSARIAL:
        if kind != worst and quarter[kind] < QUADRATIC_S:
            continue
        spent = _cpu(pattern, kind, MB)
        assert spent < BOUND_S, f"{label} took {spent:.2f} s on 1 MB of {kind}"
        if quarter[kind] >= QUADRATIC_S:
            assert spent / quarter[kind] < GROWTH, (
                f"{label} on {kind}: 256 KB {quarter[kind]:.3f} s, 1 MB {spent:.3f} s (superlinear)")


@pytest.mark.parametrize("name,read", [("normalise.view", lambda t: normalise.view(t)),
                                       ("reading.reading_form", lambda t: reading.reading_form(t))])
def test_the_whole_normal_form_is_linear(name, read):
    """The passes that read written-out dots, IDN hosts and spaced digits loop in Python over what the
    patterns found: each string at 256 KB and 1 MB, within the bound and growing no faster than linear."""
    for kind in ADVERSARIAL:
        started = time.process_time()
        read(_text(kind, MB // 4))
        quarter = time.process_time() - started
        started = time.process_time()
        read(_text(kind, MB))
        full = time.process_time() - started
        assert full < 4 * BOUND_S, f"{name} took {full:.2f} s on 1 MB of {kind}"
        if quarter >= QUADRATIC_S:
            assert full / quarter < GROWTH, f"{name} on {kind}: 256 KB {quarter:.3f} s, 1 MB {full:.3f} s (superlinear)"
