"""Exact search straight from the memory-mapped raw vector files: no second copy of any vector on disk.

A single hidden state is scored chunk by chunk from its mapped file: the chunk
times the unit query, divided by each row's stored norm (``rowmap``'s norms file),
dead rows masked, the best n kept per query. A mix is mixed per chunk from its
layers' mapped files, so it stays exact with memory bounded by the chunk; it pays
one pass over each of its layers per query (no mix vectors are stored). ``rescore``
gives exact scores of candidate rows only, which is how ANN views refine.

A reader that searches a view more than once (a server) keeps an 8-bit copy of its
unit rows in memory and scans that first (``QuantizedRows``): an error bound decides
which candidates to score exactly, so results are the same as the full scan's, while
a query reads a quarter of the bytes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

import faiss
import numpy as np

from layerwise.layers import LayerSpec
from layerwise.storage.faiss_index import normalize
from layerwise.storage.rowmap import RowState
from layerwise.storage.torch_flat import TorchFlatIndex

if TYPE_CHECKING:
    from layerwise.storage.collection import Collection

CHUNK = 65_536
FEW_QUERIES = 4  # more queries at once (an evaluation) are one BLAS product over the mapped rows
QUANTIZED_MAX_BYTES = 64 << 20  # the largest 8-bit copy of one view a reader keeps (170,000 rows of 384)
ROUNDING = 1e-4  # float32 rounding in a 384-term dot product is below 3e-5


class DenseView(Protocol):
    """What exact search needs of a view (storage.views.View)."""

    name: str
    spec: LayerSpec

    def layers(self, num_states: int) -> tuple[int, ...]: ...

    def combine(self, stack: np.ndarray, num_states: int, spec: LayerSpec | None = None) -> np.ndarray: ...


class Vectors:
    """A view's vectors over mapped files: one layer with stored norms, or a mix made per block of rows."""

    def __init__(self, collection: "Collection", view: DenseView, state: RowState) -> None:
        self.num_states = collection.num_states
        self.view = view
        self.layers = view.layers(self.num_states)
        self.files = [collection.vector_file(i) for i in self.layers]
        self.maps = [file.read(state.committed) for file in self.files]
        self.single = len(self.layers) == 1 and not view.spec.is_mix
        self.norms = state.norms[:, self.layers[0]] if self.single and state.norms is not None else None

    def unit_rows(self, rows: np.ndarray | slice) -> tuple[np.ndarray, np.ndarray]:
        """(raw view vectors (n, d'), 1 / their norms (n,)) of some rows (a slice reads a contiguous block), mapped."""
        return self._view_of([m[rows] for m in self.maps], rows)

    def gather_rows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """As unit_rows for scattered rows (a few thousand candidates), read with pread: what rescoring reads stays
        out of the process's RSS (VectorFile.gather)."""
        return self._view_of([file.gather(rows) for file in self.files], rows)

    def read_rows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """As unit_rows for sorted rows, read (not mapped) as one span from the first to the last: a scan over every
        row this way keeps one block in memory instead of every page of the files in the process's RSS."""
        first, stop = int(rows[0]), int(rows[-1]) + 1
        if stop - first > 4 * len(rows):  # scattered rows: a span read would be mostly waste
            return self.unit_rows(rows)
        picked = rows - first
        return self._view_of([file.read_block(first, stop)[picked] for file in self.files], rows)

    def _view_of(self, blocks: list[np.ndarray], rows: np.ndarray | slice) -> tuple[np.ndarray, np.ndarray]:
        if self.single:
            vectors = np.asarray(blocks[0], dtype=np.float32)  # (n, d)
            norms = np.asarray(self.norms[rows]) if self.norms is not None else np.linalg.norm(vectors, axis=1)
        else:
            stack = np.stack([np.asarray(b, dtype=np.float32) for b in blocks], axis=1)  # (n, k, d)
            vectors = self.view.combine(stack, self.num_states)  # (n, d')
            norms = np.linalg.norm(vectors, axis=1)
        return vectors, 1.0 / np.maximum(norms, 1e-12)


