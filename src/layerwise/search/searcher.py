"""Searching a collection: one query encoding serves every requested view.

Passage hits are collapsed to documents, each scored by its best passage, so a
long document split into passages counts once. The searcher never loads a
model itself: it is handed a function that returns the query encoder for the
collection's model identity (the service layer caches encoders), and calls it
only when a dense view is asked for.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from layerwise import cores
from layerwise.errors import EmptyQuery, UsageError
from layerwise.search import fusion
from layerwise.search.overlap import jaccard_matrix
from layerwise.search.plan import BM25, Plan
from layerwise.search.ranking import Ranking
from layerwise.storage import ann, bm25, bm25_memory, rowmap
from layerwise.storage.collection import Collection
from layerwise.storage.rowmap import RowState
from layerwise.storage.views import View
from layerwise.types import JSON_SCHEMA_VERSION, Hit, LayerEmbeddings, ModelIdentity, QueryEncoder

MAX_K = 1_000
FUSION_DEPTH = 100  # documents of each member a fusion combines


@dataclass(frozen=True)
class SearchResult:
    """One query's top-k documents under each requested view, in the order asked."""

    collection: str
    query: str
    k: int
    results: dict[str, list[Hit]]

    def hits(self, view: str | None = None) -> list[Hit]:
        """The hits of one view (the only one when not named)."""
        return self.results[view] if view is not None else next(iter(self.results.values()))

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": JSON_SCHEMA_VERSION, "collection": self.collection, "query": self.query, "k": self.k,
                "results": [{"view": v, "hits": [h.to_dict() for h in hits]} for v, hits in self.results.items()]}


@dataclass(frozen=True)
class Comparison:
    """A search over several views plus the Jaccard@k overlap of every pair of views."""

    search: SearchResult
    views: list[str]
    jaccard: np.ndarray  # (views, views)

    def to_dict(self) -> dict[str, Any]:
        return {**self.search.to_dict(), "jaccard": {"views": self.views, "matrix": self.jaccard.round(4).tolist()}}


