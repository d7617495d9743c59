"""The ``rag`` command: a thin client of the library (``rag.Pipeline``).

One module per command family: ``corpus`` (ingest, stats), ``drafting`` (search, draft), ``serving``
(serve), ``evaluation`` (eval, eval compare), ``feedback`` (feedback …); ``console`` is how they print
and fail, ``pipeline`` what they work on. Every heavy import happens inside a command, so ``rag --help``
and ``rag --version`` stay fast.
"""

from __future__ import annotations

from typing import Annotated

import typer

from rag.cli import corpus, drafting, serving
from rag.cli.evaluation import eval_app
from rag.cli.feedback import feedback_app

# -h as well as --help, on every command: click hands a context's help option names down to its subcommands.
HELP = {"help_option_names": ["-h", "--help"]}
app = typer.Typer(add_completion=False, rich_markup_mode=None, context_settings=HELP,
                  help="Draft replies to Qiniu support tickets from past cases.")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            v = version("qiniu-support-rag")
        except PackageNotFoundError:  # running from a checkout that was never pip-installed
            v = "unknown"
        typer.echo(f"rag {v}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")] = False,
) -> None:
    """Draft replies to Qiniu support tickets from past cases."""
    if ctx.invoked_subcommand is None:  # bare `rag`: the help, and success
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


# The order of `rag --help`: commands as registered, then the command groups.
app.command()(corpus.ingest)
app.command()(corpus.stats)
app.command()(drafting.search)
app.command()(drafting.draft)
app.add_typer(eval_app, name="eval")
app.command()(serving.serve)
app.add_typer(feedback_app, name="feedback")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
