"""Feedback on drafts, stored durably in SQLite, and turned back into corpus cases.

Every draft the service returns is recorded with an id; an agent then accepts it, edits it (the final
text is kept) or rejects it (with a reason). Writes are single statements in WAL mode with a busy
timeout, so concurrent requests queue instead of losing writes. Accepted and edited drafts export
to the dataset format, so the next ingest learns from them.
"""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from collections import defaultdict
from contextlib import closing
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from rapidfuzz.distance import Levenshtein

from rag.errors import RagError
from rag.records import Draft, Ticket
from rag.sqlite_db import connect

Verdict = Literal["accepted", "edited", "rejected"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS drafts (
    id TEXT PRIMARY KEY, created TEXT NOT NULL, product TEXT NOT NULL, subcategory TEXT NOT NULL,
    title TEXT NOT NULL, ticket TEXT NOT NULL, draft_text TEXT NOT NULL, draft_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT, draft_id TEXT NOT NULL REFERENCES drafts(id), created TEXT NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('accepted', 'edited', 'rejected')),
    final_text TEXT, reason TEXT
);
CREATE INDEX IF NOT EXISTS feedback_draft ON feedback(draft_id);
"""


class UnknownDraftError(RagError):
    pass


@dataclass(frozen=True)
class ProductStats:
    product: str
    drafts: int
    feedback: int
    accepted: int
    edited: int
    rejected: int
    acceptance_rate: float | None
    mean_edit_distance: float | None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class FeedbackStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db:
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return connect(self.path, autocommit=True)

    def record_draft(self, ticket: Ticket, draft: Draft, product: str, subcategory: str) -> str:
        draft_id = uuid.uuid4().hex
        with closing(self._connect()) as db:
            db.execute(
                "INSERT INTO drafts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (draft_id, _now(), product, subcategory, ticket.title, ticket.text, draft.text,
                 json.dumps(asdict(draft), ensure_ascii=False)),
            )
        return draft_id

    def add_feedback(self, draft_id: str, verdict: Verdict, final_text: str | None = None, reason: str | None = None) -> int:
        with closing(self._connect()) as db:
            if db.execute("SELECT 1 FROM drafts WHERE id = ?", (draft_id,)).fetchone() is None:
                raise UnknownDraftError(f"no draft with id {draft_id!r}")
            cur = db.execute(
                "INSERT INTO feedback (draft_id, created, verdict, final_text, reason) VALUES (?, ?, ?, ?, ?)",
                (draft_id, _now(), verdict, final_text, reason),
            )
            return int(cur.lastrowid or 0)

    def counts(self) -> tuple[int, int]:
        with closing(self._connect()) as db:
            return (db.execute("SELECT COUNT(*) FROM drafts").fetchone()[0], db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0])

    def _latest(self, db: sqlite3.Connection) -> list[sqlite3.Row]:
        """The latest verdict per draft: an agent who edits after accepting has the last word.

        Every verdict is kept (``history``); a later verdict without text ("accepted") keeps the text the
        agent last wrote, so an edit is never lost to a later click.
        """
        db.row_factory = sqlite3.Row
        return db.execute(
            """SELECT d.*, f.verdict, f.reason,
                      COALESCE(f.final_text, (SELECT g.final_text FROM feedback g WHERE g.draft_id = d.id
                                              AND g.final_text IS NOT NULL ORDER BY g.id DESC LIMIT 1)) AS final_text
               FROM drafts d JOIN feedback f ON f.id = (SELECT MAX(id) FROM feedback WHERE draft_id = d.id)"""
        ).fetchall()

    def history(self, draft_id: str) -> list[dict]:
        """Every verdict given on a draft, oldest first."""
        with closing(self._connect()) as db:
            db.row_factory = sqlite3.Row
            rows = db.execute("SELECT id, created, verdict, final_text, reason FROM feedback WHERE draft_id = ? ORDER BY id",
                              (draft_id,)).fetchall()
        return [dict(r) for r in rows]

    def stats(self) -> list[ProductStats]:
        with closing(self._connect()) as db:
            drafts = dict(db.execute("SELECT product, COUNT(*) FROM drafts GROUP BY product").fetchall())
            rows = self._latest(db)
        per: dict[str, list[sqlite3.Row]] = defaultdict(list)
        for r in rows:
            per[r["product"]].append(r)
        out = []
        for product in sorted(set(drafts) | set(per)):
            rs = per.get(product, [])
            verdicts = [r["verdict"] for r in rs]
            edits = [Levenshtein.normalized_distance(r["draft_text"], r["final_text"]) for r in rs
                     if r["verdict"] in ("edited", "accepted") and r["final_text"] and r["final_text"] != r["draft_text"]]
            out.append(ProductStats(
                product=product, drafts=drafts.get(product, 0), feedback=len(rs),
                accepted=verdicts.count("accepted"), edited=verdicts.count("edited"), rejected=verdicts.count("rejected"),
                acceptance_rate=round((verdicts.count("accepted") + verdicts.count("edited")) / len(rs), 3) if rs else None,
                mean_edit_distance=round(sum(edits) / len(edits), 3) if edits else None,
            ))
        return out

    def export_cases(self) -> str:
        """Accepted and edited drafts as dataset-format cases (one Markdown document)."""
        return self.export()[0]

    def export(self) -> tuple[str, list[str]]:
        """(the document, one message per skipped item naming its draft id).

        Every free-text field is folded to one line and stripped of Markdown structure, so a
        ``product`` holding newlines and ``## title`` lines cannot forge a case; each item is checked
        by the strict parser on its own, so one malformed item is skipped, never the whole export."""
        from rag.errors import ParseError
        from rag.parse import parse_text

        with closing(self._connect()) as db:
            rows = [r for r in self._latest(db) if r["verdict"] in ("accepted", "edited")]
        blocks = ["# 七牛云客服问答数据集 - 来自客服反馈", "", "本文档由 `rag feedback export` 生成：客服采纳或修改后的草稿。", ""]
        skipped: list[str] = []
        for r in rows:
            answer = (r["final_text"] or r["draft_text"]).strip()
            question = _one_line(r["ticket"]) or "（无）"
            title = _one_line(r["title"] or question[:30]) or "（无标题）"
            product = _one_line(r["product"]).replace("｜", " ").replace("|", " ") or "其他"
            subcategory = _one_line(r["subcategory"]) or "其他类咨询"
            block = [
                "---", "", f"## {title}", "", f"**问题分类**: {product}｜{subcategory}", "",
                f"**适用场景**: {product}", "", "### 问题描述", "", question, "", "### 客服解答", "",
                f"**客户**：{question}", f"**客服**：{_one_turn(answer)}", "", "### 根本原因分析", "",
                "需要根据具体情况分析，建议查看文档或联系技术支持", "",
            ]
            if not _PRODUCT_NAME.fullmatch(product) or not _PRODUCT_NAME.fullmatch(subcategory):
                skipped.append(f"feedback for draft {r['id']} skipped: product {product[:40]!r} is not a product name")
                continue
            try:
                if len(parse_text("\n".join(block) + "\n", "feedback-item.md", strict=True)) != 1:
                    raise ParseError("does not make exactly one case", source="feedback-item.md", line=0)
            except ParseError as exc:
                skipped.append(f"feedback for draft {r['id']} skipped: {exc.reason}")
                continue
            blocks += block
        return "\n".join(blocks) + "\n", skipped


_PRODUCT_NAME = re.compile(r"[\w\u4e00-\u9fff &/()（）.+\-]{1,30}")


def _one_line(text: str | None) -> str:
    """A field on one line with no Markdown structure at its start."""
    line = " ".join((text or "").split())
    return line.lstrip("#*-> ").strip()


def _one_turn(text: str) -> str:
    # A line starting like a role marker or a section would break the dataset format.
    lines = [ln for ln in re.split(r"\r\n|\n|\r", text) if ln.strip()]
    safe = [(" " + ln) if ln.lstrip().startswith(("**", "#", "---")) else ln for ln in lines]
    return "\n".join(safe)
