"""Opening and updating a dense view's index: exact over the mapped vectors, or an ANN file kept current in place.

Readers: a flat view, or any view whose index is older than the last commit (a
writer is still at work, or was killed), is searched exactly from the mapped
vector files (``exact.ExactIndex``). An ANN view opens its FAISS file
memory-mapped; HNSW skips deleted rows with an ``IDSelector``; IVF-PQ
candidates are rescored exactly from the raw vectors.

Writers: after a commit, each ANN file is updated in place: dead ids removed
(flat storage and IVF) and new rows added, so deleting 1% of the documents costs
about 1% of a build. A file is rebuilt from the stored vectors when it is
missing or of another type, when the collection has grown 4x since its IVF
centroids were trained, or when more than 10% of an HNSW graph's ids are dead.
Builds stream: the training sample and then blocks of 65,536 rows are read from
the mapped files, so a build's memory is the index plus one block. Before a build
the view's vector rows are checked against their checksums (an update checks
only the rows it adds), so damaged rows never reach an index; every file written
is recorded with its size and checksum.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from layerwise.errors import StorageError
from layerwise.storage import exact, faiss_index, integrity
from layerwise.storage.exact import DenseView, ExactIndex
from layerwise.storage.rowmap import RowState

if TYPE_CHECKING:
    from layerwise.storage.collection import Collection

REFINE = 8  # IVF-PQ: candidates rescored exactly per passage wanted ...
MIN_CANDIDATES = 2048  # ... and at least this many (32-byte codes at 1 M passages, layer 0: 1,024 gave recall@10 0.95, 2,048 0.97)
HNSW_DEAD_LIMIT = 0.10  # rebuild an HNSW graph once this share of its ids is dead
PROBE_BUDGET = 0.4  # IVF-PQ: a query visits lists, nearest first, until it has scanned this share of the codes (at most K/6 lists)
IVF_PROBE_BUDGET = 0.2  # IVF of full vectors: the same, at most K/12 lists (a scan of full vectors costs 12x a fast-scan code's)


class StoredView(DenseView, Protocol):
    """A dense view with an index type (storage.views.View)."""

    index_type: str
    stored: bool


class AnnIndex:
    """An ANN file opened memory-mapped, searched without dead rows, refined exactly when its scores are approximate.

    IVF views visit lists nearest first until a budget of the codes is scanned (PROBE_BUDGET for IVF-PQ, at most
    K/6 lists; IVF_PROBE_BUDGET for IVF, at most K/12). A fixed nprobe cost 4x more on the lower layers than on
    the last one at 1 M passages: their vectors are anisotropic, a few lists hold a quarter of the collection and
    queries land in them (20 lists of layer 1 held 280k-410k codes, of layer 6 24k-65k). With the budget, those
    queries stop after fewer lists and the last layer's after K/6.
    """

    def __init__(self, index: Any, exact_index: ExactIndex) -> None:
        self.index = index
        self.kind = faiss_index.kind_of(index)
        self.exact = exact_index
        dead = exact_index.state.dead if self.kind == "hnsw" else np.zeros(0, dtype=np.int64)
        self.params = faiss_index.excluding(self.kind, dead)
        self.ivf = _cpu_ivf(index) if self.kind in ("ivf", "ivfpq") else None
        if self.ivf is not None:
            lists = self.ivf.invlists
            self.sizes = np.asarray([lists.list_size(i) for i in range(self.ivf.nlist)], dtype=np.int64)  # (K,)
            self.max_probe = faiss_index.nprobe_for(self.ivf.nlist, self.kind)

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def search(self, queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and rows (q, n); IVF-PQ fetches max(REFINE x n, MIN_CANDIDATES) candidates and rescores them from
        the raw vectors."""
        if self.kind != "ivfpq":
            return self._search(queries, n)
        _, candidates = self._search(queries, max(n * REFINE, MIN_CANDIDATES))
        return exact.sort_candidates(self.exact.rescore(queries, candidates), candidates, n)

    def _search(self, queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        if self.ivf is None:
            return faiss_index.search(self.index, queries, n, self.params)
        probes = self.probes(faiss_index.normalize(queries))
        found = [faiss_index.search(self.index, q[None], n, faiss_index.probing(int(p))) for q, p in zip(queries, probes)]
        return np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found])

    def probes(self, unit: np.ndarray) -> np.ndarray:
        """Lists each unit query (q, d) visits: nearest first until the budget of codes, 1..max_probe."""
        budget = PROBE_BUDGET if self.kind == "ivfpq" else IVF_PROBE_BUDGET
        _, nearest = self.ivf.quantizer.search(np.ascontiguousarray(unit, dtype=np.float32), self.max_probe)  # (q, P)
        scanned = np.cumsum(self.sizes[np.maximum(nearest, 0)], axis=1)  # (q, P)
        return np.minimum(self.max_probe, 1 + np.count_nonzero(scanned < budget * max(self.ntotal, 1), axis=1))


def _cpu_ivf(index: Any) -> Any:
    """The IndexIVF inside a CPU index, or None (a GPU copy keeps its own nprobe)."""
    try:
        return faiss_index._faiss().extract_index_ivf(index)
    except RuntimeError:
        return None


def kind_for(collection: "Collection", view: StoredView, live: int) -> str:
    """The concrete index type of a view at this many live rows (ad-hoc views are exact)."""
    return faiss_index.choose(view.index_type, live) if view.stored else "flat"


