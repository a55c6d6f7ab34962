"""Exact (flat) inner-product search with torch on a GPU, for when faiss has no GPU support.

A flat FAISS index is only its unit vectors and their ids; on CUDA they move to the
GPU once and each search is one matrix product and a top-k there, in float32, so the
scores and order are those of ``IndexFlatIP`` (up to float rounding and the order of
exact ties).
"""

from __future__ import annotations

from typing import Any

import numpy as np


class TorchFlatIndex:
    """The vectors (n, d) and ids (n,) of a flat index, searched with torch on ``device``."""

    def __init__(self, vectors: np.ndarray, ids: np.ndarray, device: Any) -> None:
        import torch  # lazily: storage is on the start-up path of commands that never search on a GPU

        self.vectors = torch.as_tensor(np.ascontiguousarray(vectors, dtype=np.float32)).to(device)  # (n, d)
        self.ids = np.asarray(ids, dtype=np.int64)  # (n,)
        self.device = self.vectors.device

    @property
    def ntotal(self) -> int:
        return len(self.ids)

    @property
    def d(self) -> int:
        return int(self.vectors.shape[1])

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and ids (q, k) of the k best rows for unit queries (q, d); id -1 pads past ntotal."""
        import torch

        q = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32)).to(self.device)  # (q, d)
        found = min(k, self.ntotal)
        top = torch.topk(q @ self.vectors.T, found, dim=1)  # values, indices (q, found)
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)  # (q, k)
        ids = np.full((len(queries), k), -1, dtype=np.int64)  # (q, k)
        scores[:, :found] = top.values.cpu().numpy()
        ids[:, :found] = self.ids[top.indices.cpu().numpy()]
        return scores, ids
