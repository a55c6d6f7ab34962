"""The FAISS index file: inner-product search over L2-normalised vectors.

Ids are vector rows (``IndexIDMap2``). Files are written atomically: a
temporary file in the same folder, fsync, then rename over the old one.

Index types (``--index``), following the FAISS guidelines:

- ``flat``: exact search.
- ``hnsw``: HNSW graph (M=32, efSearch=64); it cannot remove ids, so layerwise
  rebuilds it from the stored vectors after deletes, like every other type.
- ``ivf``: inverted lists with K = 8 sqrt(N) centroids (inside the guideline's
  4 sqrt(N)..16 sqrt(N)), trained on a sample of at most 64 K vectors, nprobe = K/16.
- ``auto``: ``flat`` below 50,000 vectors, ``ivf`` from there on.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from layerwise.errors import CorruptIndex, UsageError
from layerwise.storage.torch_flat import TorchFlatIndex


def _faiss() -> Any:
    import faiss

    return faiss


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Float32 copy with unit L2 rows (zero rows stay zero)."""
    out = np.asarray(vectors, dtype=np.float32).copy()
    norms = np.linalg.norm(out, axis=1, keepdims=True)  # (n, 1)
    return out / np.maximum(norms, 1e-12)


INDEX_TYPES = ("flat", "hnsw", "ivf", "auto")
AUTO_EXACT_BELOW = 50_000


def choose(kind: str, n: int) -> str:
    """The concrete index type for ``kind`` at ``n`` vectors."""
    if kind not in INDEX_TYPES:
        raise UsageError(f"unknown index type '{kind}': use one of {', '.join(INDEX_TYPES)}")
    if kind == "auto":
        return "flat" if n < AUTO_EXACT_BELOW else "ivf"
    if kind == "ivf" and n < 1_000:
        return "flat"  # too few vectors to train centroids on
    return kind


def build(ids: np.ndarray, vectors: np.ndarray, kind: str = "flat", seed: int = 0) -> Any:
    """An inner-product index of normalised vectors (n, d) under int64 ids."""
    faiss = _faiss()
    unit = normalize(vectors)
    inner = _empty(choose(kind, len(ids)), unit, seed)
    index = faiss.IndexIDMap2(inner)
    if len(ids):
        index.add_with_ids(unit, np.asarray(ids, dtype=np.int64))
    return index


def _empty(kind: str, unit: np.ndarray, seed: int) -> Any:
    faiss = _faiss()
    d = unit.shape[1]
    if kind == "flat":
        return faiss.IndexFlatIP(d)
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction, index.hnsw.efSearch = 80, 64
        return index
    nlist = int(8 * np.sqrt(len(unit)))
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
    sample = np.random.default_rng(seed).choice(len(unit), size=min(len(unit), 64 * nlist, 65_536), replace=False)
    index.train(unit[np.sort(sample)])
    index.nprobe = max(1, nlist // 16)
    return index


def on_device(index: Any, device: str, gpus: int | None = None) -> Any:
    """The index moved to GPU 0 when the device is CUDA: by faiss where it has GPU support,
    else, for a flat index, as a torch matrix on the GPU (torch_flat)."""
    faiss = _faiss()
    available = gpus if gpus is not None else (faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0)
    if device != "cuda":
        return index
    if available >= 1:
        return faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
    if kind_of(index) == "flat":
        return torch_flat(index, "cuda")
    return index


def torch_flat(index: Any, device: str) -> TorchFlatIndex:
    """A flat ``IndexIDMap2`` (as ``build`` makes it) copied to ``device`` for torch search."""
    vectors = index.index.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, index.d), np.float32)
    return TorchFlatIndex(vectors, ids(index), device)


def ids(index: Any) -> np.ndarray:
    """The int64 ids (vector rows) an index holds."""
    return _faiss().vector_to_array(index.id_map).astype(np.int64)


def kind_of(index: Any) -> str:
    """flat, hnsw or ivf, read from a loaded index."""
    faiss = _faiss()
    inner = faiss.downcast_index(index.index) if hasattr(index, "index") else index
    return "hnsw" if isinstance(inner, faiss.IndexHNSW) else "ivf" if isinstance(inner, faiss.IndexIVF) else "flat"


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


def read(path: Path, collection: str = "COLLECTION") -> Any:
    """Load an index file, or raise CorruptIndex naming the repair."""
    if not path.is_file():
        raise CorruptIndex(f"index file {path} is missing: run `layerwise check {collection} --repair` to rebuild it")
    try:
        return _faiss().read_index(str(path))
    except RuntimeError:
        raise CorruptIndex(
            f"index file {path} is corrupt or truncated: run `layerwise check {collection} --repair` to rebuild it"
        ) from None


def search(index: Any, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores and ids (q, k) of the k nearest rows to normalised queries (q, d); id -1 pads."""
    k = max(1, min(k, index.ntotal)) if index.ntotal else 1
    return index.search(normalize(queries), k)
