"""Dense views on disk: what a FAISS index is built over — one hidden state, or a mix of several.

Every single layer is a view (``layer0`` .. ``layerL``); mixes are views built
from the stored raw vectors with the layer grammar, never by running the encoder.
A query is mixed the same way from its own per-layer vectors. Reading a user's
view spec against a collection is search's job (``search/plan.py``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from tqdm.auto import tqdm

from layerwise import layers as grammar
from layerwise.errors import UsageError
from layerwise.layers import LayerSpec, Mix
from layerwise.storage import faiss_index
from layerwise.storage.collection import Collection
from layerwise.storage.schema import ViewRow
from layerwise.types import LayerEmbeddings

_CHUNK = 16_384


@dataclass(frozen=True)
class View:
    """A named dense view: one hidden state or one mix."""

    name: str
    spec: LayerSpec
    stored: bool = True
    query_spec: LayerSpec | None = None  # queries mixed differently from documents (learn-mix --separate)
    index_type: str = "flat"

    def layers(self, num_states: int) -> tuple[int, ...]:
        return self.spec.resolve(num_states)

    def query_layers(self, num_states: int) -> tuple[int, ...]:
        return (self.query_spec or self.spec).resolve(num_states)

    def describe(self) -> str:
        return str(self.spec) + (f" | queries: {self.query_spec}" if self.query_spec else "")

    def combine(self, stack: np.ndarray, num_states: int, spec: LayerSpec | None = None) -> np.ndarray:
        """Vectors (n, d') of this view from per-layer vectors (n, k, d) in the spec's resolve() order."""
        spec = spec or self.spec
        if isinstance(spec, Mix):
            return spec.apply(stack.astype(np.float32), num_states)
        return stack[:, 0].astype(np.float32)  # (n, d)

    def of_query(self, embeddings: LayerEmbeddings) -> np.ndarray:
        """Query vectors (q, d') from the queries' encoded hidden states."""
        states = embeddings.model.num_states
        return self.combine(embeddings.stack(self.query_layers(states)), states, self.query_spec or self.spec)


def layer_views(num_states: int, index_type: str = "flat") -> list[View]:
    return [View(grammar.layer_name(i), grammar.parse(str(i)), index_type=index_type) for i in range(num_states)]


UNINDEXED = "none"  # index type of a stored fusion or bm25 view: ranked at search time, no index file


def all_views(collection: Collection, rows: Sequence[ViewRow] | None = None) -> list[View]:
    """Every layer view plus the collection's stored mixes (the dense views, each with an index)."""
    stored = [
        View(v.name, grammar.parse(v.spec), query_spec=grammar.parse(v.query_spec) if v.query_spec else None, index_type=v.index_type)
        for v in (collection.stored_views() if rows is None else rows) if v.index_type != UNINDEXED
    ]
    return layer_views(collection.num_states, collection.index_type) + stored


def chunks(collection: Collection, view: View) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(rows, vectors) of the live passages under this view, in chunks, from stored vectors."""
    rows = collection.live_rows()
    stored = [collection.layer_vectors(i) for i in view.layers(collection.num_states)]
    for start in range(0, len(rows), _CHUNK):
        part = rows[start : start + _CHUNK]
        stack = np.stack([np.asarray(m[part], dtype=np.float32) for m in stored], axis=1)  # (c, k, d)
        yield part, view.combine(stack, collection.num_states)


def matrix(collection: Collection, view: View) -> tuple[np.ndarray, np.ndarray]:
    """(rows, vectors (n, d')) of every live passage under this view."""
    parts = list(chunks(collection, view))
    if not parts:
        return np.zeros(0, dtype=np.int64), np.zeros((0, collection.identity.dim), dtype=np.float32)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def build_index(collection: Collection, view: View, write: bool = True) -> object:
    """An index of this view built from stored vectors; a stored view's is written to disk when ``write``.

    Readers pass ``write=False`` and get an exact (flat) index in memory.
    """
    rows, vectors = matrix(collection, view)
    index = faiss_index.build(rows, vectors, view.index_type if write and view.stored else "flat")
    if write and view.stored:
        faiss_index.write_atomic(index, collection.index_path(view.name))
    return index


def rebuild_all(collection: Collection, progress: bool = False) -> list[str]:
    """Rebuild every stored view's index from the stored vectors, several views at once
    (FAISS and the file writes release the GIL), as many as cores and memory allow."""
    views = all_views(collection)
    rows = len(collection.live_rows())  # also caches the passage table before the threads read it
    with tqdm(total=len(views), desc="indices", disable=not progress, leave=False) as bar, \
            ThreadPoolExecutor(build_workers(len(views), rows, collection.identity.dim)) as pool:
        for _ in pool.map(lambda view: build_index(collection, view), views):
            bar.update()
    collection.mark_indexed()
    return [view.name for view in views]


def build_workers(views: int, rows: int, dim: int, memory: int = 512 << 20) -> int:
    """Parallel index builds: one per core, but no more than ``memory`` bytes of vectors in flight
    (a build holds about three float32 copies of its matrix: stored, mixed, normalised)."""
    per_view = max(1, 3 * rows * dim * 4)
    return max(1, min(views, os.cpu_count() or 1, memory // per_view))


def save_mix(
    collection: Collection, name: str, spec_text: str, query_spec_text: str | None = None, index_type: str = "flat"
) -> View:
    """Store a named mix view (optionally mixing queries differently) and build its index."""
    grammar.validate_view_name(name)
    spec = grammar.parse(spec_text)
    if not isinstance(spec, Mix):
        raise UsageError(f"'{spec_text}' is a plain layer selection: a stored view needs a mix such as mean(-4:)")
    spec.resolve(collection.num_states)
    query_spec = grammar.parse(query_spec_text) if query_spec_text else None
    if query_spec is not None:
        query_spec.resolve(collection.num_states)
    faiss_index.choose(index_type, 0)
    view = View(name, spec, query_spec=query_spec, index_type=index_type)
    with collection.writing():
        build_index(collection, view)
        collection.save_view(name, str(spec), str(query_spec) if query_spec else None, index_type)
    return view


def stored_specs(collection: Collection) -> dict[str, str]:
    """Every stored view's name and spec text, dense mixes and unindexed fusions alike."""
    return {v.name: v.spec for v in collection.stored_views()}


def save_fusion(collection: Collection, name: str, spec_text: str) -> str:
    """Store a fusion (or bm25) under a name; it is ranked at search time from its members."""
    grammar.validate_view_name(name)
    spec = grammar.parse_view(spec_text)
    if not isinstance(spec, (grammar.Fusion, grammar.Lexical)):
        raise UsageError(f"'{spec_text}' is not a fusion: store mixes with a mix expression such as mean(-4:)")
    with collection.writing():
        collection.save_view(name, str(spec), None, UNINDEXED)
    return str(spec)
