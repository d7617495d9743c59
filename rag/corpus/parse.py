"""Parse dataset files (Markdown, cases separated by ``---``) into immutable ``Case`` records.

The format (markers, line patterns, the writer) is ``rag.corpus.format``'s; this module reads files with it.
Strict mode raises ``ParseError`` at the first bad case; the default skips it with a warning
that names the file and line, and counts it in the report.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Iterator

from rag.corpus.format import (
    CATEGORY_FIELD,
    DIALOGUE_SECTION,
    FIELD_LINE as _FIELD,
    GENERIC_ROOT_CAUSE,
    LINE_BREAK as _LINE_BREAK,
    PROVENANCE_FIELD,
    QUESTION_SECTION,
    REQUIRED as _REQUIRED,
    ROOT_CAUSE_SECTION,
    ROLES as _ROLES,
    SCENARIO_SEPARATORS,
    SCENARIOS_FIELD,
    SECTION_LINE as _SECTION,
    SECTIONS as _SECTIONS,
    SEPARATOR,
    SEPARATOR_LINE as _SEPARATOR,
    TITLE_LINE as _TITLE,
    TURN_LINE as _TURN,
    parse_provenance,
    section_line,
    split_category,
    title_line,
    turn_marker,
)
from rag.corpus.asked import parse_asked, sidecar
from rag.text.markers import IMAGE_MARKER
from rag.errors import ParseError
from rag.text.filler import is_filler
from rag.text.links import find_links
from rag.records import Case, Role, Turn

__all__ = ["GENERIC_ROOT_CAUSE", "ParseReport", "parse_text", "parse_file", "parse_paths", "dataset_files", "read_dataset_file"]
DATASET_SUFFIXES = (".md", ".txt")
_ANY_TURN = " or ".join(f"'{turn_marker(m)}'" for m in _ROLES)


@dataclass(frozen=True)
class ParseReport:
    files: int = 0
    cases: int = 0
    skipped: int = 0
    warnings: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    unreadable: tuple[str, ...] = ()  # files skipped whole (not UTF-8, unreadable)


def _split_blocks(lines: list[str]) -> Iterator[list[tuple[int, str]]]:
    block: list[tuple[int, str]] = []
    for no, line in enumerate(lines, start=1):
        if _SEPARATOR.match(line):
            if block:
                yield block
            block = []
        else:
            block.append((no, line))
    if block:
        yield block


def _is_preamble(block: list[tuple[int, str]]) -> bool:
    """The file header ("# 七牛云客服问答数据集 - Part 15" and its intro) is not a case."""
    content = [line for _, line in block if line.strip()]
    return not any(_TITLE.match(line) or _SECTION.match(line) or _FIELD.match(line) for line in content)


def _case_id(source: str, title: str, question: str, turns: tuple[Turn, ...], occurrence: int) -> str:
    h = hashlib.sha256()
    for part in (source, title, question, *(f"{t.role}:{t.text}" for t in turns), str(occurrence)):
        h.update(part.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()[:16]


def _parse_block(block: list[tuple[int, str]], source: str) -> dict:
    start = next((no for no, line in block if line.strip()), block[0][0])
    title = None
    fields: dict[str, str] = {}
    field_lines: dict[str, int] = {}
    sections: dict[str, list[tuple[int, str]]] = {}
    current: str | None = None
    for no, line in block:
        if title is None:
            if not line.strip():
                continue
            m = _TITLE.match(line)
            if not m:
                raise ParseError(f"a case must start with '{title_line('title')}'", source=source, line=no)
            title = m.group(1)
            continue
        if (m := _SECTION.match(line)) is not None:
            name = m.group(1)
            if name not in _SECTIONS:
                raise ParseError(f"unknown section '{section_line(name)}'", source=source, line=no)
            if name in sections:
                raise ParseError(f"section '{section_line(name)}' appears twice", source=source, line=no)
            current = name
            sections[name] = []
            continue
        if current is None and (m := _FIELD.match(line)) is not None:
            fields[m.group(1)] = m.group(2)
            field_lines[m.group(1)] = no
            continue
        if current is None:
            if line.strip():
                raise ParseError(f"unexpected text before the first section: {line.strip()[:40]!r}", source=source, line=no)
            continue
        sections[current].append((no, line))
    if title is None:
        raise ParseError("empty case", source=source, line=start)
    for name in _REQUIRED:
        if name not in fields and name not in sections:
            raise ParseError(f"case '{title}' has no '{name}'", source=source, line=start)
    return {"title": title, "fields": fields, "field_lines": field_lines, "sections": sections, "line": start}


def _text(lines: list[tuple[int, str]]) -> str:
    return "\n".join(line.rstrip() for _, line in lines).strip()


def _parse_turns(lines: list[tuple[int, str]], source: str) -> tuple[Turn, ...]:
    turns: list[tuple[Role, int, list[str]]] = []
    for no, line in lines:
        m = _TURN.match(line)
        if m:
            role = _ROLES.get(m.group(1).strip())
            if role is None:
                raise ParseError(f"unknown role '{m.group(1)}' (expected {' or '.join(_ROLES)})", source=source, line=no)
            turns.append((role, no, [m.group(2)]))
        elif line.strip():
            if not turns:
                raise ParseError(f"dialogue text before the first {_ANY_TURN} turn", source=source, line=no)
            turns[-1][2].append(line.rstrip())
    out = []
    for role, no, parts in turns:
        text = "\n".join(parts).strip()
        out.append(
            Turn(
                role=role,
                text=text,
                line=no,
                is_filler=role == "agent" and is_filler(text),
                has_image=IMAGE_MARKER in text,
            )
        )
    return tuple(out)


def _build_case(raw: dict, source: str, occurrences: dict[str, int]) -> Case:
    fields, sections, line = raw["fields"], raw["sections"], raw["line"]
    product, subcategory = split_category(fields.get(CATEGORY_FIELD, ""))
    if not product:
        raise ParseError(f"case '{raw['title']}' has an empty {CATEGORY_FIELD}", source=source, line=line)
    scenarios = tuple(s.strip() for s in SCENARIO_SEPARATORS.split(fields.get(SCENARIOS_FIELD, "")) if s.strip())
    provenance = None
    if PROVENANCE_FIELD in fields:
        provenance = parse_provenance(fields[PROVENANCE_FIELD], source=source, line=raw["field_lines"][PROVENANCE_FIELD])
    question = _text(sections.get(QUESTION_SECTION, []))
    turns = _parse_turns(sections.get(DIALOGUE_SECTION, []), source)
    if not question and not turns:
        raise ParseError(f"case '{raw['title']}' has neither a question nor a dialogue", source=source, line=line)
    if not turns:
        raise ParseError(f"case '{raw['title']}' has an empty {DIALOGUE_SECTION}", source=source, line=line)
    root = _text(sections.get(ROOT_CAUSE_SECTION, []))
    key = "\x00".join((raw["title"], question, *(t.text for t in turns)))
    occurrences[key] = occurrences.get(key, 0) + 1
    links = find_links("\n".join(t.text for t in turns if t.role == "agent"))
    return Case(
        id=_case_id(source, raw["title"], question, turns, occurrences[key]),
        title=raw["title"],
        product=product,
        subcategory=subcategory,
        scenarios=scenarios,
        question=question,
        turns=turns,
        root_cause=None if (not root or root == GENERIC_ROOT_CAUSE) else root,
        source=source,
        line=line,
        links=links,
        provenance=provenance,
    )


def parse_text(text: str, source: str, *, strict: bool = False, warnings: list[str] | None = None) -> list[Case]:
    """Parse one file's text. ``source`` names it in ids and messages.

    Only CR, LF and CRLF end a line: ``str.splitlines`` would also break at U+2028/U+2029 and
    a few control characters, which turned one pasted turn into a broken case. Content the parser
    skips (text between separators that is not a case, a file that yields no case) is a warning
    naming ``file:line``, never silence."""
    lines = _LINE_BREAK.split(text)
    cases: list[Case] = []
    occurrences: dict[str, int] = {}
    found_warnings: list[str] = []
    first = True
    for block in _split_blocks(lines):
        if not any(line.strip() for _, line in block):
            continue
        if _is_preamble(block):
            if not first:
                start = next(no for no, line in block if line.strip())
                found_warnings.append(str(ParseError("text between separators that is not a case was skipped", source=source, line=start)))
            first = False
            continue
        first = False
        try:
            cases.append(_build_case(_parse_block(block, source), source, occurrences))
        except ParseError as exc:
            if strict:
                raise
            found_warnings.append(str(exc))
    if not cases and not found_warnings and text.strip():
        found_warnings.append(str(ParseError(f"the file yields no case (no '{title_line('title')}' blocks between '{SEPARATOR}' separators)", source=source, line=1)))
    if warnings is not None:
        warnings.extend(found_warnings)
    return cases


def read_dataset_file(path: Path, source: str | None = None) -> str:
    """Read a dataset file as UTF-8; a file that is not UTF-8 is an error naming the line."""
    name = source or path.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ParseError(f"cannot read the file: {exc.strerror or exc}", source=name, line=0) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ParseError(f"not valid UTF-8 (byte {exc.start})", source=name, line=line) from None


def source_name(file: Path, base: Path) -> str:
    """How a dataset file is named in case ids and the store: its path relative to ``base``, with '/'."""
    try:
        return file.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return file.name


def dataset_files(paths: Iterable[Path], root: Path | None = None) -> list[tuple[Path, str]]:
    """Expand folders into their dataset files (sorted, so ingest order is stable), each with its source name.

    The name is the path relative to ``root`` when the file lies under it, else relative to the folder it
    was found in (a file given on its own: its name). Two ``part1.md`` in different folders stay two
    sources; a file directly in the root is named as before, by its file name.
    """
    files: list[tuple[Path, str]] = []
    for p in paths:
        p = Path(p)
        base = root if root is not None and _inside(p, root) else (p if p.is_dir() else p.parent)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in DATASET_SUFFIXES and not f.name.startswith("."))
            files.extend((f, source_name(f, base)) for f in found)
        elif p.is_file():
            files.append((p, source_name(p, base)))
        else:
            raise ParseError(not_a_dataset_path(p), source=str(p), line=0)
    return files


def not_a_dataset_path(path: Path) -> str:
    """Why ``path``, neither a regular file nor a folder, cannot be read as a dataset: the real reason (issue 24:
    ``rag ingest /dev/zero`` or a FIFO said "no such file or folder"). Nothing is opened: reading a FIFO
    blocks until a writer comes, and /dev/zero never ends."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "a symbolic link to a missing file" if os.path.islink(path) else "no such file or folder"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device, not a dataset file"
    if stat.S_ISFIFO(mode):
        return "is a FIFO (named pipe), not a dataset file"
    if stat.S_ISSOCK(mode):
        return "is a socket, not a dataset file"
    return "is neither a regular file nor a folder"


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def parse_file(path: Path, *, strict: bool = False, warnings: list[str] | None = None, source: str | None = None) -> list[Case]:
    text = read_dataset_file(path, source)
    return parse_text(text, source or path.name, strict=strict, warnings=warnings)


