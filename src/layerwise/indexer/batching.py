"""Batches for the encoder: planning under a token budget, assembly, a background feed and
the buffers pooled vectors land in.

The feed runs a producer thread that tokenises and assembles batch N+1.. while batch N
runs on the device, handing batches over through a bounded queue so memory stays flat.
On CUDA pooled vectors stay on the GPU in one buffer and reach the host with a single
non-blocking copy into pinned memory; on the CPU they are written straight into the
output array.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import torch

T = TypeVar("T")


@dataclass(frozen=True)
class Batch:
    """Padded token ids of some texts and their positions in the input."""

    positions: np.ndarray  # (B,)
    input_ids: np.ndarray  # (B, T)
    attention_mask: np.ndarray  # (B, T)

    @property
    def tokens(self) -> int:
        """Real (unpadded) tokens in the batch."""
        return int(self.attention_mask.sum())

    @property
    def padded(self) -> bool:
        return bool(self.attention_mask[:, -1].min() == 0)


def plan_batches(lengths: Sequence[int], token_budget: int, max_batch: int = 512) -> list[np.ndarray]:
    """Group positions, longest first, so each batch's padded size stays under the budget."""
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        longest = max(int(lengths[order[start]]), 1)
        size = max(1, min(max_batch, token_budget // longest))
        batches.append(order[start : start + size])
        start += size
    return batches


def assemble(token_ids: Sequence[Sequence[int]], rows: np.ndarray, positions: np.ndarray, pad_id: int) -> Batch:
    """The padded batch of ``token_ids[rows]``, labelled with input ``positions``."""
    lengths = np.fromiter((len(token_ids[r]) for r in rows), dtype=np.int64, count=len(rows))  # (B,)
    width = max(int(lengths.max()), 1)
    mask = np.arange(width)[None, :] < lengths[:, None]  # (B, T)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)  # (B, T)
    ids[mask] = np.fromiter((t for r in rows for t in token_ids[r]), dtype=np.int64, count=int(lengths.sum()))
    return Batch(positions, ids, mask.astype(np.int64))


class Feed(Generic[T]):
    """Items made by a producer thread, handed out through a bounded queue.

    Several consumer threads may iterate one feed; each item goes to one of them.
    An error in the producer is raised in the consumers; ``close`` stops the producer
    early (a consumer failed) and always joins it.
    """

    _END = object()

    def __init__(self, source: Iterable[T], depth: int = 4) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._produce, args=(source,), name="layerwise-feed", daemon=True)
        self._thread.start()

    def _produce(self, source: Iterable[T]) -> None:
        try:
            for item in source:
                if not self._put(item):
                    return
        except BaseException as exc:  # handed to the consumers
            self._error = exc
        finally:
            self._put(self._END)

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[T]:
        while True:
            item = self._queue.get()
            if item is self._END:
                self._queue.put(item)  # room is certain: the producer is done, this slot was just freed
                if self._error is not None:
                    raise self._error
                return
            yield item  # type: ignore[misc]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        while True:  # let any consumer still waiting see the end
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put(self._END)

    def __enter__(self) -> "Feed[T]":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class HostSink:
    """Pooled vectors written straight into a float32 array (n, k, d) in input order."""

    def __init__(self, n: int, k: int, d: int) -> None:
        self.out = np.zeros((n, k, d), dtype=np.float32)  # (n, k, d)

    def put(self, positions: np.ndarray, pooled: torch.Tensor) -> None:
        self.out[positions] = pooled.numpy()  # rows are disjoint: safe from several threads

    def result(self) -> np.ndarray:
        return self.out


class DeviceSink:
    """Pooled vectors kept on the device in input order; one non-blocking copy to pinned memory at the end."""

    def __init__(self, n: int, k: int, d: int, device: torch.device) -> None:
        self.buffer = torch.zeros((n, k, d), dtype=torch.float32, device=device)  # (n, k, d)

    def put(self, positions: torch.Tensor, pooled: torch.Tensor) -> None:
        self.buffer.index_copy_(0, positions, pooled)

    def result(self) -> np.ndarray:
        host = torch.empty(self.buffer.shape, dtype=torch.float32, pin_memory=True)  # (n, k, d)
        host.copy_(self.buffer, non_blocking=True)
        torch.cuda.current_stream(self.buffer.device).synchronize()
        return host.numpy()
