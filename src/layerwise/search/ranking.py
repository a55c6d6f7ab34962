"""Ranking: one query's ranked documents under one view, with the best passage of each."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Ranking:
    """Documents (by index into the collection's document ids), best first, one score and passage row each."""

    docs: np.ndarray  # (m,) int64
    scores: np.ndarray  # (m,) float32
    rows: np.ndarray  # (m,) int64, the best-scoring passage of each document

    def top(self, k: int) -> "Ranking":
        return Ranking(self.docs[:k], self.scores[:k], self.rows[:k])

    @classmethod
    def from_passages(cls, rows: np.ndarray, scores: np.ndarray, doc_of_row: "RowMap") -> "Ranking":
        """Collapse a passage ranking to documents, each scored by its best passage (MaxP)."""
        docs = doc_of_row(rows)
        keep = docs >= 0  # padding (-1) and rows deleted since the index was built
        rows, scores, docs = rows[keep], scores[keep], docs[keep]
        _, first = np.unique(docs, return_index=True)
        first.sort()
        return cls(docs[first], scores[first].astype(np.float32), rows[first])

    @classmethod
    def empty(cls) -> "Ranking":
        return cls(np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.int64))


@dataclass(frozen=True)
class RowMap:
    """Maps vector rows to document indices through the sorted live rows."""

    rows: np.ndarray  # (n,) sorted
    docs: np.ndarray  # (n,)

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        """Document index of each row, or -1 where the row is not live (a reader racing a writer)."""
        if len(self.rows) == 0:
            return np.full(len(rows), -1, dtype=np.int64)
        position = np.minimum(np.searchsorted(self.rows, rows), len(self.rows) - 1)
        return np.where(self.rows[position] == rows, self.docs[position], -1)
