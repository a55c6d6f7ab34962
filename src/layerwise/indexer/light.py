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
remembers the facts for the next time. ``LAYERWISE_QUERY_ENCODER=full`` turns
the light encoder off (bench/coldstart.py compares the two that way).

Per query it costs about what the torch encoder does on one thread; the service
layer uses it for one-shot processes, and a server (which loads torch anyway and
may index) keeps the full encoder. An indexing run encodes its first passages with
it too (``indexer/staged.py``), through :class:`TokenizerCalls`, the few calls of a
Hugging Face fast tokenizer that the passage splitter makes, answered by the Rust
tokenizer itself.

NumPy's OpenBLAS runs one thread per core and spins while it waits: on a busy
machine a passage's small matrix products then took 20 times longer (1.8 s of CPU
against 0.1 s). The forward pass therefore keeps BLAS to one thread and runs one
text per core instead, as the torch encoder does on the CPU.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from layerwise.errors import ModelNotFound, UsageError
from layerwise.indexer import model as model_io
from layerwise.indexer.bert_weights import BlockWeights, plain_bert
from layerwise.settings import EncoderSettings
from layerwise.types import LayerEmbeddings, ModelIdentity



@dataclass(frozen=True)
class CpuDevice:
    """Stands in for a torch device where callers ask where the encoder runs."""

    type: str = "cpu"


def load(settings: EncoderSettings) -> LightEncoder | None:
    """A light encoder for these settings, or None where only the full encoder can serve them."""
    if os.environ.get("LAYERWISE_QUERY_ENCODER") == "full":  # for measuring against the full encoder
        return None
    if settings.quantize or settings.dtype not in ("auto", "fp32", "float32") or not _cpu_only(settings.device):
        return None
    try:
        display, path = model_io.resolve_model_path(settings.model)
    except ModelNotFound:
        return None
    folder = Path(path)
    config = _read_json(folder / "config.json")
    if not plain_bert(config) or not (folder / "model.safetensors").is_file() or not (folder / "tokenizer.json").is_file():
        return None
    facts = model_io.recall(path)
    if facts is None:
        return None
    return LightEncoder(display, folder, config, facts, settings)


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


class LightEncoder:
    """Pooled vectors of every hidden state of a BERT model, computed with numpy."""

    def __init__(
        self,
        name: str,
        folder: Path,
        config: dict[str, Any],
        facts: dict[str, Any],
        settings: EncoderSettings,
    ) -> None:
        from tokenizers import Tokenizer

        self.path = str(folder)
        self.device = CpuDevice()
        self.settings = settings
        self.pooling = settings.pooling or "mean"
        limit = int(facts["max_tokens"])
        self.max_tokens = min(settings.max_tokens or limit, limit)
        self.num_states = int(facts["num_states"])
        self.identity = ModelIdentity(
            name=name,
            config_hash=facts["config_hash"],
            tokenizer=facts["tokenizer"],
            pooling=self.pooling,
            max_tokens=self.max_tokens,
            num_states=self.num_states,
            dim=int(facts["dim"]),
            quantize=None,
        )
        self.model_limit = limit
        self.facts = facts
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=self.max_tokens)
        self.pad_id = int(facts.get("pad_token_id", 0))
        self.bert = NumpyBert(folder / "model.safetensors", config)

    @cached_property
    def calls(self) -> TokenizerCalls:
        """This model's tokenizer answering the splitter's calls (a second instance: this one truncates)."""
        from tokenizers import Tokenizer

        return TokenizerCalls(Tokenizer.from_file(str(Path(self.path) / "tokenizer.json")))

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids with special tokens, truncated to max_tokens, as the fast tokenizer gives them."""
        return [e.ids for e in self.tokenizer.encode_batch(list(texts))]

    def encode(self, texts: Sequence[str], layers: Sequence[int] | None = None, progress: bool = False) -> LayerEmbeddings:
        """Pooled vectors (n, k, d) of the wanted hidden states (default: all), in input order."""
        return self.encode_ids(self.tokenize(texts), layers)

    def encode_ids(
        self, token_ids: Sequence[Sequence[int]], layers: Sequence[int] | None = None, progress: bool = False
    ) -> LayerEmbeddings:
        """As ``encode`` for texts already tokenised (special tokens included, at most max_tokens each)."""
        too_long = next((i for i, t in enumerate(token_ids) if not 0 < len(t) <= self.max_tokens), None)
        if too_long is not None:
            raise UsageError(f"token ids {too_long} hold {len(token_ids[too_long])} tokens: "
                             f"each input needs 1..{self.max_tokens} (max_tokens)")
        wanted = tuple(range(self.num_states)) if layers is None else tuple(i % self.num_states for i in layers)
        out = np.zeros((len(token_ids), len(wanted), self.identity.dim), dtype=np.float32)  # (n, k, d)

        def run(i: int) -> None:  # one text at a time: no padding to mask
            states = self.bert.hidden_states(np.asarray(token_ids[i], dtype=np.int64), max(wanted))
            out[i] = np.stack([_pool(states[s], self.pooling) for s in wanted])  # (k, d)

        workers = min(os.cpu_count() or 1, len(token_ids))
        with _one_blas_thread():
            if workers <= 1:
                for i in range(len(token_ids)):
                    run(i)
            else:
                with ThreadPoolExecutor(workers) as pool:
                    list(pool.map(run, range(len(token_ids))))
        return LayerEmbeddings(out, wanted, self.identity)


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """NumPy's BLAS on one thread for the block (threadpoolctl; where it is missing, as configured)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - an install without it
        limits: Any = nullcontext()
    else:
        limits = threadpool_limits(1, user_api="blas")
    with limits:
        yield


