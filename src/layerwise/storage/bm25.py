"""BM25 through SQLite FTS5 (porter stemmer), one full-text table per collection.

Passages are indexed under their vector row, so BM25 ranks the same passages
the dense views do and fuses with them. PostgreSQL databases have no FTS5:
BM25 there raises a clear error instead.
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


def match_expression(query: str) -> str:
    """An FTS5 query OR-ing every word of the query, each quoted (no operator injection)."""
    words = dict.fromkeys(w.lower() for w in _WORD_RE.findall(query))
    return " OR ".join(f'"{w}"' for w in words)


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