class Searcher:
    """Searches one collection; ``encoders(identity)`` gives the query encoder when a dense view needs it."""

    def __init__(self, collection: Collection, encoders: Callable[[ModelIdentity], QueryEncoder], device: str = "cpu") -> None:
        self.collection = collection
        self._encoders = encoders
        self.device = device  # where FAISS searches, given a GPU build of faiss
        self._indices: dict[str, Any] = {}
        self._documents_synced = False  # the whole-document BM25 table checked once per searcher
        self._bm25_memory = bm25_memory.Lazy()  # whole-document BM25 from memory, built from the second search on
        self.generation, self.committed, self.stale = collection.state()
        self._stored = collection.stored_views()  # a saved view bumps the generation, which replaces this searcher

    @property
    def encoder(self) -> QueryEncoder:
        encoder = self._encoders(self.collection.identity)
        self.collection.check_identity(encoder.identity)
        return encoder

    @cached_property
    def row_map(self) -> RowState:
        """Document key of every committed row, memory-mapped (the rows file beside the vectors)."""
        return RowState(self.collection, self.committed)

    @cached_property
    def doc_ids(self) -> dict[int, str]:
        """Document id of every document key (evaluation reads whole runs; searches never need this)."""
        return self.collection.document_names()

    def plan(self, specs: Sequence[str]) -> Plan:
        return Plan(self.collection, specs, self._stored)

    def index(self, view: View) -> Any:
        """The view's index: its ANN file memory-mapped when current, else exact search over the mapped vectors.

        A reader never writes index files: flat views, a missing file, an ad-hoc mix or
        indices older than the last commit (a writer at work, or killed) are searched exactly.
        """
        if view.name not in self._indices:
            self._indices[view.name] = ann.open_index(self.collection, view, self.row_map, self.stale, self.device)
        return self._indices[view.name]

    def encode(self, queries: Sequence[str], views: Sequence[View]) -> LayerEmbeddings:
        """One encoder pass over the queries for the union of the views' layers."""
        check_queries(queries)
        wanted = sorted({i for v in views for i in v.query_layers(self.collection.num_states)})
        return self.encoder.encode(list(queries), wanted)

    def rank(self, view: View, query_vectors: np.ndarray, depth: int) -> list[Ranking]:
        """Document rankings (depth documents each) of query vectors (q, d') under a view."""
        index = self.index(view)
        if index.ntotal == 0:
            return [Ranking.empty() for _ in query_vectors]
        cap = self.collection.max_passages if index.kind == "flat" else None  # exact: the cap's depth is exact too
        scores, rows = index.search(query_vectors, min(index.ntotal, passage_depth(depth, cap)))
        return [Ranking.from_passages(r, s, self.row_map).top(depth) for r, s in zip(rows, scores)]

    def rank_bm25(self, queries: Sequence[str], depth: int, name: str = BM25) -> list[Ranking]:
        """BM25 rankings: of whole documents (``bm25``) or of passages, a document by its best one (``bm25-passages``)."""
        check_queries(queries)
        if name == BM25:
            return self._rank_bm25_documents(queries, depth)
        with self.collection.store.sessions() as session:
            found = [bm25.search(session, self.collection.id, q, passage_depth(depth)) for q in queries]
        return [Ranking.from_passages(rows, scores, self.row_map).top(depth) for rows, scores in found]

    def _rank_bm25_documents(self, queries: Sequence[str], depth: int) -> list[Ranking]:
        """Whole-document BM25; each hit shows the document's first passage (the top k's, read in the same query)."""
        if not self._documents_synced:
            with self.collection.store.sessions.begin() as session:
                bm25.sync_documents(session, self.collection.id)
            self._documents_synced = True
        with self.collection.store.sessions() as session:
            memory = self._bm25_memory.index(self.collection.store.sessions, self.collection.id)
            found = [_bm25_documents(memory, session, self.collection.id, q, depth) for q in queries]
        out = []
        for keys, scores, first_rows in found:
            live = (first_rows >= 0) & (self.row_map(first_rows) == keys)  # documents deleted or renumbered under this reader
            out.append(Ranking(keys[live], scores[live], first_rows[live]))
        return out

    def rankings(self, queries: Sequence[str], plan: Plan, depth: int, progress: bool = False) -> dict[str, list[Ranking]]:
        """Every planned step's rankings of the queries: one encoding for all dense views, then BM25, then fusions.

        Fusions always fuse their members' top FUSION_DEPTH (or more), so a fused top 10 is the
        same whether a search asks for 10 documents or an evaluation for 100.
        """
        check_queries(queries)
        deep = max(depth, FUSION_DEPTH) if plan.fusions else depth
        out: dict[str, list[Ranking]] = {}
        embeddings = self.encode(queries, list(plan.dense.values())) if plan.dense else None
        out.update(self._rank_dense(list(plan.dense.values()), embeddings, deep, progress))
        for name in plan.lexical:
            out[name] = self.rank_bm25(queries, deep, name)
        for name, step in plan.fusions.items():
            parts = zip(*(out[m] for m in step.members))
            out[name] = [fusion.fuse(step.method, list(p), step.weights).top(deep) for p in parts]
        return {name: [r.top(depth) for r in ranked] for name, ranked in out.items()}

    def _rank_dense(self, views: list[View], embeddings: LayerEmbeddings | None, depth: int, progress: bool) -> dict[str, list[Ranking]]:
        """Rankings of every dense view, several views at once when the search was granted more than one core
        (FAISS and numpy release the GIL: the 7 views of a 1 M-passage collection are 7 index searches with exact
        rescoring); one after another in its own thread when it shares the machine."""
        if embeddings is None or not views:
            return {}
        threads = cores.granted() or cores.available()  # outside a search (an evaluation's batch): every core
        if min(len(views), threads) < 2 or progress:
            return {v.name: self.rank(v, v.of_query(embeddings), depth) for v in tqdm(views, desc="views", disable=not progress, leave=False)}
        _ = self.row_map  # mapped once, before the threads share it
        ranked = list(view_pool().map(lambda v: self.rank(v, v.of_query(embeddings), depth), views))
        return {v.name: r for v, r in zip(views, ranked)}

    def search(self, query: str, specs: Sequence[str], k: int = 10, retry: bool = True) -> SearchResult:
        """Top-k documents of one query under each view the specs name, sharing one query encoding."""
        check_k(k)
        plan = self.plan(specs)
        with cores.searching():
            ranked = self.rankings([query], plan, k)
        rankings = {name: ranked[name][0] for name in plan.requested}
        details = self.details(rankings.values())
        missing = any(row not in details for r in rankings.values() for row in r.rows.tolist())
        if missing and retry and self.refresh():
            return self.search(query, specs, k, retry=False)  # rows changed under this reader: once more on fresh maps
        return SearchResult(self.collection.name, query, k, {name: self.hits(r, details) for name, r in rankings.items()})

    def refresh(self) -> bool:
        """Re-read the collection's state and drop the maps and indices when it changed; return whether it did."""
        state = self.collection.state()
        if state[0] == self.generation:
            return False
        for cached in ("row_map", "doc_ids"):
            self.__dict__.pop(cached, None)
        self._indices.clear()
        self._bm25_memory = bm25_memory.Lazy()
        self.generation, self.committed, self.stale = state
        self._stored = self.collection.stored_views()
        return True

    def details(self, rankings: Any) -> dict[int, Any]:
        """Passage details of every ranking's rows in one database query, checked against this reader's row map."""
        rows = sorted({row for r in rankings for row in r.rows.tolist()})
        return rowmap.passages(self.collection, rows, self.row_map(np.asarray(rows, dtype=np.int64)).tolist())

    def compare(self, query: str, specs: Sequence[str], k: int = 10) -> Comparison:
        """A search over several views and the Jaccard@k overlap of their document lists."""
        result = self.search(query, specs, k)
        names = list(result.results)
        matrix = jaccard_matrix({n: [h.doc_id for h in hits] for n, hits in result.results.items()})
        return Comparison(result, names, matrix)

    def hits(self, ranking: Ranking, details: dict[int, Any] | None = None) -> list[Hit]:
        """Hits with passage details for a ranking (rows deleted under this reader are left out)."""
        info = self.details([ranking]) if details is None else details
        pairs = [(s, r) for s, r in zip(ranking.scores.tolist(), ranking.rows.tolist()) if r in info]
        out = []
        for rank, (score, row) in enumerate(pairs, 1):
            p = info[row]
            out.append(Hit(rank, float(score), p.doc_id, p.title, p.text, p.char_start, p.char_end, int(row)))
        return out


