"""Immutable records passed between the steps: parse → chunk → store → retrieve → draft → score.

Records are plain values; change one with ``dataclasses.replace``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

from rag.notes import Note

Role = Literal["customer", "agent"]
Action = Literal["answer", "ask_for_info", "escalate"]


@dataclass(frozen=True, slots=True)
class Turn:
    role: Role
    text: str
    line: int = 0
    is_filler: bool = False
    has_image: bool = False


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a case came from when a person, not the dataset, put it in the corpus: approved feedback.

    ``copies``: how many near-duplicate feedback items were collapsed into this one case (one vote)."""

    origin: Literal["feedback"]
    feedback_ids: tuple[int, ...]
    draft_ids: tuple[str, ...]
    verdict: str
    reviewer: str
    reviewed_at: str
    copies: int = 1


@dataclass(frozen=True, slots=True)
class Wording:
    """Another customer's wording of a case's problem (rag.corpus.asked), and which customer turn of the dialogue
    asks the same (``turn``: 1 for the first non-filler customer turn, 0 when not said)."""

    text: str
    turn: int = 0


@dataclass(frozen=True, slots=True)
class Case:
    id: str
    title: str
    product: str
    subcategory: str
    scenarios: tuple[str, ...]
    question: str
    turns: tuple[Turn, ...]
    root_cause: str | None
    source: str
    line: int
    links: tuple[str, ...] = ()
    provenance: Provenance | None = None  # None: a case of the dataset itself
    # Other customers' wordings of the same problem, from the dataset's sidecar (rag.corpus.asked): matched, never quoted.
    asked: tuple[Wording, ...] = ()

    @property
    def agent_turns(self) -> tuple[Turn, ...]:
        return tuple(t for t in self.turns if t.role == "agent")

    @property
    def answer(self) -> str:
        """The substantive agent answer: agent turns minus filler, joined by newlines."""
        return "\n".join(t.text for t in self.turns if t.role == "agent" and not t.is_filler)

    @property
    def first_customer_turn(self) -> str:
        for t in self.turns:
            if t.role == "customer":
                return t.text
        return ""

    @property
    def query_text(self) -> str:
        """What a new ticket for this case looks like: title plus the problem description."""
        return f"{self.title}\n{self.question}".strip()


@dataclass(frozen=True, slots=True)
class Dialogue:
    """What the store keeps of a case beyond its record so that evaluation can replay it from the store:
    the question and turns as parsed (uncleaned), and the links found in them."""

    question: str
    turns: tuple[Turn, ...]
    links: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CaseRecord:
    """What the store keeps of a case: enough to cite it, filter by it and show it, and its dialogue to
    replay it (None: a store written before the dialogue was kept)."""

    id: str
    title: str
    product: str
    subcategory: str
    scenarios: tuple[str, ...]
    root_cause: str | None
    source: str  # the dataset file, as a path relative to the ingested root
    line: int
    question: str  # links separated, image markers removed
    answer: str  # the substantive agent answer, cleaned the same way
    has_links: bool = False
    provenance: Provenance | None = None  # None: a case of the dataset itself
    dialogue: Dialogue | None = None
    # The case's asked wordings, from its asked chunks (CaseRepository): which thread a ticket asks about.
    asked: tuple[Wording, ...] = ()


ChunkKind = Literal["case", "exchange", "asked"]


@dataclass(frozen=True, slots=True)
class Chunk:
    """A searchable piece of a case. The case chunk carries its case record; an exchange chunk refers to
    its case by ``case_id`` and ``exchange`` (its number in the dialogue); an asked chunk is another customer's
    wording of the case's problem (``Case.asked``), searched and never shown."""

    id: str
    case_id: str
    kind: ChunkKind
    text: str
    key_text: str  # the question side: what gets embedded
    exchange: int = 0
    case: CaseRecord | None = None


@dataclass(frozen=True, slots=True)
class Hit:
    """One retrieved past case, with the chunk that matched best."""

    case: CaseRecord
    score: float
    chunk_id: str
    chunk_text: str
    components: dict[str, float] = field(default_factory=dict, hash=False, compare=False)
    # Calibrated probability that this case addresses the ticket's problem (None: no match model ran).
    match: float | None = None

    @property
    def case_id(self) -> str:
        return self.case.id

    @property
    def title(self) -> str:
        return self.case.title

    @property
    def product(self) -> str:
        return self.case.product

    @property
    def subcategory(self) -> str:
        return self.case.subcategory

    @property
    def answer(self) -> str:
        return self.case.answer


@dataclass(frozen=True, slots=True)
class Ticket:
    text: str
    title: str = ""
    product: str | None = None
    history: tuple[Turn, ...] = ()

    @property
    def query_text(self) -> str:
        return f"{self.title}\n{self.text}".strip()


@dataclass(frozen=True, slots=True)
class Citation:
    case_id: str
    title: str
    passage: str
    score: float
    # "source": the draft is built from this case; "related": the closest case, shown to the agent but
    # not used as the reply because it does not address this ticket.
    relation: Literal["source", "related"] = "source"
    match: float | None = None


@dataclass(frozen=True, slots=True)
class Passage:
    """Where a sentence of a draft came from: the past case and that case's passage (after the guard, as the
    draft shows it). The agent's page shows it beside the sentence; a draft may carry none (an LLM's own words)."""

    case_id: str
    text: str


@dataclass(frozen=True, slots=True)
class Hint:
    """For the agent, never the customer: how a related past case was resolved, when a draft defers."""

    case_id: str
    title: str
    match: float
    resolution: str


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Draft:
    text: str
    action: Action
    confidence: float
    citations: tuple[Citation, ...]
    links: tuple[str, ...]
    backend: str
    prompt_id: str
    prompt_version: str
    latency_ms: float
    usage: Usage = Usage()
    fallback: bool = False
    removed: tuple[str, ...] = ()
    notes: tuple[Note, ...] = ()
    retrieved: tuple[str, ...] = ()  # ids of every case the retriever returned, best first
    # Why the draft does what it does: fits, no_fit, vague, closing, staff, bug_report, feature_request, off_topic, no_cases.
    verdict: str = ""
    passages: tuple[Passage, ...] = ()  # the draft's sentences that come from a past case, in order
    # For the agent, never the customer: the closest related case's resolution when the draft defers.
    hint: Hint | None = None


    product: str = ""


def draft_dict(draft: Draft) -> dict:
    """A draft as JSON-ready values; its notes as their English text (readable in run files and the CLI)."""
    d = asdict(draft)
    d["notes"] = [n.text("en") for n in draft.notes]
    return d
