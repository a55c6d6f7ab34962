import pytest
import torch

from layerwise.errors import UsageError
from layerwise.indexer.device import default_token_budget, resolve_device, resolve_dtype


def test_auto_picks_cuda_only_when_available():
    assert resolve_device("auto", cuda_available=True).type == "cuda"
    assert resolve_device("auto", cuda_available=False).type == "cpu"


def test_cuda_without_gpu_is_a_usage_error():
    with pytest.raises(UsageError, match="no CUDA GPU"):
        resolve_device("cuda", cuda_available=False)


def test_unknown_device():
    with pytest.raises(UsageError, match="unknown device"):
        resolve_device("tpu", cuda_available=False)


def test_dtypes_per_device():
    assert resolve_dtype(torch.device("cpu")) == torch.float32
    assert resolve_dtype(torch.device("cuda"), bf16_supported=True) == torch.bfloat16
    assert resolve_dtype(torch.device("cuda"), bf16_supported=False) == torch.float16
    assert resolve_dtype(torch.device("cuda"), "fp32") == torch.float32


def test_gpu_gets_a_larger_token_budget():
    assert default_token_budget(torch.device("cuda")) > default_token_budget(torch.device("cpu"))
