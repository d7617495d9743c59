"""What the CLI prints: rich tables and rules on a terminal, plain unwrapped lines when piped.

Rich hard-wraps at 80 columns when stdout is not a terminal, which splits links in half; piped output is
therefore plain text: a draft's text as written, tables as tab-separated rows under a ``# title`` line.
On a terminal, text lines are soft-wrapped (rich inserts no line breaks; the terminal folds long lines), so
a link stays one string to click or copy. rich is imported only when stdout is a terminal.

Whatever is printed has its control characters written as visible escapes (``\\x1b``): text stored
before input was cleaned (feedback) must not hide or erase lines on a reviewer's terminal (issue 24).
"""

from __future__ import annotations

import json
import re
import sys
from typing import TYPE_CHECKING, Sequence, TextIO

from rag.text.normalise import escape_controls

if TYPE_CHECKING:
    from rich.console import Console


class Output:
    def __init__(self, stream: TextIO | None = None, *, rich: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.rich = self.stream.isatty() if rich is None else rich
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(file=self.stream)
        return self._console

    def text(self, s: str = "", *, end: str = "\n") -> None:
        """Literal text: never markup, never wrapped when piped, control characters escaped."""
        s = escape_controls(s)
        if self.rich:
            self.console.print(s, end=end, markup=False, highlight=False, soft_wrap=True)
        else:
            self.stream.write(s + end)
            self.stream.flush()

    def styled(self, markup: str, plain: str) -> None:
        """A line with rich markup on a terminal, its plain form when piped."""
        if self.rich:
            self.console.print(markup, highlight=False, soft_wrap=True)
        else:
            self.text(plain)

    def rule(self, title: str = "") -> None:
        title = escape_controls(title)
        if self.rich:
            from rich.markup import escape

            self.console.rule(escape(title))
        else:
            self.text(f"--- {title} ---" if title else "---")

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], *,
              right: Sequence[str] = (), lines: bool = False) -> None:
        title = escape_controls(title)
        rows = [[escape_controls(str(v)) for v in row] for row in rows]
        if self.rich:
            from rich.markup import escape
            from rich.table import Table

            t = Table(title=escape(title), show_lines=lines)
            for c in columns:
                t.add_column(c, justify="right" if c in right else "left")
            for row in rows:
                t.add_row(*(escape(str(v)) for v in row))
            self.console.print(t)
            return
        if title:
            self.text(f"# {title}")
        self.text("\t".join(columns))
        for row in rows:
            self.text("\t".join(" ".join(str(v).split()) for v in row))

    def json(self, data: object) -> None:
        # json.dumps escapes C0 itself; DEL, C1 and bidi controls it writes raw, so those become \uXXXX (still JSON).
        text = json.dumps(data, ensure_ascii=False, indent=2)
        self.stream.write(_CONTROL_CHARS.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n")
        self.stream.flush()


_CONTROL_CHARS = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