class TokenizerCalls:
    """The calls of a Hugging Face fast tokenizer that the passage splitter (passages.py) and the
    max-tokens check make, answered by the Rust tokenizer it wraps: the same ids, offsets and word
    ids (transformers calls the same ``encode_batch``), without importing transformers.

    Like the fast tokenizer, a call pads nothing and truncates only when asked to; ``verbose`` is
    accepted and ignored.
    """

    def __init__(self, backend: Any) -> None:
        backend.no_padding()
        backend.no_truncation()
        self.backend_tokenizer = backend
        self._truncating: dict[int, Any] = {}

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return int(self.backend_tokenizer.num_special_tokens_to_add(pair))

    def get_vocab(self) -> dict[str, int]:
        return self.backend_tokenizer.get_vocab(with_added_tokens=True)

    def __call__(
        self,
        text: str | Sequence[str],
        *,
        add_special_tokens: bool = True,
        truncation: bool = False,
        max_length: int | None = None,
        return_offsets_mapping: bool = False,
        verbose: bool = True,
    ) -> Encoded:
        if truncation and max_length is None:
            raise ValueError("truncation needs max_length here (the model's limit is not known to these calls)")
        backend = self._truncated(max_length) if truncation else self.backend_tokenizer
        single = isinstance(text, str)
        encodings = backend.encode_batch([text] if single else list(text), add_special_tokens=add_special_tokens)
        return Encoded(encodings, single)

    def _truncated(self, max_length: int | None) -> Any:
        """A copy of the tokenizer that truncates to max_length (the plain one stays as it is)."""
        from tokenizers import Tokenizer

        assert max_length is not None
        if max_length not in self._truncating:
            copy = Tokenizer.from_str(self.backend_tokenizer.to_str())
            copy.no_padding()
            copy.enable_truncation(max_length=max_length)
            self._truncating[max_length] = copy
        return self._truncating[max_length]


@dataclass(frozen=True)
class Encoded:
    """What a tokenizer call returns: ``encodings`` and ``["input_ids"]`` (one list for a single text)."""

    encodings: list[Any]
    single: bool

    def __getitem__(self, key: str) -> Any:
        if key != "input_ids":
            raise KeyError(key)
        ids = [list(e.ids) for e in self.encodings]
        return ids[0] if self.single else ids


def _pool(hidden: np.ndarray, method: str) -> np.ndarray:
    """Pool one text's hidden state (T, d) into (d,); no padding, so every token counts."""
    if method == "mean":
        return hidden.mean(axis=0)  # (d,)
    if method == "cls":
        return hidden[0]  # (d,)
    return hidden.max(axis=0)  # (d,)


