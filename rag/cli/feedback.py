"""``rag feedback``: statistics, review (approve/reject) and export of approved items as dataset cases."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from rag.cli.console import domain_errors, err, out
from rag.cli.pipeline import open_pipeline

feedback_app = typer.Typer(rich_markup_mode=None, help="Feedback on drafts: statistics, review (approve/reject) and export of approved items to the dataset format.")


@feedback_app.command("stats")
@domain_errors
def feedback_stats() -> None:
    """Acceptance rate and edit distance per product."""
    from rag.feedback import FeedbackStore
    from rag.settings import load_settings

    store = FeedbackStore(load_settings().feedback_db)
    drafts, feedback = store.counts()
    fmt = lambda v: "–" if v is None else f"{v:.2f}"  # noqa: E731
    cols = ("product", "drafts", "feedback", "accepted", "edited", "rejected", "acceptance", "edit distance")
    out().table(f"{drafts} drafts, {feedback} feedback entries", cols,
                [(row.product or "(unknown)", str(row.drafts), str(row.feedback), str(row.accepted), str(row.edited),
                  str(row.rejected), fmt(row.acceptance_rate), fmt(row.mean_edit_distance)) for row in store.stats()],
                right=cols[1:])


@feedback_app.command("review")
@domain_errors
def feedback_review(
    as_json: Annotated[bool, typer.Option("--json", help="the pending items as JSON")] = False,
) -> None:
    """List accepted and edited drafts waiting for review, each with its diff against the draft."""
    from dataclasses import asdict

    from rag.dataset_format import format_category
    from rag.feedback import FeedbackStore
    from rag.feedback_review import pending
    from rag.settings import load_settings

    items = pending(FeedbackStore(load_settings().feedback_db))
    if as_json:
        out().json([{**asdict(p.item), "diff": p.diff} for p in items])
        return
    printed = out()
    printed.text(f"{len(items)} item(s) pending review (approve: rag feedback approve ID; reject: rag feedback reject ID --reason …)")
    for p in items:
        i = p.item
        printed.rule(f"feedback {i.feedback_id} · {i.verdict} · {format_category(i.product, i.subcategory)} · {i.created}")
        printed.text(f"ticket: {' '.join(i.ticket.split())[:300]}")
        printed.text(p.diff or f"(accepted as drafted)\n{i.final_text}")


def _reviewer(name: str | None) -> str:
    import getpass

    from rag.dataset_format import valid_reviewer

    who = name or getpass.getuser()
    if not valid_reviewer(who):
        err("[bold red]error:[/]", f"--by: {who[:60]!r} is not a reviewer name (letters, digits, '.', '@', '-', up to 40)")
        raise typer.Exit(2)
    return who


@feedback_app.command("approve")
@domain_errors
def feedback_approve(
    feedback_id: Annotated[int, typer.Argument(help="the item's feedback id (see rag feedback review)")],
    by: Annotated[Optional[str], typer.Option("--by", help="reviewer name (default: the login name)")] = None,
) -> None:
    """Approve one pending item: the next `rag feedback export` writes it as a case."""
    from rag.feedback import FeedbackStore
    from rag.settings import load_settings

    item = FeedbackStore(load_settings().feedback_db).review(feedback_id, "approved", _reviewer(by))
    out().text(f"feedback {item.feedback_id} approved by {item.reviewer}")


@feedback_app.command("reject")
@domain_errors
def feedback_reject(
    feedback_id: Annotated[int, typer.Argument(help="the item's feedback id (see rag feedback review)")],
    reason: Annotated[str, typer.Option("--reason", help="why it must not become a case")],
    by: Annotated[Optional[str], typer.Option("--by", help="reviewer name (default: the login name)")] = None,
) -> None:
    """Reject one pending item: it is never exported."""
    from rag.feedback import FeedbackStore
    from rag.settings import load_settings

    if not reason.strip():
        err("[bold red]error:[/]", "--reason: say why the item is rejected")
        raise typer.Exit(2)
    item = FeedbackStore(load_settings().feedback_db).review(feedback_id, "rejected", _reviewer(by), reason.strip())
    out().text(f"feedback {item.feedback_id} rejected by {item.reviewer}")


@feedback_app.command("export")
@domain_errors
def feedback_export(
    out_file: Annotated[Path, typer.Option("--out", help="dataset file to write")] = Path("data/feedback_cases.md"),
) -> None:
    """Write approved feedback as de-identified cases in the dataset format (ingested by the next `rag ingest`)."""
    from rag.feedback import FeedbackStore
    from rag.feedback_export import corpus_identifiers, export_feedback

    p = open_pipeline()
    settings = p.settings
    # Which hosts and tokens are public is the dataset's call (used across its cases): its cases as the store
    # keeps them from ingest, not RAG_DATA_DIR's files, which may differ from what was ingested. Not
    # ``p.cases.identifiers``: that lets ingested feedback cases vote and reads chunk texts; this learns
    # exactly what parsing the ingested files did. No store yet: one line naming `rag ingest`, exit 2.
    corpus = corpus_identifiers(p.cases.replay_cases())
    result = export_feedback(FeedbackStore(settings.feedback_db), allowlist=settings.link_allowlist, corpus=corpus)
    for message in result.skipped:  # one malformed item is skipped by id, never the whole export
        err("[yellow]skipped:[/]", message)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_file.with_suffix(out_file.suffix + ".tmp")
    tmp.write_text(result.text, encoding="utf-8")
    tmp.replace(out_file)
    out().text(f"wrote {len(result.cases)} case(s) to {out_file}; left out: {result.pending} pending review, "
               f"{result.rejected} rejected by a reviewer, {len(result.skipped)} malformed; "
               f"{result.collapsed} near-duplicate(s) folded into another case")
