"""The encoder: one forward pass per batch yields the pooled vector of every hidden state.

Texts are tokenized once (fast: see tokens.py), sorted by length and cut into batches
under a token budget, so little compute goes to padding; results come back in input
order. A producer thread tokenises and assembles batch N+1.. while batch N runs
(batching.Feed, a bounded queue). Each hidden state is pooled by a forward hook the
moment its layer produces it, in the model's dtype with float32 accumulation, so no
more than one layer's token tensor is alive at a time and no full-precision copy is
made; the forward pass stops after the deepest layer the caller asked for. The hooks
read their batch from thread-local state, so on the CPU one batch per core runs in its
own thread (single-threaded kernels), which beat one batch on all cores by 4-7%. On
CUDA pooled vectors stay on the GPU until one copy at the end, and a single query
replays a captured CUDA graph (graphs.py).
"""

from __future__ import annotations

import os
import threading
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from layerwise import cores
from layerwise.errors import LayerRangeError, UsageError
from layerwise.indexer import lean, model as model_io, team
from layerwise.indexer.batching import Batch, DeviceSink, Feed, HostSink, assemble, plan_batches
from layerwise.indexer.device import default_max_batch, default_token_budget, resolve_device, resolve_dtype
from layerwise.indexer.graphs import QueryGraphs
from layerwise.indexer.pooling import pool
from layerwise.indexer.tokens import FastTokenizer
from layerwise.settings import EncoderSettings
from layerwise.types import LayerEmbeddings, ModelIdentity

__all__ = ["Batch", "Encoder", "plan_batches", "quantized"]

FIRST_CHUNK = 256  # texts tokenised before the first batch can start: small, so the device starts early
CHUNK = 1024  # texts tokenised per step after that
TOKENIZER_THREADS = 4  # chunks tokenised at once (the Rust tokenizer releases the GIL; each call is parallel too)
FEED_DEPTH = 4  # batches prepared ahead of the one running


class _StopForward(Exception):
    """Raised by the deepest wanted layer's hook to end the forward pass early."""


@dataclass
class _Pass:
    """What the hooks of one forward pass need: the mask, the wanted states and where to put them."""

    mask: torch.Tensor  # (B, T)
    wanted: frozenset[int]
    deepest: int
    pooled: dict[int, torch.Tensor]


@dataclass(frozen=True)
class _Staged:
    """A batch in (pinned, on CUDA) tensors, ready for a non-blocking copy to the device."""

    batch: Batch
    positions: torch.Tensor  # (B,)
    input_ids: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor  # (B, T)


