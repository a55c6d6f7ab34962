"""Searching a collection: one query encoding serves every requested view.

Passage hits are collapsed to documents, each scored by its best passage, so a
long document split into passages counts once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from layerwise.errors import EmptyQuery
from layerwise.indexer.embeddings import LayerEmbeddings
from layerwise.indexer.encoder import Encoder
from layerwise.search import bm25
from layerwise.search.ranking import Ranking, RowMap
from layerwise.search.views import View, build_index
from layerwise.storage import faiss_index
from layerwise.storage.collection import Collection


@dataclass(frozen=True)
class Hit:
    """One search result: a document, its score and its best passage."""

    rank: int
    score: float
    doc_id: str
    title: str
    text: str
    char_start: int
    char_end: int
    row: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Searcher:
    """Searches one collection; the encoder loads on first use and must match the collection."""

    def __init__(self, collection: Collection, encoder: Encoder | None = None, device: str = "auto", dtype: str = "auto") -> None:
        self.collection = collection
        self._encoder = encoder
        self._device = device
        self._dtype = dtype
        self._indices: dict[str, Any] = {}

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            ident = self.collection.identity
            self._encoder = Encoder(
                ident.name, device=self._device, dtype=self._dtype, pooling=ident.pooling, max_tokens=ident.max_tokens,
                quantize=ident.quantize,
            )
        self.collection.check_identity(self._encoder.identity)
        return self._encoder

    @property
    def device_type(self) -> str:
        """Where the query encoder runs (and so where FAISS searches, given faiss-gpu)."""
        from layerwise.indexer.device import resolve_device

        return self._encoder.device.type if self._encoder is not None else resolve_device(self._device).type

    @cached_property
    def row_map(self) -> RowMap:
        rows, docs, _ = self.collection.passage_table
        return RowMap(rows, docs)

    @property
    def doc_ids(self) -> list[str]:
        return self.collection.passage_table[2]

    def index(self, view: View) -> Any:
        if view.name not in self._indices:
            stored = view.stored and self.collection.index_path(view.name).exists()
            index = faiss_index.read(self.collection.index_path(view.name), self.collection.name) if stored else build_index(self.collection, view)
            self._indices[view.name] = faiss_index.on_device(index, self.device_type)
        return self._indices[view.name]

    def encode(self, queries: Sequence[str], views: Sequence[View]) -> LayerEmbeddings:
        """One encoder pass over the queries for the union of the views' layers."""
        _check_queries(queries)
        wanted = sorted({i for v in views for i in v.query_layers(self.collection.num_states)})
        return self.encoder.encode(list(queries), wanted)

    def rank(self, view: View, query_vectors: np.ndarray, depth: int) -> list[Ranking]:
        """Document rankings (depth documents each) of query vectors (q, d') under a view."""
        index = self.index(view)
        if index.ntotal == 0:
            return [Ranking.empty() for _ in query_vectors]
        scores, rows = faiss_index.search(index, query_vectors, min(index.ntotal, _passage_depth(depth)))
        return [Ranking.from_passages(r, s, self.row_map).top(depth) for r, s in zip(rows, scores)]

    def rank_bm25(self, queries: Sequence[str], depth: int) -> list[Ranking]:
        _check_queries(queries)
        with self.collection.store.sessions() as session:
            found = [bm25.search(session, self.collection.id, q, _passage_depth(depth)) for q in queries]
        return [Ranking.from_passages(rows, scores, self.row_map).top(depth) for rows, scores in found]

    def search(self, query: str, views: Sequence[View], k: int = 10) -> dict[str, list[Hit]]:
        """Top-k documents of one query under each view, sharing one query encoding."""
        embeddings = self.encode([query], views)
        return {v.name: self.hits(self.rank(v, v.of_query(embeddings), k)[0]) for v in views}

    def hits(self, ranking: Ranking) -> list[Hit]:
        """Hits with passage details for a ranking."""
        info = self.collection.passages(ranking.rows.tolist())
        out = []
        for rank, (score, row) in enumerate(zip(ranking.scores.tolist(), ranking.rows.tolist()), 1):
            p = info[row]
            out.append(Hit(rank, float(score), p.doc_id, p.title, p.text, p.char_start, p.char_end, int(row)))
        return out


def _check_queries(queries: Sequence[str]) -> None:
    if any(not query.strip() for query in queries):
        raise EmptyQuery("the query is empty: give some words to search for")


def _passage_depth(depth: int) -> int:
    """Passages to fetch so that collapsing them to documents still leaves ``depth`` documents."""
    return max(depth * 4, depth + 50)
