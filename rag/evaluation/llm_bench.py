"""The LLM drafters against the offline one on labelled tickets: what each draft carries, what it must not carry,
how it reads against the team's own answers, and what it costs (``eval/bench_llm.py`` is the command).

Per ticket: the record ``rag.evaluation.tickets.ticket_record`` gives (the decision, the labelled key content,
the deferral's asks), and beside it the model's raw reply and its timing, and the grader's own checks of the final
draft: leaks and defects (``rag/score/leaks.py``), invented links (``rag/score/link_check.py``), composed links
(a link on an official host that neither the corpus nor the ticket holds: the allow-list lets it pass as not
invented, yet the page was made up), Markdown (read here, on the raw reply and on the draft, with patterns of its
own: the repair in ``rag/draft/voice.py`` is what is graded) and the length.

Completions are cached on disk with their timing (``TimedCachedLLM``), so a rerun with unchanged prompts costs
nothing and still reports what the model cost when it ran. Nothing here chooses anything: it measures.
"""

from __future__ import annotations

import json
import random
import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

from rag.configs import LLMConfig
from rag.draft.drafter import Drafter
from rag.errors import LLMError
from rag.evaluation.tickets import ticket_record
from rag.llm.bounds import Deadline
from rag.llm.cache import CachedLLM
from rag.llm.chat import ChatModel, Completion, Message
from rag.records import Case, Ticket, Usage
from rag.score.labels import LabelledTicket
from rag.score.leaks import LeakDetector
from rag.score.link_check import LinkChecker
from rag.score.relevance import Decision, decision_scores
from rag.text.markers import GREETINGS, POLITE_GREETING

# Markdown as a reader sees it. Numbered steps ("1. …") are the team's own plain-text style, not Markdown.
_MARKDOWN = {
    "heading": re.compile(r"^\s{0,3}#{1,6}\s", re.M),
    "bold": re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__"),
    "bullet": re.compile(r"^\s*[-*+•]\s+\S", re.M),
    "link": re.compile(r"!?\[[^\]\n]*\]\([^)\s]+\)"),
    "code": re.compile(r"```|`[^`\n]+`"),
    "table": re.compile(r"^\s*\|.*\|\s*$", re.M),
}
_GREETING = re.compile(rf"^\s*(?:（[^）]*）\s*)?(?:{'|'.join(map(re.escape, GREETINGS))})(?![a-z])", re.I)
# A reply cut at max_tokens is the model's doing, the same on every rerun: cached like a reply. A deadline or a
# dropped connection says more about the machine's load at that moment: never cached, so a rerun tries again.
_CACHED_ERRORS = ("the reply was cut at max_tokens",)


def markdown_kinds(text: str) -> list[str]:
    """The kinds of Markdown syntax in ``text``."""
    return [kind for kind, pattern in _MARKDOWN.items() if pattern.search(text)]


def opens_with_greeting(text: str) -> bool:
    return bool(_GREETING.match(text))


class TimedCachedLLM(CachedLLM):
    """The on-disk completion cache, around a model whose every call is streamed so the first token is timed.

    A cached reply carries the timing it had when the model wrote it. ``endpoint`` replaces the base URL in the
    key: a local server starts on a new port each time, and the model name already pins the file it serves.
    ``last`` is the most recent call (raw text, timing, whether it came from the cache, the error).
    """

    def __init__(self, inner: ChatModel, cache_dir: Path, config: LLMConfig, *, endpoint: str | None = None) -> None:
        super().__init__(inner, cache_dir, config)
        if endpoint is not None:
            self.base_url = endpoint
        self.last: dict | None = None

    def complete(self, messages: Sequence[Message], *, max_tokens: int | None = None, temperature: float | None = None,
                 deadline: Deadline | None = None) -> Completion:
        key = self.key(messages, max_tokens, temperature)
        stored = self._cache.get(key)
        if stored is not None:
            self.hits += 1
            body = json.loads(stored)
            self.last = {**body["timing"], "raw": body["text"], "cached": True, "error": body.get("error")}
            if body.get("error"):
                raise LLMError(body["error"])
            return Completion(body["text"], Usage(0, body["timing"]["tokens"]), body["model"] + " (cached)")
        self.misses += 1
        started = time.perf_counter()
        first: float | None = None
        parts: list[str] = []
        error: str | None = None
        try:
            for delta in self.inner.stream(messages, deadline=deadline):
                if first is None:
                    first = time.perf_counter() - started
                parts.append(delta)
        except LLMError as exc:
            error = str(exc)
        total = time.perf_counter() - started
        generating = total - (first or total)
        # llama.cpp sends one token per stream chunk
        timing = {"ttft": round(first if first is not None else total, 3), "total": round(total, 3),
                  "tokens": len(parts),
                  "tok_s": round((len(parts) - 1) / generating, 3) if generating > 0 and len(parts) > 1 else 0.0}
        text = "".join(parts)
        self.last = {**timing, "raw": text, "cached": False, "error": error}
        if error is None or error.startswith(_CACHED_ERRORS):
            self._cache.put(key, json.dumps({"text": text, "model": self.model, "timing": timing, "error": error},
                                            ensure_ascii=False))
        if error is not None:
            raise LLMError(error)
        return Completion(text, Usage(0, len(parts)), self.model)

    def stream(self, messages: Sequence[Message], *, deadline: Deadline | None = None) -> Iterator[str]:
        return self.inner.stream(messages, deadline=deadline)

    def take(self) -> dict | None:
        last, self.last = self.last, None
        return last


