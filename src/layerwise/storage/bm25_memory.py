"""Whole-document BM25 from memory: the same ranking as SQLite FTS5's ``bm25()``, without SQLite per query.

This module owns the in-memory copy of a collection's whole-document FTS5 table
(``bm25.document_table``) that a long-lived searcher builds on its second ``bm25``
search. It is read from FTS5's own index, so tokenising and stemming are FTS5's:
the postings (term, document, count) from an ``fts5vocab`` 'instance' table, each
document's length from the ``docsize`` shadow table, and the row and token totals
FTS5's ``bm25()`` uses from its averages record. A query's words become tokens the
same way: each word goes through a private in-memory FTS5 table with the same
tokenizer (cached per word).

Scores reproduce ``fts5Bm25Function`` (sqlite ext/fts5/fts5_aux.c) operation for
operation in double precision: k1 = 1.2, b = 0.75, one phrase per quoted query word,
idf = log((N - n + 0.5) / (n + 0.5)) raised to 1e-6 when not positive, summed over
the phrases in query order; ties come out by ascending rowid, as FTS5's ``ORDER BY
bm25(t) LIMIT k`` returns them. A query with a word FTS5 splits into several tokens
(a phrase that needs adjacency, e.g. ``foo_bar``) is not answered here: ``search``
returns None and the caller asks FTS5.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from layerwise.storage import bm25

log = logging.getLogger("layerwise.bm25")
K1 = 1.2
B = 0.75
MIN_IDF = 1e-6
MAX_DOCUMENTS = 100_000  # above this a collection keeps FTS5 (51,830 documents: 73 MB of arrays, 339 MB at the build's peak)
_CACHED_WORDS = 100_000


@dataclass(frozen=True)
class DocumentIndex:
    """Postings of one FTS5 document table; positions 0..n-1 are the documents in ascending rowid."""

    keys: np.ndarray  # (n,) int64 rowids (document database ids), ascending
    first_rows: np.ndarray  # (n,) int64 each document's smallest passage row, -1: none
    rows: int  # the row count FTS5's bm25() uses (N)
    terms: dict[str, int]
    starts: np.ndarray  # (terms + 1,) int64: term t's postings are [starts[t], starts[t + 1])
    docs: np.ndarray  # (postings,) int32 document positions, ascending within a term
    weights: np.ndarray  # (postings,) float64 f * (k1 + 1) / (f + k1 * (1 - b + b * D / avgdl))

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.keys, self.first_rows, self.starts, self.docs, self.weights))

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Keys, scores (-bm25, float64) and first rows of the k best documents; None: ask FTS5."""
        phrases = query_phrases(query)
        if phrases is None:
            return None
        scores = np.zeros(len(self.keys), dtype=np.float64)
        for term in phrases:
            self._accumulate(scores, term)
        found = top(scores, k)
        return self.keys[found], scores[found], self.first_rows[found]

    def _accumulate(self, scores: np.ndarray, term: str) -> None:
        t = self.terms.get(term)
        if t is None:
            return
        start, end = int(self.starts[t]), int(self.starts[t + 1])
        scores[self.docs[start:end]] += idf(self.rows, end - start) * self.weights[start:end]


def idf(rows: int, hits: int) -> float:
    """FTS5's idf of a phrase found in ``hits`` of ``rows`` rows (math.log: the C library's log, as SQLite's)."""
    value = math.log((rows - hits + 0.5) / (hits + 0.5))
    return value if value > 0.0 else MIN_IDF


