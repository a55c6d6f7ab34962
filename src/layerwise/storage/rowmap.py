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

Both files are checksummed like the vectors (storage/integrity.py), under the
pseudo-layers ROWS_LAYER and NORMS_LAYER of the chunk records: appended rows in
the commit that makes them visible, a delete's marks in the delete's own
transaction (the digests the chunks will have once marked), a remade file whole.
Both are derived data (the database's passages, the vector files), so ``repair``
remakes whichever disagrees with its source or its checksums.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from layerwise.storage import integrity
from layerwise.storage.faiss_index import sync_folder
from layerwise.storage.schema import DocumentRow, PassageRow
from layerwise.storage.vectors import VectorFile
from layerwise.types import PassageInfo

if TYPE_CHECKING:
    from layerwise.storage.collection import Collection

DEAD = -1
ROWS_LAYER = -1  # the chunk records (vector_chunks.layer) of the rows file ...
NORMS_LAYER = -2  # ... and of the norms file
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


def norms_of(collection: "Collection", start: int, stop: int) -> np.ndarray:
    """Norms (stop - start, states) of rows start..stop-1, read back from the vector files as stored."""
    layers = [collection.vector_file(i).read(stop) for i in range(collection.num_states)]
    out = np.empty((stop - start, collection.num_states), dtype=np.float32)
    for offset in range(start, stop, _CHUNK):
        end = min(offset + _CHUNK, stop)
        out[offset - start : end - start] = np.stack(
            [np.linalg.norm(np.asarray(v[offset:end], dtype=np.float32), axis=1) for v in layers], axis=1)
    return out


def append(collection: "Collection", session: Session, start: int, keys: Sequence[int]) -> None:
    """Append the document key of rows start.. (whose vectors are appended) and their norms, fsync'd, and record
    both files' checksums in ``session``, the transaction that commits the rows."""
    rows, norms = row_file(collection), norm_file(collection)
    for file, fill in ((rows, lambda: keys_from_db(collection, start, session).reshape(-1, 1)),
                       (norms, lambda: norms_of(collection, 0, start))):
        if file.rows_on_disk() < start:  # an older collection's first write without prepare_write: made whole first
            write_atomic(file.path, fill())
            integrity.forget_rows(session, collection.id, [ROWS_LAYER if file is rows else NORMS_LAYER])
            integrity.record_file_rows(session, collection.id, ROWS_LAYER if file is rows else NORMS_LAYER, file, 0, start)
        file.truncate(start)  # what a failed commit of this process left
    count = len(keys)
    rows.append(np.asarray(keys, dtype=np.int64).reshape(-1, 1))
    norms.append(norms_of(collection, start, start + count))
    integrity.record_file_rows(session, collection.id, ROWS_LAYER, rows, start, count)
    integrity.record_file_rows(session, collection.id, NORMS_LAYER, norms, start, count)


def record_dead(collection: "Collection", session: Session, rows: Sequence[int]) -> None:
    """Replace the checksums of the rows file's chunks that hold rows about to be marked dead (in the delete's
    transaction; mark_dead writes the marks after it commits)."""
    file = row_file(collection)
    if not len(rows) or not file.path.exists():
        return
    dead = np.asarray(rows, dtype=np.int64)
    keys = file.read(file.rows_on_disk())[:, 0]
    for start, count in integrity.covering(session, collection.id, ROWS_LAYER, dead):
        block = np.array(keys[start : start + count])
        inside = dead[(dead >= start) & (dead < start + count)]
        block[inside - start] = DEAD
        integrity.replace_chunk(session, collection.id, ROWS_LAYER, start, block.reshape(-1, 1))


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


def keys_from_db(collection: "Collection", committed: int, session: Session | None = None) -> np.ndarray:
    """(committed,) document key per row from the database, -1 where no passage points at the row."""
    if session is None:
        with collection.store.sessions() as s:
            return keys_from_db(collection, committed, s)
    pairs = session.execute(select(PassageRow.row, PassageRow.document_id).where(
        PassageRow.collection_id == collection.id, PassageRow.row < committed)).all()
    keys = np.full(committed, DEAD, dtype=np.int64)
    if pairs:
        found = np.asarray(pairs, dtype=np.int64)  # (n, 2)
        keys[found[:, 0]] = found[:, 1]
    return keys


def rewrite_rows(collection: "Collection", committed: int) -> None:
    """Write the row file from the database, atomically (readers see the old file or the new one), and record it."""
    keys = keys_from_db(collection, committed)
    write_atomic(row_file(collection).path, keys)
    with collection.store.sessions.begin() as s:
        integrity.forget_rows(s, collection.id, [ROWS_LAYER])
        integrity.record_array(s, collection.id, ROWS_LAYER, 0, keys.reshape(-1, 1))


def remake_norms(collection: "Collection", committed: int) -> None:
    """Recompute the whole norms file from the vector files (after vector rows were re-derived), and record it."""
    norms = norms_of(collection, 0, committed)
    write_atomic(norm_file(collection).path, norms)
    with collection.store.sessions.begin() as s:
        integrity.forget_rows(s, collection.id, [NORMS_LAYER])
        integrity.record_array(s, collection.id, NORMS_LAYER, 0, norms)


def problems(collection: "Collection", committed: int, deep: bool) -> list[str]:
    """What is wrong with the rows and norms files: their length, the rows file against the database, and (deep)
    every chunk against its checksum. [] when a collection has no rows file yet (a writer makes it)."""
    rows, norms = row_file(collection), norm_file(collection)
    if not rows.path.exists() and not norms.path.exists():
        return []
    found = [f"{file.path.name} holds {file.rows_on_disk()} rows, {committed} committed"
             for file in (rows, norms) if file.rows_on_disk() != committed or file.path.stat().st_size % file.row_bytes]
    if found:
        return found
    differ = int(np.count_nonzero(rows.read(committed)[:, 0] != keys_from_db(collection, committed)))
    if differ:
        found.append(f"{rows.path.name} maps {differ} rows to other documents than the database does")
    if deep:
        with collection.store.sessions() as s:
            records = integrity.chunk_records(s, collection.id)
        for layer, file in ((ROWS_LAYER, rows), (NORMS_LAYER, norms)):
            damaged = integrity.damaged_rows(file, layer, committed, records.get(layer, []), deep=True)
            found += [f"rows {d.start}..{d.start + d.rows - 1} of {file.path.name} fail their checksum" for d in damaged]
    return found


def repair(collection: "Collection", committed: int, vectors_changed: bool) -> list[str]:
    """Remake the rows file from the database and the norms file from the vectors where either is wrong."""
    wrong = problems(collection, committed, deep=True)
    done = []
    if any(ROWS_FILE in p for p in wrong) or not row_file(collection).path.exists():
        rewrite_rows(collection, committed)
        done.append(f"remade {ROWS_FILE} from the database")
    if vectors_changed or any(NORMS_FILE in p for p in wrong) or not norm_file(collection).path.exists():
        remake_norms(collection, committed)
        done.append(f"remade {NORMS_FILE} from the vector files")
    return done


def write_atomic(path: Path, array: np.ndarray) -> None:
    """Replace a file with an array's bytes: a temporary file, fsync, rename, fsync of the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(np.ascontiguousarray(array).tobytes())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    sync_folder(path.parent)


def _prepare_norms(collection: "Collection", committed: int) -> None:
    """Cut the norms file to the committed rows, or compute (and record) the rows it lacks from the vectors."""
    file = norm_file(collection)
    have = min(file.rows_on_disk(), committed)
    if file.path.exists():
        file.truncate(have)
    if have == committed:
        return
    for start in range(have, committed, _CHUNK):
        file.append(norms_of(collection, start, min(start + _CHUNK, committed)))  # (c, states)
    with collection.store.sessions.begin() as s:
        integrity.forget_rows(s, collection.id, [NORMS_LAYER], from_row=have)
        integrity.record_file_rows(s, collection.id, NORMS_LAYER, file, have, committed - have)


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
    with collection.store.engine.connect() as connection:  # Core, not an ORM session: 0.2 ms a search instead of 0.55
        found = connection.execute(_PASSAGES, {"collection": collection.id, "rows": list(expected)}).all()
    return {r[0]: PassageInfo(r[0], *r[2:]) for r in found if expected.get(r[0]) == r[1]}


_PASSAGES = (
    select(PassageRow.row, PassageRow.document_id, DocumentRow.doc_id, DocumentRow.title, PassageRow.text,
           PassageRow.char_start, PassageRow.char_end)
    .join(DocumentRow, PassageRow.document_id == DocumentRow.id)
    .where(PassageRow.collection_id == bindparam("collection"), PassageRow.row.in_(bindparam("rows", expanding=True)))
)