def sample(tickets: Sequence[LabelledTicket], covered: int, uncovered: int, seed: int) -> list[LabelledTicket]:
    """``covered`` tickets a past case answers and ``uncovered`` others, each drawn in one fixed shuffle of the ids
    (so a larger sample with the same seed holds the smaller one: cached drafts are reused)."""
    def draw(pool: list[LabelledTicket], n: int) -> list[LabelledTicket]:
        pool = sorted(pool, key=lambda t: t.id)
        random.Random(seed).shuffle(pool)
        return pool[:n]

    return draw([t for t in tickets if t.covered], covered) + draw([t for t in tickets if not t.covered], uncovered)


@dataclass
class Grader:
    """The grader's checks, learned once from the corpus."""

    leaks: LeakDetector
    links: LinkChecker
    unhosted: LinkChecker = field(init=False)  # the same links with no host trusted: what is composed on an official one

    def __post_init__(self) -> None:
        self.unhosted = LinkChecker(self.links.known, ())

    @classmethod
    def from_cases(cls, cases: Sequence[Case], allowlist: Sequence[str]) -> "Grader":
        return cls(LeakDetector.from_cases(cases, allowlist), LinkChecker.from_cases(cases, allowlist))

    def grade(self, draft: str, ticket: str) -> dict:
        invented = self.links.invented(draft, ticket)
        composed = [u for u in self.unhosted.invented(draft, ticket) if u not in invented]
        findings = self.leaks.check(draft, ticket)
        return {"leaks": list(findings.leaks), "defects": list(findings.defects), "invented": invented,
                "composed": composed, "markdown": markdown_kinds(draft), "greeting": opens_with_greeting(draft),
                "length": len(draft.strip())}


def run(drafter: Drafter, tickets: Sequence[LabelledTicket], grader: Grader, llm: TimedCachedLLM | None, *,
        k: int = 5, progress: Callable[[int, int, dict], None] = lambda done, total, record: None) -> list[dict]:
    """Draft every ticket (an LLM failure becomes the offline draft, flagged, as in the service) and grade it."""
    records = []
    for n, t in enumerate(tickets, start=1):
        started = time.perf_counter()
        draft = drafter.draft(Ticket(t.text, title=t.title, product=t.product), k=k, fallback="offline")
        wall = time.perf_counter() - started
        record = ticket_record(t, draft)
        record["label_key"] = bool(t.key)
        call = llm.take() if llm is not None else None
        # On a cache hit the model's time is the stored one; the rest (retrieval, checks) is this run's.
        seconds = wall + (call["total"] if call and call["cached"] else 0.0)
        record["llm"] = call and {**call, "markdown": markdown_kinds(call["raw"])}
        record["seconds"] = round(seconds, 3)
        record["grade"] = grader.grade(draft.text, f"{t.title}\n{t.text}")
        records.append(record)
        progress(n, len(tickets), record)
    return records


def _rate(xs: Sequence[bool]) -> float | None:
    return round(sum(xs) / len(xs), 4) if xs else None


