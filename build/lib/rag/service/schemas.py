"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TurnIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["customer", "agent"]
    text: str = Field(min_length=1)


class DraftRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(description="the customer's message")
    title: str = ""
    product: str | None = None
    history: list[TurnIn] = Field(default_factory=list, max_length=50)
    k: int | None = Field(default=None, ge=1, le=20)


class CitationOut(BaseModel):
    case_id: str
    title: str
    passage: str
    score: float


class DraftResponse(BaseModel):
    draft_id: str
    text: str
    action: Literal["answer", "ask_for_info", "escalate"]
    confidence: float
    citations: list[CitationOut]
    links: list[str]
    backend: str
    fallback: bool
    prompt_id: str
    prompt_version: str
    latency_ms: float
    usage: dict[str, int]
    removed: list[str]
    notes: list[str]


class CaseOut(BaseModel):
    case_id: str
    title: str
    product: str
    subcategory: str
    scenarios: list[str]
    question: str
    answer: str
    root_cause: str | None
    source: str
    line: int


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    draft_id: str = Field(min_length=1, max_length=64)
    verdict: Literal["accepted", "edited", "rejected"]
    final_text: str | None = Field(default=None, max_length=20000)
    reason: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _needs(self) -> "FeedbackRequest":
        if self.verdict == "edited" and not (self.final_text or "").strip():
            raise ValueError("an 'edited' verdict needs final_text")
        if self.verdict == "rejected" and not (self.reason or "").strip():
            raise ValueError("a 'rejected' verdict needs a reason")
        return self


class FeedbackResponse(BaseModel):
    id: int
    draft_id: str
    verdict: str


class Health(BaseModel):
    status: Literal["ok"]
    cases: int
    chunks: int
    backend: str
    products: list[str]
