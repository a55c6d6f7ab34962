"""Ranking: one query's ranked documents under one view, with the best passage of each."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Ranking:
    """Documents (by key: the database id the rows file holds), best first, one score and passage row each."""

    docs: np.ndarray  # (m,) int64
    scores: np.ndarray  # (m,) float32
    rows: np.ndarray  # (m,) int64, the best-scoring passage of each document

    def top(self, k: int) -> "Ranking":
        return Ranking(self.docs[:k], self.scores[:k], self.rows[:k])

    @classmethod
    def from_passages(cls, rows: np.ndarray, scores: np.ndarray, doc_of_row: Callable[[np.ndarray], np.ndarray]) -> "Ranking":
        """Collapse a passage ranking to documents, each scored by its best passage (MaxP); doc_of_row gives -1 for dead rows."""
        docs = doc_of_row(rows)
        keep = docs >= 0  # padding (-1) and rows deleted since the index was built
        rows, scores, docs = rows[keep], scores[keep], docs[keep]
        _, first = np.unique(docs, return_index=True)
        first.sort()
        return cls(docs[first], scores[first].astype(np.float32), rows[first])

    @classmethod
    def empty(cls) -> "Ranking":
        return cls(np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.int64))
