"""What a reviewer reads before approving feedback: each pending item and its unified diff.

The diff is the draft the service wrote against the text the agent sent back, line by line
(``difflib``); an accepted draft with no edit shows no diff lines, only the text."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from rag.feedback.store import FeedbackItem, FeedbackStore


@dataclass(frozen=True)
class PendingItem:
    item: FeedbackItem
    diff: str  # unified diff of the final text against the draft; "" when the agent changed nothing


def diff_against_draft(item: FeedbackItem) -> str:
    lines = difflib.unified_diff(
        item.draft_text.splitlines(), item.final_text.splitlines(),
        fromfile=f"draft {item.draft_id}", tofile=f"final (feedback {item.feedback_id}, {item.verdict})", lineterm="",
    )
    return "\n".join(lines)


def pending(store: FeedbackStore) -> list[PendingItem]:
    """Accepted or edited items no person has approved or rejected yet, oldest first."""
    return [PendingItem(i, diff_against_draft(i)) for i in store.items() if i.decision is None]
