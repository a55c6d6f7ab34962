import torch

from layerwise.indexer.pooling import pool


def _batch():
    torch.manual_seed(0)
    hidden = torch.randn(3, 5, 4)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]])
    return hidden, mask


def test_mean_ignores_padding():
    hidden, mask = _batch()
    got = pool(hidden, mask, "mean")
    for i, n in enumerate(mask.sum(1).tolist()):
        torch.testing.assert_close(got[i], hidden[i, :n].mean(0))


def test_max_ignores_padding_even_when_padding_is_larger():
    hidden, mask = _batch()
    hidden[1, 2:] = 100.0  # padding positions hold large values
    got = pool(hidden, mask, "max")
    torch.testing.assert_close(got[1], hidden[1, :2].max(0).values)


def test_cls_takes_first_token():
    hidden, mask = _batch()
    torch.testing.assert_close(pool(hidden, mask, "cls"), hidden[:, 0])


def test_pooling_is_float32_for_half_inputs():
    hidden, mask = _batch()
    assert pool(hidden.to(torch.bfloat16), mask, "mean").dtype == torch.float32
