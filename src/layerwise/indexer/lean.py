"""BERT's forward pass for one unpadded text on the CPU, from the loaded model's own weights.

A query is one short text. Through transformers' ``BertModel`` it costs about a
hundred module calls, hooks and output bookkeeping around a few small matrix
products, and that Python overhead was a third of a query's encoding time on a
2-core CPU. This module runs the same arithmetic with plain ``torch.nn.functional``
calls: the query, key and value projections fused into one matrix per block
(fused once), no padding and so no attention mask, the pooled vector of every
hidden state up to the deepest one wanted. Its matrices are copies of the
model's in the (in, out) layout: MKL multiplies a few rows by a matrix stored
that way 30-45% faster than by the (out, in) layout ``F.linear`` takes (a 20 x
384 by 384 x 1536 product: 212 against 280 us on one thread). Tested against
the full model at <= 1e-5.

It serves plain BERT (absolute positions, a GELU or ReLU activation) in float32
on the CPU without quantisation; :func:`of` returns None for anything else and
the caller keeps the full forward pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import torch
import torch.nn.functional as F

from layerwise.indexer.bert_weights import BlockWeights, plain_bert
from layerwise.indexer.pooling import pool

_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu": F.gelu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
}


class LeanBert:
    """Hidden states of one text through a BERT model's weights, without its module machinery."""

    def __init__(self, model: torch.nn.Module) -> None:
        config = model.config
        self.heads = int(config.num_attention_heads)
        self.dim = int(config.hidden_size)
        self.eps = float(config.layer_norm_eps)
        self.act = _ACTIVATIONS[config.hidden_act]
        e = model.embeddings
        self.words, self.positions = e.word_embeddings.weight, e.position_embeddings.weight  # (V, d), (P, d)
        self.token_type = e.token_type_embeddings.weight[0]  # (d,): BERT's segment 0
        self.norm = (e.LayerNorm.weight, e.LayerNorm.bias)
        weights = {name.removeprefix("bert."): tensor.detach() for name, tensor in model.named_parameters()}
        with torch.inference_mode():
            self.blocks = [BlockWeights.of(weights, i, torch.cat, _in_out) for i in range(int(config.num_hidden_layers))]

    @torch.inference_mode()
    def pooled(self, ids: Sequence[int], wanted: Sequence[int], method: str) -> torch.Tensor:
        """Pooled float32 vectors (k, d) of the wanted hidden states of one text's token ids (T,)."""
        tokens = torch.as_tensor(ids, dtype=torch.long)  # (T,)
        x = self.words[tokens] + self.positions[: len(tokens)] + self.token_type  # (T, d)
        x = F.layer_norm(x, (self.dim,), *self.norm, self.eps)  # (T, d)
        mask = torch.ones(1, len(tokens), dtype=torch.long)  # (1, T): nothing padded
        states = {0: x}
        for index, block in enumerate(self.blocks[: max(wanted)], 1):
            x = states[index] = self._block(x, block, index - 1)  # (T, d)
        return torch.cat([pool(states[i][None], mask, method) for i in wanted])  # (k, d)

    def _block(self, x: torch.Tensor, b: BlockWeights[torch.Tensor], index: int) -> torch.Tensor:
        """Self-attention and feed-forward, each with its residual and LayerNorm: (T, d) -> (T, d)."""
        tokens, size = x.shape[0], self.dim // self.heads
        q, k, v = torch.addmm(b.qkv_bias, x, b.qkv).view(tokens, 3, self.heads, size).permute(1, 2, 0, 3)  # 3 x (h, T, s)
        context = _attention(q, k, v, size).transpose(0, 1).reshape(tokens, self.dim)  # (T, d)
        x = F.layer_norm(x + torch.addmm(b.out_bias, context, b.out), (self.dim,), *b.norm1, self.eps)  # (T, d)
        return F.layer_norm(x + self._feed_forward(x, b, index), (self.dim,), *b.norm2, self.eps)  # (T, d)

    def _feed_forward(self, x: torch.Tensor, b: BlockWeights[torch.Tensor], index: int) -> torch.Tensor:
        """The feed-forward layer without its residual: (T, d) -> (T, d); in column halves on two or more kernel threads."""
        halves = self.halves[index] if torch.get_num_threads() >= 2 else None
        if halves is None:
            return torch.addmm(b.down_bias, self.act(torch.addmm(b.inner_bias, x, b.inner)), b.down)  # (T, i) -> (T, d)
        return halves(x, self.act)

    @cached_property
    def halves(self) -> list[HalvedFeedForward | None]:
        """Each block's feed-forward matrices in column halves (None where a width is odd), made on first use."""
        with torch.inference_mode():
            return [HalvedFeedForward.of(b) for b in self.blocks]


