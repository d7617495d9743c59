"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rag.records import Provenance


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


class ProvenanceOut(BaseModel):
    """Where a case came from when it is not from the dataset: reviewed feedback."""

    origin: Literal["feedback"]
    feedback_ids: list[int]
    draft_ids: list[str]
    verdict: str
    reviewer: str
    reviewed_at: str
    copies: int = Field(description="near-duplicate feedback items collapsed into this case")

    @classmethod
    def of(cls, p: Provenance | None) -> "ProvenanceOut | None":
        if p is None:
            return None
        return cls(origin=p.origin, feedback_ids=list(p.feedback_ids), draft_ids=list(p.draft_ids), verdict=p.verdict,
                   reviewer=p.reviewer, reviewed_at=p.reviewed_at, copies=p.copies)


class CitationOut(BaseModel):
    case_id: str
    title: str
    product: str = Field(default="", description="the cited case's product")
    passage: str
    score: float
    relation: Literal["source", "related"] = Field(
        default="source", description="source: the reply is built from this case; related: the closest case, "
                                      "shown for reference because it does not address this ticket")
    match: float | None = Field(default=None, description="probability that this case addresses the ticket")
    provenance: ProvenanceOut | None = Field(default=None, description="set when the cited case came from reviewed feedback")


class HintOut(BaseModel):
    case_id: str
    title: str
    match: float
    resolution: str = Field(description="the related case's resolution (guarded like any draft text)")


class PassageOut(BaseModel):
    case_id: str
    text: str = Field(description="the sentence as the draft shows it (after the guard)")


class DraftResponse(BaseModel):
    draft_id: str
    text: str
    action: Literal["answer", "ask_for_info", "escalate"]
    confidence: float = Field(description="probability that the top cited case addresses the ticket's problem")
    verdict: str = Field(default="", description="why this action: fits, no_fit, vague, closing, off_topic, staff, "
                                                 "bug_report, feature_request")
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
    notes_zh: list[str] = Field(default_factory=list, description="the notes as Chinese messages (what the web page shows)")
    passages: list[PassageOut] = Field(default_factory=list, description="the draft's sentences taken from past "
                                       "cases, in order, each with the case it came from")
    hint: HintOut | None = Field(default=None, description="for the agent only, never to send: how the closest "
                                                          "related case was resolved, when the draft defers")
    retrieved: list[str] = Field(default_factory=list, description="ids of every case the retriever returned, best first")
    product: str = Field(default="", description="the product the ticket was drafted for, in the store's spelling")


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
    provenance: ProvenanceOut | None = Field(default=None, description="set when the case came from reviewed feedback")


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    draft_id: str = Field(min_length=1, max_length=64)
    verdict: Literal["accepted", "edited", "rejected"]
    final_text: str | None = Field(default=None, max_length=20000)
    reason: str | None = Field(default=None, max_length=2000)
    product: str | None = Field(default=None, max_length=100,
                                description="the agent's correction of the product: one the store knows (422 lists them)")
    scenarios: list[str] = Field(default_factory=list, max_length=10,
                                 description="the agent's scenarios: each one the store knows (422 lists them)")

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
    max_ticket_chars: int
    generation: int = Field(description="the store generation served: every ingest that changes the store raises it, "
                                        "and the service reloads its indexes when it sees a new one")
    embed_origins: list[str] = Field(default_factory=list, description="help-desk origins allowed to embed the page and "
                                     "receive its drafts by postMessage (RAG_EMBED_ORIGINS)")


class ErrorDetail(BaseModel):
    status: int = Field(description="the HTTP status, repeated")
    message: str = Field(description="what was wrong, naming the field when a field was")


class ErrorBody(BaseModel):
    """Every error the service answers, whatever the status."""

    error: ErrorDetail


_ERROR_TEXT = {
    400: "a Host header that is not served (RAG_ALLOWED_HOSTS), or a body that is not valid UTF-8 or holds an unpaired surrogate",
    401: "missing or wrong bearer token (when RAG_SERVICE_TOKEN is set)",
    403: "no token configured and the client is not on loopback",
    404: "unknown id",
    413: "the ticket (or request) is too large",
    415: "the body is not JSON (Content-Type other than application/json)",
    422: "invalid field, unknown product or invalid JSON",
    429: "too many requests in flight",
    500: "server misconfiguration (prompts, settings, store built with another model)",
    502: "the LLM or embedding endpoint failed",
    503: "the store is busy (another ingest holds it), unavailable or damaged (the message names the file and the fix)",
}


_HEADERS = {401: {"WWW-Authenticate": {"description": 'the scheme wanted: Bearer realm="rag" (with error="invalid_token" '
                                                      "when a wrong token was sent)", "schema": {"type": "string"}}}}


def error_responses(*statuses: int) -> dict:
    """OpenAPI ``responses`` for these statuses, all with the one error body the service really sends."""
    return {s: {"model": ErrorBody, "description": _ERROR_TEXT.get(s, "error"), **({"headers": _HEADERS[s]} if s in _HEADERS else {})}
            for s in statuses}
