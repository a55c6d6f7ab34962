"""The FAISS index file of an ANN view: inner-product search over L2-normalised vectors.

Ids are vector rows. Files are written atomically: a temporary file in the same
folder, fsync, then rename over the old one. Readers open them memory-mapped
(``IO_FLAG_MMAP`` maps an IVF's inverted lists, ``IO_FLAG_MMAP_IFC`` an HNSW's
flat storage), so a searcher's resident memory stays small; a writer updating
one in place reads it whole.

Index types (``--index``), following the FAISS guidelines:

- ``flat``: exact search. It has no index file: exact views search the raw
  vector files directly (``storage/exact.py``).
- ``hnsw``: HNSW graph (M=32, efSearch=64) under an ``IndexIDMap2``. It cannot
  remove ids: searches skip deleted rows with an ``IDSelector`` until more than
  10% of its ids are dead, when the next update rebuilds it.
- ``ivf``: inverted lists of full vectors, K = 8 sqrt(N) centroids (inside the
  guideline's 4 sqrt(N)..16 sqrt(N)), trained on a sample of at most 64 K
  vectors. A search visits lists nearest first until it has scanned 20% of the codes, at most K/12 lists
  (storage/ann.py). Ids are removed and added in place.
- ``ivfpq``: inverted lists of product-quantised codes, K = sqrt(N), scanned with
  FAISS's fast-scan kernels (``IndexIVFPQFastScan``: 4-bit sub-quantizers of 6 dimensions,
  d/12 bytes a vector, 32 at d = 384; their inverted lists are read into memory, not mapped).
  Its lists and codes are fitted in L2 over the unit vectors, which ranks as inner product does
  (|q - x|^2 = 2 - 2 q.x) and keeps the codes' residuals small on anisotropic layers;
  lists visited nearest first until 40% of the codes are scanned, at most K/6 lists, then exact
  rescoring of max(8n, 2048) candidates from the raw vectors: no second copy of the vectors.
  Ids are removed and added in place.
- ``auto``: ``flat`` below 50,000 vectors, ``ivfpq`` from there on.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from layerwise.errors import CorruptIndex, UsageError
from layerwise.storage.integrity import FileDigest, HashingWriter
from layerwise.storage.torch_flat import TorchFlatIndex


def _faiss() -> Any:
    import faiss

    return faiss


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Float32 copy with unit L2 rows (zero rows stay zero)."""
    out = np.asarray(vectors, dtype=np.float32).copy()
    norms = np.linalg.norm(out, axis=1, keepdims=True)  # (n, 1)
    return out / np.maximum(norms, 1e-12)


INDEX_TYPES = ("flat", "hnsw", "ivf", "ivfpq", "auto")
ANN_TYPES = ("hnsw", "ivf", "ivfpq")
AUTO_EXACT_BELOW = 50_000


def choose(kind: str, n: int) -> str:
    """The concrete index type for ``kind`` at ``n`` vectors."""
    if kind not in INDEX_TYPES:
        raise UsageError(f"unknown index type '{kind}': use one of {', '.join(INDEX_TYPES)}")
    if kind == "auto":
        return "flat" if n < AUTO_EXACT_BELOW else "ivfpq"
    if kind in ("ivf", "ivfpq") and n < 1_000:
        return "flat"  # too few vectors to train centroids on
    return kind


def build(ids: np.ndarray, vectors: np.ndarray, kind: str = "flat", seed: int = 0) -> Any:
    """An inner-product index of normalised vectors (n, d) under int64 ids, all in memory."""
    unit = normalize(vectors)
    kind = choose(kind, len(ids))
    sample = np.random.default_rng(seed).choice(len(unit), size=min(len(unit), sample_size(kind, len(unit))), replace=False)
    index = empty(kind, unit.shape[1], len(ids), unit[np.sort(sample)])
    add(index, np.asarray(ids, dtype=np.int64), unit)
    return index


def nlist_for(kind: str, n: int) -> int:
    """Centroids of an IVF index over n vectors."""
    return max(1, int((8 if kind == "ivf" else 1) * np.sqrt(n)))


def sample_size(kind: str, n: int) -> int:
    """Vectors to train an index of n vectors on (none for flat and HNSW)."""
    if kind not in ("ivf", "ivfpq"):
        return 0
    return min(n, 65_536, max(64 * nlist_for(kind, n), 10_000) if kind == "ivf" else max(40 * nlist_for(kind, n), 10_000))