def _with_asked(cases: list[Case], dataset: Path, source: str, *, strict: bool, warnings: list[str]) -> list[Case]:
    """``cases`` with the wordings of their sidecar file (``rag.corpus.asked``), if the dataset has one. A line
    that cannot be used is skipped with a warning naming it (raised when strict); the cases are read either way."""
    path = sidecar(dataset)
    if not path.is_file():
        return cases
    name = sidecar(Path(source)).as_posix()
    try:
        asked, problems = parse_asked(read_dataset_file(path, name), name, {c.id for c in cases})
    except ParseError as exc:
        problems, asked = [exc], {}
    if problems and strict:
        raise problems[0]
    warnings.extend(f"{p} (line skipped)" for p in problems)
    return [replace(c, asked=asked[c.id]) if c.id in asked else c for c in cases]


def parse_paths(paths: Iterable[Path], *, strict: bool = False, root: Path | None = None) -> tuple[list[Case], ParseReport]:
    """Parse every dataset file under ``paths`` (named relative to ``root``, see ``dataset_files``).

    Unreadable files are skipped (or raise, when strict)."""
    cases: list[Case] = []
    warnings: list[str] = []
    unreadable: list[str] = []
    files = dataset_files(paths, root)
    for f, name in files:
        try:
            parsed = parse_file(f, strict=strict, warnings=warnings, source=name)
        except ParseError as exc:
            if strict:
                raise
            warnings.append(str(exc))
            unreadable.append(name)
            continue
        cases.extend(_with_asked(parsed, f, name, strict=strict, warnings=warnings))
    return cases, ParseReport(
        files=len(files),
        cases=len(cases),
        skipped=len(warnings),
        warnings=tuple(warnings),
        sources=tuple(name for _, name in files),
        unreadable=tuple(unreadable),
    )
