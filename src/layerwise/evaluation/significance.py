"""Paired statistics over queries: a randomization test, multiple-comparison corrections, bootstrap intervals.

* :func:`randomization_test`: two-sided paired sign-flip test on per-query differences;
* :func:`adjust`: Holm-Bonferroni (family-wise error) or Benjamini-Hochberg (false
  discovery rate) adjustment of the p-values of several views tested against one baseline;
* :func:`bootstrap_means` / :func:`percentile_interval`: paired bootstrap over queries
  (one draw of queries applied to every view and metric) and its percentile interval.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from layerwise.errors import UsageError


def randomization_test(a: np.ndarray, b: np.ndarray, trials: int = 10_000, seed: int = 0) -> float:
    """p-value of H0 'a and b score the same' from per-query scores of the same queries.

    Each trial flips the sign of every per-query difference at random; the
    p-value is the share of trials whose |mean difference| reaches the
    observed one, counting the observation itself ((hits + 1) / (trials + 1)).
    """
    if trials < 1:
        raise UsageError(f"--trials {trials} must be at least 1 (the randomization test needs trials to give a p-value)")
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)  # (q,)
    if len(diff) == 0 or not np.any(diff):
        return 1.0
    observed = abs(diff.mean())
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, trials, 1000):
        n = min(1000, trials - start)
        signs = rng.integers(0, 2, size=(n, len(diff)), dtype=np.int8) * 2 - 1  # (n, q)
        hits += int(np.sum(np.abs(signs @ diff) / len(diff) >= observed - 1e-12))
    return (hits + 1) / (trials + 1)


def wins_losses(a: np.ndarray, b: np.ndarray, tolerance: float = 1e-9) -> tuple[int, int, int]:
    """Queries where a beats b, loses to b, and ties."""
    diff = np.asarray(a) - np.asarray(b)
    return int(np.sum(diff > tolerance)), int(np.sum(diff < -tolerance)), int(np.sum(np.abs(diff) <= tolerance))

CORRECTIONS = ("holm", "bh", "none")


def adjust(p_values: Sequence[float], method: str = "holm") -> list[float]:
    """p-values adjusted for testing several views against one baseline.

    ``holm``: Holm-Bonferroni step-down, controls the family-wise error rate;
    ``bh``: Benjamini-Hochberg step-up, controls the false discovery rate;
    ``none``: the raw p-values.
    """
    if method not in CORRECTIONS:
        raise UsageError(f"unknown correction '{method}': use {', '.join(CORRECTIONS)}")
    p = np.asarray(p_values, dtype=np.float64)  # (m,)
    m = len(p)
    if m == 0 or method == "none":
        return p.tolist()
    order = np.argsort(p, kind="stable")
    ranked = p[order]  # (m,) ascending
    if method == "holm":
        adjusted = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * ranked))
    else:
        adjusted = np.minimum.accumulate(np.minimum(1.0, m / np.arange(1, m + 1) * ranked)[::-1])[::-1]
    out = np.empty(m)
    out[order] = adjusted
    return out.tolist()


def bootstrap_means(values: np.ndarray, resamples: int = 10_000, seed: int = 0, chunk: int = 1000) -> np.ndarray:
    """Means of the columns of ``values`` (queries, series) over paired bootstrap resamples of the queries.

    Every resample draws queries with replacement once and applies the same draw to
    every series (every view and metric), so the resampled means stay paired.
    Returns (resamples, series).
    """
    values = np.asarray(values, dtype=np.float64)  # (q, s)
    q = len(values)
    rng = np.random.default_rng(seed)
    out = np.empty((resamples, values.shape[1]))  # (B, s)
    for start in range(0, resamples, chunk):
        n = min(chunk, resamples - start)
        draws = rng.integers(0, q, size=(n, q))  # (n, q) query indices
        counts = np.zeros((n, q))  # (n, q) how often each query was drawn
        np.add.at(counts, (np.repeat(np.arange(n), q), draws.ravel()), 1.0)
        out[start : start + n] = counts @ values / q
    return out


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> np.ndarray:
    """Percentile interval of each column of bootstrap samples (B, s): (s, 2)."""
    tail = (1 - level) / 2 * 100
    return np.percentile(samples, [tail, 100 - tail], axis=0).T
