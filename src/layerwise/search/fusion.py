"""Fusing several rankings of one query: reciprocal rank fusion and normalised-score fusion."""

from __future__ import annotations

from collections.abc import Sequence

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


def fuse(method: str, rankings: Sequence[Ranking], weights: Sequence[float] | None = None) -> Ranking:
    """Apply a fusion method of the grammar (``rrf`` or ``fuse``) to one query's rankings."""
    return rrf(rankings, weights=weights) if method == "rrf" else score_fusion(rankings, weights)
