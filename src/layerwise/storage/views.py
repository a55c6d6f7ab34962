"""Dense views on disk: what a FAISS index is built over — one hidden state, or a mix of several.

Every single layer is a view (``layer0`` .. ``layerL``); mixes are views built
from the stored raw vectors with the layer grammar, never by running the encoder.
A query is mixed the same way from its own per-layer vectors. Reading a user's
view spec against a collection is search's job (``search/plan.py``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from tqdm.auto import tqdm

from layerwise import layers as grammar
from layerwise.errors import UsageError
from layerwise.layers import LayerSpec, Mix
from layerwise.storage import ann, faiss_index, filenames
from layerwise.storage.collection import Collection
from layerwise.storage.rowmap import RowState
from layerwise.storage.schema import ViewRow
from layerwise.types import LayerEmbeddings

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


def build_index(collection: Collection, view: View) -> str:
    """Build a stored view's index from the stored vectors (exact views have none); return what was done."""
    return ann.update(collection, view, RowState(collection, collection.vector_rows()), rebuild=True)


def rebuild_all(collection: Collection, progress: bool = False) -> list[str]:
    """Rebuild every stored view's index from the stored vectors."""
    return update_all(collection, progress, rebuild=True)


def update_all(collection: Collection, progress: bool = False, rebuild: bool = False) -> list[str]:
    """Bring every view's index up to the committed rows, in place where the type allows; return the views touched.

    Several views are built at once (FAISS and the file writes release the GIL), as many as cores and
    memory allow. Vectors are checked against their checksums first: damaged rows never reach an index.
    """
    state = RowState(collection, collection.vector_rows())
    views = all_views(collection)
    workers = build_workers(len(views), len(state.live), collection.identity.dim)
    with tqdm(total=len(views), desc="indices", disable=not progress, leave=False) as bar, ThreadPoolExecutor(workers) as pool:
        done = []
        for view, what in zip(views, pool.map(lambda view: ann.update(collection, view, state, rebuild=rebuild), views)):
            bar.update()
            done += [view.name] if what in ("built", "updated") else []
    collection.mark_indexed()
    return done


def build_workers(views: int, rows: int, dim: int, memory: int = 512 << 20) -> int:
    """Parallel index builds: one per core, but no more than ``memory`` bytes of vectors in flight
    (a build holds about three float32 copies of its matrix: stored, mixed, normalised)."""
    per_view = max(1, 3 * rows * dim * 4)
    return max(1, min(views, os.cpu_count() or 1, memory // per_view))


def needs_update(collection: Collection) -> bool:
    """Whether some index is older than the last commit or missing."""
    if collection.indices_stale():
        return True
    live = len(RowState(collection, collection.vector_rows()).live)
    return any(ann.kind_for(collection, v, live) != "flat" and not collection.index_path(v.name).exists() for v in all_views(collection))


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
        state = RowState(collection, collection.vector_rows())
        kind = ann.kind_for(collection, view, len(state.live))
        verify_vectors(collection, view.layers(collection.num_states))
        if kind == "flat":  # exact views search the vector files: no index file
            collection.save_view(name, str(spec), str(query_spec) if query_spec else None, index_type)
            return view
        staged = faiss_index.stage(ann.build(collection, view, kind, state), collection.dir / filenames.INDICES)
        try:
            collection.save_view(name, str(spec), str(query_spec) if query_spec else None, index_type, staged)
        finally:
            staged[0].unlink(missing_ok=True)
    return view


def verify_vectors(collection: Collection, layers: Iterable[int]) -> None:
    """Refuse to build an index from vector rows whose bytes differ from their checksums."""
    ann.verify_vectors(collection, layers)


def stored_specs(collection: Collection, rows: Sequence[ViewRow] | None = None) -> dict[str, str]:
    """Every stored view's name and spec text, dense mixes and unindexed fusions alike."""
    return {v.name: v.spec for v in (collection.stored_views() if rows is None else rows)}


def save_fusion(collection: Collection, name: str, spec_text: str) -> str:
    """Store a fusion (or bm25) under a name; it is ranked at search time from its members."""
    grammar.validate_view_name(name)
    spec = grammar.parse_view(spec_text)
    if not isinstance(spec, (grammar.Fusion, grammar.Lexical)):
        raise UsageError(f"'{spec_text}' is not a fusion: store mixes with a mix expression such as mean(-4:)")
    with collection.writing():
        collection.save_view(name, str(spec), None, UNINDEXED)
    return str(spec)
