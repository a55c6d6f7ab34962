"""Reading view specs against a collection: which dense views, BM25 and fusions a request needs.

A spec from the one grammar (``layers.parse_view``) becomes named steps: a
selection gives one dense view per layer, a mix one ad-hoc dense view, ``bm25``
the lexical ranking, a stored name the stored view (a mix with its index, or a
stored fusion), and a fusion the steps of its members plus its own. Names are
deduplicated, so a fusion over ``-1`` and a plain ``-1`` share one ranking.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from layerwise import layers as grammar
from layerwise.errors import LayerSpecError, UsageError, ViewNotFound
from layerwise.layers import Fusion, Lexical, Mix, Named, Selection, ViewSpec
from layerwise.storage.collection import Collection
from layerwise.storage.schema import ViewRow
from layerwise.storage.views import View, all_views, layer_views

BM25 = grammar.BM25
LEXICAL = grammar.LEXICAL
STORED = "stored"  # every stored view (evaluation's default list uses it)


@dataclass(frozen=True)
class FusionStep:
    """A fusion over already-planned steps, by name, with one weight per step (or None)."""

    method: str
    members: tuple[str, ...]
    weights: tuple[float, ...] | None


class Plan:
    """The steps a set of view specs needs; ``requested`` are the top-level names, in order."""

    def __init__(self, collection: Collection, specs: Sequence[str | ViewSpec], stored: Sequence[ViewRow] | None = None) -> None:
        self.collection = collection
        self.dense: dict[str, View] = {}
        self.fusions: dict[str, FusionStep] = {}
        self.lexical: list[str] = []  # bm25 and/or bm25-passages
        self.requested: list[str] = []
        stored = collection.stored_views() if stored is None else stored  # one read serves the dense views and the stored specs
        self._views = {v.name: v for v in all_views(collection, stored)}
        self._stored = {v.name: v.spec for v in stored}
        for spec in specs:
            self.add(spec)

    def add(self, spec: str | ViewSpec) -> list[str]:
        """Plan one spec; return the names of the views it stands for."""
        names = self._plan(grammar.parse_view(spec) if isinstance(spec, str) else spec)
        self.requested.extend(n for n in names if n not in self.requested)
        return names

    def kind(self, name: str) -> str:
        """layer, mix, bm25 or fusion."""
        if name in LEXICAL:
            return "bm25"
        if name in self.fusions:
            return "fusion"
        return "mix" if self.dense[name].spec.is_mix else "layer"

    def _plan(self, spec: ViewSpec) -> list[str]:
        if isinstance(spec, Lexical):
            return self._bm25(spec.name)
        if isinstance(spec, Fusion):
            return [self._fusion(spec)]
        if isinstance(spec, Named):
            return self._named(spec.name)
        if isinstance(spec, Selection):
            views = layer_views(self.collection.num_states, self.collection.index_type)
            return self._dense([views[i] for i in spec.resolve(self.collection.num_states)])
        assert isinstance(spec, Mix)
        spec.resolve(self.collection.num_states)
        return self._dense([View(str(spec), spec, stored=False)])

    def _dense(self, views: list[View]) -> list[str]:
        for view in views:
            self.dense.setdefault(view.name, view)
        return [v.name for v in views]

    def _bm25(self, name: str) -> list[str]:
        if not self.collection.store.is_sqlite:
            raise UsageError("BM25 needs the SQLite metadata store (FTS5); this collection's database is not SQLite: leave bm25 out")
        if name not in self.lexical:
            self.lexical.append(name)
        return [name]

    def _named(self, name: str) -> list[str]:
        if name == STORED:
            return [n for stored in self._stored for n in self._named(stored)]
        if name in self._views:
            return self._dense([self._views[name]])
        if name in self._stored:  # a stored fusion keeps its own name
            names = self._plan(grammar.parse_view(self._stored[name]))
            if len(names) == 1 and names[0] in self.fusions:
                self.fusions[name] = self.fusions[names[0]]
                return [name]
            return names
        try:
            return self._plan(grammar.parse(name))
        except LayerSpecError:
            known = ", ".join(self._stored) or "none"
            raise ViewNotFound(
                f"no view '{name}' in collection '{self.collection.name}' (stored views: {known}): "
                "give a layer (-1, all), a mix (mean(-4:)), bm25, a fusion (rrf(bm25 | -1)) or a stored name"
            ) from None

    def _fusion(self, spec: Fusion) -> str:
        groups = [self._plan(member) for member in spec.members]
        weights = None if spec.weights is None else tuple(w for g, w in zip(groups, spec.weights) for _ in g)
        name = str(spec)
        self.fusions[name] = FusionStep(spec.method, tuple(n for g in groups for n in g), weights)
        return name
