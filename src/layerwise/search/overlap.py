"""Overlap between views' result lists: Jaccard@k."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def jaccard(a: Sequence[str], b: Sequence[str]) -> float:
    sa, sb = set(a), set(b)
    return len(sa & sb) / len(sa | sb) if sa | sb else 1.0


def jaccard_matrix(results: Mapping[str, Sequence[str]]) -> np.ndarray:
    """Symmetric matrix (views, views) of Jaccard overlaps of the views' top-k document ids."""
    names = list(results)
    out = np.ones((len(names), len(names)))
    for i, a in enumerate(names):
        for j in range(i + 1, len(names)):
            out[i, j] = out[j, i] = jaccard(results[a], results[names[j]])
    return out
