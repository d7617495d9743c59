"""Approved feedback → dataset cases: de-identified, with provenance, near-duplicates as one case.

Only items a person approved (``rag feedback review``) are exported; pending and rejected ones are
counted and left out. Each approved item is de-identified the way the dataset is
(``rag.corpus.deidentify``), carries where it came from (``来源``: feedback and draft ids, verdict,
reviewer, review time, copies) and is checked on its own by the strict parser, so one malformed
item is skipped with its ids named and never fails the export. Items whose final texts are
near-duplicates (the same content sentence by sentence, ``rag.text.near_duplicates``) become one case: three copies of one text
are one vote in retrieval, not three.
"""

from __future__ import annotations

import errno
import os
import stat
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Iterable, Sequence

from rag.corpus.format import unstructured_line, valid_category_name, without_category_separators, write_cases
from rag.corpus.deidentify import deidentify
from rag.errors import ParseError, RagError
from rag.feedback.store import FeedbackItem, FeedbackStore
from rag.text.identifiers import CorpusIdentifiers
from rag.text.near_duplicates import NEAR_DUPLICATE, same_content
from rag.text.normalise import escape_controls, normalise
from rag.records import Case, Provenance, Turn

HEADING = "七牛云客服问答数据集 - 来自客服反馈"
INTRO = "本文档由 `rag feedback export` 生成：经人工审核通过的客服采纳或修改后的草稿，已脱敏。"


@dataclass(frozen=True)
class ExportResult:
    text: str
    cases: tuple[Case, ...]  # as the strict parser reads them back
    skipped: tuple[str, ...]  # one message per malformed item, naming its feedback and draft ids
    pending: int  # accepted/edited items not reviewed yet: left out
    rejected: int  # items a reviewer rejected: left out
    collapsed: int  # approved items folded into a near-duplicate's case


def corpus_identifiers(cases: Iterable[Case]) -> CorpusIdentifiers:
    """What the dataset's own cases say is public (hosts and tokens used across cases); cases that
    came from feedback do not get a say."""
    return CorpusIdentifiers.learn(
        (c.id, "\n".join((c.title, c.question, *(t.text for t in c.turns))), c.answer)
        for c in cases if c.provenance is None
    )


def _case_of(item: FeedbackItem, allowlist: Sequence[str], corpus: CorpusIdentifiers) -> Case:
    def clean(text: str) -> str:
        # Control characters stored before input was cleaned are written as visible escapes: no raw ESC
        # sequence reaches the dataset or whoever reads it in a terminal (issue 24).
        return escape_controls(deidentify(text, allowlist=allowlist, corpus=corpus).text)

    question = clean(item.ticket).strip() or "（无）"
    title = unstructured_line(clean(item.title)) or unstructured_line(question)[:30] or "（无标题）"
    product = without_category_separators(unstructured_line(escape_controls(item.product))) or "其他"
    subcategory = unstructured_line(escape_controls(item.subcategory)) or "其他类咨询"
    for name in (product, subcategory, *item.scenarios):
        if not valid_category_name(name):
            raise ParseError(f"product {name[:40]!r} is not a product name", source="feedback", line=0)
    return Case(
        id="", title=title, product=product, subcategory=subcategory, scenarios=item.scenarios or (product,),
        question=question,
        turns=(Turn("customer", question), Turn("agent", clean(item.final_text).strip())),
        root_cause=None, source="feedback", line=0,
        provenance=Provenance(
            origin="feedback", feedback_ids=(item.feedback_id,), draft_ids=(item.draft_id,), verdict=item.verdict,
            reviewer=item.reviewer or "", reviewed_at=item.reviewed_at or "", copies=1,
        ),
    )


def _merge(group: list[Case]) -> Case:
    """One case for a group of near-duplicates: the oldest item's text, everyone's ids."""
    first = group[0]
    provs = [c.provenance for c in group if c.provenance is not None]
    reviewers = list(dict.fromkeys(p.reviewer for p in provs))
    return replace(first, provenance=Provenance(
        origin="feedback",
        feedback_ids=tuple(i for p in provs for i in p.feedback_ids),
        draft_ids=tuple(d for p in provs for d in p.draft_ids),
        verdict="edited" if any(p.verdict == "edited" for p in provs) else "accepted",
        reviewer=",".join(reviewers), reviewed_at=max(p.reviewed_at for p in provs), copies=len(group),
    ))


def _answer_key(case: Case) -> str:
    return " ".join(normalise(case.answer).split())


def collapse_near_duplicates(cases: Sequence[Case], cutoff: float = NEAR_DUPLICATE) -> list[Case]:
    """Group cases whose answers are near-duplicates (each joins the first group it matches)."""
    groups: list[list[Case]] = []
    keys: list[str] = []
    for case in cases:
        key = _answer_key(case)
        for g, k in zip(groups, keys):
            # Judged on content, sentence by sentence: padding each copy with another filler line no longer
            # makes eight cases of one phishing text (issue 24).
            if same_content(key, k, cutoff):
                g.append(case)
                break
        else:
            groups.append([case])
            keys.append(key)
    return [_merge(g) for g in groups]


