import numpy as np

from layerwise.evaluation.significance import randomization_test, wins_losses


def test_identical_systems_have_p_one():
    a = np.random.default_rng(0).random(50)
    assert randomization_test(a, a) == 1.0


def test_clearly_better_system_is_significant_and_noise_is_not():
    rng = np.random.default_rng(0)
    base = rng.random(200)
    assert randomization_test(base + 0.2, base, trials=2000) < 0.001
    assert randomization_test(base + rng.normal(0, 0.01, 200), base, trials=2000) > 0.01


def test_p_value_is_deterministic_for_a_seed_and_symmetric():
    rng = np.random.default_rng(1)
    a, b = rng.random(30), rng.random(30)
    assert randomization_test(a, b, seed=3) == randomization_test(a, b, seed=3) == randomization_test(b, a, seed=3)


def test_exact_small_case():
    # two queries, differences (1, 1): of 4 sign patterns, 2 reach |mean| >= 1
    p = randomization_test(np.array([1.0, 1.0]), np.array([0.0, 0.0]), trials=20000, seed=0)
    assert abs(p - 0.5) < 0.02


def test_wins_losses():
    assert wins_losses(np.array([1, 0, 0.5]), np.array([0, 1, 0.5])) == (1, 1, 1)


def _holm_direct(p: list[float]) -> list[float]:
    """Holm step-down written out: the i-th smallest p times (m - i), made monotone, capped at 1."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    out, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def _bh_direct(p: list[float]) -> list[float]:
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    out, running = [0.0] * m, 1.0
    for rank in range(m - 1, -1, -1):
        i = order[rank]
        running = min(running, min(1.0, m / (rank + 1) * p[i]))
        out[i] = running
    return out


def test_holm_and_bh_match_a_direct_computation():
    from layerwise.evaluation.significance import adjust

    rng = np.random.default_rng(4)
    for p in ([0.01, 0.04, 0.03, 0.2, 0.0315, 0.5], list(rng.random(13) ** 3), [0.0001] * 4):
        np.testing.assert_allclose(adjust(p, "holm"), _holm_direct(p))
        np.testing.assert_allclose(adjust(p, "bh"), _bh_direct(p))
        assert adjust(p, "none") == p
    # the README's layer1 case: 0.0315 alone is significant, among six tests after Holm it is not
    assert adjust([0.0001, 0.0315, 0.0665, 0.0344, 0.7805, 0.0971], "holm")[1] > 0.05


def test_an_unknown_correction_and_zero_trials_are_usage_errors():
    import pytest

    from layerwise.errors import UsageError
    from layerwise.evaluation.significance import adjust

    with pytest.raises(UsageError, match="holm"):
        adjust([0.1], "bonferroni")
    with pytest.raises(UsageError, match="--trials 0"):
        randomization_test(np.ones(3), np.zeros(3), trials=0)


def test_paired_bootstrap_matches_a_direct_resampling_loop():
    from layerwise.evaluation.significance import bootstrap_means, percentile_interval

    values = np.random.default_rng(5).random((40, 3))  # 40 queries, 3 series (views x metrics)
    got = bootstrap_means(values, resamples=300, seed=7, chunk=128)
    rng = np.random.default_rng(7)
    draws = np.concatenate([rng.integers(0, 40, size=(n, 40)) for n in (128, 128, 44)])  # same chunks, same draws
    direct = np.stack([values[d].mean(axis=0) for d in draws])  # one query draw for every series: paired
    np.testing.assert_allclose(got, direct, atol=1e-12)
    interval = percentile_interval(got)
    np.testing.assert_allclose(interval[:, 0], np.percentile(direct, 2.5, axis=0))
    np.testing.assert_allclose(interval[:, 1], np.percentile(direct, 97.5, axis=0))
    assert np.all(interval[:, 0] < values.mean(axis=0)) and np.all(values.mean(axis=0) < interval[:, 1])
