"""Choosing where the encoder runs and in which precision.

``auto`` takes CUDA when torch sees a GPU and the CPU otherwise. On CUDA the
encoder runs in bf16 where the card supports it, else fp16; on the CPU in fp32.
"""

from __future__ import annotations

import torch

from layerwise.errors import UsageError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(spec: str, cuda_available: bool | None = None) -> torch.device:
    """Map auto|cpu|cuda[:N] to a torch device, refusing cuda where there is none."""
    available = torch.cuda.is_available() if cuda_available is None else cuda_available
    if spec == "auto":
        return torch.device("cuda" if available else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not available:
            raise UsageError("--device cuda was asked for but torch sees no CUDA GPU: use --device cpu or auto")
        return torch.device(spec)
    raise UsageError(f"unknown device '{spec}': use auto, cpu or cuda")


def resolve_dtype(device: torch.device, spec: str = "auto", bf16_supported: bool | None = None) -> torch.dtype:
    """fp32 on the CPU; bf16 (or fp16 where bf16 is unsupported) on CUDA, unless spec names one."""
    named = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    if spec != "auto":
        if spec not in named:
            raise UsageError(f"unknown dtype '{spec}': use auto, fp32, bf16 or fp16")
        return named[spec]
    if device.type != "cuda":
        return torch.float32
    bf16 = torch.cuda.is_bf16_supported() if bf16_supported is None else bf16_supported
    return torch.bfloat16 if bf16 else torch.float16


def default_max_batch(device: torch.device) -> int:
    """Texts per forward pass at most: on the CPU, 64 short sentences ran 1.07x faster than 512 (bench/encoding.py);
    on an H200, 2,048 short sentences a batch ran 1.8x faster than 512 and 1.2x faster than 8,192 (bench/gpu.py)."""
    return 2048 if device.type == "cuda" else 64


def default_token_budget(device: torch.device) -> int:
    """Tokens (padded batch size x length) per forward pass.

    On the CPU small batches that stay in cache win: 2,048 tokens ran 1.2x faster
    than 8,192 on both short sentences and 256-token passages (bench/encoding.py).
    """
    return 65_536 if device.type == "cuda" else 2_048
