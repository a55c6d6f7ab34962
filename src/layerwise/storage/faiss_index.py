"""The FAISS index file: exact inner-product search over L2-normalised vectors.

Ids are vector rows (``IndexIDMap2``). Files are written atomically: a
temporary file in the same folder, fsync, then rename over the old one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from layerwise.errors import CorruptIndex


def _faiss() -> Any:
    import faiss

    return faiss


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Float32 copy with unit L2 rows (zero rows stay zero)."""
    out = np.asarray(vectors, dtype=np.float32).copy()
    norms = np.linalg.norm(out, axis=1, keepdims=True)  # (n, 1)
    return out / np.maximum(norms, 1e-12)


def build(ids: np.ndarray, vectors: np.ndarray) -> Any:
    """An exact inner-product index of normalised vectors (n, d) under int64 ids."""
    faiss = _faiss()
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1]))
    if len(ids):
        index.add_with_ids(normalize(vectors), np.asarray(ids, dtype=np.int64))
    return index


def write_atomic(index: Any, path: Path) -> None:
    """Write an index so that readers see the old file or the new one, never half of one."""
    faiss = _faiss()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        faiss.write_index(index, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read(path: Path) -> Any:
    """Load an index file, or raise CorruptIndex naming the repair."""
    if not path.is_file():
        raise CorruptIndex(f"index file {path} is missing: run `layerwise check COLLECTION --repair` to rebuild it")
    try:
        return _faiss().read_index(str(path))
    except RuntimeError as exc:
        reason = str(exc).strip().splitlines()[-1][:200] if str(exc).strip() else "unreadable"
        raise CorruptIndex(
            f"index file {path} is corrupt ({reason}): run `layerwise check COLLECTION --repair` to rebuild it"
        ) from None


def search(index: Any, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores and ids (q, k) of the k nearest rows to normalised queries (q, d); id -1 pads."""
    k = max(1, min(k, index.ntotal)) if index.ntotal else 1
    return index.search(normalize(queries), k)
