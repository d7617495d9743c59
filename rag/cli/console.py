"""What every command prints and how it fails: results on stdout (``rag.cli.terminal.Output``), errors, notes
and progress on stderr, so ``--json`` output stays clean.

Domain errors (``RagError``) become one red line and exit code 2; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import functools
import sys
from typing import Callable

import typer

from rag.errors import RagError
from rag.cli.terminal import Output


def out() -> Output:
    return Output(sys.stdout)


@functools.cache
def err_console():
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)  # an error line must stay one line, whatever the terminal width


def err(markup: str, message: str) -> None:
    from rich.markup import escape

    err_console().print(f"{markup} {escape(message)}", highlight=False)


def domain_errors(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except RagError as exc:
            err("[bold red]error:[/]", str(exc))
            raise typer.Exit(2) from None

    return wrapper


class ProgressBar:
    """Adapts the library's progress callback to a rich progress bar (on stderr, so --json stays clean)."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("{task.description:<8}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=err_console(), transient=False,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self):
        self._progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self._progress.__exit__(*exc)

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self._tasks:
            self._tasks[stage] = self._progress.add_task(stage, total=total or 1)
        self._progress.update(self._tasks[stage], completed=done if total else 1, total=total or 1)
