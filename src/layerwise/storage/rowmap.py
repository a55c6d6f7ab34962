"""The per-row files beside the vectors: each row's document and each row's vector norms.

``vectors/rows.int64`` holds, for every vector row, the database id of the
document its passage belongs to, or -1 once that document is deleted (a delete
marks rows, it never rewrites the file). ``vectors/norms.float32`` holds the L2
norm of every row in every hidden state, (rows, states), so exact search reads the
raw vectors without a normalised copy. Both are memory-mapped by readers and
follow the vectors' commit protocol: appended and fsync'd before the database
commits the passages, cut back to the committed count by the next writer.

Deletes are marked after their database commit. A crash in between leaves rows
marked live whose document is gone; a writer notices (the live rows no longer
match the database's passage count) and rewrites the row file from the database.
Readers never write: a collection whose row file a writer has not made yet (an
older collection) is mapped from the database in memory instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import func, select

from layerwise.storage.schema import DocumentRow, PassageRow
from layerwise.storage.vectors import VectorFile
from layerwise.types import PassageInfo

if TYPE_CHECKING:
    from layerwise.storage.collection import Collection

DEAD = -1
ROWS_FILE = "rows.int64"
NORMS_FILE = "norms.float32"
_CHUNK = 65_536


class SideFile(VectorFile):
    """A fixed-width per-row file of any numpy dtype, with VectorFile's append/truncate/map."""

    def __init__(self, path: Path, width: int, dtype: type) -> None:
        self.path = path
        self.dim = width
        self.dtype = np.dtype(dtype)
        self.row_bytes = width * self.dtype.itemsize


def row_file(collection: "Collection") -> SideFile:
    return SideFile(collection.dir / "vectors" / ROWS_FILE, 1, np.int64)


def norm_file(collection: "Collection") -> SideFile:
    return SideFile(collection.dir / "vectors" / NORMS_FILE, collection.num_states, np.float32)


def row_norms(collection: "Collection", vectors: np.ndarray) -> np.ndarray:
    """Norms (n, states) of vectors (n, states, d) as the vector files store them (their dtype)."""
    stored = np.asarray(vectors).astype(collection.vector_file(0).dtype).astype(np.float32)
    return np.linalg.norm(stored, axis=2)  # (n, states)


def append(collection: "Collection", keys: Sequence[int], vectors: np.ndarray) -> None:
    """Append the document key of each new row and its norms (vectors (n, states, d)); fsync'd."""
    row_file(collection).append(np.asarray(keys, dtype=np.int64).reshape(-1, 1))
    norm_file(collection).append(row_norms(collection, vectors))


def mark_dead(collection: "Collection", rows: Sequence[int]) -> None:
    """Mark rows of deleted documents (after the delete committed); readers see it through their maps."""
    file = row_file(collection)
    if not len(rows) or not file.path.exists():
        return
    keys = np.memmap(file.path, dtype=np.int64, mode="r+", shape=(file.rows_on_disk(),))
    keys[np.asarray(rows, dtype=np.int64)] = DEAD
    keys.flush()
    del keys


def prepare(collection: "Collection", committed: int) -> None:
    """A writer's start: cut both files to the committed rows; remake what is missing or disagrees with the database."""
    rows = row_file(collection)
    if rows.rows_on_disk() < committed:
        rewrite_rows(collection, committed)
    else:
        rows.truncate(committed)
        if int(np.count_nonzero(rows.read(committed) >= 0)) != passage_count(collection):
            rewrite_rows(collection, committed)
    _prepare_norms(collection, committed)


def passage_count(collection: "Collection") -> int:
    with collection.store.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(PassageRow).where(PassageRow.collection_id == collection.id)) or 0)


def keys_from_db(collection: "Collection", committed: int) -> np.ndarray:
    """(committed,) document key per row from the database, -1 where no passage points at the row."""
    with collection.store.sessions() as s:
        pairs = s.execute(select(PassageRow.row, PassageRow.document_id).where(PassageRow.collection_id == collection.id)).all()
    keys = np.full(committed, DEAD, dtype=np.int64)
    if pairs:
        found = np.asarray(pairs, dtype=np.int64)  # (n, 2)
        inside = found[:, 0] < committed
        keys[found[inside, 0]] = found[inside, 1]
    return keys


def rewrite_rows(collection: "Collection", committed: int) -> None:
    """Write the row file from the database, atomically (readers see the old file or the new one)."""
    write_atomic(row_file(collection).path, keys_from_db(collection, committed))


def write_atomic(path: Path, array: np.ndarray) -> None:
    """Replace a file with an array's bytes: a temporary file, fsync, rename, fsync of the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(np.ascontiguousarray(array).tobytes())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    sync_dir(path.parent)


def sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _prepare_norms(collection: "Collection", committed: int) -> None:
    """Cut the norms file to the committed rows, or compute the rows it lacks from the vectors."""
    file = norm_file(collection)
    have = min(file.rows_on_disk(), committed)
    if file.path.exists():
        file.truncate(have)
    if have == committed:
        return
    layers = [collection.vector_file(i).read(committed) for i in range(collection.num_states)]
    for start in range(have, committed, _CHUNK):
        stop = min(start + _CHUNK, committed)
        file.append(np.stack([np.linalg.norm(np.asarray(v[start:stop], dtype=np.float32), axis=1) for v in layers], axis=1))  # (c, states)


class RowState:
    """What a reader maps once per collection generation: document keys and norms of the committed rows."""

    def __init__(self, collection: "Collection", committed: int) -> None:
        self.committed = committed
        file = row_file(collection)
        self.keys = file.read(committed)[:, 0] if file.rows_on_disk() >= committed else keys_from_db(collection, committed)
        norms = norm_file(collection)
        self.norms = norms.read(committed) if norms.rows_on_disk() >= committed else None  # (committed, states)

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        """Document key of each row; -1 for padding, dead rows and rows past the committed ones."""
        rows = np.asarray(rows, dtype=np.int64)
        inside = (rows >= 0) & (rows < self.committed)
        out = np.full(rows.shape, DEAD, dtype=np.int64)
        out[inside] = self.keys[rows[inside]]
        return out

    @cached_property
    def live(self) -> np.ndarray:
        """Sorted live rows."""
        return np.flatnonzero(np.asarray(self.keys) >= 0).astype(np.int64)

    @cached_property
    def dead(self) -> np.ndarray:
        """Sorted dead rows below the committed count."""
        return np.flatnonzero(np.asarray(self.keys) < 0).astype(np.int64)


def passages(collection: "Collection", rows: Sequence[int], keys: Sequence[int]) -> dict[int, PassageInfo]:
    """Details of the given rows in one query, keeping only rows whose document is still the expected one.

    A row whose passage is gone (a delete racing this reader) or belongs to another
    document (rows renumbered by a compaction since this reader mapped its files) is left out.
    """
    if not len(rows):
        return {}
    expected = dict(zip((int(r) for r in rows), (int(k) for k in keys)))
    with collection.store.sessions() as s:
        found = s.execute(
            select(PassageRow.row, PassageRow.document_id, DocumentRow.doc_id, DocumentRow.title, PassageRow.text,
                   PassageRow.char_start, PassageRow.char_end)
            .join(DocumentRow)
            .where(PassageRow.collection_id == collection.id, PassageRow.row.in_(list(expected)))
        ).all()
    return {r[0]: PassageInfo(r[0], *r[2:]) for r in found if expected.get(r[0]) == r[1]}