def open_index(collection: "Collection", view: StoredView, state: RowState, stale: bool, device: str = "cpu") -> Any:
    """What a reader searches for this view: its current ANN file memory-mapped, else exact over the mapped vectors."""
    exact_index = ExactIndex(collection, view, state)
    path = collection.index_path(view.name) if view.stored else None
    if stale or kind_for(collection, view, len(state.live)) == "flat" or path is None or not path.exists():
        return exact.on_device(exact_index, device)
    index = faiss_index.read(path, collection.name, mmap=device != "cuda")
    if device == "cuda":
        return AnnIndex(faiss_index.on_device(index, device), exact_index)
    return AnnIndex(index, exact_index)


def update(collection: "Collection", view: StoredView, state: RowState, rebuild: bool = False) -> str:
    """Bring a view's index file up to the live rows; return what was done: exact, kept, updated or built."""
    path = collection.index_path(view.name)
    kind = kind_for(collection, view, len(state.live))
    if kind == "flat":
        if path.exists():  # a type change to exact leaves no stale ANN file behind
            collection.forget_index(path)
            path.unlink()
        return "exact"
    index = None if rebuild or not path.exists() else _read_or_none(path, collection.name)
    if index is None or _needs_rebuild(index, kind, state):
        verify_vectors(collection, view.layers(collection.num_states))
        collection.record_index(path, faiss_index.write_atomic(build(collection, view, kind, state), path))
        return "built"
    if not _apply_changes(collection, view, index, state):
        return "kept"
    collection.record_index(path, faiss_index.write_atomic(index, path))
    return "updated"


def verify_vectors(collection: "Collection", layers: Iterable[int], rows: np.ndarray | None = None) -> None:
    """Refuse to index vector rows whose bytes differ from their checksums (``rows``: only the chunks holding these)."""
    committed = collection.vector_rows()
    with collection.store.sessions() as s:
        records = integrity.chunk_records(s, collection.id)
    for layer in layers:
        held = records.get(layer, [])
        if rows is not None:
            held = [r for r in held if _holds_any(r, rows)]
        damaged = integrity.damaged_rows(collection.vector_file(layer), layer, committed, held, deep=True)
        if damaged:
            raise StorageError(f"{damaged[0].describe()} in collection '{collection.name}': no index is built from them; "
                               f"run `layerwise check {collection.name} --repair` to re-encode them from the stored passages")


def _holds_any(record: tuple[int, int, str], rows: np.ndarray) -> bool:
    """Whether a chunk record (start, rows, digest) holds any of the sorted rows."""
    at = int(np.searchsorted(rows, record[0]))
    return at < len(rows) and int(rows[at]) < record[0] + record[1]


def _read_or_none(path: Path, collection: str) -> Any:
    try:
        return faiss_index.read(path, collection)
    except Exception:  # a corrupt file is rebuilt, which is what repair would do
        return None


def _needs_rebuild(index: Any, kind: str, state: RowState) -> bool:
    if faiss_index.kind_of(index) != kind or not faiss_index.current(index):
        return True
    if kind in ("ivf", "ivfpq"):
        return faiss_index.nlist_for(kind, len(state.live)) > 2 * faiss_index._faiss().extract_index_ivf(index).nlist
    if kind == "hnsw":
        ids = faiss_index.ids(index)
        return bool(len(ids)) and float(np.mean(state(ids) < 0)) > HNSW_DEAD_LIMIT
    return False


def _apply_changes(collection: "Collection", view: StoredView, index: Any, state: RowState) -> bool:
    """Remove dead ids (IVF) and add live rows the index lacks; return whether anything changed."""
    held = faiss_index.ids(index)
    dead = held[state(held) < 0]
    new = np.setdiff1d(state.live, held, assume_unique=True)
    removed = faiss_index.remove(index, dead) if len(dead) and faiss_index.kind_of(index) != "hnsw" else 0
    if len(new):
        verify_vectors(collection, view.layers(collection.num_states), new)
    vectors = exact.Vectors(collection, view, state)
    for start in range(0, len(new), exact.CHUNK):
        rows = new[start : start + exact.CHUNK]
        raw, inverse = vectors.read_rows(rows)
        faiss_index.add(index, rows, raw * inverse[:, None])
    return bool(removed or len(new))


def build(collection: "Collection", view: StoredView, kind: str, state: RowState, seed: int = 0) -> Any:
    """A new index of every live row, trained on a sample, filled block by block from the mapped files."""
    live = state.live
    vectors = exact.Vectors(collection, view, state)
    size = faiss_index.sample_size(kind, len(live))
    sample_rows = np.sort(np.random.default_rng(seed).choice(live, size=size, replace=False)) if size else live[:0]
    raw, inverse = vectors.unit_rows(sample_rows)
    dim = len(raw[0]) if len(raw) else _dimension(vectors)
    index = faiss_index.empty(kind, dim, len(live), raw * inverse[:, None])
    for rows, unit in exact.chunks(collection, view, state):
        faiss_index.add(index, rows, unit)
    return index


def _dimension(vectors: exact.Vectors) -> int:
    probe = np.zeros((1, len(vectors.layers), vectors.maps[0].shape[1]), dtype=np.float32)
    return int(vectors.view.combine(probe, vectors.num_states).shape[1])


def index_bytes(collection: "Collection", view: StoredView) -> int:
    path = collection.index_path(view.name)
    return path.stat().st_size if path.is_file() else 0
