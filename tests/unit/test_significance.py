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