class Encoder:
    """A loaded encoder that pools every hidden state of its inputs."""

    def __init__(self, settings: EncoderSettings | None = None) -> None:
        self.settings = settings = settings or EncoderSettings()
        self.device = resolve_device(settings.device)
        self.dtype = resolve_dtype(self.device, settings.dtype)
        name, self.model, self.tokenizer, self.path = model_io.load(settings.model)
        self.model.to(self.device, self.dtype).eval()
        if settings.quantize:
            self.model = quantized(self.model, settings.quantize, self.device)
        self.pooling = settings.pooling or "mean"
        config = self.model.config
        limit = model_io.max_tokens_of(self.path, config, self.tokenizer)
        self.model_limit = limit
        self.max_tokens = model_io.checked_max_tokens(settings.max_tokens, limit, self.tokenizer)
        self.token_budget = settings.token_budget or default_token_budget(self.device)
        self.max_batch = default_max_batch(self.device)
        self.workers = settings.workers or ((os.cpu_count() or 1) if self.device.type == "cpu" else 1)
        self.num_states = int(config.num_hidden_layers) + 1
        self.identity = ModelIdentity(
            name=name,
            config_hash=model_io.config_hash(config),
            tokenizer=model_io.tokenizer_fingerprint(self.tokenizer),
            pooling=self.pooling,
            max_tokens=self.max_tokens,
            num_states=self.num_states,
            dim=int(config.hidden_size),
            quantize=settings.quantize,
        )
        self._modules = _locate_layers(self.model, self.num_states - 1)
        self._local = threading.local()
        if self._modules is not None:
            embeddings, blocks = self._modules
            for state, module in enumerate([embeddings, *blocks]):
                module.register_forward_hook(self._hook(state))
        self.query_graphs = self._modules is not None and self.device.type == "cuda"

    @cached_property
    def fast_tokenizer(self) -> FastTokenizer:
        return FastTokenizer(self.tokenizer, self.max_tokens)

    @cached_property
    def lean_pass(self) -> lean.LeanBert | None:
        """The lean one-text pass on the CPU (queries), where the model allows it."""
        return lean.of(self.model, self.device, self.dtype) if self._modules is not None else None

    @cached_property
    def graphs(self) -> QueryGraphs:
        return QueryGraphs(self._forward_unpadded, self.device)

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text with special tokens, truncated to max_tokens (as the HF tokenizer call)."""
        return self.fast_tokenizer(texts)

    def batches(self, token_ids: Sequence[Sequence[int]]) -> Iterator[Batch]:
        """Length-sorted, padded batches under the token budget."""
        positions = np.arange(len(token_ids))
        for rows in plan_batches([len(t) for t in token_ids], self.token_budget, self.max_batch):
            yield assemble(token_ids, rows, positions[rows], self.pad_id)

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id or 0

    def encode(
        self, texts: Sequence[str], layers: Sequence[int] | None = None, progress: bool = False
    ) -> LayerEmbeddings:
        """Pooled vectors of the given hidden states (default: all) for each text, in input order."""
        wanted = self.states(layers)
        if len(texts) == 1 and self.lean_pass is not None:  # a query: no batching machinery, no module overhead
            vectors = team.run(cores.granted(), self.lean_pass.pooled, self.tokenize(texts)[0], wanted, self.pooling)  # (k, d)
            return LayerEmbeddings(vectors.numpy()[None], wanted, self.identity)
        if len(texts) == 1 and self.query_graphs:
            vectors = self._graph_encode(texts[0], wanted)
            if vectors is not None:
                return LayerEmbeddings(vectors, wanted, self.identity)
        return self._run(len(texts), self._text_batches(texts), wanted, progress)

    def _graph_encode(self, text: str, wanted: tuple[int, ...]) -> np.ndarray | None:
        """Vectors (1, k, d) of one text from a CUDA graph; None (and eager from then on) where the
        model cannot be captured."""
        try:
            return self.graphs.encode(self.tokenize([text])[0], wanted)[None]  # (1, k, d)
        except RuntimeError as exc:
            warnings.warn(f"CUDA graph capture failed, queries run eagerly: {exc}", RuntimeWarning, stacklevel=3)
            self.query_graphs = False
            return None

    def encode_ids(
        self, token_ids: Sequence[Sequence[int]], layers: Sequence[int] | None = None, progress: bool = False
    ) -> LayerEmbeddings:
        """As ``encode`` for texts already tokenised: each entry is the full model input (special tokens
        included), exactly what ``tokenizer(text, truncation=True, max_length=max_tokens)`` returns."""
        too_long = next((i for i, t in enumerate(token_ids) if not 0 < len(t) <= self.max_tokens), None)
        if too_long is not None:
            raise UsageError(f"token ids {too_long} hold {len(token_ids[too_long])} tokens: "
                             f"each input needs 1..{self.max_tokens} (max_tokens)")
        return self._run(len(token_ids), self.batches(token_ids), self.states(layers), progress)

    def _text_batches(self, texts: Sequence[str]) -> Iterator[Batch]:
        """Batches of raw texts, tokenised chunk by chunk in order of character length (longest first),
        several chunks at once in a small thread pool, handed on in order."""
        order = np.argsort(-np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)), kind="stable")
        cuts = [0, *range(min(FIRST_CHUNK, len(order)), len(order), CHUNK), len(order)]
        chunks = [order[a:b] for a, b in zip(cuts, cuts[1:]) if b > a]
        with ThreadPoolExecutor(TOKENIZER_THREADS) as pool:
            pending = deque(pool.submit(self.tokenize, [texts[i] for i in c]) for c in chunks[:TOKENIZER_THREADS])
            for index, chunk in enumerate(chunks):
                ids = pending.popleft().result()
                if index + TOKENIZER_THREADS < len(chunks):  # bounded: a few chunks in flight
                    pending.append(pool.submit(self.tokenize, [texts[i] for i in chunks[index + TOKENIZER_THREADS]]))
                for rows in plan_batches([len(t) for t in ids], self.token_budget, self.max_batch):
                    yield assemble(ids, rows, chunk[rows], self.pad_id)

    def _run(self, n: int, batches: Iterator[Batch], wanted: tuple[int, ...], progress: bool) -> LayerEmbeddings:
        """Encode batches made by a producer thread; pooled vectors land in input order."""
        cuda = self.device.type == "cuda"
        sink = DeviceSink(n, len(wanted), self.identity.dim, self.device) if cuda else HostSink(n, len(wanted), self.identity.dim)
        bar = _progress(n, progress)
        lock = threading.Lock()

        def consume(feed: Feed[_Staged]) -> None:
            for staged in feed:
                positions = staged.positions.to(self.device, non_blocking=True) if cuda else staged.batch.positions
                sink.put(positions, self._forward_staged(staged, wanted))
                with lock:
                    bar.update(len(staged.batch.positions))

        with Feed(map(self._stage, batches), FEED_DEPTH) as feed:
            workers = 1 if cuda else min(self.workers, max(n, 1))
            with self._threads(workers) as run:
                run(consume, feed)
        bar.close()
        return LayerEmbeddings(sink.result(), wanted, self.identity)

    def _stage(self, batch: Batch) -> _Staged:
        """Tensors of a batch; pinned on CUDA so the copy to the device does not block (runs in the producer)."""
        tensors = [torch.from_numpy(a) for a in (batch.positions, batch.input_ids, batch.attention_mask)]
        if self.device.type == "cuda":
            tensors = [t.pin_memory() for t in tensors]
        return _Staged(batch, *tensors)

    def states(self, layers: Sequence[int] | None) -> tuple[int, ...]:
        """Non-negative hidden-state indices for ``layers`` (default all; negative counts from the end)."""
        if layers is None:
            return tuple(range(self.num_states))
        out = []
        for layer in layers:
            if not -self.num_states <= int(layer) < self.num_states:
                raise LayerRangeError(
                    f"layer {layer} is out of range: this model has hidden states 0..{self.num_states - 1} "
                    f"(or -{self.num_states}..-1 from the end)"
                )
            out.append(int(layer) % self.num_states)
        return tuple(out)

    @contextmanager
    def _threads(self, workers: int) -> Iterator[Callable[[Callable[[Feed[_Staged]], None], Feed[_Staged]], None]]:
        """Runs a consumer over the feed: in this thread with all cores for one worker, else one
        thread per worker running single-threaded kernels."""
        if workers <= 1:
            yield lambda consume, feed: consume(feed)
            return
        previous = torch.get_num_threads()
        torch.set_num_threads(1)

        def run(consume: Callable[[Feed[_Staged]], None], feed: Feed[_Staged]) -> None:
            with ThreadPoolExecutor(workers) as pool_:
                for future in [pool_.submit(consume, feed) for _ in range(workers)]:
                    future.result()

        try:
            yield run
        finally:
            torch.set_num_threads(previous)

    def forward_pooled(self, batch: Batch, wanted: tuple[int, ...]) -> torch.Tensor:
        """Run one batch and return pooled float32 vectors (B, k, d) for the wanted states, on the device."""
        return self._forward_staged(self._stage(batch), wanted)

    @torch.inference_mode()
    def _forward_staged(self, staged: _Staged, wanted: tuple[int, ...]) -> torch.Tensor:
        ids = staged.input_ids.to(self.device, non_blocking=True)  # (B, T)
        mask = staged.attention_mask.to(self.device, non_blocking=True)  # (B, T)
        if self._modules is None:
            return self._forward_all_states(ids, mask, wanted)
        # An unpadded batch needs no attention mask (what transformers itself decides, without
        # reading the mask back from the device).
        return self._forward_hooked(ids, mask, mask if staged.batch.padded else None, wanted)

    def _forward_unpadded(self, ids: torch.Tensor, wanted: tuple[int, ...]) -> torch.Tensor:
        """Pooled vectors (1, k, d) of one unpadded text on the device (the captured query pass)."""
        return self._forward_hooked(ids, torch.ones_like(ids), None, wanted)

    def _forward_hooked(
        self, ids: torch.Tensor, mask: torch.Tensor, attention: torch.Tensor | None, wanted: tuple[int, ...]
    ) -> torch.Tensor:
        state = _Pass(mask, frozenset(wanted), max(wanted), {})
        self._local.state = state
        try:
            self.model(input_ids=ids, attention_mask=attention)
        except _StopForward:
            pass
        finally:
            self._local.state = None
        return torch.stack([state.pooled[i] for i in wanted], dim=1)  # (B, k, d)

    def _hook(self, index: int):  # noqa: ANN202 - torch hook signature
        """A forward hook that pools hidden state ``index`` for the pass running in this thread."""

        def hook(_module: torch.nn.Module, _args: object, output: object) -> None:
            state: _Pass | None = getattr(self._local, "state", None)
            if state is None:  # a forward pass not started by forward_pooled
                return
            hidden = output[0] if isinstance(output, tuple) else output  # (B, T, d)
            if index in state.wanted:
                state.pooled[index] = pool(hidden, state.mask, self.pooling)  # (B, d)
            if index == state.deepest:
                raise _StopForward

        return hook

    def _forward_all_states(self, ids: torch.Tensor, mask: torch.Tensor, wanted: tuple[int, ...]) -> torch.Tensor:
        """Fallback for architectures whose layers cannot be located: all hidden states at once."""
        states = self.model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
        return torch.stack([pool(states[i], mask, self.pooling) for i in wanted], dim=1)  # (B, k, d)


QUANTIZATIONS = ("int8",)


def quantized(model: torch.nn.Module, method: str, device: torch.device) -> torch.nn.Module:
    """Dynamic int8 quantisation of the Linear layers, per-channel weights (CPU only, opt-in: it changes the vectors).

    Per-channel weight scales keep the last layer at cosine 0.98 of fp32 on SciFact
    passages, against 0.93 with one scale per tensor, at the same speed.
    """
    if method not in QUANTIZATIONS:
        raise UsageError(f"unknown quantisation '{method}': use int8")
    if device.type != "cpu":
        raise UsageError("--quantize int8 runs on the CPU only: use --device cpu, or --dtype bf16/fp16 on a GPU")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        return quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)


def _locate_layers(model: torch.nn.Module, num_layers: int) -> tuple[torch.nn.Module, list[torch.nn.Module]] | None:
    """The embeddings module and the list of encoder blocks, where the model has them."""
    embeddings = getattr(model, "embeddings", None)
    if embeddings is None:
        return None
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == num_layers:
            return embeddings, list(module)
    return None


def _progress(total: int, enabled: bool):  # noqa: ANN202 - tqdm type
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="text", unit_scale=True, desc="encoding", disable=not enabled, leave=False)
