"""Layer diagnostics against direct numpy computations on small arrays."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from layerwise.errors import UsageError
from layerwise.evaluation.diagnostics import anisotropy, cka_matrix, linear_cka, norm_stats


def _rng_states(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(40, 6))
    return [base + 0.1 * i * rng.normal(size=(40, 6)) + i for i in range(3)] + [rng.normal(size=(40, 9))]


def _cka_by_gram(x: np.ndarray, y: np.ndarray) -> float:
    """Kornblith et al.'s HSIC form: tr(K H L H) / sqrt(tr(K H K H) tr(L H L H)) with linear kernels."""
    n = len(x)
    h = np.eye(n) - np.ones((n, n)) / n
    k, l_ = x @ x.T, y @ y.T
    hsic = lambda a, b: np.trace(a @ h @ b @ h)  # noqa: E731
    return hsic(k, l_) / np.sqrt(hsic(k, k) * hsic(l_, l_))


def test_linear_cka_matches_the_gram_matrix_form():
    states = _rng_states()
    for x, y in itertools.combinations(states, 2):
        assert linear_cka(x, y) == pytest.approx(_cka_by_gram(x, y), abs=1e-10)
    matrix = cka_matrix(states)
    expected = np.array([[_cka_by_gram(a, b) for b in states] for a in states])
    np.testing.assert_allclose(matrix, expected, atol=1e-10)
    np.testing.assert_allclose(matrix, matrix.T)


def test_cka_is_one_under_rotation_and_scaling_and_low_for_unrelated_layers():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 8))
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    assert linear_cka(x, 3.0 * x @ q + 5.0) == pytest.approx(1.0)
    assert linear_cka(x, rng.normal(size=(200, 8))) < 0.2


def test_anisotropy_is_the_mean_cosine_of_all_distinct_pairs():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(30, 5)) + np.array([2.0, 0, 0, 0, 0])
    x[3] = 0  # a zero vector has no direction and is left out
    unit = [v / np.linalg.norm(v) for i, v in enumerate(x) if i != 3]
    direct = np.mean([a @ b for i, a in enumerate(unit) for j, b in enumerate(unit) if i != j])
    assert anisotropy(x) == pytest.approx(direct, abs=1e-12)
    assert anisotropy(np.tile([1.0, 2.0], (5, 1))) == pytest.approx(1.0)
    with pytest.raises(UsageError):
        anisotropy(np.zeros((4, 3)))


def test_norm_statistics_match_numpy():
    x = np.random.default_rng(3).normal(size=(50, 4)).astype(np.float32)
    norms = np.sqrt((x.astype(np.float64) ** 2).sum(axis=1))
    stats = norm_stats(x)
    assert stats == pytest.approx({"norm_mean": norms.mean(), "norm_std": norms.std(), "norm_min": norms.min(),
                                   "norm_median": np.median(norms), "norm_max": norms.max()})


def test_chunked_layer_statistics_equal_the_whole_array_ones():
    from layerwise.evaluation.diagnostics import _layer_stats

    x = np.random.default_rng(4).normal(size=(103, 7)).astype(np.float32) + 1.0
    rows = np.arange(3, 100)  # live rows only: the others are deleted passages
    stats = _layer_stats(2, x, rows, chunk=10)
    assert stats.layer == 2 and stats.anisotropy == pytest.approx(anisotropy(x[rows]), abs=1e-12)
    assert stats.norm_mean == pytest.approx(norm_stats(x[rows])["norm_mean"]) and stats.norm_max == pytest.approx(norm_stats(x[rows])["norm_max"])
