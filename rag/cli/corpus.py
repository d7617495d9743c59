"""``rag ingest`` and ``rag stats``: building the store and what it holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from rag.cli.console import ProgressBar, domain_errors, err, out
from rag.cli.pipeline import open_pipeline


def _print_summary(summary) -> None:
    rows = [(name, str(getattr(summary, name)))
            for name in ("files", "cases", "chunks", "added", "deleted", "unchanged", "skipped", "generation")]
    if summary.migrated:  # chunks an older version stored, given this version's metadata in place
        rows.append(("migrated", str(summary.migrated)))
    out().table("ingest", ("item", "value"), [*rows, ("seconds", f"{summary.seconds:.1f}")], right=("value",))
    for w in summary.warnings:
        err("[yellow]skipped:[/]", w)
    for note in summary.notes:
        err("[yellow]note:[/]", note)


@domain_errors
def ingest(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="dataset files or folders (default: RAG_DATA_DIR, the packaged corpus unless set)")] = None,
    prune: Annotated[bool, typer.Option(help="remove cases of files that are no longer given")] = False,
    rebuild: Annotated[bool, typer.Option(help="drop the collection and build it again")] = False,
    strict: Annotated[bool, typer.Option(help="stop at the first malformed case instead of skipping it")] = False,
) -> None:
    """Parse, chunk, embed and store the dataset; re-running changes only what changed."""
    p = open_pipeline(ingest={"strict": True}) if strict else open_pipeline()
    with ProgressBar() as bar:
        summary = p.ingest(paths or None, prune=prune, rebuild=rebuild, progress=bar)
    _print_summary(summary)


@domain_errors
def stats(as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
    """Cases per product and subcategory in the store, and the scenarios (适用场景) --scenario accepts."""
    from collections import Counter

    p = open_pipeline()
    cases = p.cases
    counts = Counter((c.product, c.subcategory) for c in cases)
    by_product = Counter(c.product for c in cases)
    order = sorted(counts.items(), key=lambda kv: (-by_product[kv[0][0]], kv[0][0], -kv[1]))
    rows = [(str(product), str(sub), str(n)) for (product, sub), n in order]
    o = out()
    if as_json:
        o.json({"cases": len(cases), "chunks": len(cases.chunks),
                "products": [{"product": product, "cases": n,
                              "subcategories": [{"subcategory": sub, "cases": m} for (pr, sub), m in order if pr == product]}
                             for product, n in by_product.most_common()],
                "scenarios": list(cases.catalog.scenarios)})
        return
    o.table(f"{len(cases)} cases, {len(cases.chunks)} chunks", ("product", "subcategory", "cases"), rows, right=("cases",))
    o.text("  ".join(f"{k}: {v}" for k, v in by_product.most_common()))
    catalog = cases.catalog
    o.text(f"scenarios ({len(catalog.scenarios)}): " + ", ".join(catalog.scenarios))
