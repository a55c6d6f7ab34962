"""Pure, mask-aware pooling of one hidden state into one vector per text.

Padding never leaks into a vector: a text pools the same alone and inside a
padded batch (sentence-transformers' ``Pooling`` semantics).

Pooling works in the model's dtype and accumulates in float32: the mean sums the
bf16/fp16 tokens straight into a float32 result, max and cls pick values exactly, so
no full-precision copy of the (B, T, d) hidden state is ever made. The result is
float32 on the hidden state's device.
"""

from __future__ import annotations

import torch

from layerwise.settings import POOLINGS

__all__ = ["POOLINGS", "pool"]


def pool(hidden: torch.Tensor, mask: torch.Tensor, method: str) -> torch.Tensor:
    """Pool hidden (B, T, d) under attention mask (B, T) into float32 (B, d)."""
    if method == "mean":
        return mean(hidden, mask)
    if method == "cls":
        return hidden[:, 0].float()  # (B, d)
    if method == "max":
        return masked_max(hidden, mask)
    raise ValueError(f"unknown pooling {method!r}")  # validated by the caller


def mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked mean, summed in float32 without casting the hidden state first."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1): 0/1, exact in any dtype
    summed = torch.sum(hidden * weights, dim=1, dtype=torch.float32)  # (B, d)
    counts = mask.sum(dim=1, keepdim=True, dtype=torch.float32)  # (B, 1)
    return summed / counts.clamp(min=1e-9)  # (B, d)


def masked_max(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    blocked = mask.unsqueeze(-1) == 0  # (B, T, 1)
    lowest = torch.finfo(hidden.dtype).min
    return hidden.masked_fill(blocked, lowest).amax(dim=1).float()  # (B, d)
