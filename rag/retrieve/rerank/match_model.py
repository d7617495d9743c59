"""Does a retrieved case address the ticket's problem? Features of a (ticket, candidate) pair and the
calibrated model that turns them into a probability.

Why not the old confidence: agreement among the retrieved answers measures how *central* a template
is, not whether it fits this ticket (a TypeScript build error got the free-certificate steps at 0.89).
The model here looks at the ticket against each candidate's question side: dense similarity and its
margin over the other candidates, BM25 strength, how many of the ticket's key terms the candidate's
question covers, character overlap with its title and question, ranks in both indexes, and answer
agreement as one feature among others. It is a logistic regression fitted on hand-labelled problem
groups (``eval/fit_match.py``, cross-validated by group so no case scores itself) plus a Platt
calibration of the top candidate's score, so ``match`` reads as "probability the top case addresses
the problem". Coefficients ship as ``match_model.json``; scoring is a dot product.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from rag.text.tokens import char_ngrams, words

FEATURES: tuple[str, ...] = (
    "dense",            # best cosine between the ticket and the candidate's question-side chunks
    "dense_gap",        # dense minus the best candidate's dense (0 for the best)
    "dense_z",          # dense standardised over the candidates: how far it stands out
    "lexical",          # log(1 + best BM25 score of the candidate's chunks)
    "lexical_rel",      # BM25 score relative to the best candidate's
    "cover_key",        # IDF-weighted share of the ticket's words found in the candidate's question side
    "cover_full",       # the same over question and answer
    "bigram_key",       # share of the ticket's CJK bigrams found in the question side
    "title_in_query",   # share of the candidate title's bigrams found in the ticket
    "rank_dense",       # 1 / rank in the dense ranking (0 when absent)
    "rank_lexical",     # 1 / rank in the lexical ranking (0 when absent)
    "rank_fused",       # 1 / rank after fusion
    "consensus",        # agreement of the candidate's answer with the other candidates' answers
    "query_words",      # log(1 + number of content words in the ticket): vague tickets say little
    "has_answer",       # the case holds a substantive agent answer
)

# Optional: a second embedder's view of each case (``rag.retrieve.sources.sides.SideSignals``), for a model fitted
# with them (``eval/fit_match.py --sides gemma``; docs/judge-lab.md). A model fitted without them never reads them.
SIDE_FEATURES: tuple[str, ...] = (
    "side_question",        # cosine between the ticket and the candidate's question-side chunks (best)
    "side_question_gap",    # minus the best candidate's
    "side_resolution",      # ... its title + question + the head of its answer
    "side_resolution_gap",
)
_SIDE_LEVELS = ("side_question", "side_resolution")

MODEL_FILE = "match_model.json"
SIDES_MODEL_FILE = "match_model_gemma.json"


@dataclass(frozen=True, slots=True)
class CandidateText:
    """What the features read of one candidate case."""

    case_id: str
    title: str
    key_texts: tuple[str, ...]   # question side of each chunk (title + customer turn)
    full_text: str               # question side and answer
    answer: str


def _idf(df: float, n_docs: int) -> float:
    return math.log((n_docs - df + 0.5) / (df + 0.5) + 1.0)


def _coverage(query_words: Sequence[str], text_words: set[str], idf: Mapping[str, float]) -> float:
    total = sum(idf.get(w, 1.0) for w in query_words)
    if total <= 0:
        return 0.0
    return sum(idf.get(w, 1.0) for w in query_words if w in text_words) / total


def _share(items: Sequence[str], pool: set[str]) -> float:
    return sum(1 for x in items if x in pool) / len(items) if items else 0.0


# Fewer Chinese bigrams than this and the ticket is not written in Chinese (a pasted Chinese error word or two).
_MIN_BIGRAMS = 3


def _z(values: np.ndarray) -> np.ndarray:
    sd = float(values.std())
    return (values - values.mean()) / sd if sd > 1e-9 else np.zeros_like(values)


def pair_features(
    query: str,
    candidates: Sequence[CandidateText],
    *,
    dense: np.ndarray,
    lexical: np.ndarray,
    rank_dense: np.ndarray,
    rank_lexical: np.ndarray,
    rank_fused: np.ndarray,
    consensus: np.ndarray,
    idf: Mapping[str, float],
) -> np.ndarray:
    """One row of ``FEATURES`` per candidate; array inputs are aligned with ``candidates``."""
    n = len(candidates)
    if n == 0:
        return np.zeros((0, len(FEATURES)))
    q_words = list(dict.fromkeys(words(query)))
    q_bigrams = list(dict.fromkeys(char_ngrams(query.lower())))
    # A ticket written without Chinese cannot share the question side's Chinese bigrams nor the case's Chinese
    # title: those features are missing, not zero (NaN, read as the fitted mean: no evidence either way). As zeros
    # they held every English ticket under the answer threshold with its case first.
    unwritten = math.nan if len(q_bigrams) < _MIN_BIGRAMS else None
    best_lex = float(lexical.max()) if n else 0.0
    rows = []
    for i, c in enumerate(candidates):
        key = "\n".join(c.key_texts)
        key_words = set(words(key))
        full_words = key_words | set(words(c.full_text))
        title_bigrams = list(dict.fromkeys(char_ngrams(c.title.lower())))
        rows.append([
            dense[i],
            dense[i] - float(dense.max()),
            0.0,
            math.log1p(max(float(lexical[i]), 0.0)),
            float(lexical[i]) / best_lex if best_lex > 0 else 0.0,
            _coverage(q_words, key_words, idf),
            _coverage(q_words, full_words, idf),
            _share(q_bigrams, set(char_ngrams(key.lower()))) if unwritten is None else unwritten,
            _share(title_bigrams, set(q_bigrams)) if unwritten is None else unwritten,
            1.0 / rank_dense[i] if rank_dense[i] > 0 else 0.0,
            1.0 / rank_lexical[i] if rank_lexical[i] > 0 else 0.0,
            1.0 / rank_fused[i] if rank_fused[i] > 0 else 0.0,
            consensus[i],
            math.log1p(len(q_words)),
            1.0 if c.answer.strip() else 0.0,
        ])
    out = np.asarray(rows, dtype=np.float64)
    out[:, FEATURES.index("dense_z")] = _z(np.asarray(dense, dtype=np.float64))
    return out


def idf_table(query: str, doc_freq: Mapping[str, int] | None, n_docs: int) -> dict[str, float]:
    """IDF of the ticket's words over the indexed chunks (unknown words count as rare)."""
    q = set(words(query))
    if not doc_freq or n_docs <= 0:
        return {w: 1.0 for w in q}
    return {w: _idf(doc_freq.get(w, 0), n_docs) for w in q}


