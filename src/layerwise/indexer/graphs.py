"""CUDA graphs for single-query encoding: one captured forward pass per token length.

A single query is launch-bound on a GPU (about 100 small kernels for a 6-layer model),
so its forward pass, pooling included, is captured once per (length, layers) and then
replayed: one launch instead of a hundred. A single text needs no padding, so each
graph runs exactly the computation of the eager path with no attention mask (no
padding bucket, no data-dependent mask branch inside the capture). Graphs share one
memory pool and are replayed under a lock, one at a time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

Forward = Callable[[torch.Tensor, tuple[int, ...]], torch.Tensor]


@dataclass
class _Graph:
    graph: torch.cuda.CUDAGraph
    ids: torch.Tensor  # (1, T) static input
    pooled: torch.Tensor  # (1, k, d) static output


class QueryGraphs:
    """Captures and replays the pooled forward pass of one text per (length, layers)."""

    def __init__(self, forward: Forward, device: torch.device, limit: int = 256) -> None:
        self._forward = forward  # (ids (1, T), wanted) -> pooled (1, k, d), unpadded input
        self._device = device
        self._limit = limit
        self._graphs: OrderedDict[tuple[int, tuple[int, ...]], _Graph] = OrderedDict()
        self._pool: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._graphs)

    @torch.inference_mode()
    def encode(self, ids: list[int], wanted: tuple[int, ...]) -> np.ndarray:
        """Pooled vectors (k, d) of one text's token ids."""
        with self._lock:
            entry = self._graphs.get((len(ids), wanted))
            if entry is None:
                entry = self._capture(len(ids), wanted)
            self._graphs.move_to_end((len(ids), wanted))
            entry.ids.copy_(torch.tensor(ids, dtype=torch.int64)[None])
            entry.graph.replay()
            return entry.pooled[0].cpu().numpy()  # a copy: the static output is reused

    @torch.inference_mode()
    def _capture(self, length: int, wanted: tuple[int, ...]) -> _Graph:
        if len(self._graphs) >= self._limit:
            self._graphs.popitem(last=False)
        ids = torch.zeros((1, length), dtype=torch.int64, device=self._device)  # (1, T)
        side = torch.cuda.Stream(self._device)
        side.wait_stream(torch.cuda.current_stream(self._device))
        with torch.cuda.stream(side):  # warm-up outside the capture (lazy inits, cuBLAS handles)
            self._forward(ids, wanted)
        torch.cuda.current_stream(self._device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self._pool):
            pooled = self._forward(ids, wanted)  # (1, k, d)
        if self._pool is None:
            self._pool = graph.pool()
        entry = _Graph(graph, ids, pooled)
        self._graphs[(length, wanted)] = entry
        return entry