def pq_subquantizers(d: int) -> int:
    """Sub-quantizers (4 bits each) of an IVF-PQ code: the largest divisor of d not above d/6 (64 at d = 384, a
    32-byte code).

    At 1 M passages x 7 layers of MiniLM the 32-byte fast-scan codes with 2,048 candidates rescored exactly gave
    recall@10 >= 0.96 on every layer at ~2 ms a view, where 96-byte 8-bit codes (the earlier default) gave 0.947 on
    layer 0 at 8-10 ms: the scan of 8-bit codes cost more than the rescoring that makes coarse codes exact
    with L2-fitted lists (``empty``) (bench/results/scale_fastscan.json, stage sweep1m).
    """
    return next(m for m in range(max(1, d // 6), 0, -1) if d % m == 0)


def empty(kind: str, d: int, n: int, sample: np.ndarray) -> Any:
    """An empty, trained index of ``kind`` for n vectors of dimension d (sample: unit training vectors)."""
    faiss = _faiss()
    if kind == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(d))
    if kind == "hnsw":
        inner = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction, inner.hnsw.efSearch = 80, 64
        return faiss.IndexIDMap2(inner)
    nlist = nlist_for(kind, n)
    if kind == "ivf":
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
    else:
        # L2, not inner product: inner-product k-means on the lower layers (whose vectors share a large common
        # component) gives centroids that attract by their norm, the residuals the codes quantise stay large, and
        # 32-byte codes kept only 0.83-0.90 recall@10 on layers 1-5 at 1 M passages with 1,024 candidates (L2: 0.99)
        index = faiss.IndexIVFPQFastScan(faiss.IndexFlatL2(d), d, nlist, pq_subquantizers(d), 4, faiss.METRIC_L2)
        index.cp.niter = 10  # FAISS's 25 iterations cost 2.5x the time for no measurable recall here
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    index.nprobe = nprobe_for(nlist, kind)
    return index


def nprobe_for(nlist: int, kind: str = "ivfpq") -> int:
    """The most lists an IVF search visits (a query stops earlier once it has scanned its budget of codes,
    storage/ann.py): K/6 for IVF-PQ, K/12 for IVF. Fast-scan codes made scanning cheap: at 1 M passages layer 0
    of MiniLM gave recall@10 0.93 with K/12 lists and 0.97 with K/6 (bench/results/scale_fastscan.json, sweep1m)."""
    return max(1, nlist // (6 if kind == "ivfpq" else 12))


def probing(nprobe: int) -> Any:
    """Search parameters that visit ``nprobe`` inverted lists."""
    return _faiss().SearchParametersIVF(nprobe=nprobe)


def add(index: Any, ids: np.ndarray, unit: np.ndarray) -> None:
    if len(ids):
        index.add_with_ids(np.ascontiguousarray(unit, dtype=np.float32), np.ascontiguousarray(ids, dtype=np.int64))


def remove(index: Any, ids: np.ndarray) -> int:
    """Remove ids in place (flat and IVF types); return how many went."""
    if not len(ids):
        return 0
    removed = int(index.remove_ids(_faiss().IDSelectorBatch(np.ascontiguousarray(ids, dtype=np.int64))))
    if removed and kind_of(index) == "ivfpq" and current(index):
        _clear_block_tails(_faiss().extract_index_ivf(index))
    return removed


def _clear_block_tails(ivf: Any) -> None:
    """Zero the slots past each fast-scan list's end in its last block of 32 codes.

    FAISS 1.15's remove_ids moves a list's last codes into the removed ones' places but leaves the vacated slots'
    4-bit codes in the block, and a later add packs new codes over them (the nibbles are OR-ed): at 1 M passages,
    rows re-added after a 1% delete were found 6 times in 16 as true top-10 neighbours, the others 98%. Each last
    block is unpacked, its vacated codes zeroed and packed again.
    """
    faiss = _faiss()
    packer = ivf.get_CodePacker()
    lists = ivf.invlists
    flat = np.zeros((packer.nvec, packer.code_size), dtype=np.uint8)
    for i in range(ivf.nlist):
        size = lists.list_size(i)
        used = size % packer.nvec
        if not used:
            continue
        nbytes = -(-size // packer.nvec) * packer.block_size
        block = faiss.rev_swig_ptr(lists.get_codes(i), nbytes)[nbytes - packer.block_size :]  # the last block, writable
        packer.unpack_all(faiss.swig_ptr(block), faiss.swig_ptr(flat))
        flat[used:] = 0
        block[:] = 0
        packer.pack_all(faiss.swig_ptr(flat), faiss.swig_ptr(block))


def excluding(kind: str, dead: np.ndarray, ef_search: int = 64) -> Any:
    """Search parameters that skip dead ids (an IDSelector), or None when none are dead."""
    if not len(dead):
        return None
    faiss = _faiss()
    batch = faiss.IDSelectorBatch(np.ascontiguousarray(dead, dtype=np.int64))
    selector = faiss.IDSelectorNot(batch)
    params = faiss.SearchParametersHNSW(sel=selector, efSearch=ef_search) if kind == "hnsw" else faiss.SearchParameters(sel=selector)
    params.keep_alive = (batch, selector)  # the C++ objects must outlive the parameters
    return params


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
    faiss = _faiss()
    if hasattr(index, "id_map"):
        return faiss.vector_to_array(index.id_map).astype(np.int64)
    ivf = faiss.extract_index_ivf(index)
    lists = ivf.invlists
    parts = [faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy() for i in range(ivf.nlist) if lists.list_size(i)]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)


def remap(index: Any, mapping: np.ndarray) -> None:
    """Renumber every id in place: id -> mapping[id] (after a compaction moved rows)."""
    faiss = _faiss()
    if hasattr(index, "id_map"):
        old = faiss.vector_to_array(index.id_map)
        faiss.copy_array_to_vector(mapping[old].astype(np.int64), index.id_map)
        if hasattr(index, "construct_rev_map"):
            index.construct_rev_map()
        return
    ivf = faiss.extract_index_ivf(index)
    lists = ivf.invlists
    for i in range(ivf.nlist):
        size = lists.list_size(i)
        if size:
            ids_ = faiss.rev_swig_ptr(lists.get_ids(i), size)
            ids_[:] = mapping[ids_]


def kind_of(index: Any) -> str:
    """flat, hnsw, ivf or ivfpq, read from a loaded index."""
    faiss = _faiss()
    inner = faiss.downcast_index(index.index) if hasattr(index, "id_map") else faiss.downcast_index(index)
    if isinstance(inner, (faiss.IndexIVFPQ, faiss.IndexIVFPQFastScan)):
        return "ivfpq"
    return "hnsw" if isinstance(inner, faiss.IndexHNSW) else "ivf" if isinstance(inner, faiss.IndexIVF) else "flat"


def current(index: Any) -> bool:
    """Whether an index file has the layout this version builds for its type (an IVF-PQ file of 8-bit codes, the
    earlier default, is rebuilt with fast-scan codes by the next update)."""
    if kind_of(index) != "ivfpq":
        return True
    ivf = _faiss().downcast_index(_faiss().extract_index_ivf(index))
    return isinstance(ivf, _faiss().IndexIVFPQFastScan) and ivf.metric_type == _faiss().METRIC_L2


def write_atomic(index: Any, path: Path) -> FileDigest:
    """Write an index so that readers see the old file or the new one, never half of one; return its size and checksum."""
    tmp, written = stage(index, path.parent)
    try:
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    sync_folder(path.parent)
    return written


def stage(index: Any, folder: Path) -> tuple[Path, FileDigest]:
    """Write an index to a temporary file in ``folder``, fsync'd, hashing it on the way (put it in place with os.replace).

    Python writes the bytes (faiss hands them over), so a full disk raises OSError(ENOSPC)
    like every other write, instead of a faiss RuntimeError or an unnoticed short file.
    """
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".index.", suffix=".tmp", dir=folder)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            out = HashingWriter(f)
            _faiss().write_index(index, _faiss().PyCallbackIOWriter(out.write))
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp, out.result


def sync_folder(folder: Path) -> None:
    """fsync a folder, so a rename in it survives a crash."""
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read(path: Path, collection: str = "COLLECTION", mmap: bool = False) -> Any:
    """Load an index file (memory-mapped where its type allows, with ``mmap``), or raise CorruptIndex naming the repair."""
    if not path.is_file():
        raise CorruptIndex(f"index file {path} is missing: run `layerwise check {collection} --repair` to rebuild it")
    faiss = _faiss()
    try:
        return faiss.read_index(str(path), _mmap_flag(path) if mmap else 0)
    except RuntimeError:
        raise CorruptIndex(
            f"index file {path} is corrupt or truncated: run `layerwise check {collection} --repair` to rebuild it"
        ) from None


def _mmap_flag(path: Path) -> int:
    """IO_FLAG_MMAP maps an IVF's inverted lists; an ID-mapped index (HNSW here) maps its flat storage (IO_FLAG_MMAP_IFC).

    The two flags cannot be combined, so the file's first four bytes (FAISS's type code) choose.
    """
    faiss = _faiss()
    with open(path, "rb") as f:
        wrapped = f.read(4) in (b"IxM2", b"IxMp")
    return faiss.IO_FLAG_MMAP_IFC if wrapped else faiss.IO_FLAG_MMAP


def search(index: Any, queries: np.ndarray, k: int, params: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Scores and ids (q, k) of the k nearest rows to normalised queries (q, d); id -1 pads."""
    k = max(1, min(k, index.ntotal)) if index.ntotal else 1
    if params is None:
        scores, ids_ = index.search(normalize(queries), k)  # also a TorchFlatIndex, which takes no parameters
    else:
        scores, ids_ = index.search(normalize(queries), k, params=params)
    if getattr(index, "metric_type", None) == _faiss().METRIC_L2:  # squared distances of unit vectors: q.x = 1 - d/2
        scores = 1.0 - scores / 2.0
    return scores, ids_