def chunks(collection: "Collection", view: DenseView, state: RowState, chunk: int = CHUNK) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(live rows, unit vectors (c, d')) of the view, block by block, read from the files (not mapped)."""
    return unit_blocks(Vectors(collection, view, state), state.live, chunk)


def unit_blocks(vectors: Vectors, live: np.ndarray, chunk: int = CHUNK) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(rows, unit vectors (c, d')) of the live rows, ``chunk`` rows at a time, read from the files (not mapped)."""
    for start in range(0, len(live), chunk):
        rows = live[start : start + chunk]
        raw, inverse = vectors.read_rows(rows)
        yield rows, raw * inverse[:, None]


class ExactIndex:
    """Exact inner-product search of unit queries against unit rows, over the mapped files."""

    kind = "flat"

    def __init__(self, collection: "Collection", view: DenseView, state: RowState) -> None:
        self.state = state
        self.vectors = Vectors(collection, view, state)
        self._searches = 0
        self._quantized: QuantizedRows | None = None
        self._lock = threading.Lock()

    @property
    def ntotal(self) -> int:
        return len(self.state.live)

    def search(self, queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and rows (q, n) of the n best live rows for queries (q, d'); row -1 pads.

        From a view's second search of a few queries on (a reader that stays, such as a server), the rows are
        scanned in an 8-bit copy first and only the candidates its error bound cannot rule out are scored
        exactly (``QuantizedRows``): the same rows and scores, a quarter of the bytes read."""
        quantized = self._quantized_rows() if len(queries) <= FEW_QUERIES else None
        if quantized is not None and 8 * first_candidates(n) <= quantized.ntotal:  # a fusion's 400 of 5,000: scan
            return quantized.search(normalize(queries), n, self._mapped_scores)
        return self._scan(queries, n)

    def _quantized_rows(self) -> "QuantizedRows | None":
        with self._lock:
            self._searches += 1
            if self._quantized is None and self._searches >= 2 and self._copy_fits:
                self._quantized = QuantizedRows(*_concatenated(unit_blocks(self.vectors, self.state.live)))
            return self._quantized

    @cached_property
    def _copy_fits(self) -> bool:
        """Whether the view's 8-bit copy (a byte per live row and dimension) stays within QUANTIZED_MAX_BYTES."""
        dim = self.vectors.unit_rows(slice(0, 1))[0].shape[1] if self.state.committed else 0
        return 0 < self.ntotal * dim <= QUANTIZED_MAX_BYTES

    def _mapped_scores(self, unit: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Exact scores (m,) of a unit query (d',) against live rows (m,), read through the mapping in file order."""
        order = np.argsort(rows, kind="stable")
        raw, inverse = self.vectors.unit_rows(rows[order])
        scores = np.empty(len(rows), dtype=np.float32)
        scores[order] = (raw @ unit) * inverse
        scores[self.state(rows) < 0] = -np.inf  # deleted since the copy was made (the rows file is mapped shared)
        return scores

    def _scan(self, queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Every committed row scored from the mapped files, block by block."""
        unit = normalize(queries)  # (q, d')
        best_scores = np.full((len(unit), 0), -np.inf, dtype=np.float32)
        best_rows = np.zeros((len(unit), 0), dtype=np.int64)
        dead = np.asarray(self.state.keys) < 0
        for start in range(0, self.state.committed, CHUNK):
            stop = min(start + CHUNK, self.state.committed)
            raw, inverse = self.vectors.unit_rows(slice(start, stop))
            scores = (unit @ raw.T) * inverse[None, :]  # (q, c)
            scores[:, dead[start:stop]] = -np.inf
            best_scores, best_rows = _merge(best_scores, best_rows, scores, start, n)
        return _finish(best_scores, best_rows, n)

    def rescore(self, queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Exact scores (q, m) of candidate rows (q, m) (-1 pads and dead rows score -inf).

        The products run in numpy's own loop, not BLAS: OpenBLAS splits a product of 2,048 x 384 over its threads,
        and a query then waits for a second core (8 ms on a loaded 2-core machine, against 0.5 ms for the whole
        rescoring on one)."""
        unit = normalize(queries)
        out = np.full(rows.shape, -np.inf, dtype=np.float32)
        live = self.state(rows) >= 0  # (q, m)
        for i in range(len(rows)):
            candidates = rows[i, live[i]]
            if len(candidates):
                order = np.argsort(candidates, kind="stable")  # rows read in file order are kinder to the page cache
                raw, inverse = self.vectors.gather_rows(candidates[order])
                scores = np.empty(len(candidates), dtype=np.float32)
                scores[order] = np.einsum("cd,d->c", raw, unit[i]) * inverse  # numpy, not BLAS (the docstring)
                out[i, live[i]] = scores
        return out


class QuantizedRows:
    """An in-memory 8-bit copy of a view's live unit rows (FAISS's scalar quantizer, one range per dimension),
    scanned first; the rows it cannot rule out are scored exactly.

    ``error`` bounds how far a row's 8-bit score can be from its exact one: the largest distance between a
    row and its decoded copy (Cauchy-Schwarz, for a unit query), plus ROUNDING for the float32 sums. A row
    outside the 8-bit top m scores at most the m-th 8-bit score plus ``error``; when that is below the n-th
    best exact score among the m candidates, no such row can be in the top n, and the candidates' exact
    scores give the same top n as a full scan. Otherwise m grows fourfold, up to every row.
    """

    def __init__(self, rows: np.ndarray, unit: np.ndarray) -> None:
        self.rows = rows  # (n,) the live rows, in the copy's order
        self.index = faiss.IndexScalarQuantizer(unit.shape[1], faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
        self.index.train(unit)
        self.index.add(unit)
        decoded = self.index.sa_decode(self.index.sa_encode(unit))  # (n, d)
        self.error = float(np.linalg.norm(decoded - unit, axis=1).max()) + ROUNDING

    @property
    def ntotal(self) -> int:
        return len(self.rows)

    def search(self, unit: np.ndarray, n: int, exact: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """The exact top n (q, n) of unit queries (q, d), ``exact(query, rows)`` scoring the candidates.

        FAISS runs each query's scan in this thread: a scan of a few MB is one core's work, and FAISS's own
        OpenMP team split it in two for no gain in time, spinning beside the search's other threads."""
        threads = faiss.omp_get_max_threads()  # this thread's setting (OpenMP's are per thread)
        faiss.omp_set_num_threads(1)
        try:
            found = [self._one(query, n, exact) for query in unit]
        finally:
            faiss.omp_set_num_threads(threads)
        return np.stack([f[0] for f in found]), np.stack([f[1] for f in found])

    def _one(self, query: np.ndarray, n: int, exact: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        m = min(self.ntotal, first_candidates(n))
        while True:
            approx, labels = self.index.search(query[None], m)  # (1, m) each
            rows = self.rows[labels[0]]
            scores = exact(query, rows)  # (m,)
            if m == self.ntotal or np.partition(scores, -n)[-n] > approx[0, -1] + self.error:
                break
            m = min(self.ntotal, 4 * m)
        best_scores, best_rows = sort_candidates(scores[None], rows[None], n)
        return best_scores[0], best_rows[0]


class DeviceExact:
    """An exact view copied to a GPU as unit rows and searched with torch (``torch_flat``): the vector files stay the
    only copy on disk; the GPU holds one in its memory."""

    kind = "flat"

    def __init__(self, exact_index: ExactIndex, device: Any) -> None:
        self.state = exact_index.state
        rows, unit = _concatenated(unit_blocks(exact_index.vectors, exact_index.state.live))
        self.index = TorchFlatIndex(unit, rows, device)

    @property
    def ntotal(self) -> int:
        return self.index.ntotal

    def search(self, queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        return self.index.search(normalize(queries), n)


def first_candidates(n: int) -> int:
    """Candidates of the 8-bit scan that are scored exactly first, for the top n."""
    return max(2 * n, n + 64)


def _concatenated(blocks: Iterator[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """(rows (n,), unit rows (n, d)) of every block, in one array each."""
    parts = list(blocks)
    if not parts:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 1), dtype=np.float32)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def on_device(exact_index: ExactIndex, device: str) -> ExactIndex | DeviceExact:
    """The exact view where it is searched: over the mapped files on the CPU, or copied to the GPU for CUDA."""
    return DeviceExact(exact_index, device) if device == "cuda" else exact_index


def _merge(best_scores: np.ndarray, best_rows: np.ndarray, scores: np.ndarray, offset: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep the n best of the running best (q, <=n) and a new block of scores (q, c) starting at row offset."""
    if scores.shape[1] > n:
        part = np.argpartition(-scores, n - 1, axis=1)[:, :n]  # (q, n)
        scores, rows = np.take_along_axis(scores, part, axis=1), part + offset
    else:
        rows = np.broadcast_to(np.arange(offset, offset + scores.shape[1]), scores.shape)
    all_scores = np.concatenate([best_scores, scores], axis=1)
    all_rows = np.concatenate([best_rows, rows], axis=1)
    if all_scores.shape[1] <= n:
        return all_scores, all_rows
    part = np.argpartition(-all_scores, n - 1, axis=1)[:, :n]
    return np.take_along_axis(all_scores, part, axis=1), np.take_along_axis(all_rows, part, axis=1)


def _finish(scores: np.ndarray, rows: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The n best sorted best first (ties by row), padded to n with -inf / -1; dead rows (-inf) become padding."""
    order = (np.lexsort((rows, -scores), axis=1) if scores.size else np.zeros(scores.shape, dtype=np.int64))[:, :n]
    picked = np.arange(len(scores))[:, None]
    scores, rows = scores[picked, order], rows[picked, order]  # not take_along_axis: 4x its cost on 124 candidates
    rows = np.where(np.isfinite(scores), rows, -1)
    pad = n - scores.shape[1]
    if pad > 0:
        scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
        rows = np.pad(rows, ((0, 0), (0, pad)), constant_values=-1)
    return scores.astype(np.float32), rows.astype(np.int64)


def sort_candidates(scores: np.ndarray, rows: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The n best of candidate scores and rows (q, m), best first, ties by row: a few candidates per place (an 8-bit
    first pass's 124 for 60) are sorted whole, many are cut to n first."""
    return _finish(scores, rows, n) if scores.shape[1] <= 4 * n else _finish(*_top(scores, rows, n), n)


def _top(scores: np.ndarray, rows: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    part = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    return np.take_along_axis(scores, part, axis=1), np.take_along_axis(rows, part, axis=1)
