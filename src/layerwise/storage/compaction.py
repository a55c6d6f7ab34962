"""Compaction: rewrite the vector files without the rows of deleted documents, crash-safe.

Deletes only mark rows dead, so the files keep growing. ``compact`` runs under
the writer lock in four steps:

1. New files are written beside the old ones (``NAME.compact``): each layer's live
   rows, the rows and norms files, and every IVF index with its dead ids removed
   and its ids renumbered; all fsync'd. (HNSW graphs, which cannot drop ids, are
   rebuilt after the switch.)
2. A journal, ``vectors/compact.json``, records the committed rows before and
   after and the files to rename; fsync'd.
3. One database transaction renumbers the passages' rows (and BM25's), sets
   the committed count to the rows kept, and replaces the checksums of every
   vector, rows and norms chunk and of every rewritten index file with those of
   the new files (hashed while they were written).
4. The new files are renamed over the old ones and the journal is removed.

A crash before step 3 committed leaves the old files and rows: recovery deletes
the new files. A crash after it finishes the renames. Any writer recovers first
(``Collection.prepare_write``); the journal says which case it is, because the
committed count equals ``after`` only once step 3 committed (compaction runs only
when rows are dead, so ``before`` and ``after`` differ).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import text

from layerwise.storage import bm25, faiss_index, integrity, rowmap
from layerwise.storage.rowmap import NORMS_LAYER, ROWS_LAYER, RowState
from layerwise.storage.schema import PassageRow, VectorChunkRow
from layerwise.types import JSON_SCHEMA_VERSION

if TYPE_CHECKING:
    from layerwise.storage.ann import StoredView
    from layerwise.storage.collection import Collection

JOURNAL = "compact.json"
SUFFIX = ".compact"
_CHUNK = 65_536


@dataclass
class CompactReport:
    """What a compaction did."""

    rows_before: int
    rows_after: int
    bytes_before: int
    bytes_after: int
    indices_renumbered: list[str]

    def to_dict(self) -> dict[str, object]:
        return {"schema_version": JSON_SCHEMA_VERSION, **self.__dict__}


@dataclass
class Rewritten:
    """The new files of a compaction: (new, final) path pairs, the chunk checksums of the new vector, rows and
    norms files, the new index files' checksums by final path, and the index files to remove."""

    files: list[tuple[str, str]]
    chunks: list[tuple[int, int, int, str]]  # (layer, start, rows, digest)
    indices: dict[str, integrity.FileDigest]
    remove: list[str]
    views: list[str]


def journal_path(collection: "Collection") -> Path:
    return collection.dir / "vectors" / JOURNAL


def compact(collection: "Collection", views: Sequence["StoredView"]) -> CompactReport:
    """Drop dead rows from every file (the caller holds the writer lock and has run prepare_write)."""
    state = RowState(collection, collection.vector_rows())
    before = _bytes(collection)
    if not len(state.dead):
        return CompactReport(state.committed, state.committed, before, before, [])
    mapping = np.full(state.committed, -1, dtype=np.int64)
    mapping[state.live] = np.arange(len(state.live))
    new = Rewritten([], [], {}, [], [])
    _write_vectors(collection, state, new)
    _write_rows(collection, state, new)
    _write_indices(collection, views, state, mapping, new)
    _write_journal(collection, state.committed, len(state.live), new.files, new.remove)
    _renumber_database(collection, state, new)
    _finish(collection)
    return CompactReport(state.committed, len(state.live), before, _bytes(collection), new.views)


def recover(collection: "Collection") -> None:
    """Finish (database committed) or undo (not committed) an interrupted compaction; drop stray new files."""
    journal = journal_path(collection)
    if journal.exists():
        if collection.vector_rows() == json.loads(journal.read_text())["after"]:
            _finish(collection)
        else:
            _undo(collection)
    for stray in _new_files(collection):
        stray.unlink()


def _finish(collection: "Collection") -> None:
    entry = json.loads(journal_path(collection).read_text())
    for new, final in entry["files"]:
        if os.path.exists(new):
            os.replace(new, final)
    for stale in entry["remove"]:
        Path(stale).unlink(missing_ok=True)
    _sync(collection)
    journal_path(collection).unlink()
    faiss_index.sync_folder(journal_path(collection).parent)


def _undo(collection: "Collection") -> None:
    for stray in _new_files(collection):
        stray.unlink()
    journal_path(collection).unlink()
    faiss_index.sync_folder(journal_path(collection).parent)


def _new_files(collection: "Collection") -> list[Path]:
    return [p for folder in ("vectors", "indices") for p in (collection.dir / folder).glob(f"*{SUFFIX}")]


def _sync(collection: "Collection") -> None:
    for folder in ("vectors", "indices"):
        if (collection.dir / folder).is_dir():
            faiss_index.sync_folder(collection.dir / folder)


def _write_vectors(collection: "Collection", state: RowState, new: Rewritten) -> None:
    """Each layer's live rows into a new file, hashed chunk by chunk on the way."""
    for layer in range(collection.num_states):
        source = collection.vector_file(layer)
        target = source.path.with_name(source.path.name + SUFFIX)
        mapped = source.read(state.committed)
        with open(target, "wb") as f:
            for start in range(0, len(state.live), _CHUNK):
                block = np.ascontiguousarray(mapped[state.live[start : start + _CHUNK]])
                f.write(block.tobytes())
                new.chunks += _digests(layer, start, block)
            f.flush()
            os.fsync(f.fileno())
        new.files.append((str(target), str(source.path)))