class NumpyBert:
    """BERT's encoder forward pass (eval mode) over one unpadded token sequence.

    Linear weights are stored transposed and contiguous, and each block's query, key
    and value projections are fused into one matrix, so a block is four matmuls.
    """

    def __init__(self, weights_path: Path, config: dict[str, Any]) -> None:
        from safetensors import safe_open

        with safe_open(str(weights_path), framework="np") as handle:
            keys = list(handle.keys())
            prefix = "bert." if any(k.startswith("bert.embeddings.") for k in keys) else ""
            raw = {k[len(prefix):]: handle.get_tensor(k).astype(np.float32, copy=False) for k in keys if k.startswith(prefix)}
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = np.float32(config.get("layer_norm_eps", 1e-12))
        self.act = config.get("hidden_act", "gelu")
        self.embeddings = {name: raw[f"embeddings.{name}"] for name in
                           ("word_embeddings.weight", "position_embeddings.weight", "token_type_embeddings.weight",
                            "LayerNorm.weight", "LayerNorm.bias")}
        self.blocks = [BlockWeights.of(raw, i, np.concatenate, _transposed) for i in range(self.layers)]

    def hidden_states(self, ids: np.ndarray, deepest: int) -> list[np.ndarray]:
        """Hidden states 0..deepest, each (T, d), of token ids (T,)."""
        e = self.embeddings
        x = e["word_embeddings.weight"][ids] + e["position_embeddings.weight"][: len(ids)]  # (T, d)
        x = x + e["token_type_embeddings.weight"][0]  # (T, d)
        x = _layer_norm(x, e["LayerNorm.weight"], e["LayerNorm.bias"], self.eps)
        states = [x]
        for block in self.blocks[: min(deepest, self.layers)]:
            x = _block(block, x, self.heads, self.eps, self.act)
            states.append(x)
        return states


def _block(b: BlockWeights[np.ndarray], x: np.ndarray, heads: int, eps: np.float32, act: str) -> np.ndarray:
    """Self-attention and feed-forward, each with its residual and LayerNorm."""
    tokens, dim = x.shape
    size = dim // heads
    qkv = (x @ b.qkv + b.qkv_bias).reshape(tokens, 3, heads, size).transpose(1, 2, 0, 3)  # (3, h, T, s)
    scores = qkv[0] @ qkv[1].transpose(0, 2, 1) / np.float32(np.sqrt(size))  # (h, T, T)
    scores = np.exp(scores - scores.max(axis=-1, keepdims=True))  # (h, T, T)
    scores /= scores.sum(axis=-1, keepdims=True)
    context = (scores @ qkv[2]).transpose(1, 0, 2).reshape(tokens, dim)  # (T, d)
    x = _layer_norm(x + context @ b.out + b.out_bias, *b.norm1, eps)  # (T, d)
    inner = _activate(x @ b.inner + b.inner_bias, act)  # (T, i)
    return _layer_norm(x + inner @ b.down + b.down_bias, *b.norm2, eps)  # (T, d)


def _transposed(matrix: np.ndarray) -> np.ndarray:
    """A torch.nn.Linear weight (out, in) as a contiguous (in, out) matrix, so a product is x @ w."""
    return np.ascontiguousarray(matrix.T)


def _layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: np.float32) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)  # (T, 1)
    centred = x - mean  # (T, d)
    var = (centred * centred).mean(axis=-1, keepdims=True)  # (T, 1)
    return centred / np.sqrt(var + eps) * gamma + beta  # (T, d)


def _activate(x: np.ndarray, name: str) -> np.ndarray:
    if name == "relu":
        return np.maximum(x, 0)
    if name == "gelu":
        return np.float32(0.5) * x * (np.float32(1.0) + _erf(x * np.float32(1 / np.sqrt(2.0))))
    inner = np.float32(np.sqrt(2.0 / np.pi)) * (x + np.float32(0.044715) * x**3)  # gelu_new / gelu_pytorch_tanh
    return np.float32(0.5) * x * (np.float32(1.0) + np.tanh(inner))


def _erf(x: np.ndarray) -> np.ndarray:
    """erf to a fractional error below 1.2e-7 (Numerical Recipes' Chebyshev erfc), in x's precision."""
    z = np.abs(x)
    t = 1 / (1 + np.float32(0.5) * z)
    poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (
        0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))))
    erfc = t * np.exp(poly)
    return np.where(x >= 0, 1 - erfc, erfc - 1)
