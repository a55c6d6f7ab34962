import numpy as np

from layerwise.indexer.encoder import plan_batches


def test_batches_respect_budget_and_cover_every_position_once():
    rng = np.random.default_rng(1)
    lengths = rng.integers(3, 200, size=500).tolist()
    batches = plan_batches(lengths, token_budget=1024)
    seen = np.concatenate(batches)
    assert sorted(seen.tolist()) == list(range(500))
    for batch in batches:
        assert len(batch) * max(lengths[i] for i in batch) <= 1024 or len(batch) == 1


def test_batches_are_longest_first():
    lengths = [5, 50, 20, 50, 1]
    order = np.concatenate(plan_batches(lengths, token_budget=100)).tolist()
    assert [lengths[i] for i in order] == sorted(lengths, reverse=True)


def test_a_text_longer_than_the_budget_gets_its_own_batch():
    assert [b.tolist() for b in plan_batches([300, 10], token_budget=100)] == [[0], [1]]