def _quartiles(xs: Sequence[float]) -> tuple[float, float, float] | None:
    if not xs:
        return None
    if len(xs) == 1:
        return (xs[0], xs[0], xs[0])
    q1, q2, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return (round(q1, 1), round(q2, 1), round(q3, 1))


def team_lengths(cases: Sequence[Case]) -> tuple[float, float, float]:
    """The quartiles of the corpus's agent answers, one per case, in characters."""
    q = _quartiles([float(len(c.answer.strip())) for c in cases if c.answer.strip()])
    assert q is not None, "the corpus has no agent answers"
    return q


def summarise(records: Sequence[dict]) -> dict:
    covered = [r for r in records if r["match"]]
    uncovered = [r for r in records if not r["match"]]
    keyed_covered = [r for r in covered if r["label_key"]]
    answers = [r for r in records if r["decision"]["answered"]]
    deferred = [r["deferral"] for r in records if r["deferral"] is not None]
    calls = [r["llm"] for r in records if r["llm"] is not None]
    timed = [c for c in calls if c["tokens"]]
    grades = [r["grade"] for r in records]
    return {
        "tickets": len(records), "covered": len(covered), "uncovered": len(uncovered),
        **{k: v for k, v in decision_scores(
            [_decision(r) for r in records]).items() if k in ("answered", "answer_precision", "coverage", "deferral_recall")},
        # of the answers to tickets with labelled key content, those that say all of it
        "key_content": _rate([r["key"]["found"] == r["key"]["items"] for r in answers if r["key"]]),
        # of the covered tickets with labelled key content, those answered with all of it (demoting an answer to
        # a request for details does not raise this one)
        "key_carried": _rate([bool(r["key"]) and r["key"]["found"] == r["key"]["items"] for r in keyed_covered]),
        "deferral_fit": _rate([d["fits"] for d in deferred]),
        # of the drafts the model was asked for (a variant may leave deferrals to the team's texts), those it wrote
        "llm_calls": len(calls),
        "llm_written": _rate([not r["draft"]["fallback"] for r in records if r["llm"] is not None]) if calls else None,
        "fallbacks": sum(r["draft"]["fallback"] for r in records),
        "leaks": sum(len(g["leaks"]) for g in grades),
        "defects": sum(len(g["defects"]) for g in grades),
        "invented_links": sum(len(g["invented"]) for g in grades),
        "composed_links": sum(len(g["composed"]) for g in grades),
        "drafts_with_bad_links": sum(bool(g["invented"] or g["composed"]) for g in grades),
        "markdown_raw": _rate([bool(c["markdown"]) for c in calls]) if calls else None,
        "markdown": _rate([bool(g["markdown"]) for g in grades]),
        "greeting": _rate([g["greeting"] for g in grades]),
        "length_answers": _quartiles([float(r["grade"]["length"]) for r in answers]),
        "length_all": _quartiles([float(g["length"]) for g in grades]),
        "ttft": _median([c["ttft"] for c in timed]),
        "tok_s": _median([c["tok_s"] for c in timed if c["tok_s"]]),
        "seconds": _median([r["seconds"] for r in records]),
        "seconds_p90": round(statistics.quantiles([r["seconds"] for r in records], n=10)[-1], 1)
        if len(records) > 1 else None,
        "within_60s": _rate([r["seconds"] <= 60 for r in records]),
    }


def _median(xs: Sequence[float]) -> float | None:
    return round(statistics.median(xs), 2) if xs else None


def _decision(r: dict) -> Decision:
    return Decision(**r["decision"])


def records_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.0f}%"


def _num(v: float | None, digits: int = 1) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _iqr(q: Sequence[float] | None) -> str:
    return "–" if not q else f"{q[1]:.0f} ({q[0]:.0f}–{q[2]:.0f})"


