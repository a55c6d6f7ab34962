"""Paired significance: a two-sided randomization (sign-flip) test on per-query differences."""

from __future__ import annotations

import numpy as np


def randomization_test(a: np.ndarray, b: np.ndarray, trials: int = 10_000, seed: int = 0) -> float:
    """p-value of H0 'a and b score the same' from per-query scores of the same queries.

    Each trial flips the sign of every per-query difference at random; the
    p-value is the share of trials whose |mean difference| reaches the
    observed one, counting the observation itself ((hits + 1) / (trials + 1)).
    """
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
