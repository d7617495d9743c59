"""LLM-as-judge: a rubric in ``prompts/judge.md`` scored by any OpenAI-compatible model."""

from __future__ import annotations

import json
import re
from pathlib import Path

from rag.llm.chat import ChatModel
from rag.llm.prompts import PromptTemplate
from rag.errors import LLMError

CRITERIA = ("correct", "complete", "actionable", "tone")
_JSON = re.compile(r"\{.*\}", re.S)


class Judge:
    def __init__(self, llm: ChatModel, prompts_dir: Path) -> None:
        self.llm = llm
        self.prompt = PromptTemplate.load(prompts_dir / "judge.md", "judge")

    def judge(self, ticket: str, reference: str, draft: str) -> dict:
        text = self.prompt.render(ticket=ticket, reference=reference, draft=draft)
        reply = self.llm.complete([{"role": "user", "content": text}], temperature=0.0, max_tokens=300).text
        m = _JSON.search(reply)
        try:
            data = json.loads(m.group(0)) if m else {}
            scores = {c: float(data[c]) for c in CRITERIA}
        except (ValueError, TypeError, KeyError) as exc:
            raise LLMError(f"the judge's reply is not the rubric's JSON: {reply[:200]!r}") from exc
        if not all(1 <= v <= 5 for v in scores.values()):
            raise LLMError(f"the judge's scores are outside 1-5: {scores}")
        return {**scores, "overall": round(sum(scores.values()) / (5 * len(scores)), 4),
                "reason": str(data.get("reason", "")), "prompt_version": self.prompt.version}
