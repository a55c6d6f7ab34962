"""Views: what a FAISS index is built over — one hidden state, or a mix of several.

Every single layer is a view (``layer0`` .. ``layerL``); mixes are views built
from the stored raw vectors with the layer grammar, never by running the encoder.
A query is mixed the same way from its own per-layer vectors.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from layerwise import layers as grammar
from layerwise.errors import LayerSpecError, UsageError
from layerwise.indexer.embeddings import LayerEmbeddings
from layerwise.layers import LayerSpec, Mix, Selection
from layerwise.storage import faiss_index
from layerwise.storage.collection import Collection

BM25 = "bm25"
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


def all_views(collection: Collection) -> list[View]:
    """Every layer view plus the collection's stored mixes."""
    stored = [
        View(v.name, grammar.parse(v.spec), query_spec=grammar.parse(v.query_spec) if v.query_spec else None, index_type=v.index_type)
        for v in collection.stored_views()
    ]
    return layer_views(collection.num_states, collection.index_type) + stored


def resolve(collection: Collection, text: str) -> list[View]:
    """Views named by a stored view name, a layer selection (one view per layer) or a mix."""
    text = text.strip()
    for view in all_views(collection):
        if view.name == text:
            return [view]
    try:
        spec = grammar.parse(text)
    except LayerSpecError as exc:
        names = ", ".join(v.name for v in all_views(collection)[collection.num_states :]) or "none"
        raise LayerSpecError(f"{exc} (stored views: {names})") from None
    if isinstance(spec, Selection):
        return [layer_views(collection.num_states, collection.index_type)[i] for i in spec.resolve(collection.num_states)]
    spec.resolve(collection.num_states)
    return [View(str(spec), spec, stored=False)]


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


def build_index(collection: Collection, view: View) -> object:
    """An index of this view built from stored vectors (written to disk when the view is stored)."""
    rows, vectors = matrix(collection, view)
    index = faiss_index.build(rows, vectors, view.index_type if view.stored else "flat")
    if view.stored:
        faiss_index.write_atomic(index, collection.index_path(view.name))
    return index


def rebuild_all(collection: Collection, progress: bool = False) -> list[str]:
    """Rebuild every stored view's index from the stored vectors."""
    from tqdm.auto import tqdm

    built = []
    for view in tqdm(all_views(collection), desc="indices", disable=not progress, leave=False):
        build_index(collection, view)
        built.append(view.name)
    collection.mark_indexed()
    return built


def save_mix(
    collection: Collection, name: str, spec_text: str, query_spec_text: str | None = None, index_type: str = "flat"
) -> View:
    """Store a named mix view (optionally mixing queries differently) and build its index."""
    if name in {v.name for v in layer_views(collection.num_states)} or name == BM25:
        raise UsageError(f"view name '{name}' is reserved: choose another name")
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
