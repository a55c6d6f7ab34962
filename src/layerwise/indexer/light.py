"""A numpy BERT for one-shot query encoding: no torch and no transformers import.

A cold ``layerwise search`` spent most of its time importing torch and
transformers and running ``from_pretrained``, to encode a query of a few tokens.
This module runs the same forward pass in numpy, with the weights read straight
from ``model.safetensors`` and the tokenizer from ``tokenizer.json`` (the Rust
``tokenizers`` package, which transformers' fast tokenizers wrap). It produces
the pooled vector of every hidden state like :class:`~layerwise.indexer.encoder.Encoder`
(within 1e-5, tested), for BERT models on the CPU in fp32 without quantisation.

The model identity is not computed here (its config hash needs transformers'
config defaults): it comes from the facts the last full load of the same model
files remembered (``model.recall``). When anything is missing or unsupported,
:func:`load` returns None and the caller uses the full encoder, which then
remembers the facts for the next time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from layerwise.indexer import model as model_io
from layerwise.indexer.embeddings import LayerEmbeddings
from layerwise.indexer.model import ModelIdentity

_ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu")
_POOLINGS = ("mean", "cls", "max")


@dataclass(frozen=True)
class CpuDevice:
    """Stands in for a torch device where callers ask where the encoder runs."""

    type: str = "cpu"


def load(
    name: str | None,
    *,
    device: str = "auto",
    dtype: str = "auto",
    pooling: str = "mean",
    max_tokens: int | None = None,
    quantize: str | None = None,
) -> LightEncoder | None:
    """A light encoder for these settings, or None where only the full encoder can serve them."""
    if quantize or dtype not in ("auto", "fp32", "float32") or pooling not in _POOLINGS or not _cpu_only(device):
        return None
    try:
        display, path = model_io.resolve_model_path(name)
    except model_io.ModelNotFound:
        return None
    folder = Path(path)
    config = _read_json(folder / "config.json")
    if not _supported(config) or not (folder / "model.safetensors").is_file() or not (folder / "tokenizer.json").is_file():
        return None
    facts = model_io.recall(path)
    if facts is None:
        return None
    return LightEncoder(display, folder, config, facts, pooling, max_tokens, quantize)


def _cpu_only(device: str) -> bool:
    """True for --device cpu, and for auto where the machine shows no NVIDIA GPU (torch would pick the CPU)."""
    if device == "cpu":
        return True
    return device == "auto" and not _has_nvidia()


def _has_nvidia() -> bool:
    return Path("/dev/nvidia0").exists() or Path("/proc/driver/nvidia/gpus").is_dir()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _supported(config: dict[str, Any]) -> bool:
    """Plain BERT: absolute positions and an activation this module implements."""
    return (
        config.get("model_type") == "bert"
        and config.get("position_embedding_type", "absolute") == "absolute"
        and config.get("hidden_act", "gelu") in _ACTIVATIONS
        and not config.get("is_decoder", False)
    )


class LightEncoder:
    """Pooled vectors of every hidden state of a BERT model, computed with numpy."""

    def __init__(
        self,
        name: str,
        folder: Path,
        config: dict[str, Any],
        facts: dict[str, Any],
        pooling: str,
        max_tokens: int | None,
        quantize: str | None,
    ) -> None:
        from tokenizers import Tokenizer

        self.path = str(folder)
        self.device = CpuDevice()
        self.pooling = pooling
        limit = int(facts["max_tokens"])
        self.max_tokens = min(max_tokens or limit, limit)
        self.num_states = int(facts["num_states"])
        self.identity = ModelIdentity(
            name=name,
            config_hash=facts["config_hash"],
            tokenizer=facts["tokenizer"],
            pooling=pooling,
            max_tokens=self.max_tokens,
            num_states=self.num_states,
            dim=int(facts["dim"]),
            quantize=quantize,
        )
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=self.max_tokens)
        self.pad_id = int(facts.get("pad_token_id", 0))
        self.bert = NumpyBert(folder / "model.safetensors", config)

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids with special tokens, truncated to max_tokens, as the fast tokenizer gives them."""
        return [e.ids for e in self.tokenizer.encode_batch(list(texts))]

    def encode(self, texts: Sequence[str], layers: Sequence[int] | None = None, progress: bool = False) -> LayerEmbeddings:
        """Pooled vectors (n, k, d) of the wanted hidden states (default: all), in input order."""
        wanted = tuple(range(self.num_states)) if layers is None else tuple(i % self.num_states for i in layers)
        out = np.zeros((len(texts), len(wanted), self.identity.dim), dtype=np.float32)  # (n, k, d)
        for i, ids in enumerate(self.tokenize(texts)):  # one text at a time: no padding to mask
            states = self.bert.hidden_states(np.asarray(ids, dtype=np.int64), max(wanted))
            out[i] = np.stack([_pool(states[s], self.pooling) for s in wanted])  # (k, d)
        return LayerEmbeddings(out, wanted, self.identity)