def export_feedback(store: FeedbackStore, *, allowlist: Sequence[str], corpus: CorpusIdentifiers = CorpusIdentifiers(),
                    cutoff: float = NEAR_DUPLICATE) -> ExportResult:
    from rag.corpus.parse import parse_text

    items = store.items()
    skipped: list[str] = []
    cases: list[Case] = []
    for item in items:
        if item.decision != "approved":
            continue
        try:
            case = _case_of(item, allowlist, corpus)
            if len(parse_text(write_cases([case], heading=HEADING), "feedback-item.md", strict=True)) != 1:
                raise ParseError("does not make exactly one case", source="feedback-item.md", line=0)
        except (ParseError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, ParseError) else str(exc)
            skipped.append(f"feedback {item.feedback_id} (draft {item.draft_id}) skipped: {reason}")
            continue
        cases.append(case)
    merged = collapse_near_duplicates(cases, cutoff)
    text = write_cases(merged, heading=HEADING, intro=INTRO)
    return ExportResult(
        text=text, cases=tuple(parse_text(text, "feedback_cases.md", strict=True)), skipped=tuple(skipped),
        pending=sum(1 for i in items if i.decision is None),
        rejected=sum(1 for i in items if i.decision == "rejected"),
        collapsed=len(cases) - len(merged),
    )


# -- Where the export goes: a new regular file, never anything that exists (issue 24) --------------------------

EXPORTS_FOLDER = "exports"
_SNIFF_BYTES = 4 * 1024 * 1024  # enough of an existing file to tell whether it holds dataset cases


class ExportTargetError(RagError):
    """The export's target is not a new regular file (one line, exit 2)."""


def default_export_path(home: Path, now: datetime | None = None) -> Path:
    """``$RAG_HOME/exports/feedback_cases-<time>.md`` (``-2``, ``-3``… when that second's name is taken): beside
    the store, never relative to the current folder, and always a new name."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    folder = home / EXPORTS_FOLDER
    for n in range(1, 1000):
        path = folder / f"feedback_cases-{stamp}{'' if n == 1 else f'-{n}'}.md"
        if not os.path.lexists(path):
            return path
    return folder / f"feedback_cases-{stamp}-{uuid.uuid4().hex[:8]}.md"


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except (ValueError, OSError):
        return False


def _holds_cases(path: Path) -> bool:
    from rag.corpus.parse import parse_text

    try:
        with path.open("rb") as f:
            head = f.read(_SNIFF_BYTES).decode("utf-8", errors="ignore")
        return bool(parse_text(head, path.name))
    except (OSError, ParseError, ValueError):
        return False


def refusal(target: Path, data_dir: Path) -> str | None:
    """Why ``target`` cannot be the export (it exists, whatever it is), or None when it is free. Read with
    ``lstat``: a symbolic link is refused as one, never followed, and a device is never opened (run as root,
    the export once replaced ``/dev/null`` with a regular file)."""
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot be checked ({exc.strerror})"
    if stat.S_ISDIR(mode):
        return "is a folder; give a file name"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device"
    if stat.S_ISFIFO(mode):
        return "is a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "is a socket"
    if stat.S_ISLNK(mode):
        return "is a symbolic link"
    if _inside(target, data_dir):
        return (f"is a dataset file in RAG_DATA_DIR ({data_dir}): replacing it would change the corpus "
                "the next `rag ingest` reads")
    if _holds_cases(target):
        return "is a dataset file (it holds cases)"
    return "already exists"


def write_new_file(target: Path, text: str, data_dir: Path) -> Path:
    """Write ``text`` to ``target``, which must not exist; never replaces anything, even in a race.

    The text goes to a hidden temporary file in the same folder, then is hard-linked to ``target`` (``link``
    fails when ``target`` exists, whatever it is), so a reader never sees half a file; where the file system
    has no hard links, ``target`` is created with ``O_EXCL`` and written in place."""
    reason = refusal(target, data_dir)
    if reason:
        raise ExportTargetError(f"--out {target}: {reason}; the export writes a new file, choose another path")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportTargetError(f"--out {target}: its folder cannot be made ({exc.strerror})") from None
    data = text.encode("utf-8")
    tmp = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        _write_exclusive(tmp, data)
        try:
            os.link(tmp, target)
        except FileExistsError:
            raise ExportTargetError(f"--out {target}: already exists; the export writes a new file, "
                                    "choose another path") from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EXDEV, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            _write_exclusive(target, data)
    except FileExistsError:
        raise ExportTargetError(f"--out {target}: already exists; the export writes a new file, choose another path") from None
    except OSError as exc:
        raise ExportTargetError(f"--out {target}: cannot be written ({exc.strerror})") from None
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _write_exclusive(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
