"""``rag feedback``: statistics, review (approve/reject) and export of approved items as dataset cases."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Iterator, Optional

import typer

from rag.cli.console import domain_errors, err, out
from rag.cli.pipeline import open_pipeline

if TYPE_CHECKING:
    from rag.feedback.store import FeedbackStore

feedback_app = typer.Typer(rich_markup_mode=None, help="Feedback on drafts: statistics, review (approve/reject) and export of approved items to the dataset format; `migrate` sets up its database.")


@contextmanager
def _feedback() -> Iterator[FeedbackStore]:
    """The configured feedback store, reached and checked first: PostgreSQL down or behind its migrations is one
    line and exit 2 before the command does anything."""
    from rag.feedback.store import open_feedback
    from rag.settings import load_settings

    with open_feedback(load_settings().service) as store:
        store.check()
        yield store


@feedback_app.command("migrate")
@domain_errors
def feedback_migrate() -> None:
    """Apply the feedback database's missing migrations (numbered SQL files; each applied once, in order)."""
    from rag.feedback.store import open_feedback
    from rag.settings import load_settings

    with open_feedback(load_settings().service) as store:
        applied = store.migrate()
        status = store.check()
    done = ", ".join(f"{m.version:04d}_{m.name}" for m in applied)
    out().text(f"feedback database {status.where}: " + (f"applied {done}; " if applied else "nothing to apply; ")
               + f"at schema version {status.version}")


@feedback_app.command("stats")
@domain_errors
def feedback_stats() -> None:
    """Acceptance rate and edit distance per product."""
    with _feedback() as store:
        drafts, feedback = store.counts()
        stats = store.stats()
    fmt = lambda v: "–" if v is None else f"{v:.2f}"  # noqa: E731
    cols = ("product", "drafts", "feedback", "accepted", "edited", "rejected", "acceptance", "edit distance")
    out().table(f"{drafts} drafts, {feedback} feedback entries", cols,
                [(row.product or "(unknown)", str(row.drafts), str(row.feedback), str(row.accepted), str(row.edited),
                  str(row.rejected), fmt(row.acceptance_rate), fmt(row.mean_edit_distance)) for row in stats],
                right=cols[1:])


@feedback_app.command("review")
@domain_errors
def feedback_review(
    as_json: Annotated[bool, typer.Option("--json", help="the pending items as JSON")] = False,
) -> None:
    """List accepted and edited drafts waiting for review, each with its diff against the draft."""
    from dataclasses import asdict

    from rag.corpus.format import format_category
    from rag.feedback.review import pending

    with _feedback() as store:
        items = pending(store)
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

    from rag.corpus.format import valid_reviewer

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
    who = _reviewer(by)
    with _feedback() as store:
        item = store.review(feedback_id, "approved", who)
    out().text(f"feedback {item.feedback_id} approved by {item.reviewer}")


@feedback_app.command("reject")
@domain_errors
def feedback_reject(
    feedback_id: Annotated[int, typer.Argument(help="the item's feedback id (see rag feedback review)")],
    reason: Annotated[str, typer.Option("--reason", help="why it must not become a case")],
    by: Annotated[Optional[str], typer.Option("--by", help="reviewer name (default: the login name)")] = None,
) -> None:
    """Reject one pending item: it is never exported."""
    if not reason.strip():
        err("[bold red]error:[/]", "--reason: say why the item is rejected")
        raise typer.Exit(2)
    who = _reviewer(by)
    with _feedback() as store:
        item = store.review(feedback_id, "rejected", who, reason.strip())
    out().text(f"feedback {item.feedback_id} rejected by {item.reviewer}")


@feedback_app.command("export")
@domain_errors
def feedback_export(
    out_file: Annotated[Optional[Path], typer.Option(
        "--out", help="a new file to write; an existing path (a dataset file, a folder, a device, a FIFO, any "
                      "file) is refused. Default: $RAG_HOME/exports/feedback_cases-<date>-<time>.md, under "
                      "RAG_HOME, not the current folder")] = None,
) -> None:
    """Write approved feedback as de-identified cases in the dataset format, to a new file (`rag ingest FILE` adds them)."""
    from rag.feedback.export import corpus_identifiers, default_export_path, export_feedback, write_new_file

    p = open_pipeline()
    settings = p.settings
    # Which hosts and tokens are public is the dataset's call (used across its cases): its cases as the store
    # keeps them from ingest, not RAG_DATA_DIR's files, which may differ from what was ingested. Not
    # ``p.cases.identifiers``: that lets ingested feedback cases vote and reads chunk texts; this learns
    # exactly what parsing the ingested files did. No store yet: one line naming `rag ingest`, exit 2.
    corpus = corpus_identifiers(p.cases.replay_cases())
    with _feedback() as store:
        result = export_feedback(store, allowlist=settings.draft.link_allowlist, corpus=corpus)
    for message in result.skipped:  # one malformed item is skipped by id, never the whole export
        err("[yellow]skipped:[/]", message)
    # A new regular file only: the export once replaced the corpus file (the next ingest deleted 349 chunks) and,
    # run as root, /dev/null itself (issue 24).
    target = out_file if out_file is not None else default_export_path(settings.home)
    write_new_file(target, result.text, settings.ingest.data_dir)
    out().text(f"wrote {len(result.cases)} case(s) to {target}; left out: {result.pending} pending review, "
               f"{result.rejected} rejected by a reviewer, {len(result.skipped)} malformed; "
               f"{result.collapsed} near-duplicate(s) folded into another case")
    if out_file is None or not out_file.resolve().is_relative_to(settings.ingest.data_dir.resolve()):
        err("[dim]next:[/]", f"rag ingest {target}  (adds these cases to the store)")