def _pool(hidden: np.ndarray, method: str) -> np.ndarray:
    """Pool one text's hidden state (T, d) into (d,); no padding, so every token counts."""
    if method == "mean":
        return hidden.mean(axis=0)  # (d,)
    if method == "cls":
        return hidden[0]  # (d,)
    return hidden.max(axis=0)  # (d,)


class NumpyBert:
    """BERT's encoder forward pass (eval mode) over one unpadded token sequence."""

    def __init__(self, weights_path: Path, config: dict[str, Any]) -> None:
        from safetensors import safe_open

        with safe_open(str(weights_path), framework="np") as handle:
            keys = list(handle.keys())
            prefix = "bert." if any(k.startswith("bert.embeddings.") for k in keys) else ""
            self.w = {k[len(prefix):]: handle.get_tensor(k).astype(np.float32) for k in keys if k.startswith(prefix)}
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.act = config.get("hidden_act", "gelu")

    def hidden_states(self, ids: np.ndarray, deepest: int) -> list[np.ndarray]:
        """Hidden states 0..deepest, each (T, d), of token ids (T,)."""
        w = self.w
        x = w["embeddings.word_embeddings.weight"][ids]  # (T, d)
        x = x + w["embeddings.position_embeddings.weight"][: len(ids)]  # (T, d)
        x = x + w["embeddings.token_type_embeddings.weight"][0]  # (T, d)
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        states = [x]
        for layer in range(min(deepest, self.layers)):
            x = self._block(x, f"encoder.layer.{layer}.")
            states.append(x)
        return states

    def _block(self, x: np.ndarray, p: str) -> np.ndarray:
        """One transformer block: self-attention and feed-forward, each with residual and LayerNorm."""
        w = self.w
        attn = self._attention(x, p + "attention.self.")
        attn = _linear(attn, w[p + "attention.output.dense.weight"], w[p + "attention.output.dense.bias"])  # (T, d)
        x = _layer_norm(x + attn, w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], self.eps)
        inner = _activate(_linear(x, w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"]), self.act)  # (T, i)
        out = _linear(inner, w[p + "output.dense.weight"], w[p + "output.dense.bias"])  # (T, d)
        return _layer_norm(x + out, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps)

    def _attention(self, x: np.ndarray, p: str) -> np.ndarray:
        """Multi-head scaled dot-product attention over all tokens (no padding), heads concatenated."""
        w = self.w
        tokens, dim = x.shape
        size = dim // self.heads

        def split(name: str) -> np.ndarray:
            y = _linear(x, w[p + name + ".weight"], w[p + name + ".bias"])  # (T, d)
            return y.reshape(tokens, self.heads, size).transpose(1, 0, 2)  # (h, T, s)

        q, k, v = split("query"), split("key"), split("value")
        scores = q @ k.transpose(0, 2, 1) / np.float32(np.sqrt(size))  # (h, T, T)
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))  # (h, T, T)
        scores /= scores.sum(axis=-1, keepdims=True)
        return (scores @ v).transpose(1, 0, 2).reshape(tokens, dim)  # (T, d)


def _linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    return x @ weight.T + bias  # (T, out)


def _layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)  # (T, 1)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)  # (T, 1)
    return (x - mean) / np.sqrt(var + np.float32(eps)) * gamma + beta  # (T, d)


def _activate(x: np.ndarray, name: str) -> np.ndarray:
    if name == "relu":
        return np.maximum(x, 0)
    if name == "gelu":
        return (0.5 * x * (1.0 + _erf(x.astype(np.float64) / np.sqrt(2.0)))).astype(np.float32)
    inner = np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)  # gelu_new / gelu_pytorch_tanh
    return (0.5 * x * (1.0 + np.tanh(inner))).astype(np.float32)


def _erf(x: np.ndarray) -> np.ndarray:
    """erf to a fractional error below 1.2e-7 (Numerical Recipes' Chebyshev erfc), in float64."""
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (
        0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))))
    erfc = t * np.exp(poly)
    return np.where(x >= 0, 1.0 - erfc, erfc - 1.0)
