"""Checksums that catch silent corruption of vector files and index files.

Vector rows are hashed (xxh3-64) in chunks of at most ``CHUNK_ROWS`` rows per hidden
state, from the very bytes appended, and the digests are committed in the same
transaction as the passages that point at the rows. An index file is hashed while it
is written; its size and digest are recorded right after. ``check`` compares vector
file sizes and index files with their records (cheap); ``check --deep`` rereads every
vector byte against its chunk digest. Rows written before checksums existed have no
record: they are not verified, and a lost range of them is still found by its size.

A damaged range is never used to build an index: ``check --repair`` re-derives it
(the service layer re-encodes the passage texts the database holds) or, without an
encoder, removes the documents that had rows in it and blanks the range.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import xxhash
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from layerwise.storage.schema import IndexFileRow, VectorChunkRow
from layerwise.storage.vectors import VectorFile

CHUNK_ROWS = 1024


def digest(data: bytes | memoryview) -> str:
    """The xxh3-64 digest of some bytes, as 16 hex characters."""
    return xxhash.xxh3_64_hexdigest(data)


@dataclass(frozen=True)
class FileDigest:
    """Size and digest of a file's bytes."""

    size: int
    digest: str


class HashingWriter:
    """Writes to a binary file and hashes what it writes (an index file's digest costs no second read)."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._hash = xxhash.xxh3_64()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self.size += len(data)
        return self._out.write(data)

    @property
    def result(self) -> FileDigest:
        return FileDigest(self.size, self._hash.hexdigest())


def file_digest(path: Path, block: int = 1 << 22) -> FileDigest:
    """Size and digest of a whole file, read in blocks."""
    hasher = xxhash.xxh3_64()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(block):
            hasher.update(chunk)
            size += len(chunk)
    return FileDigest(size, hasher.hexdigest())


# -- vector rows ----------------------------------------------------------------------------------
def record_appended(session: Session, collection_id: int, files: list[VectorFile], start: int, count: int) -> None:
    """Add the chunk digests of rows start..start+count-1, appended (and fsync'd) to every layer's file since
    the last commit, read back from the files (a long document's vectors arrive in several appends)."""
    for layer, file in enumerate(files):
        record_file_rows(session, collection_id, layer, file, start, count)


def record_file_rows(session: Session, collection_id: int, layer: int, file: VectorFile, start: int, count: int) -> None:
    """Add the chunk digests of rows start..start+count-1 of one file, read back from it, under ``layer``
    (a hidden state, or one of the per-row files beside the vectors: storage/rowmap.py's negative numbers)."""
    if count <= 0:
        return
    with open(file.path, "rb") as f:
        for offset in range(start, start + count, CHUNK_ROWS):
            rows = min(CHUNK_ROWS, start + count - offset)
            data = _read_at(f, offset * file.row_bytes, rows * file.row_bytes)
            session.add(VectorChunkRow(collection_id=collection_id, layer=layer, start=offset, rows=rows, digest=digest(data)))


def record_array(session: Session, collection_id: int, layer: int, start: int, array: np.ndarray) -> None:
    """Add the chunk digests of rows start.. of a file whose bytes are ``array`` (rows, width), as stored, without
    reading the file back (a file rewritten whole: compaction, a rows file remade from the database)."""
    data = np.ascontiguousarray(array)
    for offset in range(0, len(data), CHUNK_ROWS):
        block = data[offset : offset + CHUNK_ROWS]
        session.add(VectorChunkRow(collection_id=collection_id, layer=layer, start=start + offset, rows=len(block),
                                   digest=digest(block.tobytes())))


def forget_rows(session: Session, collection_id: int, layers: Iterable[int] | None = None, from_row: int = 0) -> None:
    """Drop the chunk records of some layers' files (every file's when None) that reach row ``from_row`` or
    later: those rows are being rewritten."""
    query = delete(VectorChunkRow).where(VectorChunkRow.collection_id == collection_id,
                                         VectorChunkRow.start + VectorChunkRow.rows > from_row)
    if layers is not None:
        query = query.where(VectorChunkRow.layer.in_(list(layers)))
    session.execute(query)


def covering(session: Session, collection_id: int, layer: int, rows: np.ndarray) -> list[tuple[int, int]]:
    """The (start, rows) records of one layer's file that hold any of the given rows."""
    if not len(rows):
        return []
    low, high = int(np.min(rows)), int(np.max(rows))
    found = session.execute(select(VectorChunkRow.start, VectorChunkRow.rows).where(
        VectorChunkRow.collection_id == collection_id, VectorChunkRow.layer == layer,
        VectorChunkRow.start <= high, VectorChunkRow.start + VectorChunkRow.rows > low)).all()
    sorted_rows = np.sort(rows)
    out = []
    for start, count in found:
        at = np.searchsorted(sorted_rows, start)
        if at < len(sorted_rows) and sorted_rows[at] < start + count:
            out.append((int(start), int(count)))
    return out


def replace_chunk(session: Session, collection_id: int, layer: int, start: int, block: np.ndarray) -> None:
    """Record rewritten rows ``start..`` of one layer (block (rows, d) as stored), replacing overlapping records."""
    end = start + len(block)
    session.execute(delete(VectorChunkRow).where(
        VectorChunkRow.collection_id == collection_id, VectorChunkRow.layer == layer,
        VectorChunkRow.start < end, VectorChunkRow.start + VectorChunkRow.rows > start))
    session.add(VectorChunkRow(collection_id=collection_id, layer=layer, start=start, rows=len(block),
                               digest=digest(np.ascontiguousarray(block).tobytes())))


def chunk_records(session: Session, collection_id: int) -> dict[int, list[tuple[int, int, str]]]:
    """Per layer, the (start, rows, digest) records, in row order."""
    out: dict[int, list[tuple[int, int, str]]] = {}
    found = session.execute(select(VectorChunkRow.layer, VectorChunkRow.start, VectorChunkRow.rows, VectorChunkRow.digest)
                            .where(VectorChunkRow.collection_id == collection_id)
                            .order_by(VectorChunkRow.layer, VectorChunkRow.start))
    for layer, start, rows, value in found:
        out.setdefault(int(layer), []).append((int(start), int(rows), str(value)))
    return out


@dataclass(frozen=True)
class Damage:
    """Rows start..start+rows-1 of one layer's vector file that cannot be trusted."""

    layer: int
    start: int
    rows: int
    why: str  # "checksum": bytes changed since they were written; "lost": the file ends before them

    def describe(self) -> str:
        what = "fail their checksum" if self.why == "checksum" else "are missing from the file"
        return f"vector rows {self.start}..{self.start + self.rows - 1} of layer {self.layer} {what}"


def damaged_rows(file: VectorFile, layer: int, committed: int, records: list[tuple[int, int, str]], deep: bool) -> list[Damage]:
    """The damaged ranges of one layer: recorded chunks whose bytes differ (``deep`` only) or lie past the
    end of the file, and unrecorded committed rows past its end."""
    size = file.path.stat().st_size if file.path.exists() else 0
    found: list[Damage] = []
    covered_to = 0
    with open(file.path, "rb") if file.path.exists() else contextlib.nullcontext() as f:
        for start, rows, value in records:
            if start >= committed:
                continue
            covered_to = max(covered_to, start + rows)
            if (start + rows) * file.row_bytes > size:
                found.append(Damage(layer, start, rows, "lost"))
            elif deep and f is not None and digest(_read_at(f, start * file.row_bytes, rows * file.row_bytes)) != value:
                found.append(Damage(layer, start, rows, "checksum"))
    on_disk = size // file.row_bytes
    first_lost = max(covered_to, on_disk)
    for start in range(first_lost, committed, CHUNK_ROWS):  # rows without records (older collections) that are gone
        found.append(Damage(layer, start, min(CHUNK_ROWS, committed - start), "lost"))
    return found


def _read_at(f: BinaryIO, offset: int, size: int) -> bytes:
    f.seek(offset)
    return f.read(size)


def write_rows(file: VectorFile, start: int, block: np.ndarray) -> None:
    """Overwrite (or extend the file with) rows ``start..`` of a vector file with block (rows, d), fsync'd."""
    data = np.ascontiguousarray(block, dtype=file.dtype).tobytes()
    file.path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(file.path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        written = os.pwrite(fd, data, start * file.row_bytes)
        if written != len(data):
            raise OSError(f"short write to {file.path}: {written} of {len(data)} bytes")
        os.fsync(fd)
    finally:
        os.close(fd)


def derive_block(rows: int, start: int, live: Iterable[int], dim: int, dtype: np.dtype,
                 vectors_of: Callable[[list[int]], np.ndarray]) -> np.ndarray:
    """Rows start..start+rows-1 rebuilt: the live ones from ``vectors_of(live rows) -> (n, d)``, the dead ones zero."""
    block = np.zeros((rows, dim), dtype=dtype)  # (rows, d)
    wanted = sorted(r for r in live if start <= r < start + rows)
    if wanted:
        block[np.asarray(wanted) - start] = np.asarray(vectors_of(wanted), dtype=dtype)
    return block


# -- index files ----------------------------------------------------------------------------------
def record_index(session: Session, collection_id: int, relpath: str, written: FileDigest) -> None:
    """Record the size and digest an index file was written with (replacing an older record)."""
    forget_index(session, collection_id, relpath)
    session.add(IndexFileRow(collection_id=collection_id, path=relpath, size=written.size, digest=written.digest))


def forget_index(session: Session, collection_id: int, relpath: str) -> None:
    session.execute(delete(IndexFileRow).where(IndexFileRow.collection_id == collection_id, IndexFileRow.path == relpath))


def index_problem(session: Session, collection_id: int, relpath: str, path: Path) -> str:
    """Why an index file differs from what was written ('' when it matches or nothing was recorded)."""
    row = session.scalar(select(IndexFileRow).where(IndexFileRow.collection_id == collection_id, IndexFileRow.path == relpath))
    if row is None or not path.is_file():
        return ""
    size = path.stat().st_size
    if size != row.size:
        return f"index file {path.name} is {size} bytes, {row.size} were written"
    if file_digest(path).digest != row.digest:
        return f"index file {path.name} changed since it was written (checksum differs)"
    return ""