@dataclass(frozen=True)
class HalvedFeedForward:
    """A block's feed-forward matrices cut in two along their output columns, as batches of two products.

    On two kernel threads MKL splits a 20-row product by a 384 x 1,536 matrix poorly (1.4x over
    one thread); a batch of two column halves gives each thread a whole product of its own, and
    each output is the same sum as one thread's whole product, bit for bit: the feed-forward layer
    took 346 -> 256 us on a 2-core Xeon, the query pass 4.1-4.4 -> 3.6-3.9 ms with warm weights. (Cut
    along the inner width instead, the down product's sums split in two and the pooled vectors moved
    by up to 1.1e-6 with the thread count.) One thread keeps the whole matrices. Built on a pass's
    first use of two threads: a copy of both matrices (4.7 MB a block for MiniLM)."""

    inner: torch.Tensor  # (2, d, i/2)
    inner_bias: torch.Tensor  # (2, 1, i/2)
    down: torch.Tensor  # (2, i, d/2)
    down_bias: torch.Tensor  # (2, 1, d/2)

    @classmethod
    def of(cls, b: BlockWeights[torch.Tensor]) -> HalvedFeedForward | None:
        dim, inner = b.inner.shape  # (d, i)
        if inner % 2 or dim % 2:
            return None
        return cls(_column_halves(b.inner), b.inner_bias.view(2, 1, inner // 2), _column_halves(b.down), b.down_bias.view(2, 1, dim // 2))

    def __call__(self, x: torch.Tensor, act: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """The feed-forward layer without its residual: (T, d) -> (T, d)."""
        tokens, dim = x.shape
        inner = act(torch.baddbmm(self.inner_bias, x.expand(2, tokens, dim), self.inner))  # (2, T, i/2)
        whole = inner.transpose(0, 1).reshape(tokens, -1)  # (T, i)
        out = torch.baddbmm(self.down_bias, whole.expand(2, *whole.shape), self.down)  # (2, T, d/2)
        return out.transpose(0, 1).reshape(tokens, dim)  # (T, d)


def _column_halves(matrix: torch.Tensor) -> torch.Tensor:
    """An (in, out) matrix as two contiguous (in, out/2) halves: (2, in, out/2)."""
    rows, columns = matrix.shape
    return matrix.view(rows, 2, columns // 2).permute(1, 0, 2).contiguous()


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, size: int) -> torch.Tensor:
    """Softmax attention of every head without a mask: 3 x (h, T, s) -> (h, T, s). Three kernels, where torch's
    scaled_dot_product_attention takes its math path on the CPU with mask checks and copies around the same
    products: 23 against 74 us for 12 heads of 22 tokens on a 2-core Xeon, equal within 1e-6."""
    scores = torch.baddbmm(_NO_BIAS, q, k.transpose(1, 2), beta=0, alpha=size**-0.5)  # (h, T, T)
    return torch.bmm(scores.softmax(-1), v)  # (h, T, s)


_NO_BIAS = torch.zeros(1, 1, 1)  # baddbmm's input, ignored with beta=0


def _in_out(matrix: torch.Tensor) -> torch.Tensor:
    """The model's (out, in) matrix as a contiguous (in, out) copy, the layout addmm multiplies fastest."""
    return matrix.t().contiguous()


def of(model: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> LeanBert | None:
    """The lean pass of a loaded model, or None where only the full forward pass can serve it."""
    supported = (
        device.type == "cpu" and dtype == torch.float32
        and plain_bert(model.config.to_dict())
        and all(type(m) is torch.nn.Linear for m in model.modules() if "Linear" in type(m).__name__)  # not quantised
    )
    if not supported:
        return None
    try:
        return LeanBert(model)
    except (AttributeError, KeyError):  # a BERT-typed model laid out differently
        return None
