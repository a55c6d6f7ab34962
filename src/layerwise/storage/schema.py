"""The SQLAlchemy schema: collections, documents, passages, views and evaluation runs.

A passage's ``row`` is its row in every per-layer vector file and its id in every
FAISS index; rows are appended and never reused. ``Collection.vector_rows`` is the
number of vector rows committed, written in the same transaction as the passages.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

SCHEMA_VERSION = 3

# MIGRATIONS[v]: the statements that take a database from version v to v + 1.
MIGRATIONS: dict[int, list[str]] = {
    1: ["ALTER TABLE collections ADD COLUMN default_view TEXT",
        "ALTER TABLE collections ADD COLUMN generation INTEGER NOT NULL DEFAULT 0"],
    # 2 -> 3: folder ownership (uid, folder; NULL = a folder made before, collections/NAME-ID) and
    # checksums (the vector_chunks and index_files tables, which create_all adds).
    2: ["ALTER TABLE collections ADD COLUMN uid VARCHAR(32)",
        "ALTER TABLE collections ADD COLUMN folder VARCHAR(300)"],
}


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Meta(Base):
    __tablename__ = "layerwise_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))


class CollectionRow(Base):
    __tablename__ = "collections"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    model: Mapped[dict[str, Any]] = mapped_column(JSON)
    vector_dtype: Mapped[str] = mapped_column(String(16))
    overlap: Mapped[int] = mapped_column(Integer)
    max_passages: Mapped[int | None] = mapped_column(Integer, nullable=True)
    vector_rows: Mapped[int] = mapped_column(Integer, default=0)
    index_type: Mapped[str] = mapped_column(String(16), default="flat")
    indices_stale: Mapped[bool] = mapped_column(Boolean, default=True)
    default_view: Mapped[str | None] = mapped_column(Text, nullable=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)  # bumped by every change, so readers notice cheaply
    uid: Mapped[str | None] = mapped_column(String(32), nullable=True)  # also in the folder's marker (storage/ownership.py)
    folder: Mapped[str | None] = mapped_column(String(300), nullable=True)  # under HOME/collections; NULL: NAME-ID
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class DocumentRow(Base):
    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("collection_id", "doc_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    doc_id: Mapped[str] = mapped_column(String(1000))
    title: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    passages: Mapped[list["PassageRow"]] = relationship(
        back_populates="document", cascade="all, delete-orphan", passive_deletes=True
    )


class PassageRow(Base):
    __tablename__ = "passages"
    __table_args__ = (UniqueConstraint("collection_id", "row"), Index("ix_passages_document", "document_id"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    ordinal: Mapped[int] = mapped_column(Integer)
    row: Mapped[int] = mapped_column(Integer)
    char_start: Mapped[int] = mapped_column(Integer)
    char_end: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    document: Mapped[DocumentRow] = relationship(back_populates="passages")


class ViewRow(Base):
    __tablename__ = "views"
    __table_args__ = (UniqueConstraint("collection_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    spec: Mapped[str] = mapped_column(Text)
    query_spec: Mapped[str | None] = mapped_column(Text, nullable=True)
    index_type: Mapped[str] = mapped_column(String(32), default="flat")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class EvalRunRow(Base):
    __tablename__ = "eval_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    results: Mapped[dict[str, Any]] = mapped_column(JSON)


class VectorChunkRow(Base):
    """The checksum of rows start..start+rows-1 of one hidden state's vector file (storage/integrity.py)."""

    __tablename__ = "vector_chunks"
    __table_args__ = (Index("ix_vector_chunks", "collection_id", "layer", "start"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    layer: Mapped[int] = mapped_column(Integer)
    start: Mapped[int] = mapped_column(Integer)
    rows: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(16))


class IndexFileRow(Base):
    """Size and checksum of an index file when it was written, by its path inside the collection folder."""

    __tablename__ = "index_files"
    __table_args__ = (UniqueConstraint("collection_id", "path"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(String(300))
    size: Mapped[int] = mapped_column(BigInteger)
    digest: Mapped[str] = mapped_column(String(16))