def _digests(layer: int, start: int, block: np.ndarray) -> list[tuple[int, int, int, str]]:
    """(layer, start, rows, digest) of every CHUNK_ROWS rows of a block written from row ``start`` (a multiple of it)."""
    step = integrity.CHUNK_ROWS
    return [(layer, start + i, len(block[i : i + step]), integrity.digest(block[i : i + step].tobytes())) for i in range(0, len(block), step)]


def _write_rows(collection: "Collection", state: RowState, new: Rewritten) -> None:
    for layer, file, values in ((ROWS_LAYER, rowmap.row_file(collection), np.asarray(state.keys)[state.live].reshape(-1, 1)),
                                (NORMS_LAYER, rowmap.norm_file(collection), np.asarray(state.norms)[state.live] if state.norms is not None else None)):
        if values is None:
            continue
        target = file.path.with_name(file.path.name + SUFFIX)
        rowmap.write_atomic(target, values)
        new.chunks += _digests(layer, 0, np.ascontiguousarray(values))
        new.files.append((str(target), str(file.path)))


def _write_indices(collection: "Collection", views: Sequence["StoredView"], state: RowState, mapping: np.ndarray, new: Rewritten) -> None:
    """IVF files without dead ids and renumbered; HNSW files listed for removal (rebuilt after)."""
    for view in views:
        path = collection.index_path(view.name)
        if not path.exists():
            continue
        index = faiss_index.read(path, collection.name)
        if faiss_index.kind_of(index) not in ("ivf", "ivfpq"):
            new.remove.append(str(path))
            continue
        held = faiss_index.ids(index)
        faiss_index.remove(index, held[state(held) < 0])
        faiss_index.remap(index, mapping)
        target = path.with_name(path.name + SUFFIX)
        new.indices[str(path)] = faiss_index.write_atomic(index, target)
        new.files.append((str(target), str(path)))
        new.views.append(view.name)


def _write_journal(collection: "Collection", before: int, after: int, files: list[tuple[str, str]], remove: list[str]) -> None:
    _sync(collection)
    entry = {"before": before, "after": after, "files": files, "remove": remove}
    rowmap.write_atomic(journal_path(collection), np.frombuffer(json.dumps(entry).encode(), dtype=np.uint8))


def _runs(live: np.ndarray) -> list[tuple[int, int, int]]:
    """(first old row, end old row, shift) of each block of consecutive live rows that moves down."""
    if not len(live):
        return []
    breaks = np.flatnonzero(np.diff(live) != 1) + 1
    starts, ends = np.r_[0, breaks], np.r_[breaks, len(live)]
    return [(int(live[a]), int(live[b - 1]) + 1, int(live[a]) - int(a)) for a, b in zip(starts, ends) if live[a] != a]


def _renumber_database(collection: "Collection", state: RowState, new: Rewritten) -> None:
    """Passage rows (and BM25 rowids) take their new numbers, the committed count drops and every checksum is
    replaced by the new files', in one transaction.

    Rows move through negative numbers first, so no two passages share a row at any moment.
    """
    runs = _runs(state.live)
    params = [{"lo": lo, "hi": hi, "s": shift} for lo, hi, shift in runs]
    with collection.store.sessions.begin() as s:
        if collection.store.is_sqlite:
            bm25.ensure(s, collection.id)
        for table, column, where in _targets(collection):
            if params:
                s.execute(text(f"UPDATE {table} SET {column} = -({column} - :s) - 1 WHERE {where} {column} >= :lo AND {column} < :hi"), params)
                s.execute(text(f"UPDATE {table} SET {column} = -{column} - 1 WHERE {where} {column} < 0"))
        integrity.forget_rows(s, collection.id)
        s.add_all(VectorChunkRow(collection_id=collection.id, layer=layer, start=start, rows=rows, digest=value)
                  for layer, start, rows, value in new.chunks)
        for path, written in new.indices.items():
            integrity.record_index(s, collection.id, _relpath(collection, path), written)
        for path in new.remove:
            integrity.forget_index(s, collection.id, _relpath(collection, path))
        collection._set(s, vector_rows=len(state.live), indices_stale=True)  # noqa: SLF001 - storage's own protocol


def _relpath(collection: "Collection", path: str) -> str:
    return Path(path).relative_to(collection.dir).as_posix()


def _targets(collection: "Collection") -> list[tuple[str, str, str]]:
    """(table, row column, filter) of every table keyed by vector row."""
    passages = PassageRow.__table__.name
    out = [(passages, "row", f"collection_id = {int(collection.id)} AND")]
    if collection.store.is_sqlite:
        out.append((bm25.table_name(collection.id), "rowid", ""))
    return out


def _bytes(collection: "Collection") -> int:
    return sum(p.stat().st_size for folder in ("vectors", "indices") for p in (collection.dir / folder).glob("*") if p.is_file())

