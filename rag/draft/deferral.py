"""The words for a verdict: what the LLM is told about the cases (``prompts/verdicts/<kind>.md``) and the
offline reply when no case fits (``prompts/replies/<kind>.md``). Texts are prompt files, so the team
tunes them without touching code; variables are strict like every prompt's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rag.draft.policy import Verdict
from rag.draft.prompts import PromptTemplate

# A ticket with no retrieved case at all is treated like one whose cases do not fit.
_SAME_AS = {"no_cases": "no_fit"}


@dataclass(frozen=True)
class VerdictTexts:
    prompts_dir: Path

    def _template(self, folder: str, kind: str) -> PromptTemplate:
        kind = _SAME_AS.get(kind, kind)
        return PromptTemplate.load(self.prompts_dir / folder / f"{kind}.md", f"{folder}/{kind}")

    @staticmethod
    def _values(template: PromptTemplate, verdict: Verdict) -> dict[str, object]:
        values = {
            "match": f"{verdict.match:.2f}",
            "threshold": f"{verdict.threshold:.2f}",
            "details": verdict.details,
            "case_ids": "、".join(h.case_id for h in verdict.fitting) or "（无）",
        }
        return {k: v for k, v in values.items() if k in template.variables}

    def instruction(self, verdict: Verdict) -> str:
        """What the LLM is told about whether the cases fit, and what to do."""
        t = self._template("verdicts", verdict.kind)
        return t.render(**self._values(t, verdict))

    def reply(self, verdict: Verdict) -> str:
        """The offline reply for a verdict that is not answered from a past case."""
        t = self._template("replies", verdict.kind)
        return t.render(**self._values(t, verdict))
