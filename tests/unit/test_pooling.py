import pytest
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


def _bf16_batch():
    torch.manual_seed(1)
    hidden = (torch.randn(4, 9, 16) * 3).to(torch.bfloat16)
    mask = torch.tensor([[1] * 9, [1] * 4 + [0] * 5, [1] + [0] * 8, [1] * 7 + [0] * 2])
    return hidden, mask


def test_half_precision_mean_accumulates_in_float32():
    hidden, mask = _bf16_batch()
    got = pool(hidden, mask, "mean")
    expected = pool(hidden.float(), mask, "mean")  # the same bf16 values, summed in fp32 from fp32 copies
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("method", ["max", "cls"])
def test_half_precision_max_and_cls_pick_exact_values(method):
    hidden, mask = _bf16_batch()
    hidden[1, 4:] = 1000.0  # padding holds the largest values
    got = pool(hidden, mask, method)
    assert got.dtype == torch.float32
    assert torch.equal(got, pool(hidden.float(), mask, method))


def test_long_half_precision_sums_do_not_lose_precision():
    hidden = torch.full((1, 4096, 8), 1.0 + 2**-7, dtype=torch.bfloat16)  # 1.0078125, exact in bf16
    hidden[0, ::2] = 1.0
    mask = torch.ones(1, 4096, dtype=torch.int64)
    # a bf16 running sum would stall near 256; fp32 accumulation gives the exact mean
    torch.testing.assert_close(pool(hidden, mask, "mean"), torch.full((1, 8), 1.0 + 2**-8), rtol=0, atol=1e-7)
