"""Fusing several rankings of one query: reciprocal rank fusion and normalised-score fusion."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from layerwise.search.ranking import Ranking


def rrf(rankings: Sequence[Ranking], k: int = 60, weights: Sequence[float] | None = None) -> Ranking:
    """Reciprocal rank fusion: score(d) = sum_i w_i / (k + rank_i(d)), ranks from 1."""
    weights = weights or [1.0] * len(rankings)
    contributions = [w / (k + np.arange(1, len(r.docs) + 1)) for r, w in zip(rankings, weights)]
    return _combine(rankings, contributions)


def score_fusion(rankings: Sequence[Ranking], weights: Sequence[float] | None = None) -> Ranking:
    """Weighted sum of min-max normalised scores; a document missing from a ranking adds 0 there."""
    weights = weights or [1.0] * len(rankings)
    contributions = [w * _minmax(r.scores) for r, w in zip(rankings, weights)]
    return _combine(rankings, contributions)


def _minmax(scores: np.ndarray) -> np.ndarray:
    if len(scores) == 0:
        return scores.astype(np.float64)
    low, high = float(scores.min()), float(scores.max())
    return np.ones(len(scores)) if high == low else (scores - low) / (high - low)


def _combine(rankings: Sequence[Ranking], contributions: Sequence[np.ndarray]) -> Ranking:
    total: dict[int, float] = {}
    best_row: dict[int, int] = {}
    for ranking, values in zip(rankings, contributions):
        for doc, row, value in zip(ranking.docs.tolist(), ranking.rows.tolist(), values.tolist()):
            total[doc] = total.get(doc, 0.0) + value
            best_row.setdefault(doc, row)
    if not total:
        return Ranking.empty()
    docs = np.fromiter(total, dtype=np.int64)
    scores = np.fromiter(total.values(), dtype=np.float64)
    order = np.lexsort((docs, -scores))  # score descending, ties by document
    return Ranking(docs[order], scores[order].astype(np.float32), np.asarray([best_row[d] for d in docs[order]], np.int64))


@dataclass(frozen=True)
class Fusion:
    """A fusion expression: ``rrf(a | b | ...)`` or ``fuse(a:0.3 | b:0.7)`` over view specs."""

    method: str
    members: tuple[str, ...]
    weights: tuple[float, ...] | None

    def __str__(self) -> str:
        if self.weights is None:
            return f"{self.method}({' | '.join(self.members)})"
        return f"{self.method}({' | '.join(f'{m}:{w:g}' for m, w in zip(self.members, self.weights))})"

    def apply(self, rankings: Sequence[Ranking]) -> Ranking:
        return rrf(rankings, weights=self.weights) if self.method == "rrf" else score_fusion(rankings, self.weights)


def parse_fusion(text: str) -> Fusion | None:
    """A Fusion if text is a fusion expression, else None (a plain view spec)."""
    from layerwise.errors import UsageError

    match = re.match(r"^\s*(rrf|fuse)\s*\((.*)\)\s*$", text, re.S)
    if not match:
        return None
    parts = [p.strip() for p in match.group(2).split("|") if p.strip()]
    if not parts:
        raise UsageError(f"'{text}' fuses nothing: write e.g. rrf(bm25 | -1) or fuse(bm25:0.3 | -1:0.7)")
    weighted = [p.rpartition(":") for p in parts]
    if all(w[0] and _is_float(w[2]) for w in weighted):
        return Fusion(match.group(1), tuple(w[0].strip() for w in weighted), tuple(float(w[2]) for w in weighted))
    return Fusion(match.group(1), tuple(parts), None)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
