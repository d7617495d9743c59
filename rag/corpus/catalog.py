"""The products and scenarios the store knows, and the check that a filter names one of them.

A filter value no case has used to return nothing, silently (``--product cdn``); the CLI and the HTTP
service now refuse it with the valid values, after matching case-insensitively ("cdn" → "CDN").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from rag.errors import UnknownValueError
from rag.records import CaseRecord


@dataclass(frozen=True)
class Catalog:
    products: tuple[str, ...]
    scenarios: tuple[str, ...]

    @classmethod
    def of(cls, cases: Iterable[CaseRecord]) -> "Catalog":
        products: set[str] = set()
        scenarios: set[str] = set()
        for c in cases:
            if c.product:
                products.add(c.product)
            scenarios.update(s for s in c.scenarios if s)
        return cls(tuple(sorted(products)), tuple(sorted(scenarios)))

    def product(self, value: str | None) -> str | None:
        return _match("product", value, self.products)

    def scenario(self, value: str | None) -> str | None:
        return _match("scenario", value, self.scenarios)


def _match(field: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    if value is None or not value.strip():
        return None
    v = value.strip()
    if v in allowed:
        return v
    folded = [a for a in allowed if a.casefold() == v.casefold()]
    if len(folded) == 1:
        return folded[0]
    raise UnknownValueError(field, value, list(allowed))