def table(summaries: dict[str, dict], team: Sequence[float]) -> str:
    """One Markdown table: a column per drafter, a row per figure, the aim beside it."""
    names = list(summaries)
    rows: list[tuple[str, Callable[[dict], str], str]] = [
        ("tickets (covered + uncovered)", lambda s: f"{s['covered']} + {s['uncovered']}", ""),
        ("answered", lambda s: str(s["answered"]), ""),
        ("coverage (covered tickets answered from a fitting case)", lambda s: _pct(s["coverage"]), ""),
        ("answer precision", lambda s: _pct(s["answer_precision"]), ""),
        ("key content carried (of the covered tickets with labels)", lambda s: _pct(s["key_carried"]),
         "1.5B ≥ offline"),
        ("key content in the answers", lambda s: _pct(s["key_content"]), ""),
        ("deferral recall (uncovered)", lambda s: _pct(s["deferral_recall"]), "unchanged"),
        ("deferrals asking only what is reasonable", lambda s: _pct(s["deferral_fit"]), ""),
        ("drafts asked of the model / written by it (the rest fell back)",
         lambda s: f"{s['llm_calls']} / {_pct(s['llm_written'])}" if s["llm_calls"] else "–", ""),
        ("leaks / defects", lambda s: f"{s['leaks']} / {s['defects']}", "0 leaks"),
        ("invented / composed links", lambda s: f"{s['invented_links']} / {s['composed_links']}", "0 / 0"),
        ("Markdown: raw reply / draft", lambda s: f"{_pct(s['markdown_raw'])} / {_pct(s['markdown'])}", "none"),
        (f"opens with {POLITE_GREETING}", lambda s: _pct(s["greeting"]), ""),
        ("answer length, chars: median (IQR)", lambda s: _iqr(s["length_answers"]),
         f"team {team[1]:.0f} ({team[0]:.0f}–{team[2]:.0f})"),
        ("every draft's length: median (IQR)", lambda s: _iqr(s["length_all"]), ""),
        ("time to first token, s (median)", lambda s: _num(s["ttft"]), ""),
        ("tokens/s (median)", lambda s: _num(s["tok_s"]), ""),
        ("seconds per draft: median / p90", lambda s: f"{_num(s['seconds'])} / {_num(s['seconds_p90'])}", "≤ 60"),
        ("drafts within 60 s", lambda s: _pct(s["within_60s"]), ""),
    ]
    out = ["| | " + " | ".join(names) + " | aim |", "|---|" + "---|" * (len(names) + 1)]
    for label, cell, aim in rows:
        out.append(f"| {label} | " + " | ".join(cell(summaries[n]) for n in names) + f" | {aim} |")
    return "\n".join(out)


def plot(runs: dict[str, Sequence[dict]], team: Sequence[float], path: Path) -> None:
    """Three panels: the rates that make a draft sendable, the answers' length against the team's, the seconds per
    draft against the 60 s aim."""
    from matplotlib.figure import Figure

    names = list(runs)
    summaries = {n: summarise(rs) for n, rs in runs.items()}
    fig = Figure(figsize=(13, 4.4))
    rates, lengths, seconds = fig.subplots(1, 3)
    measures = [("key content carried", "key_carried"), ("Markdown, raw", "markdown_raw"),
                ("Markdown, draft", "markdown"), ("fell back", None)]
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        s = summaries[name]
        values = [(1 - s["llm_written"] if s["llm_written"] is not None else 0.0) if key is None else (s[key] or 0.0)
                  for _, key in measures]
        rates.bar([j + i * width for j in range(len(measures))], values, width, label=name)
    rates.set_xticks([j + width * (len(names) - 1) / 2 for j in range(len(measures))])
    rates.set_xticklabels([m for m, _ in measures], fontsize=8)
    rates.set_ylim(0, 1)
    rates.set_title("share of drafts")
    rates.legend(fontsize=7)
    data = [[float(r["grade"]["length"]) for r in rs if r["decision"]["answered"]] or [0.0] for rs in runs.values()]
    lengths.axhspan(team[0], team[2], color="0.85", label="team IQR")
    lengths.axhline(team[1], color="0.5", linestyle="--", linewidth=1, label="team median")
    lengths.boxplot(data)
    lengths.set_xticks(range(1, len(names) + 1))
    lengths.set_xticklabels(names, fontsize=8)
    lengths.set_ylabel("characters")
    lengths.set_title("answers' length")
    lengths.legend(fontsize=7)
    seconds.boxplot([[r["seconds"] for r in rs] for rs in runs.values()])
    seconds.axhline(60, color="firebrick", linestyle="--", linewidth=1, label="aim: 60 s")
    seconds.set_xticks(range(1, len(names) + 1))
    seconds.set_xticklabels(names, fontsize=8)
    seconds.set_ylabel("seconds")
    seconds.set_title("seconds per draft")
    seconds.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
