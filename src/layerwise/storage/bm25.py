"""BM25 through SQLite FTS5 (porter stemmer): two full-text tables per collection.

``bm25`` ranks whole documents (title + text, one FTS5 row per document, keyed by
the document's database id), so its figure does not depend on the encoder: the
same corpus scores the same whatever model split it into passages.
``bm25-passages`` ranks the encoder-made passages (keyed by vector row), the same
units the dense views rank, and scores a document by its best passage (MaxP).
A collection made before the document table existed gets it filled from its
documents on first use. PostgreSQL databases have no FTS5: BM25 there raises a
clear error instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

from layerwise.errors import UsageError

_WORD_RE = re.compile(r"\w+", re.UNICODE)


def table_name(collection_id: int) -> str:
    return f"fts_passages_{int(collection_id)}"


def ensure(session: Session, collection_id: int) -> None:
    session.execute(
        text(f"CREATE VIRTUAL TABLE IF NOT EXISTS {table_name(collection_id)} USING fts5(text, tokenize='porter unicode61')")
    )


def add(session: Session, collection_id: int, rows: Iterable[int], texts: Sequence[str]) -> None:
    ensure(session, collection_id)
    params = [{"r": int(r), "t": t} for r, t in zip(rows, texts)]
    if params:
        session.execute(text(f"INSERT INTO {table_name(collection_id)}(rowid, text) VALUES (:r, :t)"), params)


def remove(session: Session, collection_id: int, rows: Sequence[int]) -> None:
    ensure(session, collection_id)
    if rows:
        session.execute(text(f"DELETE FROM {table_name(collection_id)} WHERE rowid = :r"), [{"r": int(r)} for r in rows])


def drop(session: Session, collection_id: int) -> None:
    session.execute(text(f"DROP TABLE IF EXISTS {table_name(collection_id)}"))
    session.execute(text(f"DROP TABLE IF EXISTS {document_table(collection_id)}"))


def document_table(collection_id: int) -> str:
    return f"fts_documents_{int(collection_id)}"


def ensure_documents(session: Session, collection_id: int) -> None:
    """Create the whole-document table if it is missing (a writer fills it batch by batch)."""
    session.execute(text(f"CREATE VIRTUAL TABLE IF NOT EXISTS {document_table(collection_id)} USING fts5(text, tokenize='porter unicode61')"))


def sync_documents(session: Session, collection_id: int) -> None:
    """Make the whole-document table hold exactly the collection's documents.

    A collection indexed before this table existed, or by a layerwise that did not
    keep it, is filled from its stored documents here (call inside a transaction
    that commits).
    """
    ensure_documents(session, collection_id)
    name = document_table(collection_id)
    held = session.execute(text(f"SELECT count(*) FROM {name}")).scalar()
    stored = session.execute(text("SELECT count(*) FROM documents WHERE collection_id = :c"), {"c": int(collection_id)}).scalar()
    if held != stored:
        session.execute(text(f"DELETE FROM {name}"))
        session.execute(text(f"INSERT INTO {name}(rowid, text) SELECT id, title || ' ' || text FROM documents "
                             "WHERE collection_id = :c"), {"c": int(collection_id)})


def add_documents(session: Session, collection_id: int, ids: Sequence[int], texts: Sequence[str]) -> None:
    ensure_documents(session, collection_id)
    params = [{"r": int(i), "t": t} for i, t in zip(ids, texts)]
    if params:
        session.execute(text(f"INSERT INTO {document_table(collection_id)}(rowid, text) VALUES (:r, :t)"), params)


def remove_documents(session: Session, collection_id: int, ids: Sequence[int]) -> None:
    ensure_documents(session, collection_id)
    if ids:
        session.execute(text(f"DELETE FROM {document_table(collection_id)} WHERE rowid = :r"), [{"r": int(i)} for i in ids])


def search_documents(session: Session, collection_id: int, query: str, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keys (database ids), BM25 scores (higher is better) and first passage rows (-1: none) of the k best whole documents."""
    if session.get_bind().dialect.name != "sqlite":
        raise UsageError("BM25 needs the SQLite metadata store (FTS5); this collection's database is not SQLite")
    expression = match_expression(query)
    if not expression:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
    name = document_table(collection_id)
    found = session.execute(
        text(f"SELECT {name}.rowid, bm25({name}), (SELECT min(p.row) FROM passages p WHERE p.document_id = {name}.rowid) "
             f"FROM {name} WHERE {name} MATCH :q ORDER BY bm25({name}) LIMIT :k"),
        {"q": expression, "k": int(k)},
    ).all()
    keys = np.asarray([r[0] for r in found], dtype=np.int64)
    first = np.asarray([-1 if r[2] is None else r[2] for r in found], dtype=np.int64)
    return keys, -np.asarray([r[1] for r in found], dtype=np.float32), first


def match_expression(query: str) -> str:
    """An FTS5 query OR-ing every word of the query, each quoted (no operator injection)."""
    return " OR ".join(f'"{w}"' for w in query_words(query))


def query_words(query: str) -> list[str]:
    """The query's distinct words, lowercased, in order: one quoted FTS5 phrase each."""
    return list(dict.fromkeys(w.lower() for w in _WORD_RE.findall(query)))


def search(session: Session, collection_id: int, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and BM25 scores (higher is better) of the k best passages."""
    if session.get_bind().dialect.name != "sqlite":
        raise UsageError("BM25 needs the SQLite metadata store (FTS5); this collection's database is not SQLite")
    expression = match_expression(query)
    if not expression:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    ensure(session, collection_id)
    found = session.execute(
        text(f"SELECT rowid, bm25({table_name(collection_id)}) FROM {table_name(collection_id)} "
             f"WHERE {table_name(collection_id)} MATCH :q ORDER BY bm25({table_name(collection_id)}) LIMIT :k"),
        {"q": expression, "k": int(k)},
    ).all()
    rows = np.asarray([r for r, _ in found], dtype=np.int64)
    return rows, -np.asarray([s for _, s in found], dtype=np.float32)
