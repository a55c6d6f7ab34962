"""A collection on disk: its database rows, per-layer vector files and index files.

The write protocol keeps the three in step. A batch appends its vectors to every
layer file and fsyncs them, then commits its documents and passages together
with the new committed row count. A writer first truncates every vector file to
the committed count, so whatever an interrupted run left behind is dropped.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Sequence
from contextlib import AbstractContextManager
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import bindparam, create_engine, delete, event, func, insert, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, OperationalError, ProgrammingError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from layerwise.errors import CollectionExists, CollectionNotFound, LayerSpecError, ModelMismatch, StorageError, UsageError
from layerwise.layers import validate_view_name
from layerwise.storage import bm25, compaction, damage, filenames, integrity, location, ownership, rowmap
from layerwise.storage.schema import MIGRATIONS, SCHEMA_VERSION, Base, CollectionRow, DocumentRow, Meta, PassageRow, ViewRow
from layerwise.storage.vectors import DTYPES, VectorFile
from layerwise.types import Document, ModelIdentity, Passage, PassageInfo

_IN_BATCH = 10_000  # ids per IN (...) list, below every engine's bound-parameter limit
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_INSERT_ROWS = 4096  # passage rows per INSERT while committing a batch (bounded memory for huge documents)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class Store:
    """The database and the home folder that together hold every collection."""

    def __init__(self, db: str | None = None, home: str | Path | None = None) -> None:
        self.home = location.home_dir(home)
        self.url = location.database_url(db, self.home)
        self.engine = _engine(self.url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._init_schema()

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def _init_schema(self) -> None:
        """One read when the database is current; create the tables or migrate only when it is not."""
        try:
            if self._current_version() == SCHEMA_VERSION:
                return
            Base.metadata.create_all(self.engine)
            with self.sessions.begin() as s:
                row = s.get(Meta, "schema_version")
                if row is None:
                    s.add(Meta(key="schema_version", value=str(SCHEMA_VERSION)))
                elif int(row.value) != SCHEMA_VERSION:
                    self._migrate(s, row)
        except OperationalError as exc:
            reason = " ".join(str(exc.orig).split())
            raise StorageError(f"cannot open database {self.url}: {reason} — check the URL, that its server or folder is reachable, and the permissions") from None

    def _current_version(self) -> int | None:
        try:
            with self.sessions() as s:
                row = s.get(Meta, "schema_version")
        except (OperationalError, ProgrammingError):  # no tables yet (SQLite says OperationalError, PostgreSQL ProgrammingError)
            return None
        return int(row.value) if row is not None else None

    def _migrate(self, session: Session, row: Meta) -> None:
        """Bring an older database up to SCHEMA_VERSION in the same transaction; refuse a newer one."""
        version = int(row.value)
        if version > SCHEMA_VERSION:
            raise StorageError(
                f"database {self.url} has schema version {version}, this layerwise reads up to {SCHEMA_VERSION}: "
                "use a newer layerwise, or a new --db"
            )
        for step in range(version, SCHEMA_VERSION):
            for statement in MIGRATIONS[step]:
                session.execute(text(statement))
        row.value = str(SCHEMA_VERSION)

    def names(self) -> list[str]:
        with self.sessions() as s:
            return list(s.scalars(select(CollectionRow.name).order_by(CollectionRow.name)))

    def create(
        self, name: str, identity: ModelIdentity, vector_dtype: str = "float32", overlap: int = 32, max_passages: int | None = None
    ) -> "Collection":
        validate_collection_name(name)
        if vector_dtype not in DTYPES:
            raise UsageError(f"unknown vector dtype '{vector_dtype}': use {' or '.join(DTYPES)}")
        with self.sessions.begin() as s:
            if s.scalar(select(CollectionRow.id).where(CollectionRow.name == name)) is not None:
                raise CollectionExists(f"collection '{name}' already exists: choose another name or `layerwise drop {name}`")
            row = CollectionRow(name=name, model=identity.to_dict(), vector_dtype=vector_dtype, overlap=overlap,
                                max_passages=max_passages, uid=ownership.new_uid())
            s.add(row)
            s.flush()
            # a folder that exists (another database's namesake) is never deleted or reused
            row.folder, notice = ownership.claim_new_folder(self.home / "collections", name, row.id, row.uid or "", self.url)
        collection = self.open(name)
        collection.notices = [notice] if notice else []
        return collection

    def open(self, name: str, verify: bool = True) -> "Collection":
        """The named collection; ``verify``: refuse one whose folder another store's collection owns."""
        with self.sessions() as s:
            row = s.scalar(select(CollectionRow).where(CollectionRow.name == name))
        if row is None:
            known = ", ".join(self.names()) or "none yet"
            raise CollectionNotFound(f"no collection '{name}' (collections: {known}): create it with `layerwise index PATH --collection {name}`")
        collection = Collection(self, row)
        if verify:
            ownership.verify(collection)
        return collection

    def drop(self, name: str) -> None:
        """Delete a collection's rows, then its folder, holding its writer lock (a running writer makes this fail).

        A collection whose folder another store's collection owns loses its rows only: that folder is left alone.
        """
        collection = self.open(name, verify=False)
        if ownership.foreign(collection):
            self._delete_rows(collection)
            return
        with collection.writing():
            self._delete_rows(collection)
            ownership.remove_folder(collection)

    def _delete_rows(self, collection: "Collection") -> None:
        with self.sessions.begin() as s:
            if self.is_sqlite:
                bm25.drop(s, collection.id)
            s.execute(delete(CollectionRow).where(CollectionRow.id == collection.id))