def top(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k highest positive scores, best first, ties by ascending position (rowid)."""
    found = np.flatnonzero(scores > 0.0)
    values = scores[found]
    if len(found) > k:
        kth = np.partition(values, len(values) - k)[len(values) - k]
        keep = values >= kth
        found, values = found[keep], values[keep]
    return found[np.lexsort((found, -values))][:k]


def query_phrases(query: str) -> list[str] | None:
    """The single-token phrase of each distinct query word, in ``bm25.match_expression``'s order; None when a word is several tokens."""
    out = []
    for word, tokens in zip(words := bm25.query_words(query), _TOKENIZER.tokens(words)):
        if len(tokens) > 1:
            return None
        out.extend(tokens)  # a word FTS5 makes no token of matches nothing
    return out


class _Tokenizer:
    """FTS5's tokens of single words, from a private in-memory FTS5 table with the documents' tokenizer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[str, ...]] = {}
        self._db: sqlite3.Connection | None = None

    def tokens(self, words: list[str]) -> list[tuple[str, ...]]:
        cache = self._cache  # entries are never removed from a dict: a full cache is replaced by a new one
        found = {w: cache[w] for w in words if w in cache}
        missing = [w for w in words if w not in found]
        if missing:
            with self._lock:
                found.update(self._fill(missing))
        return [found[w] for w in words]

    def _fill(self, words: list[str]) -> dict[str, tuple[str, ...]]:
        """Tokenise words (rows of a transaction rolled back afterwards) and cache them."""
        db = self._connection()
        tokens: dict[int, list[str]] = {i: [] for i in range(len(words))}
        db.execute("BEGIN")
        try:
            db.executemany("INSERT INTO t(rowid, text) VALUES (?, ?)", list(enumerate(words)))
            for term, doc in db.execute("SELECT term, doc FROM v ORDER BY doc, offset"):
                tokens[doc].append(term)
        finally:
            db.execute("ROLLBACK")
        new = {w: tuple(tokens[i]) for i, w in enumerate(words)}
        cache = self._cache if len(self._cache) + len(new) <= _CACHED_WORDS else {}
        cache.update(new)
        self._cache = cache
        return new

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            db.execute("CREATE VIRTUAL TABLE t USING fts5(text, tokenize='porter unicode61')")
            db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
            self._db = db
        return self._db


_TOKENIZER = _Tokenizer()


def _varints(blob: bytes) -> list[int]:
    """The SQLite varints one after another in a blob (FTS5's averages and docsize records)."""
    out, value, width = [], 0, 0
    for byte in blob:
        width += 1
        if width == 9:  # a ninth byte gives all 8 bits
            out.append((value << 8) | byte)
            value, width = 0, 0
            continue
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            out.append(value)
            value, width = 0, 0
    return out


def build(session: Session, collection_id: int, limit: int = MAX_DOCUMENTS) -> DocumentIndex | None:
    """The in-memory copy of the collection's whole-document FTS5 table, read in one snapshot.

    None off SQLite, above ``limit`` documents, or when FTS5's records do not agree
    with each other (the caller then keeps FTS5).
    """
    if session.get_bind().dialect.name != "sqlite":
        return None
    db = session.connection().connection.driver_connection
    own = not db.in_transaction
    if own:
        db.execute("BEGIN")  # every read below sees the same commit
    try:
        return _read(db, bm25.document_table(collection_id), limit)
    finally:
        if own:
            db.execute("ROLLBACK")


def _read(db: sqlite3.Connection, name: str, limit: int) -> DocumentIndex | None:
    keys, lengths = _document_lengths(db, name)
    if len(keys) > limit:
        return None
    rows, tokens = _totals(db, name, len(keys), int(lengths.sum()))
    found = _postings(db, name, keys)
    if found is None:
        return None
    terms, starts, docs, counts = found
    norm = K1 * ((1 - B) + (B * lengths.astype(np.float64)) / (tokens / rows if rows else 1.0))  # as fts5Bm25Function
    freq = counts.astype(np.float64)
    weights = (freq * (K1 + 1.0)) / (freq + norm[docs])
    return DocumentIndex(keys, _first_rows(db, keys), rows, terms, starts, docs, weights)


def _document_lengths(db: sqlite3.Connection, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Rowids (ascending) and token counts of the table's documents, from FTS5's docsize shadow table."""
    found = db.execute(f"SELECT id, sz FROM {name}_docsize ORDER BY id").fetchall()
    keys = np.fromiter((r[0] for r in found), dtype=np.int64, count=len(found))
    lengths = np.fromiter((sum(_varints(r[1])) for r in found), dtype=np.int64, count=len(found))
    return keys, lengths


def _totals(db: sqlite3.Connection, name: str, documents: int, tokens: int) -> tuple[int, int]:
    """The row and token totals bm25() uses: FTS5's averages record (counted from docsize when not written yet)."""
    record = db.execute(f"SELECT block FROM {name}_data WHERE id = 1").fetchone()
    values = _varints(record[0]) if record and record[0] else []
    if len(values) >= 2:
        return values[0], sum(values[1:])
    return documents, tokens


def _postings(db: sqlite3.Connection, name: str, keys: np.ndarray
              ) -> tuple[dict[str, int], np.ndarray, np.ndarray, np.ndarray] | None:
    """Terms, term starts, document positions and counts; None when FTS5's vocabularies disagree.

    The 'row' vocabulary gives each term and its instance count, the 'instance' one the
    rowid of every instance, both in FTS5's term order (rowids ascending within a term).
    """
    made = []
    try:
        for kind in ("row", "instance"):
            made.append(vocab := f"lw_{kind}_{name}")
            db.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.{vocab} USING fts5vocab(main, '{name}', '{kind}')")
        listed = db.execute(f"SELECT term, cnt FROM temp.{made[0]}").fetchall()
        rowids = np.fromiter((r[0] for r in db.execute(f"SELECT doc FROM temp.{made[1]}")), dtype=np.int64)
    finally:
        for vocab in made:
            db.execute(f"DROP TABLE IF EXISTS temp.{vocab}")
    instances = np.fromiter((r[1] for r in listed), dtype=np.int64, count=len(listed))
    if int(instances.sum()) != len(rowids):
        return None
    term_starts = np.concatenate(([0], np.cumsum(instances)))  # in instances
    first_of_term = np.zeros(len(rowids), dtype=bool)
    first_of_term[term_starts[:-1][instances > 0]] = True
    if np.any(~first_of_term[1:] & (rowids[1:] < rowids[:-1])):
        return None
    new = first_of_term  # a new (term, document) pair starts here
    new[1:] |= rowids[1:] != rowids[:-1]
    if len(new):
        new[0] = True
    begins = np.flatnonzero(new)
    del new, first_of_term
    documents = rowids[begins]
    at = np.searchsorted(keys, documents)
    if len(at) and (at.max() >= len(keys) or np.any(keys[at] != documents)):
        return None  # an instance of a document docsize does not hold
    counts = np.diff(np.append(begins, len(rowids)))
    starts = np.searchsorted(begins, term_starts).astype(np.int64)  # every term starts a pair
    terms = {r[0]: i for i, r in enumerate(listed)}
    return terms, starts, at.astype(np.int32), counts


def _first_rows(db: sqlite3.Connection, keys: np.ndarray) -> np.ndarray:
    """Each document's smallest passage row (-1: none), as the FTS5 query's ``min(p.row)`` reads it."""
    first = np.full(len(keys), -1, dtype=np.int64)
    if len(keys) == 0:
        return first
    found = db.execute("SELECT document_id, min(row) FROM passages WHERE document_id BETWEEN ? AND ? GROUP BY document_id",
                       (int(keys[0]), int(keys[-1]))).fetchall()
    ids = np.asarray([r[0] for r in found], dtype=np.int64)
    rows = np.asarray([r[1] for r in found], dtype=np.int64)
    at = np.searchsorted(keys, ids)
    hit = (at < len(keys)) & (keys[np.minimum(at, len(keys) - 1)] == ids) if len(ids) else np.zeros(0, dtype=bool)
    first[at[hit]] = rows[hit]
    return first


class Lazy:
    """One searcher's whole-document BM25 index: none for its first search; its second starts a build in a thread
    of its own, and searches use FTS5 until the index is ready (SciFact: 0.6 s; 51,830 documents: 5.7 s)."""

    def __init__(self, limit: int = MAX_DOCUMENTS) -> None:
        self._lock = threading.Lock()
        self._limit = limit
        self._searches = 0
        self._index: DocumentIndex | None = None
        self._builder: threading.Thread | None = None

    def index(self, sessions: Callable[[], AbstractContextManager[Session]], collection_id: int) -> DocumentIndex | None:
        """The index once built; None (search FTS5) before, while building, or where it cannot be built."""
        if self._index is not None:
            return self._index
        with self._lock:
            self._searches += 1
            if self._searches == 2 and self._builder is None:
                self._builder = threading.Thread(target=self._build, args=(sessions, collection_id),
                                                 name="layerwise-bm25-build", daemon=True)
                self._builder.start()
        return self._index

    def wait(self, timeout: float | None = None) -> DocumentIndex | None:
        """Wait for a started build; the index, or None."""
        if self._builder is not None:
            self._builder.join(timeout)
        return self._index

    def _build(self, sessions: Callable[[], AbstractContextManager[Session]], collection_id: int) -> None:
        try:
            with sessions() as session:
                self._index = build(session, collection_id, self._limit)
        except (SQLAlchemyError, sqlite3.Error) as exc:  # a locked or damaged store: this searcher keeps FTS5
            log.warning("whole-document BM25 stays in FTS5: %s", exc)