@functools.cache
def view_pool() -> ThreadPoolExecutor:
    """The process's threads that rank a search's views, one per core, started once (as the first searches need
    them): a pool made and joined per search cost 0.5 ms of each multi-view request."""
    return ThreadPoolExecutor(cores.available(), thread_name_prefix="layerwise-views")


os.register_at_fork(after_in_child=view_pool.cache_clear)  # a forked child has none of its parent's threads


def check_queries(queries: Sequence[str]) -> None:
    if any(not query.strip() for query in queries):
        raise EmptyQuery("the query is empty: give some words to search for")


def check_k(k: int) -> None:
    if not 1 <= k <= MAX_K:
        raise UsageError(f"-k {k} is out of range: ask for 1..{MAX_K} documents")


def passage_depth(depth: int, max_passages: int | None = None) -> int:
    """Passages to fetch so that collapsing them to documents still leaves the top ``depth`` documents.

    Where a document has at most ``max_passages`` passages (the collection's ``--max-passages``), the top
    depth x max_passages passages hold the top ``depth`` documents exactly: the passages above a top
    document's best one belong to the fewer than ``depth`` documents ranked above it. Else a margin.
    On SciFact with one passage a document, 10 passages for 10 documents instead of 60. Only exact
    views use the cap: an approximate index's top 100 is not the first 100 of its top 400 (HNSW's
    search breadth and IVF-PQ's rescored candidates grow with the passages asked for), and
    ``bm25-passages`` reads rows committed after the searcher's state, which it then drops."""
    margin = max(depth * 4, depth + 50)
    return min(margin, depth * max_passages) if max_passages else margin


def _bm25_documents(memory: bm25_memory.DocumentIndex | None, session: Any, collection_id: int, query: str,
                    k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Whole-document BM25 from the in-memory index when there is one and it can answer the query, else FTS5."""
    found = memory.search(query, k) if memory is not None else None
    if found is None:
        return bm25.search_documents(session, collection_id, query, k)
    keys, scores, first_rows = found
    return keys, scores.astype(np.float32), first_rows