FIT_FEATURES: tuple[str, ...] = (
    "score",            # the ranker's logit for the candidate
    "margin",           # its logit minus the best other candidate's: a clear winner or a toss-up
    "dense",
    "dense_margin",     # its dense similarity minus the best other candidate's
    "lexical",
    "cover_key",
    "cover_full",
    "bigram_key",
    "title_in_query",
    "consensus",
    "query_words",
    "both_first",       # first in both the dense and the lexical ranking
)
# With side features: each side's cosine, then its margin over the best other candidate.
FIT_SIDE_FEATURES: tuple[str, ...] = _SIDE_LEVELS + tuple(f"{name}_margin" for name in _SIDE_LEVELS)


def feature_names(sides: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The ranker's and the fit model's feature names, with or without the side features."""
    return (FEATURES + SIDE_FEATURES, FIT_FEATURES + FIT_SIDE_FEATURES) if sides else (FEATURES, FIT_FEATURES)


def fit_features(x: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Per candidate, the evidence that *it* addresses the ticket, measured against the other candidates.
    ``x`` holds ``FEATURES``, then ``SIDE_FEATURES`` when the model reads them."""
    sides = x.ndim == 2 and x.shape[1] == len(FEATURES) + len(SIDE_FEATURES)
    n = len(scores)
    if n == 0:
        return np.zeros((0, len(feature_names(sides)[1])))
    col = {name: x[:, i] for i, name in enumerate(feature_names(sides)[0])}

    def best_other(v: np.ndarray) -> np.ndarray:
        if n == 1:
            return np.full(n, float(v[0]) - 1.0)  # a lone candidate gets a fixed, modest margin
        top2 = np.sort(v)[-2:]
        return np.where(v >= top2[1], top2[0], top2[1])

    both = ((col["rank_dense"] == 1.0) & (col["rank_lexical"] == 1.0)).astype(np.float64)
    out = np.column_stack([
        scores, scores - best_other(scores), col["dense"], col["dense"] - best_other(col["dense"]), col["lexical"],
        col["cover_key"], col["cover_full"], col["bigram_key"], col["title_in_query"], col["consensus"],
        col["query_words"], both,
    ])
    if not sides:
        return out
    levels = [col[name] for name in _SIDE_LEVELS]
    return np.column_stack([out, *levels, *[v - best_other(v) for v in levels]])


@dataclass(frozen=True)
class Linear:
    """Standardise, then a dot product: a fitted logistic regression's decision function."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if x.size == 0:
            return np.zeros(0)
        if x.shape[1] != len(self.features):
            raise ValueError(f"expected {len(self.features)} features, got {x.shape[1]}")
        # A missing feature (NaN) stands at the fitted mean: it weighs neither way.
        return np.nan_to_num((x - np.asarray(self.mean)) / np.asarray(self.scale), nan=0.0) @ np.asarray(
            self.weights) + self.bias

    def to_dict(self) -> dict:
        return {"features": list(self.features), "mean": list(self.mean), "scale": list(self.scale),
                "weights": list(self.weights), "bias": self.bias}

    @classmethod
    def from_dict(cls, d: Mapping, expected: tuple[str, ...]) -> "Linear":
        feats = tuple(d["features"])
        if feats != expected:
            raise ValueError(f"fitted on features {feats}, this code computes {expected}; refit it with "
                             "`python eval/fit_match.py --write`")
        return cls(feats, tuple(d["mean"]), tuple(d["scale"]), tuple(d["weights"]), float(d["bias"]))


@dataclass(frozen=True)
class MatchModel:
    """A ranker over the pair features, and a calibrated "does it fit" model over the ranker's verdict.

    ``ranker`` orders the candidates; ``fit`` turns each candidate's standing (its ranker score, its margin
    over the others, its own evidence) into P(it addresses the ticket's problem), fitted on the top
    candidates of cross-validated rankings so the probability is calibrated where it is used.
    """

    ranker: Linear
    fit: Linear
    threshold: float = 0.5
    about: str = ""
    sides: str | None = None   # the embedder whose side features it reads (``SideSignals.name``); None: none

    def scores(self, x: np.ndarray) -> np.ndarray:
        return self.ranker(x)

    def probabilities(self, x: np.ndarray, scores: np.ndarray | None = None) -> np.ndarray:
        """Calibrated probability per candidate that it addresses the ticket's problem."""
        if x.size == 0:
            return np.zeros(0)
        s = self.scores(x) if scores is None else scores
        return 1.0 / (1.0 + np.exp(-self.fit(fit_features(x, s))))

    def to_dict(self) -> dict:
        return {"about": self.about, "threshold": self.threshold, **({"sides": self.sides} if self.sides else {}),
                "ranker": self.ranker.to_dict(), "fit": self.fit.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping) -> "MatchModel":
        sides = d.get("sides")
        ranker, fit = feature_names(bool(sides))
        return cls(Linear.from_dict(d["ranker"], ranker), Linear.from_dict(d["fit"], fit),
                   float(d.get("threshold", 0.5)), str(d.get("about", "")), str(sides) if sides else None)

    @classmethod
    def load(cls, path: Path | None = None, *, packaged: str = MODEL_FILE) -> "MatchModel":
        """A fitted model shipped with the package (``packaged``: the default one, or ``SIDES_MODEL_FILE``), or one
        from ``path``."""
        text = path.read_text(encoding="utf-8") if path else (
            resources.files("rag.retrieve.rerank").joinpath(packaged).read_text(encoding="utf-8"))
        try:
            return cls.from_dict(json.loads(text))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path or packaged}: not a match model ({exc})") from None