def _engine(url: str) -> Engine:
    try:
        engine = create_engine(url)
    except (ArgumentError, ImportError, SQLAlchemyError) as exc:
        raise UsageError(f"cannot use database URL '{url}': {exc} — pass a SQLAlchemy URL such as sqlite:///path.db") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    damage.install(engine, url)
    return engine


class Collection:
    """One named collection: documents, passages, raw per-layer vectors, views and indices."""

    def __init__(self, store: Store, row: CollectionRow) -> None:
        self.store = store
        self.id = row.id
        self.name = row.name
        self.identity = ModelIdentity.from_dict(row.model)
        self.vector_dtype = row.vector_dtype
        self.overlap = row.overlap
        self.max_passages = row.max_passages
        self.index_type = row.index_type
        self.uid = row.uid  # None: made before folder markers (storage/ownership.py)
        self.dir = store.home / "collections" / (row.folder or ownership.default_folder(row.name, row.id))
        self.notices: list[str] = []  # what creating it had to tell the user

    @property
    def num_states(self) -> int:
        return self.identity.num_states

    def vector_rows(self) -> int:
        """Rows committed to every vector file."""
        with self.store.sessions() as s:
            return int(s.scalar(select(CollectionRow.vector_rows).where(CollectionRow.id == self.id)) or 0)

    def vector_file(self, layer: int) -> VectorFile:
        return VectorFile(self.dir / "vectors" / f"layer{layer}.{self.vector_dtype}", self.identity.dim, self.vector_dtype)

    def layer_vectors(self, layer: int) -> np.ndarray:
        """Stored raw vectors (rows, dim) of one hidden state, memory-mapped."""
        return self.vector_file(layer).read(self.vector_rows())

    def index_path(self, view_name: str) -> Path:
        """A view's index file: named from ids, never from the view's name (storage/filenames.py)."""
        return self.dir / filenames.index_relpath(self, view_name)

    def check_identity(self, identity: ModelIdentity) -> None:
        """Refuse an encoder whose identity differs from the collection's."""
        diffs = self.identity.differences(identity)
        if diffs:
            raise ModelMismatch(
                f"collection '{self.name}' was indexed with {self.identity.name} ({'; '.join(diffs)}): "
                f"use the same model and pooling, or index into a new collection"
            )

    def writing(self) -> AbstractContextManager[object]:
        """The collection's single-writer lock (use as a context manager); it also checks the folder is this collection's."""
        return ownership.writer(self)

    def adopt_uid(self, uid: str) -> None:
        """Give a collection made before folder markers its identity (once)."""
        with self.store.sessions.begin() as s:
            s.query(CollectionRow).filter(CollectionRow.id == self.id, CollectionRow.uid.is_(None)).update(
                {"uid": uid, "folder": self.dir.name})
            self.uid = s.scalar(select(CollectionRow.uid).where(CollectionRow.id == self.id))

    def default_view(self) -> str | None:
        """The view spec a plain search uses, when the user chose one."""
        with self.store.sessions() as s:
            return s.scalar(select(CollectionRow.default_view).where(CollectionRow.id == self.id))

    def set_default_view(self, spec: str | None) -> None:
        with self.store.sessions.begin() as s:
            self._set(s, default_view=spec)

    def indices_stale(self) -> bool:
        with self.store.sessions() as s:
            return bool(s.scalar(select(CollectionRow.indices_stale).where(CollectionRow.id == self.id)))

    def _set(self, session: Session, **values: Any) -> None:
        """Update this collection's row and bump its generation (every change goes through here)."""
        values["generation"] = CollectionRow.generation + 1
        session.query(CollectionRow).filter(CollectionRow.id == self.id).update(values)

    def state(self) -> tuple[int, int, bool]:
        """(generation, committed vector rows, indices stale): one cheap read that tells a reader what changed
        (every search makes it: a Core connection and a prepared statement, 0.09 ms against an ORM session's 0.22)."""
        with self.store.engine.connect() as connection:
            row = connection.execute(_STATE, {"collection": self.id}).one_or_none()
        if row is None:
            raise CollectionNotFound(f"collection '{self.name}' was dropped")
        return int(row[0] or 0), int(row[1] or 0), bool(row[2])

    def mark_indexed(self) -> None:
        """Record that every index matches the committed rows."""
        with self.store.sessions.begin() as s:
            self._set(s, indices_stale=False)

    def set_index_type(self, index_type: str) -> None:
        with self.store.sessions.begin() as s:
            self._set(s, index_type=index_type, indices_stale=True)
        self.index_type = index_type

    def prepare_write(self) -> int:
        """Finish or undo an interrupted compaction, truncate every vector and row file to the committed rows; return that count."""
        compaction.recover(self)
        committed = self.vector_rows()
        for layer in range(self.num_states):
            self.vector_file(layer).truncate(committed)
        rowmap.prepare(self, committed)
        return committed

    def commit_batch(
        self, docs: Sequence[Document], passages: Sequence[Sequence[Passage]], vectors: np.ndarray, replace: Sequence[str] = ()
    ) -> None:
        """Append vectors (passages, states, dim), then commit the rows that point at them.

        A failure in between (disk full, a read-only database) leaves rows past the
        committed count in the vector files, which the next writer cuts off.
        """
        self._check_cap(passages)
        self.append_vectors(vectors)
        self.commit_rows(docs, passages, replace)

    def _check_cap(self, passages: Sequence[Sequence[Passage]]) -> None:
        """Refuse a document with more passages than the collection's --max-passages: exact searches fetch passages by
        that cap (search.searcher.passage_depth), so one more would lose documents from their results."""
        if self.max_passages and any(len(parts) > self.max_passages for parts in passages):
            raise UsageError(f"a document has more than this collection's {self.max_passages} passages: nothing was committed")

    def append_vectors(self, vectors: np.ndarray) -> None:
        """Append vectors (passages, states, dim) to every layer file, fsynced but not yet committed.

        A long document's vectors go to disk piece by piece this way; the rows
        that point at them are committed afterwards, all at once, by commit_rows.
        """
        for layer in range(self.num_states):
            self.vector_file(layer).append(vectors[:, layer])

    def commit_rows(self, docs: Sequence[Document], passages: Sequence[Sequence[Passage]], replace: Sequence[str] = ()) -> None:
        """Commit documents whose passages' vectors were appended, in order, since the last commit."""
        self._check_cap(passages)
        start = self.vector_rows()
        count = sum(len(parts) for parts in passages)
        on_disk = min(self.vector_file(layer).rows_on_disk() for layer in range(self.num_states))
        if on_disk != start + count:
            raise StorageError(f"{self.dir / 'vectors'} holds {on_disk} rows, expected {start} committed + {count} new: nothing was committed")
        try:
            self._commit_rows(docs, passages, start, count, replace)
        except OperationalError as exc:
            raise StorageError(f"database {self.store.url} refused the write ({exc.orig}): nothing of this batch was committed") from None

    def _commit_rows(
        self, docs: Sequence[Document], passages: Sequence[Sequence[Passage]], start: int, count: int, replace: Sequence[str]
    ) -> None:
        with self.store.sessions.begin() as s:
            _, dead = self._delete_documents(s, replace)
            ids = self._insert_documents(s, docs)
            self._after_insert_documents(s, ids, docs)
            rows = iter(range(start, start + count))
            flat = ((doc_id, p) for doc_id, parts in zip(ids, passages) for p in parts)
            while chunk := list(itertools.islice(flat, _INSERT_ROWS)):  # bounded memory for a huge document
                values = [{"collection_id": self.id, "document_id": doc_id, "ordinal": p.ordinal, "row": next(rows),
                           "char_start": p.char_start, "char_end": p.char_end, "text": p.text} for doc_id, p in chunk]
                s.execute(insert(PassageRow), values)
                self._after_insert(s, values[0]["row"], [p for _, p in chunk])
            self._set(s, vector_rows=start + count, indices_stale=True)
            integrity.record_appended(s, self.id, [self.vector_file(i) for i in range(self.num_states)], start, count)
            keys = [doc_id for doc_id, parts in zip(ids, passages) for _ in parts]
            rowmap.append(self, s, start, keys)  # the rows and norms files, fsync'd and checksummed before the commit
            rowmap.record_dead(self, s, dead)
        rowmap.mark_dead(self, dead)
        self.forget_rows()

    def _insert_documents(self, session: Session, docs: Sequence[Document]) -> list[int]:
        """Document rows as one bulk executemany insert (the ORM unit of work took 1 ms a document); their ids in order."""
        if not docs:
            return []
        values = [{"collection_id": self.id, "doc_id": d.doc_id, "title": d.title, "text": d.text,
                   "content_hash": d.content_hash, "meta": _jsonable(d.metadata)} for d in docs]
        return list(session.scalars(insert(DocumentRow).returning(DocumentRow.id, sort_by_parameter_order=True), values).all())

    def _after_insert(self, session: Session, start: int, passages: Sequence[Passage]) -> None:
        """Keep the passages' BM25 full-text table in step (SQLite only)."""
        if self.store.is_sqlite:
            bm25.add(session, self.id, range(start, start + len(passages)), [p.text for p in passages])

    def _after_insert_documents(self, session: Session, ids: Sequence[int], docs: Sequence[Document]) -> None:
        """Keep the whole documents' BM25 full-text table in step (SQLite only)."""
        if self.store.is_sqlite:
            bm25.add_documents(session, self.id, list(ids), [f"{d.title} {d.text}" for d in docs])

    def delete_documents(self, doc_ids: Sequence[str]) -> int:
        """Remove documents and their passages from the database; return how many existed."""
        with self.store.sessions.begin() as s:
            removed, dead = self._delete_documents(s, doc_ids)
            if removed:
                self._set(s, indices_stale=True)
            rowmap.record_dead(self, s, dead)  # the rows file's checksums as they will be once marked
        rowmap.mark_dead(self, dead)
        self.forget_rows()
        return removed

    def _delete_documents(self, session: Session, doc_ids: Sequence[str]) -> tuple[int, list[int]]:
        """Delete documents and their passages; return how many documents and their passages' rows."""
        if not doc_ids:
            return 0, []
        ids: list[int] = []
        for start in range(0, len(doc_ids), _IN_BATCH):
            part = list(doc_ids[start : start + _IN_BATCH])
            ids += session.scalars(select(DocumentRow.id).where(DocumentRow.collection_id == self.id, DocumentRow.doc_id.in_(part)))
        rows: list[int] = []
        for start in range(0, len(ids), _IN_BATCH):
            part = ids[start : start + _IN_BATCH]
            rows += session.scalars(select(PassageRow.row).where(PassageRow.document_id.in_(part)))
            session.execute(delete(PassageRow).where(PassageRow.document_id.in_(part)))
            session.execute(delete(DocumentRow).where(DocumentRow.id.in_(part)))
        if self.store.is_sqlite and rows:
            bm25.remove(session, self.id, rows)
            bm25.remove_documents(session, self.id, ids)
        return len(ids), rows

    def documents_with_rows_from(self, row: int) -> list[str]:
        """Ids of documents with a passage at vector row ``row`` or later."""
        with self.store.sessions() as s:
            found = s.scalars(select(DocumentRow.doc_id).join(PassageRow).where(PassageRow.collection_id == self.id, PassageRow.row >= row))
            return sorted(set(found))

    def set_vector_rows(self, rows: int) -> None:
        with self.store.sessions.begin() as s:
            self._set(s, vector_rows=rows, indices_stale=True)
        self.forget_rows()

    def document_hashes(self) -> dict[str, str]:
        with self.store.sessions() as s:
            pairs = s.execute(select(DocumentRow.doc_id, DocumentRow.content_hash).where(DocumentRow.collection_id == self.id))
            return {doc_id: digest for doc_id, digest in pairs}

    @cached_property
    def passage_table(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(live rows sorted, document index per row, document ids) for ranking documents."""
        with self.store.sessions() as s:
            pairs = s.execute(
                select(PassageRow.row, DocumentRow.doc_id).join(DocumentRow).where(PassageRow.collection_id == self.id).order_by(PassageRow.row)
            ).all()
        doc_ids = sorted({d for _, d in pairs})
        position = {d: i for i, d in enumerate(doc_ids)}
        rows = np.asarray([r for r, _ in pairs], dtype=np.int64)
        return rows, np.asarray([position[d] for _, d in pairs], dtype=np.int64), doc_ids

    def document_names(self) -> dict[int, str]:
        """Document id of every document key (the database id that the rows file holds)."""
        with self.store.sessions() as s:
            pairs = s.execute(select(DocumentRow.id, DocumentRow.doc_id).where(DocumentRow.collection_id == self.id))
            return {key: doc_id for key, doc_id in pairs}

    def forget_rows(self) -> None:
        """Drop the cached passage table (rows changed here, or possibly by another process)."""
        self.__dict__.pop("passage_table", None)

    def live_rows(self) -> np.ndarray:
        return self.passage_table[0]

    def passages(self, rows: Sequence[int]) -> dict[int, PassageInfo]:
        """Passage and document details of the given vector rows."""
        if not rows:
            return {}
        with self.store.sessions() as s:
            found = s.execute(
                select(PassageRow.row, DocumentRow.doc_id, DocumentRow.title, PassageRow.text, PassageRow.char_start, PassageRow.char_end)
                .join(DocumentRow)
                .where(PassageRow.collection_id == self.id, PassageRow.row.in_([int(r) for r in rows]))
            ).all()
        return {r[0]: PassageInfo(*r) for r in found}

    def passage_spans(self) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
        """(rows sorted, document id, passage ordinal, character spans (n, 2)) of every live passage."""
        with self.store.sessions() as s:
            found = s.execute(
                select(PassageRow.row, DocumentRow.doc_id, PassageRow.ordinal, PassageRow.char_start, PassageRow.char_end)
                .join(DocumentRow).where(PassageRow.collection_id == self.id).order_by(PassageRow.row)
            ).all()
        rows = np.asarray([r[0] for r in found], dtype=np.int64)
        spans = np.asarray([(r[3], r[4]) for r in found], dtype=np.int64).reshape(-1, 2)
        return rows, [r[1] for r in found], np.asarray([r[2] for r in found], dtype=np.int64), spans

    def counts(self) -> dict[str, int]:
        with self.store.sessions() as s:
            docs = s.scalar(select(func.count()).select_from(DocumentRow).where(DocumentRow.collection_id == self.id))
            passages = s.scalar(select(func.count()).select_from(PassageRow).where(PassageRow.collection_id == self.id))
        return {"documents": int(docs or 0), "passages": int(passages or 0), "vector_rows": self.vector_rows()}

    def stored_views(self, valid: bool = True) -> list[ViewRow]:
        """Stored views; with ``valid=False`` only those whose names an older layerwise let through and are refused now."""
        with self.store.sessions() as s:
            found = list(s.scalars(select(ViewRow).where(ViewRow.collection_id == self.id).order_by(ViewRow.id)))
        return [v for v in found if _valid_view_name(v.name) == valid]

    def save_view(self, name: str, spec: str, query_spec: str | None, index_type: str,
                  staged: tuple[Path, integrity.FileDigest] | None = None) -> None:
        """Store a view (replacing one of that name); ``staged``: its index, written to a temporary file, put in place here."""
        with self.store.sessions.begin() as s:
            old = list(s.scalars(select(ViewRow.id).where(ViewRow.collection_id == self.id, ViewRow.name == name)))
            s.execute(delete(ViewRow).where(ViewRow.collection_id == self.id, ViewRow.name == name))
            row = ViewRow(collection_id=self.id, name=name, spec=spec, query_spec=query_spec, index_type=index_type)
            s.add(row)
            s.flush()
            for view_id in old:
                integrity.forget_index(s, self.id, filenames.stored_relpath(view_id))
            if staged is not None:
                relpath = filenames.stored_relpath(row.id)
                (self.dir / relpath).parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged[0], self.dir / relpath)
                integrity.record_index(s, self.id, relpath, staged[1])
            self._set(s)
        for view_id in old:
            if view_id != row.id:
                (self.dir / filenames.stored_relpath(view_id)).unlink(missing_ok=True)

    def delete_views(self, names: Sequence[str]) -> None:
        """Remove stored views by name (their rows only: a refused name is never turned into a path)."""
        with self.store.sessions.begin() as s:
            s.execute(delete(ViewRow).where(ViewRow.collection_id == self.id, ViewRow.name.in_(list(names))))
            self._set(s)

    def record_index(self, path: Path, written: integrity.FileDigest) -> None:
        """Record the size and checksum an index file was just written with."""
        with self.store.sessions.begin() as s:
            integrity.record_index(s, self.id, path.relative_to(self.dir).as_posix(), written)

    def forget_index(self, path: Path) -> None:
        """Drop the record of an index file about to be removed."""
        with self.store.sessions.begin() as s:
            integrity.forget_index(s, self.id, path.relative_to(self.dir).as_posix())


def _valid_view_name(name: str) -> bool:
    try:
        validate_view_name(name)
    except LayerSpecError:
        return False
    return True


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(data, default=str))


def validate_collection_name(name: str) -> str:
    """The name, if it is a valid collection name (so no path can leave the home), else UsageError."""
    if not _NAME_RE.fullmatch(name):
        raise UsageError(f"collection name '{name}' is invalid: use letters, digits, '_', '-' and '.' (max 100)")
    return name


_STATE = select(CollectionRow.generation, CollectionRow.vector_rows, CollectionRow.indices_stale).where(
    CollectionRow.id == bindparam("collection"))
