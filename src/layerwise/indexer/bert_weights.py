"""Where a BERT block's weights live, for the two hand-written forward passes (numpy and torch).

``light.NumpyBert`` (no torch) and ``lean.LeanBert`` (torch, on the loaded model's
tensors) run the same block arithmetic; both read a block's weights by their
Hugging Face names into one :class:`BlockWeights` with the query, key and value
projections fused into one matrix. Generic over the array type, so this module
imports neither numpy nor torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

A = TypeVar("A")  # np.ndarray or torch.Tensor
_QKV = ("query", "key", "value")
ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu")  # what both passes implement


def plain_bert(config: Mapping[str, Any]) -> bool:
    """Whether a model config (config.json, or a loaded config's ``to_dict()``) is the BERT both passes run:
    absolute positions, an activation they implement, an encoder."""
    return (
        config.get("model_type") == "bert"
        and config.get("position_embedding_type", "absolute") == "absolute"
        and config.get("hidden_act", "gelu") in ACTIVATIONS
        and not config.get("is_decoder", False)
    )


@dataclass(frozen=True)
class BlockWeights(Generic[A]):
    """One transformer block's weights; matrices in the layout the caller's ``layout`` gives."""

    qkv: A  # the three projections fused
    qkv_bias: A
    out: A
    out_bias: A
    norm1: tuple[A, A]
    inner: A
    inner_bias: A
    down: A
    down_bias: A
    norm2: tuple[A, A]

    @classmethod
    def of(cls, w: Mapping[str, A], index: int, concat: Callable[[list[A]], A], layout: Callable[[A], A]) -> BlockWeights[A]:
        """Block ``index`` of weights named as in a BERT state dict (without a ``bert.`` prefix)."""
        p = f"encoder.layer.{index}."
        a = p + "attention."
        return cls(
            layout(concat([w[f"{a}self.{n}.weight"] for n in _QKV])), concat([w[f"{a}self.{n}.bias"] for n in _QKV]),
            layout(w[a + "output.dense.weight"]), w[a + "output.dense.bias"],
            (w[a + "output.LayerNorm.weight"], w[a + "output.LayerNorm.bias"]),
            layout(w[p + "intermediate.dense.weight"]), w[p + "intermediate.dense.bias"],
            layout(w[p + "output.dense.weight"]), w[p + "output.dense.bias"],
            (w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]),
        )
