"""Prompt templates as files in ``prompts/``: ``{{name}}`` variables, strict on both sides.

A missing variable or an unknown one is an error, so a renamed variable never silently leaves a
hole in a prompt. Each prompt's id is its variant/file name and its version is a hash of the text;
both travel with every draft.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from rag.errors import PromptError

_VAR = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")


@dataclass(frozen=True)
class PromptTemplate:
    id: str
    text: str

    @property
    def variables(self) -> frozenset[str]:
        return frozenset(_VAR.findall(self.text))

    @property
    def version(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:12]

    def render(self, **values: object) -> str:
        missing = self.variables - values.keys()
        unknown = values.keys() - self.variables
        if missing:
            raise PromptError(f"prompt '{self.id}' needs {sorted(missing)}")
        if unknown:
            raise PromptError(f"prompt '{self.id}' has no variable(s) {sorted(unknown)}")
        return _VAR.sub(lambda m: str(values[m.group(1)]), self.text)

    @classmethod
    def load(cls, path: Path, prompt_id: str | None = None) -> "PromptTemplate":
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise PromptError(f"prompt file not found: {path}") from None
        except UnicodeDecodeError:
            raise PromptError(f"prompt file is not UTF-8: {path}") from None
        return cls(prompt_id or path.stem, text)


@dataclass(frozen=True)
class PromptPair:
    """A drafting variant: a system prompt and a user prompt from ``prompts/<variant>/``."""

    variant: str
    system: PromptTemplate
    user: PromptTemplate

    @property
    def id(self) -> str:
        return self.variant

    @property
    def version(self) -> str:
        return hashlib.sha256(f"{self.system.text}\x00{self.user.text}".encode()).hexdigest()[:12]

    @classmethod
    def load(cls, prompts_dir: Path, variant: str) -> "PromptPair":
        folder = prompts_dir / variant
        if not folder.is_dir():
            known = variants(prompts_dir) if prompts_dir.is_dir() else []
            raise PromptError(f"no prompt variant '{variant}' in {prompts_dir} (known: {', '.join(known) or 'none'})")
        return cls(
            variant,
            PromptTemplate.load(folder / "system.md", f"{variant}/system"),
            PromptTemplate.load(folder / "user.md", f"{variant}/user"),
        )


def variants(prompts_dir: Path) -> list[str]:
    return sorted(p.name for p in prompts_dir.iterdir() if (p / "system.md").is_file() and (p / "user.md").is_file())
