"""Pure, mask-aware pooling of one hidden state into one vector per text.

Padding never leaks into a vector: a text pools the same alone and inside a
padded batch (sentence-transformers' ``Pooling`` semantics).
"""

from __future__ import annotations

import torch

from layerwise.settings import POOLINGS

__all__ = ["POOLINGS", "pool"]


def pool(hidden: torch.Tensor, mask: torch.Tensor, method: str) -> torch.Tensor:
    """Pool hidden (B, T, d) under attention mask (B, T) into float32 (B, d)."""
    hidden = hidden.float()  # (B, T, d)
    if method == "mean":
        return mean(hidden, mask)
    if method == "cls":
        return hidden[:, 0]  # (B, d)
    if method == "max":
        return masked_max(hidden, mask)
    raise ValueError(f"unknown pooling {method!r}")  # validated by the caller


def mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    summed = (hidden * weights).sum(dim=1)  # (B, d)
    return summed / weights.sum(dim=1).clamp(min=1e-9)  # (B, d)


def masked_max(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    blocked = mask.unsqueeze(-1) == 0  # (B, T, 1)
    return hidden.masked_fill(blocked, torch.finfo(hidden.dtype).min).max(dim=1).values  # (B, d)
